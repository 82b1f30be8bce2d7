"""One read of a cloud scope's history per provider process, shared by every set and shard on it.

Why: a set sharded into K resources, or N sets on one EdgeOne zone, would otherwise read the same
100 pages of history K or N times per refresh (5 s of rate limit each at 100,000 rows), and parse
them as often. The provider host runs four RPCs at once and the engine refreshes resources in
parallel, so reads that overlap wait for the one in flight (singleflight) instead of starting
their own.

When a read may serve a caller (``HistoryCache.read``):

- its key is the caller's: ``adapter.history_key()`` names the cloud, endpoint, credential id and
  scope, i.e. exactly what decides the rows (an adapter without a key shares with no one);
- it covers the caller's window: it reads from ``since`` or earlier, up to the moment it started
  (a read is a view of history as of its start; rows created later are in no earlier view);
- it started at or after the caller's ``fresh_after``, and after the caller's ``newer_than``
  read (a poller asks for a read newer than the one it saw last). A caller that only needs a
  recent view (a refresh, the plan of an ``up``: ``fresh_by_end``) also takes a read that
  *ended* at or after ``fresh_after``, or one still in flight: a read of D seconds is a view D
  seconds old when it ends, and a new one would be too when it ends, D seconds later. Judged by
  its start, a read longer than the freshness (5,000 pages at 20 rows, 250 s) served no one: the
  engine's later waves of Reads each read the whole history again (bench/RESULTS.md, issue 21);
- no URL of the caller was submitted, in this process, after the read started (``invalidate``):
  the read cannot show that task. A submit for other URLs does not spoil it for this caller,
  whose plan depends only on its own targets' rows (shards never share a URL).

Windows are chosen so that callers a little apart in time still ask for the same read:

- a refresh or the first read of an ``up`` reads from ``window_start(since, ...)``, ``since``
  floored to the 10 minutes: shards whose clocks were read a few seconds apart would otherwise
  ask for windows that start a few seconds apart, and a read serves only callers whose window
  starts at or after its own (one way);
- a poller (resource/converge.py ``_wait``) registers its window while it waits (``polling``): every read of
  its scope that starts meanwhile reads from the earliest registered start, so it serves every
  poller waiting then, whichever of them asked first (both ways). Before it polls, a poller
  waits for the read of its scope in flight, if any, to end (``settle``): a read that started
  before its submits cannot serve it, one that can serves it as well once ended, and pollers
  due meanwhile then share the next read instead of each starting one beside it.

Widening a window is always safe: a wider read holds every row of the narrower one (a read is
a view of all rows created in its window), and ``Snapshot.rows_for(urls, since)`` gives each
caller only the rows of its own window, so it sees exactly what a read of its own would have
shown. The cost is the rows of the extra minutes (at most 10 of a day's window; for polls, the
minutes between the first and the last registered poller).

Errors are not cached: every caller waiting on a failed read gets the same CloudError, and the
next call reads again. Entries are few (``MAX_ENTRIES``) and short-lived (``TTL``), so a
long-lived process does not accumulate history.

``_confirm`` in resource/submitter.py never comes here: after an ambiguous submit it must see the cloud now.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Collection, Iterable, Iterator, Mapping, Optional, Union

from .base import CloudAdapter, CloudError
from ..model.status import HistoryRow

TTL = 60.0       # seconds a finished read is kept (monotonic time)
MAX_ENTRIES = 4  # finished reads kept at once; the oldest goes first
GRID_MINUTES = 10  # window_start floors to this many minutes (a divisor of 60)

Rows = Union[HistoryRow, list]  # one row, or a list of them when a URL has several tasks


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The history of one scope in [since, until], read once, indexed by URL.

    ``until`` is also when the read started: the caller's "now". ``seq`` orders reads in this
    process (a later read has a higher one).
    """

    since: datetime
    until: datetime
    seq: int
    by_url: Mapping[str, Rows]
    rows: int  # rows read, duplicates included

    def rows_for(self, urls: Iterable[str], since: Optional[datetime] = None) -> list[HistoryRow]:
        """The rows of these URLs only (a lookup per URL, never a scan of the whole history).

        With ``since`` later than this read's start of window, rows created before it are left
        out, as a read of the caller's own window would have done.
        """
        get = self.by_url.get
        found: list[HistoryRow] = []
        add, extend = found.append, found.extend
        for url in urls:
            rows = get(url)
            if rows is None:
                continue
            if type(rows) is list:
                extend(rows)
            else:
                add(rows)
        if since is not None and since > self.since:
            found = [o for o in found if o.created >= since]
        return found


