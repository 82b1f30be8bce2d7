"""Wait for one shard's submitted tasks of one kind: poll the cloud's history until none is in flight.

Each poll takes a shared read (clouds/history.py) that started after this caller's previous poll
and after its submits: sets and shards waiting on one scope at once share their polls. Our window
starts at our own start (less the clock tolerance), so pollers that started at different moments
have different windows; registered as polling, ours is covered by every read that starts while we
wait, whoever asks for it, and we take only our rows of our window from it. The guarantees do not
change: a read serves a poll only when it started after our submits and after our previous poll.

Once this process's own tasks on the scope have shown how the cloud's clock stands to ours
(``HistoryCache.learn_clock``), the window starts at our start on the cloud's clock less
``CLOCK_MARGIN`` instead of ``CLOCK_TOLERANCE``: a shard created after others then reads its own
rows, not theirs again (at 100,000 targets, most of an ``up``'s history calls). Should a pending
target show no row in such a window, the polls after it go back to the wide one: a row the narrow
window missed is never taken for a task not yet listed.

Purges and prefetches are polled alike: the adapter's kind decides which history is read.

An adapter whose cloud names a poll shape (registry ``poll_reads``) polls the tasks this sync submitted
in the process's poll rounds instead (clouds/poll_rounds.py): each due task's rows read once per round,
by task id or in a bounded window, whichever the cloud makes cheaper, and one round serves every poller
due on the scope. Targets whose task was not submitted here (a purge an earlier ``up`` sent) keep the
windows above.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Optional, TextIO

from ..clouds.base import CloudAdapter, CloudError
from ..clouds.history import HistoryCache
from ..clouds.poll_rounds import SHARED_ROUNDS, Awaited, PollRounds
from ..model.status import HistoryRow, TargetState, TaskKind
from .progress import Progress, ProgressSink, shard_scope
from .submit_order import SUBMIT_ORDER, SubmitOrder
from .submitter import CLOCK_TOLERANCE

POLL_FIRST = 1.0
POLL_MAX = 15.0
PROGRESS_EVERY = 30.0
# Once our own tasks have shown the cloud's clock (history.py ``learn_clock``), a poll's window starts
# this long before our start on the cloud's clock instead: the cloud's times are whole seconds, and
# its servers' clocks may differ from one another by a little.
CLOCK_MARGIN = timedelta(seconds=5)


def narrow_window(start: datetime, wide: datetime, clock_floor: Optional[timedelta]) -> datetime:
    """Where the polls of tasks submitted after ``start`` (our clock) look from: ``wide`` until the
    cloud's clock is known, then ``start`` on the cloud's clock less ``CLOCK_MARGIN``.

    ``clock_floor`` is a least (cloud - ours): our tasks were created at cloud time >= ``start +
    clock_floor``, less the second the cloud rounds its times to, which the margin covers. That is
    before ``wide`` when the cloud's clock is further behind ours than the tolerance (a cloud whose
    signatures bound no clock): the window then starts there, or our own rows would never show.
    """
    if clock_floor is None:
        return wide
    # A cloud ahead of us stamps our tasks after our start anyway; starting later would leave the
    # window empty until our clock caught up (and a window that starts after "now" may be refused).
    return start + min(clock_floor, timedelta(0)) - CLOCK_MARGIN


@dataclass
class TaskPoller:
    """Polls one kind of task (the adapter's) for one shard, until ``start + wait`` at the latest.

    ``sent_at`` is the submitter's record of when each of our tasks was sent (clock evidence).
    """

    adapter: CloudAdapter
    set_name: str
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    log: TextIO
    history: HistoryCache
    sent_at: dict[str, datetime]
    wait: timedelta
    on_progress: Optional[ProgressSink] = None  # hears every poll; without one, a plain line every PROGRESS_EVERY
    rounds: PollRounds = SHARED_ROUNDS
    order: SubmitOrder = SUBMIT_ORDER  # who is submitting under the same limit (a window waits for them)

    def until_done(self, start: datetime, pending: set[str], *, since: Optional[datetime] = None,
                   tasks: Optional[Mapping[str, str]] = None) -> list[HistoryRow]:
        """The rows of ``pending`` in the poll window at the last poll, once none is in flight or at the deadline.

        ``since``: where the window starts when some pending tasks were submitted before ``start`` (by an
        earlier up); by default it starts at ``start``, less the clock tolerance. ``tasks``: the task id
        of each pending target, when this sync submitted it (then polled in the rounds, if the cloud has them).
        """
        if not pending or self.wait.total_seconds() <= 0:
            return []
        if self.adapter.poll_reads and since is None and tasks is not None \
                and all(tasks.get(u) in self.sent_at for u in pending):
            return self._poll_rounds(start, pending, tasks)
        self.history.learn_clock_by_id(self.adapter, self.sent_at)  # a cloud read by id, clock still unknown
        tolerated = start - CLOCK_TOLERANCE  # a cloud clock a little behind ours
        narrow = narrow_window(start, tolerated, self.history.clock_floor(self.adapter))
        # Wider when our tasks showed the cloud's clock further behind, or earlier tasks' rows lie before
        # our start: no narrowing then.
        wide = min(tolerated, narrow, since or narrow)
        since = narrow if wide == tolerated else wide
        with ExitStack() as polling:
            polling.enter_context(self.history.polling(self.adapter, since))
            # Back to the wide window: registered too, so that reads other pollers start cover it again.
            widen = lambda: polling.enter_context(self.history.polling(self.adapter, wide))  # noqa: E731
            return self._poll(start, since, wide, pending, widen)

    def _poll(self, start: datetime, since: datetime, wide: datetime, pending: set[str],
              widen: Callable[[], Any]) -> list[HistoryRow]:
        """The polls of ``until_done``: the rows of ``pending`` in [since, now] at the last poll (from ``wide``
        on, once a narrow window showed a pending target no row; ``widen`` registers that window)."""
        deadline = start + self.wait
        interval = POLL_FIRST
        last_progress = start
        latest: list[HistoryRow] = []
        previous_start, previous_seq = self.clock(), 0
        polled = False
        while pending:
            now = self.clock()
            if now >= deadline and polled:
                break
            # Submits may outlast the wait (UCloud: one per 10 s): one look even then, so that what is done
            # is known and what the purges cleared is prefetched in this up, not the next.
            if now < deadline:
                self.sleep(min(interval, max(0.0, (deadline - now).total_seconds())))
            polled = True
            interval = min(interval * 2, POLL_MAX)
            self.history.settle(self.adapter)  # join the next read of the scope, not one beside the current
            poll_start = self.clock()
            try:
                snapshot = self.history.read(self.adapter, since, poll_start, urls=pending,
                                             fresh_after=previous_start, newer_than=previous_seq)
            except CloudError as exc:
                # The tasks are submitted and recorded: a failed poll only means we look again later.
                what = "purge progress" if self.adapter.kind is TaskKind.PURGE else "progress"
                self.log.write(f"set {self.set_name}: reading {what} failed ({exc}); trying again\n")
                continue
            previous_start, previous_seq = poll_start, snapshot.seq
            rows = [o for o in snapshot.rows_for(pending, since) if o.created >= since]
            latest = rows
            newest: dict[str, HistoryRow] = {}
            for obs in rows:
                if obs.url not in newest or obs.created >= newest[obs.url].created:
                    newest[obs.url] = obs
            self._learn_clock(rows)
            if since > wide and len(newest) < len(pending):
                # A pending target's row may lie before the narrow window: look at the whole tolerance from
                # now on. (A target with a row in it is decided: were our task's row hidden before the
                # window, that row would be of a task the cloud created later, which decides either way.)
                since = wide
                widen()
                continue
            in_flight = {u for u in pending if u not in newest or newest[u].state.in_flight}
            now = self.clock()
            if self.on_progress is not None:  # a live display: every poll
                self.on_progress(self._progress(pending, newest, in_flight, deadline - now))
            elif (now - last_progress).total_seconds() >= PROGRESS_EVERY:
                self.log.write(self._progress(pending, newest, in_flight, deadline - now).line())
                last_progress = now
            if not in_flight:
                break
        return latest

    def _poll_rounds(self, start: datetime, pending: set[str], tasks: Mapping[str, str]) -> list[HistoryRow]:
        """``until_done`` in the poll rounds: the rows of our tasks as the last round that read each left them."""
        by_task: dict[str, set[str]] = {}
        for url in pending:
            by_task.setdefault(tasks[url], set()).add(url)
        awaited = {task: (self.sent_at[task], frozenset(urls)) for task, urls in by_task.items()}
        deadline = start + self.wait
        polled = False
        with self.rounds.awaiting(self.adapter, awaited, first=POLL_FIRST, most=POLL_MAX) as mine:
            last_progress = start
            while True:
                now = self.clock()
                if now >= deadline and polled:
                    break
                waiting = [t for t in mine if not t.done]
                due = min(t.due for t in waiting)
                if now < deadline:
                    self.sleep(max(0.0, (min(due, deadline) - now).total_seconds()))
                polled = True
                try:
                    self.rounds.poll(self.adapter, mine, self.clock, first=POLL_FIRST, most=POLL_MAX,
                                     history=self.history, last_sent=self._last_sent)
                except CloudError as exc:
                    what = "purge progress" if self.adapter.kind is TaskKind.PURGE else "progress"
                    self.log.write(f"set {self.set_name}: reading {what} failed ({exc}); trying again\n")
                    if self.clock() < deadline:
                        self.sleep(POLL_FIRST)  # not every due task's next poll at once
                    continue
                if self._round_progress(mine, pending, deadline, last_progress):
                    last_progress = self.clock()
                if all(t.done for t in mine):
                    break
        return [row for task in mine for row in task.rows]

    def _last_sent(self) -> Optional[datetime]:
        return self.order.last_sent((self.adapter.cloud, self.adapter.kind), self.clock())

    def _round_progress(self, mine: list[Awaited], pending: set[str], deadline: datetime,
                        last: datetime) -> bool:
        """Report where the wait stands after a round (every poll to a sink, else a line every PROGRESS_EVERY);
        True when a plain line was written."""
        now = self.clock()
        if self.on_progress is None and (now - last).total_seconds() < PROGRESS_EVERY:
            return False
        newest = {row.url: row for task in mine for row in task.rows}
        in_flight = {u for u in pending if u not in newest or newest[u].state.in_flight}
        progress = self._progress(pending, newest, in_flight, deadline - now)
        if self.on_progress is not None:
            self.on_progress(progress)
            return False
        self.log.write(progress.line())
        return True

    def _learn_clock(self, rows: Iterable[HistoryRow]) -> None:
        """Clock evidence from the rows of tasks this sync submitted (history.py ``learn_clock``)."""
        sent_at = self.sent_at
        evidence = [obs.created - sent_at[obs.task_id] for obs in rows if obs.task_id in sent_at]
        if evidence:
            self.history.learn_clock(self.adapter, min(evidence))

    def _progress(self, pending: set[str], newest: dict[str, HistoryRow], in_flight: set[str],
                  left: timedelta) -> Progress:
        """Where the wait stands: the plain line while `up` waits (a diagnostic), or the command's live bar."""
        done = sum(1 for u in pending if u in newest and newest[u].state is TargetState.WARM)
        return Progress(shard_scope(self.set_name, self.adapter), self.adapter.kind,
                        len(pending), len(pending), done, len(pending) - done - len(in_flight), len(in_flight),
                        max(0, int(left.total_seconds())))
