"""Send one kind of task (prefetch or purge) for one shard, in batches, never one batch twice blindly.

Submits are not idempotent. After an ambiguous submit failure (timeout, reset, 5xx, garbled
answer: the cloud may have accepted it), history is read again for that batch before anything is
re-sent: targets with a task we did not know before count as submitted; only the rest is sent
again, a bounded number of times. The same code sends purges and prefetches: the adapter's kind
(clouds/base.py) decides which, so both get the same guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable, Mapping, Optional, Sequence, TextIO

from ..clouds.base import CloudAdapter, CloudError, SubmitResult
from ..clouds.history import HistoryCache
from ..model.status import HistoryRow, TargetState, TaskKind
from .outputs import SubmittedTask

# A cloud clock a little off ours: history windows around our own submits are widened by this.
CLOCK_TOLERANCE = timedelta(minutes=5)
# Submit errors after which the cloud may have accepted the batch (see retry.py: never re-sent blindly).
AMBIGUOUS_KINDS = frozenset({"transient", "malformed"})
# Sends of one batch at most: the first, and re-sends of what history shows was not accepted.
SUBMIT_ATTEMPTS = 3
# Pauses before each history read that looks for an ambiguously failed batch: a task may show up
# in history a moment after it was accepted, so "not there" is concluded only after the last read.
CONFIRM_DELAYS = (0.5, 1.0, 2.0)


class SubmitError(Exception):
    """Submission stopped part-way or was refused; the message says what was submitted and what not."""


@dataclass
class TaskSubmitter:
    """One shard's submits of one kind of task (the adapter's), with the clock and sleep injectable.

    ``version_of`` gives the version (model/status.py ``version_token``) a task submitted now is for;
    ``sent_at`` collects, per task id, our time when its submit returned (clock evidence for polls);
    ``pause`` is the set's pacing: seconds between two submits.
    """

    adapter: CloudAdapter
    set_name: str
    where: str  # ``set 'web' on <cloud> zone z``, for the partial-failure message
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    log: TextIO
    history: HistoryCache
    version_of: Callable[[str], Optional[str]]
    sent_at: dict[str, datetime]
    pause: float = 0.0

    @property
    def noun(self) -> str:
        return "purge" if self.adapter.kind is TaskKind.PURGE else "prefetch"

    @property
    def _batch(self) -> str:
        """How messages name a batch: ``batch`` (a prefetch's, as always) or ``purge batch``."""
        return "purge batch" if self.adapter.kind is TaskKind.PURGE else "batch"

    def submit(self, urls: list[str], batch: int, known: set[tuple[str, str]], start: datetime,
               new_tasks: list[SubmittedTask]) -> list[HistoryRow]:
        """Submit in batches; returns a note per URL (queued, rejected, or what history showed).

        ``known`` holds the (url, task id) pairs seen before this up: after an ambiguous failure,
        a task for a URL of the batch that is not among them was accepted by the cloud.
        """
        adapter = self.adapter
        total = -(-len(urls) // batch)
        notes: list[HistoryRow] = []
        for number, index in enumerate(range(0, len(urls), batch), start=1):
            if number > 1 and self.pause > 0:
                self.sleep(self.pause)  # the set's pacing: spare the origin
            pending = urls[index:index + batch]
            for attempt in range(1, SUBMIT_ATTEMPTS + 1):
                try:
                    result = self._submit_once(pending)
                except CloudError as exc:
                    if exc.kind not in AMBIGUOUS_KINDS:
                        raise self._stopped(f"submitting {self._batch} {number} of {total} failed: {exc}", urls,
                                            new_tasks) from None
                    self.log.write(f"set {self.set_name}: submitting {self._batch} {number} of {total} on "
                                   f"{adapter.describe_scope()} may or may not have been accepted ({exc}); reading "
                                   "history before sending anything again\n")
                    try:
                        found = self._confirm(pending, known, start)
                    except CloudError as read_exc:
                        raise self._stopped(
                            f"submitting {self._batch} {number} of {total} failed ({exc}) and history could not "
                            f"be read to see whether the cloud accepted it ({read_exc}); nothing more was sent, so "
                            f"nothing is submitted twice; unconfirmed: {len(pending)} targets", urls,
                            new_tasks) from None
                    notes.extend(self._record_found(found, new_tasks))
                    pending = [u for u in pending if u not in found]
                    if not pending:
                        break
                    if attempt == SUBMIT_ATTEMPTS:
                        raise self._stopped(f"submitting {self._batch} {number} of {total} failed {attempt} "
                                            f"times, the last time with: {exc}", urls, new_tasks) from None
                    self.log.write(f"set {self.set_name}: {len(pending)} targets of {self._batch} {number} are "
                                   f"not in the history: sending them again (attempt {attempt + 1} of "
                                   f"{SUBMIT_ATTEMPTS})\n")
                    continue
                notes.extend(self._record_result(result, new_tasks))
                break
        return notes

    def _submit_once(self, urls: list[str]) -> SubmitResult:
        """One submit call; whatever its outcome, shared reads that started before it are no
        longer evidence about these URLs (the cloud may hold a new task for them)."""
        try:
            return self.adapter.submit(urls)
        finally:
            self.history.invalidate(self.adapter, urls)

    def _stopped(self, what: str, urls: Sequence[str], new_tasks: list[SubmittedTask]) -> SubmitError:
        """The partial-failure error: what was submitted (task ids, of both kinds) and what was not."""
        mine = [t for t in new_tasks if t.kind is self.adapter.kind]
        done = sum(t.count for t in mine)
        ids = ", ".join(t.task_id for t in new_tasks) or "none"
        return SubmitError(
            f"{self.where}: {what}. Submitted before the failure: {done} targets (task ids: {ids}); not "
            f"submitted: {len(urls) - done}. The next refresh finds the submitted tasks and the next up submits "
            "only the rest."
        )

    def _record_result(self, result: SubmitResult, new_tasks: list[SubmittedTask]) -> list[HistoryRow]:
        at = self.clock()
        if result.accepted:  # a task of rejected URLs only may never be listed
            self.sent_at[result.task_id] = at
        new_tasks.append(SubmittedTask(result.task_id, at, len(result.accepted), self.adapter.kind))
        what = "a purge of " if self.adapter.kind is TaskKind.PURGE else ""
        self.log.write(f"set {self.set_name}: submitted {what}{len(result.accepted)} targets as task "
                       f"{result.task_id} on {self.adapter.describe_scope()}\n")
        version = self.version_of
        notes = [HistoryRow(url, result.task_id, TargetState.QUEUED, at, None, None, None, version(url))
                 for url in result.accepted]
        notes.extend(HistoryRow(url, result.task_id, TargetState.FAILED, at, at, f"rejected at submit: {reason}",
                                "rejected", version(url)) for url, reason in result.rejected.items())
        return notes

    def _confirm(self, urls: Sequence[str], known: set[tuple[str, str]], start: datetime) -> dict[str, HistoryRow]:
        """Tasks for ``urls`` that appeared since this up started (newest per URL), read a few times.

        Never from the shared reads (clouds/history.py): after an ambiguous submit it must see the cloud now.
        """
        wanted = set(urls)
        since = start - CLOCK_TOLERANCE
        found: dict[str, HistoryRow] = {}
        for delay in CONFIRM_DELAYS:
            self.sleep(delay)
            for obs in self.adapter.history(since, self.clock() + CLOCK_TOLERANCE):
                if obs.url not in wanted or (obs.url, obs.task_id) in known or obs.created < since:
                    continue
                if obs.url not in found or (obs.created, obs.at) > (found[obs.url].created, found[obs.url].at):
                    found[obs.url] = obs
            if len(found) == len(wanted):
                break
        return found

    def _record_found(self, found: Mapping[str, HistoryRow], new_tasks: list[SubmittedTask]) -> list[HistoryRow]:
        """Targets history shows were accepted despite the error: submitted, under the task history names."""
        by_task: dict[str, list[HistoryRow]] = {}
        for obs in found.values():
            by_task.setdefault(obs.task_id, []).append(obs)
        notes: list[HistoryRow] = []
        for task_id, rows in by_task.items():
            new_tasks.append(SubmittedTask(task_id, min(o.created for o in rows), len(rows), self.adapter.kind))
            self.log.write(f"set {self.set_name}: history shows {self.noun} task {task_id} holds {len(rows)} of "
                           f"these targets on {self.adapter.describe_scope()}: counted as submitted, not sent again\n")
            notes.extend(replace(o, content=self.version_of(o.url)) for o in rows)
        return notes

