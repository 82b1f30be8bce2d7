"""History pages without walking the history: the ordered row ids of a query, kept between its pages.

Why: a client reading 100,000 rows asks for 100 pages of 1,000 (Offset/Limit), several at once. With
COUNT(*) plus LIMIT/OFFSET per page, SQLite counts every match and skips up to 99,000 of them for
each page; in one Python process that, not the 20 requests/s rate limit, set the pace. Here a query's
matching ids are read once, in page order; each page then takes its slice (TotalCount is the
length) and fetches only its own rows.

A kept list is checked against the tasks table before every page (`TableState`, read in the page's
own snapshot, whoever wrote the table: another process steering the same file included):
- an update or delete anywhere (`changes`, bumped by triggers) or another file (`token`): read again;
- rows inserted since (ids only grow: AUTOINCREMENT): the list holds if none of them match the query,
  which the store checks on those rows alone. So submits elsewhere, or newer than the query's
  window, do not cost a read of 100,000 ids;
- task status is computed from time, so a list read with a status filter holds only while no
  matching row's `finish` falls between the time it was read and the time it is used.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable, Optional

CACHED_QUERIES = 4
"""Distinct queries kept: a paged read, and a few concurrent readers' windows. A list of 100,000 ids
is 800 kB (an array of 64-bit ints), so memory stays flat whatever is asked."""


@dataclass(frozen=True, order=True)
class TableState:
    """What a kept list depends on: the tasks table's file token, its update/delete count, its last id."""

    token: str
    changes: int
    last_id: int


@dataclass(frozen=True)
class Matches:
    """The ids a query matched, newest first, as read at `state`; with a status filter, at a time
    between `since` and `until` (None: open), between which no matching row's status changes."""

    ids: array
    state: TableState
    since: Optional[float] = None
    until: Optional[float] = None

    def holds(self, state: TableState, now: float) -> Optional[bool]:
        """True: these ids answer the query at `state` and `now`. False: they may not. None: they
        do unless a row inserted after `self.state.last_id` matches the query (the caller checks)."""
        kept = self.state
        if state.token != kept.token or state.changes != kept.changes or state.last_id < kept.last_id:
            return False  # another table, rows changed, or a reader whose snapshot predates this list
        if (self.since is not None and now < self.since) or (self.until is not None and now >= self.until):
            return False
        return True if state.last_id == kept.last_id else None


class MatchCache:
    """A few queries' `Matches`, least recently used dropped first; safe to share between threads.

    `building` serialises reads of new lists, so the concurrent pages of one read that all miss
    wait for the first one's list instead of each reading 100,000 ids (in one process, reading in
    parallel would not be faster anyway).
    """

    def __init__(self, size: int = CACHED_QUERIES) -> None:
        self.size = size
        self.building = threading.Lock()
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Matches] = OrderedDict()

    def get(self, key: Hashable) -> Optional[Matches]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, matches: Matches) -> None:
        """Keep `matches` for `key`, unless what is kept was read from a later state (a slow reader).

        Lists read before an update or delete are dropped: they can never hold again.
        """
        state = matches.state
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None and kept.state.token == state.token and kept.state > state:
                return
            for old in [k for k, e in self._entries.items()
                        if e.state.token != state.token or e.state.changes < state.changes]:
                del self._entries[old]
            self._entries[key] = matches
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