def window_start(since: datetime, until: datetime, span: timedelta) -> datetime:
    """Where a read for a window starting at ``since`` should start: ``since`` floored to the 10 minutes.

    Callers whose ``since`` falls in the same 10 minutes then ask for the same window and share
    its read both ways (see the module docstring). Kept as is when flooring would cost one more
    query window of ``span`` (the clouds cap a query's span, e.g. a freshness of 6 days is
    exactly one 7-day window).
    """
    floored = since.replace(minute=since.minute - since.minute % GRID_MINUTES, second=0, microsecond=0)
    if _spans(floored, until, span) > _spans(since, until, span):
        return since
    return floored


def _spans(since: datetime, until: datetime, span: timedelta) -> int:
    return max(1, -(-(until - since) // span))


def index(observations: Iterable[HistoryRow]) -> tuple[dict[str, Rows], int]:
    """{url: row or [rows]} in history order, and the number of rows read.

    A row read twice (pages that shifted while they were read, see clouds/tencent.py) is kept
    once; a row of the same task that changed between the two reads is kept both times (the
    newer one decides, as for any two rows of a URL).
    """
    by_url: dict[str, Rows] = {}
    count = 0
    for obs in observations:
        count += 1
        url = obs.url
        rows = by_url.get(url)
        if rows is None:
            by_url[url] = obs
        elif type(rows) is list:
            if obs not in rows:
                rows.append(obs)
        elif rows != obs:
            by_url[url] = [rows, obs]
    return by_url, count


@dataclass(eq=False)
class _Read:
    """A read in flight or finished, under one key."""

    key: tuple
    since: datetime
    until: datetime
    seq: int
    future: Future
    stored_at: float = 0.0
    started_at: float = 0.0  # monotonic
    ended: Optional[datetime] = None  # ``until`` plus the read's duration, once it ended

    def serves(self, since: datetime, fresh_after: datetime, floor: int, by_end: bool = False) -> bool:
        fresh = self.until >= fresh_after or (by_end and (self.ended is None or self.ended >= fresh_after))
        return self.since <= since and fresh and self.seq > floor


class HistoryCache:
    """Process-wide, thread-safe: shared history reads with singleflight (see the module docstring)."""

    def __init__(self, *, ttl: float = TTL, max_entries: int = MAX_ENTRIES,
                 monotonic: Callable[[], float] = time.monotonic):
        self.ttl, self.max_entries, self._monotonic = ttl, max_entries, monotonic
        self._lock = threading.Lock()
        self._seq = 0
        self._done: list[_Read] = []      # finished reads, oldest first
        self._flying: list[_Read] = []    # reads in progress
        # Per key, per URL: reads with a seq up to this one started before a submit of the URL.
        self._submitted: dict[tuple, dict[str, int]] = {}
        # Per key: the window starts of the callers polling it now (``polling``).
        self._pollers: dict[tuple, list[datetime]] = {}
        # Per key: the least (cloud clock - ours) that our own tasks have shown (``learn_clock``).
        self._clock_floor: dict[tuple, timedelta] = {}

    def read(self, adapter: CloudAdapter, since: datetime, until: datetime, *, urls: Collection[str],
             fresh_after: datetime, newer_than: int = 0, fresh_by_end: bool = False) -> Snapshot:
        """History of [since, until] as of ``until`` or later, for a caller whose targets are ``urls``.

        Served from a finished read or one in flight when it may serve this caller; otherwise
        read now, and shared with whoever asks while it runs. ``newer_than`` is the ``seq`` of a
        snapshot the caller has seen: only a later read serves it. A read started here reads from
        ``since`` or the earliest start of a caller ``polling`` the scope, whichever is earlier;
        the snapshot may thus start before ``since``: take rows with ``rows_for(urls, since)``.
        """
        key = adapter.history_key()
        if key is None:
            with self._lock:
                self._seq += 1
                seq = self._seq
            return _fetch(adapter, since, until, seq)
        with self._lock:
            self._expire()
            submitted = self._submitted.get(key)
            floor = newer_than
            if submitted:
                floor = max(floor, max((submitted.get(u, 0) for u in urls), default=0))
            for done in reversed(self._done):  # the newest first
                if done.key == key and done.serves(since, fresh_after, floor, fresh_by_end):
                    return done.future.result()
            joined = next((r for r in self._flying
                           if r.key == key and r.serves(since, fresh_after, floor, fresh_by_end)), None)
            if joined is None:
                self._seq += 1
                start = min([since, *self._pollers.get(key, ())])
                mine = _Read(key, start, until, self._seq, Future(), started_at=self._monotonic())
                self._flying.append(mine)
        if joined is not None:
            return joined.future.result()  # raises the leader's error: the same exception object
        return self._lead(adapter, mine)

    def invalidate(self, adapter: CloudAdapter, urls: Iterable[str]) -> None:
        """A submit of ``urls`` just ended (or failed): reads that started before it cannot show its task."""
        key = adapter.history_key()
        if key is None:
            return
        with self._lock:
            marks = self._submitted.setdefault(key, {})
            seq = self._seq
            for url in urls:
                marks[url] = seq

    def settle(self, adapter: CloudAdapter) -> None:
        """Wait for the reads of the adapter's scope in flight now to end (their outcome is not looked at).

        For pollers, before they take the time of their poll: a read that started before our
        submits cannot serve us, and a second read beside it would share the rate limit with it
        (both slower) and with no one else. Waiting for it, then reading, pollers due meanwhile
        gather on one read. Only the reads in flight at the call are waited for, so a busy scope
        delays a poll by one read at most.
        """
        key = adapter.history_key()
        if key is None:
            return
        with self._lock:
            flying = [r.future for r in self._flying if r.key == key]
        for future in flying:
            future.exception()  # waits; a failed read is its own callers' concern

    @contextmanager
    def polling(self, adapter: CloudAdapter, since: datetime) -> Iterator[None]:
        """While in this block, every read of the adapter's scope that starts here reads from ``since`` or earlier.

        For pollers: concurrent pollers of one scope started at different moments, so their
        windows start at different moments; registered, each is covered by every read any of
        them starts, and they share their polls both ways.
        """
        key = adapter.history_key()
        if key is None:
            yield
            return
        with self._lock:
            self._pollers.setdefault(key, []).append(since)
        try:
            yield
        finally:
            with self._lock:
                starts = self._pollers[key]
                starts.remove(since)
                if not starts:
                    del self._pollers[key]

    def learn_clock(self, adapter: CloudAdapter, evidence: timedelta) -> None:
        """One of our tasks was created at cloud time T, and its submit returned at our time t: the
        cloud's clock is at least ``T - t`` ahead of ours (behind, when negative).

        The least evidence is kept: when a cloud stamps tasks a little after it answers, their
        evidence overstates the offset, and a window started from it could start too late.
        """
        key = adapter.history_key()
        if key is None:
            return
        with self._lock:
            known = self._clock_floor.get(key)
            if known is None or evidence < known:
                self._clock_floor[key] = evidence

    def learn_clock_by_id(self, adapter: CloudAdapter, sent_at: Mapping[str, datetime]) -> None:
        """Until the scope's clock is known: read our tasks (id -> our time their submit returned) by id,
        for an adapter that can (``task_rows``), and learn from them.

        For clouds whose signatures carry no time, so that nothing bounds how far their clock is off
        ours: a task read by id shows whatever its time, where windows of our clock may miss it. A
        failed read teaches nothing; polls still learn from the rows they see.
        """
        if not sent_at or self.clock_floor(adapter) is not None:
            return
        try:
            rows = adapter.task_rows(list(sent_at))
        except CloudError:
            return
        evidence = [row.created - sent_at[row.task_id] for row in rows or () if row.task_id in sent_at]
        if evidence:
            self.learn_clock(adapter, min(evidence))

    def clock_floor(self, adapter: CloudAdapter) -> Optional[timedelta]:
        """What ``learn_clock`` has learnt of the scope's clock, or None: nothing yet."""
        key = adapter.history_key()
        if key is None:
            return None
        with self._lock:
            return self._clock_floor.get(key)

    def clear(self) -> None:
        """Forget every finished read, submit mark and clock evidence (tests; reads in flight still finish)."""
        with self._lock:
            self._done.clear()
            self._submitted.clear()
            self._clock_floor.clear()

    def _lead(self, adapter: CloudAdapter, mine: _Read) -> Snapshot:
        """Run the read this caller started, then hand it to every caller waiting on it."""
        try:
            snapshot = _fetch(adapter, mine.since, mine.until, mine.seq)
        except BaseException as exc:
            with self._lock:
                self._flying.remove(mine)
            mine.future.set_exception(exc)  # not kept: the next caller reads again
            raise
        mine.future.set_result(snapshot)  # before it is stored: a stored read never blocks a caller
        with self._lock:
            self._flying.remove(mine)
            mine.stored_at = self._monotonic()
            mine.ended = mine.until + timedelta(seconds=mine.stored_at - mine.started_at)
            self._store(mine)
        return snapshot

    def _store(self, read: _Read) -> None:
        # A finished read that this one covers (same key, no wider window, older) can serve no one
        # this one cannot: drop it.
        self._done = [d for d in self._done
                      if not (d.key == read.key and d.since >= read.since and d.seq < read.seq)]
        self._done.append(read)
        del self._done[:-self.max_entries]

    def _expire(self) -> None:
        now = self._monotonic()
        self._done = [d for d in self._done if now - d.stored_at < self.ttl]
        live = {r.key for r in self._done} | {r.key for r in self._flying}
        for key in [k for k in self._submitted if k not in live]:
            del self._submitted[key]  # no read of the key left that a mark could spoil


def _fetch(adapter: CloudAdapter, since: datetime, until: datetime, seq: int) -> Snapshot:
    by_url, count = index(adapter.history(since, until))
    return Snapshot(since, until, seq, by_url, count)


SHARED_HISTORY = HistoryCache()
"""The provider process's cache: every ShardSync uses it unless given another."""
