"""Send one kind of task (prefetch or purge) for one shard, in batches, never one batch twice blindly.

Submits are not idempotent. After an ambiguous submit failure (timeout, reset, 5xx, garbled
answer: the cloud may have accepted it, now or later), history is read again for that batch:
targets with a task we did not know before count as submitted. The others are not sent again in
this ``up``: a cloud may execute a request long after the client gave up, so they are recorded as
an unconfirmed attempt (plan/unconfirmed.py) that a later read of history decides, once it covers
the request's whole possible life. Nothing more is sent in that ``up``: a cloud whose answers are
lost may be executing requests nobody sees, and a later refusal would fail the ``up`` and lose the
record. The same code sends purges and prefetches: the adapter's kind (clouds/base.py) decides
which, so both get the same guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable, Iterable, Optional, Sequence, TextIO

from ..clouds.base import CloudAdapter, CloudError, SubmitResult
from ..clouds.history import HistoryCache
from ..clouds.page_size import SHARED_BATCH_SIZES, PageKey, PageLadder
from ..clouds.retry import DEFAULT_POLICY
from ..model.status import HistoryRow, TargetState, TaskKind, format_time
from ..plan.unconfirmed import Attempt
from .outputs import SubmittedTask
from .progress import Progress, ProgressSink, shard_scope
from .submit_order import SUBMIT_ORDER, Place, SubmitOrder

# A cloud clock a little off ours: history windows around our own submits are widened by this.
CLOCK_TOLERANCE = timedelta(minutes=5)
# Submit errors after which the cloud may have accepted the batch (see retry.py: never re-sent blindly).
AMBIGUOUS_KINDS = frozenset({"transient", "malformed"})
# Pauses before each history read that looks for an ambiguously failed batch: a task may show up
# in history a moment after it was accepted, so "not there" is concluded only after the last read.
CONFIRM_DELAYS = (0.5, 1.0, 2.0)
# How long after its answer was lost a request may still be executed: the SDK clients give up after
# CLIENT_TIMEOUT seconds (the adapters' make_client), a call's retries end within the retry deadline,
# and a cloud's queue may hold a request a few minutes more. Until then, no task is no evidence.
CLIENT_TIMEOUT = 30.0
REQUEST_LIFE = timedelta(seconds=CLIENT_TIMEOUT + DEFAULT_POLICY.deadline, minutes=5)


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
    on_progress: Optional[ProgressSink] = None  # hears each batch sent (the command's live display)
    order: SubmitOrder = SUBMIT_ORDER  # shards under one limit submit in the order their syncs started

    @property
    def noun(self) -> str:
        return "purge" if self.adapter.kind is TaskKind.PURGE else "prefetch"

    @property
    def _batch(self) -> str:
        """How messages name a batch: ``batch`` (a prefetch's, as always) or ``purge batch``."""
        return "purge batch" if self.adapter.kind is TaskKind.PURGE else "batch"

    def submit(self, urls: list[str], batches: Sequence[int], known: set[tuple[str, str]], start: datetime,
               new_tasks: list[SubmittedTask], unconfirmed: list[Attempt]) -> list[HistoryRow]:
        """Submit in batches; returns a note per URL (queued, rejected, or what history showed).

        ``batches``: the batch size, then smaller sizes to step down to when it is a guess (a quota the cloud did
        not report, model/quota.py) and the cloud refuses a batch as too large: the refused batch was not
        executed, so its URLs go again, fewer at a time (clouds/page_size.py ``SHARED_BATCH_SIZES``).
        ``known`` holds the (url, task id) pairs seen before this up: after an ambiguous failure,
        a task for a URL of the batch that is not among them was accepted by the cloud. The targets
        history does not show join ``unconfirmed`` (the sync's, shared by both kinds); once it holds
        an attempt, nothing more is sent. Batches wait their turn behind shards that started earlier
        (resource/submit_order.py).
        """
        with self.order.line((self.adapter.cloud, self.adapter.kind), start) as place:
            return self._submit(urls, batches, known, start, new_tasks, unconfirmed, place)

    def _submit(self, urls: list[str], batches: Sequence[int], known: set[tuple[str, str]], start: datetime,
                new_tasks: list[SubmittedTask], unconfirmed: list[Attempt], place: Place) -> list[HistoryRow]:
        send = self._guessed_batches(batches) if len(batches) > 1 else None
        batch = batches[0]
        notes: list[HistoryRow] = []
        index = number = 0
        while index < len(urls):
            if unconfirmed:
                self.log.write(f"set {self.set_name}: {len(urls) - index} targets not sent in this up, since a "
                               "submit is unconfirmed: the next up sends them\n")
                break
            number += 1
            if number > 1 and self.pause > 0:
                with place.aside():  # not holding up the others meanwhile
                    self.sleep(self.pause)  # the set's pacing: spare the origin
            place.wait_turn()
            size = SHARED_BATCH_SIZES.size(*send.key) if send else batch
            name = f"{self._batch} {number} of {number - 1 + -(-(len(urls) - index) // size)}"
            sent = urls[index:index + size]
            try:
                result = send(urls, index, sent) if send else self._submit_once(sent)
            except CloudError as exc:
                if exc.kind not in AMBIGUOUS_KINDS:
                    raise self._stopped(f"submitting {name} failed: {exc}", urls, new_tasks) from None
                notes.extend(self._resolve(sent, name, exc, known, start, new_tasks, unconfirmed))
            else:
                notes.extend(self._record_result(result, new_tasks))
            index += len(sent)
            place.sent(self.clock())
            if self.on_progress is not None:
                self.on_progress(Progress(shard_scope(self.set_name, self.adapter), self.adapter.kind, len(urls),
                                          index))
        return notes

    def _guessed_batches(self, batches: Sequence[int]) -> "_GuessedBatches":
        ladder = PageLadder(tuple(batches), self.adapter.batch_refusal_codes)
        return _GuessedBatches(PageKey(self.adapter.cloud, f"{self.noun} batches", self.adapter.quota_key()),
                               ladder, self._submit_once)

    def _resolve(self, pending: list[str], name: str, exc: CloudError, known: set[tuple[str, str]], start: datetime,
                 new_tasks: list[SubmittedTask], unconfirmed: list[Attempt]) -> list[HistoryRow]:
        """After an ambiguous failure: what history shows counts as submitted, the rest is an unconfirmed attempt."""
        at = self.clock()
        self.log.write(f"set {self.set_name}: submitting {name} on {self.adapter.describe_scope()} may or may not "
                       f"have been accepted ({exc}); reading history before sending anything again\n")
        try:
            found = self._confirm(pending, known, start)
        except CloudError as read_exc:
            found, why = {}, f"history could not be read ({read_exc})"
        else:
            why = "history does not show them yet"
        notes = self.record_found(found.values(), new_tasks)
        rest = [u for u in pending if u not in found]
        if rest:
            left = set(rest)
            ids = frozenset(task for url, task in known if url in left)
            attempt = Attempt(self.adapter.kind, at, (at + REQUEST_LIFE).replace(microsecond=0) + timedelta(seconds=1),
                              tuple(rest), ids, f"{exc.action} failed: {exc.code}")
            unconfirmed.append(attempt)
            self.log.write(f"set {self.set_name}: {len(rest)} targets of {name}: {why}; not sent again (the cloud may "
                           f"still execute the request): unconfirmed until a read of history after "
                           f"{format_time(attempt.until)} decides; nothing more is sent in this up\n")
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
            # A cloud whose signatures bound no clock: read this task by id to learn where its clock stands.
            self.history.learn_clock_by_id(self.adapter, {result.task_id: at})
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
        The window starts at our start on the cloud's clock when our own tasks showed it far behind ours.
        """
        wanted = set(urls)
        floor = self.history.clock_floor(self.adapter)
        since = start + min(floor or timedelta(0), timedelta(0)) - CLOCK_TOLERANCE
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

    def record_found(self, found: Iterable[HistoryRow], new_tasks: list[SubmittedTask]) -> list[HistoryRow]:
        """Targets history shows were accepted despite an ambiguous answer (this up's or an earlier one's):
        submitted, under the task history names."""
        by_task: dict[str, list[HistoryRow]] = {}
        for obs in found:
            by_task.setdefault(obs.task_id, []).append(obs)
        notes: list[HistoryRow] = []
        for task_id, rows in by_task.items():
            new_tasks.append(SubmittedTask(task_id, min(o.created for o in rows), len(rows), self.adapter.kind))
            self.log.write(f"set {self.set_name}: history shows {self.noun} task {task_id} holds {len(rows)} of "
                           f"these targets on {self.adapter.describe_scope()}: counted as submitted, not sent again\n")
            notes.extend(replace(o, content=self.version_of(o.url)) for o in rows)
        return notes



@dataclass
class _GuessedBatches:
    """Submits at a batch size learnt from the cloud's refusals (a quota it did not report)."""

    page_key: PageKey
    ladder: PageLadder
    submit_once: Callable[[list[str]], SubmitResult]

    @property
    def key(self) -> tuple[PageKey, PageLadder]:
        return self.page_key, self.ladder

    def __call__(self, urls: list[str], index: int, sent: list[str]) -> SubmitResult:
        """Submit from ``index`` at the learnt size; ``sent`` becomes the URLs of the batch that was answered
        (or that failed otherwise), fewer than first planned after a step down."""
        def send(size: int) -> SubmitResult:
            sent[:] = urls[index:index + size]
            return self.submit_once(list(sent))

        return SHARED_BATCH_SIZES.fetch(self.page_key, self.ladder, send, carried=lambda size: len(sent))
