"""Poll rounds: the tasks every ``up`` in this process waits for on one scope, read once per round.

Why: at 100,000 targets an ``up`` is 16 shards, each submitting its own tasks and waiting for them,
four at a time (the provider host's RPC threads). Open windows shared between pollers (history.py)
re-read the rows of every shard polling then, from the earliest of their windows, and shards often
polled twice: 2.6x (EdgeOne) and 4.7x (Cloud CDN) the minimum history calls. Here each poller
registers its tasks (id, URLs, when the submit returned); a round reads the rows of every task on
the scope that is due, whoever asked, so one round serves all pollers due then, and a task whose
rows were seen finished is never read again.

When a task is due: its first read when the scope's earlier tasks were usually finished (completion.py:
learnt from our own reads on our clock, with a trial read a little earlier now and then; ``first``
seconds after its submit returned until any was), then with the poller's backoff (doubling up to
``most``) while it is still running (a trial seen running: next at the usual time). The last task of
an ``up`` is then read about when it finishes, not a whole ``first`` after (0.5 s of a 6 s EdgeOne
``up`` of 100,000 targets). A poll waits for the round in flight (if it reads none of its due tasks,
the next round, which it then leads, does).

The query shape is the cloud's (registry ``poll_reads``), the cheaper of the two its API offers:

- ``task``: one query per due task by its id filter (EdgeOne ``job-id``: one value). A task holds up
  to a batch of URLs (1000) and a page 1000 rows, so one page per task: never more than a time
  window holding that task would cost, exactly when the task is due, with no clock reasoning.
  100,000 targets in 1000-URL tasks (one smaller per shard): 112 pages against 100.
- ``window``: one time window over the due tasks (Cloud CDN: ``TaskId`` is one id per call and a task
  500 URLs, so reading by id would cost twice a window's pages). The window is bounded at both ends:
  it starts after ``cursor``, the last second whose tasks of ours were all read finished (their rows
  are not read again), and ends at the last whole second whose tasks are all due (the scope's usual
  first-read age old, completion.py) on the cloud's clock (rows of tasks not due yet are not read;
  EndTime inclusive, times in whole seconds), or at the current second when every task of ours is
  due and none is being submitted (the last tasks of an ``up`` are then read when due, not up to a
  second later).
  Until our own tasks showed the cloud's clock (their creation time against the moment their submit
  returned), the earliest due task is read by id instead, which shows it; the scope's first window
  starts after that task's second, or at it (reading it again, once per scope) when a due task may
  share that second. A task the window should have shown but did not (by its
  submit time and that clock) is read by id in the next round, as is a task still running once the
  cursor passed it: a row a window missed is never taken as "not listed".

A task is finished when every URL we sent in it has a row and none is queued or running; rows of a
task a window holds that is not due yet count too (it is then not read again). Nothing is lost:
each poller keeps its task ids, reads fail as they fail (a CloudError reaches the poller, which
polls again), and a task whose rows never show stays in flight until the deadline.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator, Mapping, Optional

from .base import CloudAdapter
from .completion import TRIAL_EVERY, Completion
from .history import SHARED_HISTORY, HistoryCache
from .paging import PAGES_IN_FLIGHT
from ..model.status import HistoryRow

SECOND = timedelta(seconds=1)
# Before any cursor: a window's start this far before the first due task's submit on the cloud's clock
# (its times are whole seconds, and the learnt offset is only a lower bound of the true one).
FIRST_MARGIN = timedelta(seconds=2)
# Where windows are whole seconds, a trial first read (completion.py) is a read by id more: fewer of them.
WINDOW_TRIAL_EVERY = 4 * TRIAL_EVERY


@dataclass(eq=False)
class Awaited:
    """One task a poller waits for: its URLs, our time its submit returned, and what the rounds saw."""

    task_id: str
    urls: frozenset[str]
    sent_at: datetime
    due: datetime
    interval: float
    rows: list[HistoryRow] = field(default_factory=list)
    stamp: Optional[datetime] = None  # its creation time on the cloud's clock, once a read showed it
    done: bool = False
    by_id: bool = False  # a window should have shown it and did not, or it ran past the cursor: read it by id
    reads: int = 0
    ran_late: bool = False  # seen running by a read that started when the scope's tasks usually are done
    trial: bool = False  # read first earlier than usual (completion.py); by id where windows are whole seconds


@dataclass(eq=False)
class _Round:
    ids: frozenset[str]
    future: Future


@dataclass(eq=False)
class _Scope:
    tasks: dict[str, Awaited] = field(default_factory=dict)
    cursor: Optional[datetime] = None  # window shape: tasks of ours stamped up to here were all read finished
    # The most (cloud creation time - our time its submit returned) our tasks showed: the cloud's clock is at
    # least this far ahead of ours (a task is created before its submit returns). The largest such bound is
    # the closest; an overstated one (a cloud that stamps a task after answering) only widens a window.
    offset: Optional[timedelta] = None
    flying: Optional[_Round] = None
    completion: Optional[Completion] = None  # how long our tasks take: when a new one is read first


class PollRounds:
    """Process-wide, thread-safe: the awaited tasks of each scope and the rounds that read them."""

    def __init__(self, *, in_flight: int = PAGES_IN_FLIGHT):
        self.in_flight = in_flight
        self._lock = threading.Lock()
        self._scopes: dict[tuple, _Scope] = {}
        self.rounds = 0  # rounds read (for tests and figures)

    @contextmanager
    def awaiting(self, adapter: CloudAdapter, tasks: Mapping[str, tuple[datetime, frozenset[str]]], *,
                 first: float, most: float) -> Iterator[list[Awaited]]:
        """Register ``tasks`` (id -> (our time its submit returned, its URLs)) on the adapter's scope while
        the block runs; yields them, as the rounds update them."""
        key = _key(adapter)
        with self._lock:
            scope = self._scopes.setdefault(key, _Scope())
            windows = adapter.poll_reads == "window"
            if scope.completion is None:
                scope.completion = Completion(first, WINDOW_TRIAL_EVERY if windows else TRIAL_EVERY)
            mine = []
            for task_id, (sent, urls) in tasks.items():
                age, trial = scope.completion.first_read()
                # A window reads a second once all its tasks are due, a second or two after a trial's time:
                # a trial is read by id (one more call) or it could never show a shorter time.
                mine.append(Awaited(task_id, urls, sent, sent + timedelta(seconds=age), min(2 * first, most),
                                    by_id=trial and windows, trial=trial))
            for task in mine:
                scope.tasks[task.task_id] = task
        try:
            yield mine
        finally:
            with self._lock:
                for task in mine:
                    if scope.tasks.get(task.task_id) is task:
                        del scope.tasks[task.task_id]
                if not scope.tasks and scope.flying is None:
                    scope.cursor = None  # no one waits: the next window starts at its own tasks (the clock is kept)

    def poll(self, adapter: CloudAdapter, mine: list[Awaited], clock: Callable[[], datetime], *,
             first: float, most: float, history: HistoryCache = SHARED_HISTORY,
             last_sent: Optional[Callable[[], Optional[datetime]]] = None) -> None:
        """Bring every due task of ``mine`` up to date: wait for the round in flight, and lead the next
        round (serving every task due on the scope then) when that one read none of ours. ``history`` keeps
        what our tasks showed of the cloud's clock (``learn_clock``); ``last_sent()`` is when the newest task under the
        scope's submit limit was sent in this process (now while one may be; a window reads a second early only
        when that task is due; without it, never)."""
        key = _key(adapter)
        while True:
            with self._lock:
                scope = self._scopes[key]
                now = clock()
                wanted = {t.task_id for t in mine if not t.done and t.due <= now}
                if not wanted:
                    return
                flying = scope.flying
                if flying is None:
                    due = [t for t in scope.tasks.values() if not t.done and t.due <= now]
                    flying = scope.flying = _Round(frozenset(t.task_id for t in due), Future())
                    lead = True
                else:
                    lead = False
            if not lead:
                flying.future.exception()  # waits; a failed round is retried by whoever polls next
                if wanted <= flying.ids:
                    error = flying.future.exception()
                    if error is not None:
                        raise error
                    return
                continue
            try:
                self._round(_Reading(adapter, scope, history, set(), last_sent), due, now, first, most, clock)
            except BaseException as exc:
                with self._lock:
                    scope.flying = None
                flying.future.set_exception(exc)
                raise
            with self._lock:
                scope.flying = None
            flying.future.set_result(None)
            return

    def clear(self) -> None:
        """Forget every scope (tests; a poller still waiting keeps its own tasks)."""
        with self._lock:
            self._scopes.clear()

    # -- one round ---------------------------------------------------------------------------------------
    def _round(self, reading: "_Reading", due: list[Awaited], now: datetime, first: float, most: float,
               clock: Callable[[], datetime]) -> None:
        with self._lock:
            self.rounds += 1
        adapter = reading.adapter
        if adapter.poll_reads == "window":
            by_id = [t for t in due if t.by_id]
            rest = [t for t in due if not t.by_id]
            if rest and reading.scope.offset is None:
                earliest = min(rest, key=lambda t: t.sent_at)  # read by id, it shows the cloud's clock
                rest.remove(earliest)
                by_id.append(earliest)
            self._by_id(reading, by_id)
            with self._lock:
                for task in by_id:
                    if task.trial and not task.done:
                        task.by_id = False  # its trial read is done: in the windows with the others from now on
            if rest:
                self._window(reading, rest, now, reading.scope.completion.usual)
        else:
            self._by_id(reading, due)
        after = clock()
        with self._lock:
            completion = reading.scope.completion
            for task in due:
                if task.task_id not in reading.read:
                    continue
                if task.done:
                    completion.finished((after - task.sent_at).total_seconds(), ran_late=task.ran_late)
                elif completion.running((now - task.sent_at).total_seconds(), trial=task.trial):
                    task.ran_late = True
                task.trial = False  # a task is a trial at its first read only
            for task in due:
                if task.done:
                    continue
                if task.task_id in reading.read:
                    task.due = after + timedelta(seconds=task.interval)
                    if not task.ran_late:  # seen running before the usual time: read again then
                        task.due = max(after, min(task.due, task.sent_at + timedelta(seconds=completion.usual)))
                    task.interval = min(task.interval * 2, most)
                else:  # a window ended before its second: due again when a window can reach further
                    task.due = max(task.due, reading.retry or after + timedelta(seconds=min(1.0, first)))

    def _by_id(self, reading: "_Reading", tasks: list[Awaited]) -> None:
        if not tasks:
            return
        history = reading.adapter.task_history
        if len(tasks) == 1:
            results = [list(history(tasks[0].task_id))]
        else:
            with ThreadPoolExecutor(max_workers=min(self.in_flight, len(tasks)),
                                    thread_name_prefix="poll-round") as pool:
                results = list(pool.map(lambda t: list(history(t.task_id)), tasks))
        for task, rows in zip(tasks, results):
            reading.read.add(task.task_id)
            self._record(reading, {task.task_id: rows})

    def _window(self, reading: "_Reading", tasks: list[Awaited], now: datetime, due_after: float) -> None:
        """The due tasks in one window: after the cursor, up to the last whole second whose tasks are all due."""
        scope = reading.scope
        offset = scope.offset
        if offset is None:
            return  # the task read by id showed no row yet: the next round tries again
        end = _whole(now - timedelta(seconds=due_after) + offset) - SECOND
        current = _whole(now + offset)  # the second the cloud's clock is in
        sent = reading.last_sent() if reading.last_sent is not None and current > end else now
        if sent is None or sent + timedelta(seconds=due_after) <= now:
            # Every task sent so far is due and none is being sent: no task of ours comes later in this very
            # second, so the window may end in it (not at the last whole one: the last tasks of an up are read
            # when due, not up to a second later). One sent after all is read by id when a window misses it.
            end = current
        # A task this window cannot reach is due again when the next second is whole and due, or when every
        # task sent so far is due, whichever comes first.
        cutoff = now - timedelta(seconds=due_after) + offset
        retry = now + (_whole(cutoff) + SECOND - cutoff)
        if sent is not None and sent > now - timedelta(seconds=due_after):
            retry = min(retry, sent + timedelta(seconds=due_after))
        reading.retry = retry
        if scope.cursor is not None:
            start = scope.cursor + SECOND
        else:
            start = _whole(min(t.sent_at for t in tasks) + offset) - FIRST_MARGIN
            probes = [t.stamp for t in scope.tasks.values() if t.stamp is not None]
            if probes:  # what the read by id showed: no task of ours before it; itself read again only if
                probe = min(probes)  # a due task may share its second
                alone = all(_whole(t.sent_at + offset) > probe for t in tasks)
                start = max(start, probe + SECOND if alone else probe)
        if end < start:
            return
        by_task: dict[str, list[HistoryRow]] = {}
        for row in reading.adapter.history(start, end):
            by_task.setdefault(row.task_id, []).append(row)
        seen = self._record(reading, by_task)
        with self._lock:
            scope.cursor = end
            for task in tasks:
                if task.task_id in seen:
                    reading.read.add(task.task_id)
                elif _whole(task.sent_at + offset) + SECOND < end:
                    task.by_id = True  # it should be in this window: read it by id rather than trust its absence
            for task in scope.tasks.values():
                if not task.done and task.stamp is not None and task.stamp <= end:
                    task.by_id = True  # still running: the cursor has passed it

    def _record(self, reading: "_Reading", by_task: Mapping[str, list[HistoryRow]]) -> set[str]:
        """The rows read of registered tasks: kept, the task finished when every URL of it is; the clock learnt."""
        seen: set[str] = set()
        evidence: list[timedelta] = []
        with self._lock:
            for task_id, rows in by_task.items():
                task = reading.scope.tasks.get(task_id)
                if task is None or task.done:
                    continue
                mine = [r for r in rows if r.url in task.urls]
                if not mine:
                    continue
                seen.add(task_id)
                task.reads += 1
                task.rows = mine
                task.stamp = min(r.created for r in mine)
                evidence.append(task.stamp - task.sent_at)
                task.done = {r.url for r in mine} >= task.urls and not any(r.state.in_flight for r in mine)
                if task.done:
                    task.by_id = False

        if evidence:
            reading.history.learn_clock(reading.adapter, min(evidence))
            with self._lock:
                known = reading.scope.offset
                reading.scope.offset = max(evidence) if known is None else max(known, *evidence)
        return seen


@dataclass(eq=False)
class _Reading:
    """One round's adapter, scope, clock evidence store, and the ids of the due tasks it read."""

    adapter: CloudAdapter
    scope: _Scope
    history: HistoryCache
    read: set[str]
    last_sent: Optional[Callable[[], Optional[datetime]]]
    retry: Optional[datetime] = None  # when the tasks a window could not reach are due again


def _whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _key(adapter: CloudAdapter) -> tuple:
    key = adapter.history_key()
    return key if key is not None else ("unshared", id(adapter))


SHARED_ROUNDS = PollRounds()
"""The provider process's rounds: every ShardSync's poller uses them unless given others."""
