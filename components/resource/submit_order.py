"""Shards submitting under one rate limit take turns in the order their syncs started, batch after batch.

Why: the provider host serves four RPCs at a time, and each Create waits for its own tasks before it
returns. Shards that share the limiter's 20 submits/s evenly all finish submitting together, then all
wait together (their tasks' completion, their polls, their outputs) while the submit limit idles, and the
queued Creates start only when these return: at 100,000 targets the submits of an ``up`` came in waves with
a second or more of idle limit between them. In order of arrival the first shard's batches are all out
first, its tasks are due and read first and its Create returns first, and the next queued Create starts
submitting while the others still send: the submit limit, which is what the floor of an ``up`` is made
of, is kept busy. The total is the same; only who goes first changes.

The line is per cloud and kind of task, the granularity of the process's limiter (clouds/ratelimit.py:
one bucket per cloud and action). A set that paces its submits (``pacePause``) waits its pause outside
the line, so it never holds up others; a shard leaves the line when its batch loop ends, whatever ends it.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager
from datetime import datetime
from typing import Hashable, Iterator, Optional


class SubmitOrder:
    """Process-wide, thread-safe: per key, the shards in line, earliest start first."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._lines: dict[Hashable, list[tuple[datetime, int]]] = {}
        self._arrivals = itertools.count()
        self._last_sent: dict[Hashable, datetime] = {}

    @contextmanager
    def line(self, key: Hashable, started: datetime) -> Iterator["Place"]:
        """A place in ``key``'s line for a sync that started at ``started`` (ties: first come first)."""
        ticket = (started, next(self._arrivals))
        with self._changed:
            self._lines.setdefault(key, []).append(ticket)
        try:
            yield Place(self, key, ticket)
        finally:
            with self._changed:
                line = self._lines[key]
                line.remove(ticket)
                if not line:
                    del self._lines[key]
                self._changed.notify_all()

    def last_sent(self, key: Hashable, now: datetime) -> Optional[datetime]:
        """When the newest task under ``key``'s limit was sent (its submit returned), ``now`` while a shard is in
        line (one may be sent any moment), None if none was: the poll rounds read a second early only when
        every task sent by then is due (clouds/poll_rounds.py)."""
        with self._changed:
            return now if self._lines.get(key) else self._last_sent.get(key)

    def sent(self, key: Hashable, at: datetime) -> None:
        """A submit under ``key``'s limit returned at ``at``."""
        with self._changed:
            known = self._last_sent.get(key)
            if known is None or at > known:
                self._last_sent[key] = at

    def _wait_first(self, key: Hashable, ticket: tuple[datetime, int]) -> None:
        with self._changed:
            self._changed.wait_for(lambda: min(self._lines[key]) == ticket)

    def _step_out(self, key: Hashable, ticket: tuple[datetime, int], out: bool) -> None:
        """Leave the line for a while (a pause) and come back to the same place."""
        with self._changed:
            line = self._lines[key]
            if out:
                line.remove(ticket)
            else:
                line.append(ticket)
            self._changed.notify_all()


class Place:
    """One shard's place in a line."""

    def __init__(self, order: SubmitOrder, key: Hashable, ticket: tuple[datetime, int]):
        self._order, self._key, self._ticket = order, key, ticket

    def sent(self, at: datetime) -> None:
        """One of our batches was answered at ``at``."""
        self._order.sent(self._key, at)

    def wait_turn(self) -> None:
        """Return once no shard that started earlier is waiting to submit under the same limit."""
        self._order._wait_first(self._key, self._ticket)

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Out of the line while the block runs (a paced set's pause), back in the same place after."""
        self._order._step_out(self._key, self._ticket, True)
        try:
            yield
        finally:
            self._order._step_out(self._key, self._ticket, False)


SUBMIT_ORDER = SubmitOrder()
"""The provider process's line: every TaskSubmitter uses it unless given another."""
