"""Bring one shard in line: read history, plan, submit what needs it, wait, report (``ShardSync``).

This is the only place that sequences cloud calls. The cloud's task history is the truth, not
our state: every operation reads it first, so a running task is never submitted twice and tasks
submitted by an interrupted ``up`` are found again.

Submits are not idempotent. After an ambiguous submit failure (timeout, reset, 5xx, garbled
answer: the cloud may have accepted it), history is read again for that batch before anything is
re-sent: targets with a task we did not know before count as submitted; only the rest is sent
again, a bounded number of times. How much one ``up`` may submit is decided in ``plan/safety.py``.

Why one module over 400 lines: it is one job, the order of cloud calls of one shard, and its parts
(ambiguous-submit confirmation, poll windows on the cloud's clock, progress lines) only make sense
together; the decisions it sequences live elsewhere (``plan/``), and so do the reads it shares
(``clouds/history.py``, ``clouds/quota_ledger.py``).
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TextIO

from components.clouds.base import CloudAdapter, CloudError, SubmitResult
from components.clouds.history import SHARED_HISTORY, HistoryCache, window_start
from components.clouds.quota_ledger import SHARED_QUOTA, QuotaLedger
from components.model.durations import parse_duration
from components.model.policy import Policy
from components.model.status import HistoryRow, TargetState
from components.plan.reconcile import Plan, make_plan
from components.plan.safety import QuotaDecision, decide_quota
from components.resource.inputs import ShardInputs
from components.resource.outputs import SubmittedTask, prior_contents, prior_observations, prior_submitted

# History is read this far beyond the freshness window, so a success just older than freshness
# is seen (and reported as expired) rather than mistaken for "never submitted".
HISTORY_MARGIN = timedelta(days=1)
# A shared read of the scope's history (history.py) that started this recently serves a refresh
# or the first read of an up: the sets and shards of one engine command read it once.
SHARED_READ_FRESH = timedelta(seconds=30)
POLL_FIRST = 1.0
POLL_MAX = 15.0
PROGRESS_EVERY = 30.0
# A cloud clock a little off ours: history windows around our own submits are widened by this.
CLOCK_TOLERANCE = timedelta(minutes=5)
# Once our own tasks have shown the cloud's clock (history.py ``learn_clock``), a poll's window starts
# this long before our start on the cloud's clock instead: the cloud's times are whole seconds, and
# its servers' clocks may differ from one another by a little.
CLOCK_MARGIN = timedelta(seconds=5)
# Submit errors after which the cloud may have accepted the batch (see retry.py: never re-sent blindly).
AMBIGUOUS_KINDS = frozenset({"transient", "malformed"})
# Sends of one batch at most: the first, and re-sends of what history shows was not accepted.
SUBMIT_ATTEMPTS = 3
# Pauses before each history read that looks for an ambiguously failed batch: a task may show up
# in history a moment after it was accepted, so "not there" is concluded only after the last read.
CONFIRM_DELAYS = (0.5, 1.0, 2.0)
# When quota runs short and the set allows partial submission, these go first: never warmed or
# broken before merely old.
SUBMIT_PRIORITY = {TargetState.MISSING: 0, TargetState.FAILED: 1, TargetState.TIMED_OUT: 1,
                   TargetState.UNKNOWN: 2, TargetState.STALE: 3, TargetState.EXPIRED: 4}


class SubmitError(Exception):
    """Submission stopped part-way or was refused; the message says what was submitted and what not."""


@dataclass
class SyncResult:
    plan: Plan
    submitted: list[dict[str, Any]]
    verified_at: datetime
    new_tasks: list[SubmittedTask] = field(default_factory=list)
    quota: Optional[QuotaDecision] = None  # what the quota allows for plan.to_submit, when checked


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def narrow_window(start: datetime, wide: datetime, clock_floor: Optional[timedelta]) -> datetime:
    """Where the polls of tasks submitted after ``start`` (our clock) look from: ``wide`` until the
    cloud's clock is known, then ``start`` on the cloud's clock less ``CLOCK_MARGIN`` (never before ``wide``).

    ``clock_floor`` is a least (cloud - ours): our tasks were created at cloud time >= ``start +
    clock_floor``, less the second the cloud rounds its times to, which the margin covers.
    """
    if clock_floor is None:
        return wide
    # A cloud ahead of us stamps our tasks after our start anyway; starting later would leave the
    # window empty until our clock caught up (and a window that starts after "now" may be refused).
    return max(wide, start + min(clock_floor, timedelta(0)) - CLOCK_MARGIN)


class ShardSync:
    """One set on one destination, with the clock and sleep injectable for tests."""

    def __init__(
        self,
        adapter: CloudAdapter,
        inputs: ShardInputs,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        log: TextIO = sys.stderr,
        policy: Policy = Policy(),
        history: HistoryCache = SHARED_HISTORY,
        quota: QuotaLedger = SHARED_QUOTA,
    ):
        self.adapter = adapter
        self.history = history
        self.quota_ledger = quota
        self.policy = policy
        self.inputs = inputs
        self.freshness = parse_duration(inputs.freshness)
        self.wait = parse_duration(inputs.wait)
        self.clock = clock
        self.sleep = sleep
        self.log = log
        # Task id -> our time when its submit returned (``_record_result``): clock evidence for polls.
        self._sent_at: dict[str, datetime] = {}

    # -- read -----------------------------------------------------------------------------------
    def observe(self, prior_outputs: Optional[Mapping[str, Any]] = None, *, check_quota: bool = False) -> SyncResult:
        """Live status of every target, from the cloud's history (and old records it no longer keeps).

        With ``check_quota`` (the provider's ``read``, i.e. a refreshed preview), targets that need a
        prefetch are also held against the live quota and the safety rails, and a warning line says
        what the next ``up`` will do when it cannot submit them all.
        """
        now = self.clock()
        observations, _ = self._history_with_prior(now, prior_outputs)
        plan = self._plan(observations, now)
        quota = self._outlook(plan) if check_quota and plan.to_submit else None
        return SyncResult(plan, prior_submitted(prior_outputs), now, quota=quota)

    def _where(self, quoted: bool = True) -> str:
        name = repr(self.inputs.set) if quoted else self.inputs.set
        return f"set {name} on {self.adapter.describe_scope()}"

    def _outlook(self, plan: Plan) -> Optional[QuotaDecision]:
        try:
            quota = self.quota_ledger.available(self.adapter)
        except CloudError as exc:
            # A preview must not fail because of it: up checks the quota again before submitting.
            self.log.write(f"warning: {self._where(False)}: could not read the prefetch quota ({exc}); the preview "
                           "cannot say whether today's quota fits the targets that need a prefetch\n")
            return None
        decision = decide_quota(len(plan.to_submit), quota, self.policy, self._where())
        for line in decision.preview_warnings(self._where(False)):
            self.log.write(line + "\n")
        return decision

    def _plan(self, observations: list[HistoryRow], now: datetime) -> Plan:
        return make_plan(self.inputs.targets, observations, now=now, freshness=self.freshness,
                         content=self.inputs.content)

    def _history_with_prior(
        self, now: datetime, prior_outputs: Optional[Mapping[str, Any]]
    ) -> tuple[list[HistoryRow], dict[tuple[str, str], str]]:
        """History rows of our targets (with the ETag each of our tasks was for) plus old records the
        cloud no longer keeps.

        The history comes from the process's shared read of the scope when one started in the
        last SHARED_READ_FRESH; only our targets' rows are taken from it. The read's window starts
        at ``since`` floored to the 10 minutes (history.window_start), so that shards and sets
        whose clocks were read a few seconds apart ask for the same read; the rows older than
        ``since`` are left out, as a read of our own window would have. Also returns what is
        known of task contents, keyed by (url, task id), for rows read later.
        """
        since = now - self.freshness - HISTORY_MARGIN
        targets = self.inputs.targets
        snapshot = self.history.read(self.adapter, window_start(since, now, self.adapter.max_window), now,
                                     urls=targets, fresh_after=now - SHARED_READ_FRESH)
        contents = prior_contents(prior_outputs)
        observations = with_content(snapshot.rows_for(targets, since), contents)
        # Inside the window the cloud's history is authoritative: only older records are kept.
        for obs in prior_observations(prior_outputs, older_than=since):
            if obs.state.in_flight:
                obs = HistoryRow(obs.url, obs.task_id, TargetState.UNKNOWN, obs.created, obs.updated,
                                  "task no longer in the cloud's history", None, obs.content)
            observations.append(obs)
        return observations, contents

    # -- create/update --------------------------------------------------------------------------
    def converge(self, prior_outputs: Optional[Mapping[str, Any]] = None) -> SyncResult:
        """Submit exactly the targets that need it (within live quota and the safety rails), wait up to the deadline."""
        start = self.clock()
        observations, contents = self._history_with_prior(start, prior_outputs)
        before = self._plan(observations, start)
        submitted = prior_submitted(prior_outputs)
        new_tasks: list[SubmittedTask] = []
        decision: Optional[QuotaDecision] = None
        if before.to_submit:
            self._announce(before)
            decision = self.quota_ledger.reserve(self.adapter, self.inputs.set, len(before.to_submit), self.policy,
                                                 self._where())
            if decision.refusal:
                raise SubmitError(decision.refusal)
            for line in decision.up_warnings(self._where(False)):
                self.log.write(line + "\n")
            urls = sorted(before.to_submit, key=lambda u: SUBMIT_PRIORITY.get(before.statuses[u].state, 5))
            urls = urls[:decision.submit] if decision.submit < len(urls) else list(before.to_submit)
            known = {(o.url, o.task_id) for o in observations}
            fresh = self._submit(urls, max(1, decision.batch), known, start, new_tasks)
            submitted.extend(t.to_dict() for t in new_tasks)
            contents.update({(o.url, o.task_id): o.content for o in fresh if o.content})
            pending = {o.url for o in fresh if o.state.in_flight}
            polled = with_content(self._wait(start, pending), contents)
            # What history says about a new task replaces our own "queued" note about it.
            seen = {(o.url, o.task_id) for o in polled}
            observations.extend(o for o in fresh if (o.url, o.task_id) not in seen)
            observations.extend(polled)
        now = self.clock()
        final = self._plan(observations, now)
        self._report(final)
        return SyncResult(final, submitted, now, new_tasks, decision)

    def _submit(self, urls: list[str], batch: int, known: set[tuple[str, str]], start: datetime,
                new_tasks: list[SubmittedTask]) -> list[HistoryRow]:
        """Submit in batches; returns a note per URL (queued, rejected, or what history showed).

        ``known`` holds the (url, task id) pairs seen before this up: after an ambiguous failure,
        a task for a URL of the batch that is not among them was accepted by the cloud.
        """
        adapter = self.adapter
        total = -(-len(urls) // batch)
        notes: list[HistoryRow] = []
        for number, index in enumerate(range(0, len(urls), batch), start=1):
            pending = urls[index:index + batch]
            for attempt in range(1, SUBMIT_ATTEMPTS + 1):
                try:
                    result = self._submit_once(pending)
                except CloudError as exc:
                    if exc.kind not in AMBIGUOUS_KINDS:
                        raise self._stopped(f"submitting batch {number} of {total} failed: {exc}", urls,
                                            new_tasks) from None
                    self.log.write(f"set {self.inputs.set}: submitting batch {number} of {total} on "
                                   f"{adapter.describe_scope()} may or may not have been accepted ({exc}); reading "
                                   "history before sending anything again\n")
                    try:
                        found = self._confirm(pending, known, start)
                    except CloudError as read_exc:
                        raise self._stopped(
                            f"submitting batch {number} of {total} failed ({exc}) and history could not be read "
                            f"to see whether the cloud accepted it ({read_exc}); nothing more was sent, so nothing "
                            f"is submitted twice; unconfirmed: {len(pending)} targets", urls, new_tasks) from None
                    notes.extend(self._record_found(found, new_tasks))
                    pending = [u for u in pending if u not in found]
                    if not pending:
                        break
                    if attempt == SUBMIT_ATTEMPTS:
                        raise self._stopped(f"submitting batch {number} of {total} failed {attempt} times, the "
                                            f"last time with: {exc}", urls, new_tasks) from None
                    self.log.write(f"set {self.inputs.set}: {len(pending)} targets of batch {number} are not in the "
                                   f"history: sending them again (attempt {attempt + 1} of {SUBMIT_ATTEMPTS})\n")
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
        """The partial-failure error: what was submitted (task ids) and what was not."""
        done = sum(t.count for t in new_tasks)
        ids = ", ".join(t.task_id for t in new_tasks) or "none"
        return SubmitError(
            f"{self._where()}: {what}. Submitted before the failure: {done} targets (task ids: {ids}); not "
            f"submitted: {len(urls) - done}. The next refresh finds the submitted tasks and the next up submits "
            "only the rest."
        )

    def _record_result(self, result: SubmitResult, new_tasks: list[SubmittedTask]) -> list[HistoryRow]:
        at = self.clock()
        if result.accepted:  # a task of rejected URLs only may never be listed
            self._sent_at[result.task_id] = at
        new_tasks.append(SubmittedTask(result.task_id, at, len(result.accepted)))
        self.log.write(f"set {self.inputs.set}: submitted {len(result.accepted)} targets as task {result.task_id}"
                       f" on {self.adapter.describe_scope()}\n")
        notes = [HistoryRow(url, result.task_id, TargetState.QUEUED, at, None, None, None, self._etag(url))
                 for url in result.accepted]
        notes.extend(HistoryRow(url, result.task_id, TargetState.FAILED, at, at, f"rejected at submit: {reason}",
                                 "rejected", self._etag(url)) for url, reason in result.rejected.items())
        return notes

    def _confirm(self, urls: Sequence[str], known: set[tuple[str, str]], start: datetime) -> dict[str, HistoryRow]:
        """Tasks for ``urls`` that appeared since this up started (newest per URL), read a few times."""
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
        notes = []
        for task_id, rows in by_task.items():
            new_tasks.append(SubmittedTask(task_id, min(o.created for o in rows), len(rows)))
            self.log.write(f"set {self.inputs.set}: history shows task {task_id} holds {len(rows)} of these targets"
                           f" on {self.adapter.describe_scope()}: counted as submitted, not sent again\n")
            notes.extend(replace(o, content=self._etag(o.url)) for o in rows)
        return notes

    def _etag(self, url: str) -> Optional[str]:
        """The ETag a task submitted now is for: the origin's current one (None for URL targets)."""
        version = self.inputs.content.get(url)
        return version.etag if version else None

    def _wait(self, start: datetime, pending: set[str]) -> list[HistoryRow]:
        """Poll history for the submitted targets until none is in flight or the deadline passes.

        Each poll takes a shared read (history.py) that started after this caller's previous poll
        and after its submits: sets and shards waiting on one scope at once share their polls.
        Our window starts at our own start (less the clock tolerance), so pollers that started at
        different moments have different windows; registered as polling, ours is covered by
        every read that starts while we wait, whoever asks for it, and we take only our rows of
        our window from it. The guarantees do not change: a read serves a poll only when it
        started after our submits and after our previous poll.

        Once this process's own tasks on the scope have shown how the cloud's clock stands to ours
        (``HistoryCache.learn_clock``), the window starts at our start on the cloud's clock less
        ``CLOCK_MARGIN`` instead of ``CLOCK_TOLERANCE``: a shard created after others then reads
        its own rows, not theirs again (at 100,000 targets, most of an ``up``'s history calls).
        Should a pending target show no row in such a window, the polls after it go back to the
        wide one: a row the narrow window missed is never taken for a task not yet listed.
        """
        if not pending or self.wait.total_seconds() <= 0:
            return []
        wide = start - CLOCK_TOLERANCE  # tolerate a cloud clock a little behind ours
        since = narrow_window(start, wide, self.history.clock_floor(self.adapter))
        with ExitStack() as polling:
            polling.enter_context(self.history.polling(self.adapter, since))
            # Back to the wide window: registered too, so that reads other pollers start cover it again.
            widen = lambda: polling.enter_context(self.history.polling(self.adapter, wide))  # noqa: E731
            return self._poll(start, since, wide, pending, widen)

    def _poll(self, start: datetime, since: datetime, wide: datetime, pending: set[str],
              widen: Callable[[], Any]) -> list[HistoryRow]:
        """The polls of ``_wait``: the rows of ``pending`` in [since, now] at the last poll (from ``wide``
        on, once a narrow window showed a pending target no row; ``widen`` registers that window)."""
        deadline = start + self.wait
        interval = POLL_FIRST
        last_progress = start
        latest: list[HistoryRow] = []
        previous_start, previous_seq = self.clock(), 0
        while pending:
            now = self.clock()
            if now >= deadline:
                break
            self.sleep(min(interval, max(0.0, (deadline - now).total_seconds())))
            interval = min(interval * 2, POLL_MAX)
            self.history.settle(self.adapter)  # join the next read of the scope, not one beside the current
            poll_start = self.clock()
            try:
                snapshot = self.history.read(self.adapter, since, poll_start, urls=pending,
                                             fresh_after=previous_start, newer_than=previous_seq)
            except CloudError as exc:
                # The tasks are submitted and recorded: a failed poll only means we look again later.
                self.log.write(f"set {self.inputs.set}: reading progress failed ({exc}); trying again\n")
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
            if (now - last_progress).total_seconds() >= PROGRESS_EVERY:
                self.log.write(self._progress_line(pending, newest, in_flight, deadline - now))
                last_progress = now
            if not in_flight:
                break
        return latest

    def _learn_clock(self, rows: Iterable[HistoryRow]) -> None:
        """Clock evidence from the rows of tasks this sync submitted (history.py ``learn_clock``)."""
        sent_at = self._sent_at
        evidence = [obs.created - sent_at[obs.task_id] for obs in rows if obs.task_id in sent_at]
        if evidence:
            self.history.learn_clock(self.adapter, min(evidence))

    def _progress_line(self, pending: set[str], newest: dict[str, HistoryRow], in_flight: set[str],
                       left: timedelta) -> str:
        """One line per poll period while `up` waits; the engine shows it as a diagnostic."""
        warm = sum(1 for u in pending if u in newest and newest[u].state is TargetState.WARM)
        failed = len(pending) - warm - len(in_flight)
        return (f"set {self.inputs.set} on {self.adapter.describe_scope()}: {len(pending)} submitted: {warm} warm, "
                f"{failed} failed, {len(in_flight)} running; {max(0, int(left.total_seconds()))}s left\n")

    def _announce(self, before: Plan) -> None:
        """Say why targets are about to be submitted, e.g. ``3 targets need a prefetch (3 stale)``."""
        counts: dict[str, int] = {}
        for url in before.to_submit:
            state = before.statuses[url].state.value
            counts[state] = counts.get(state, 0) + 1
        why = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        self.log.write(f"set {self.inputs.set}: {len(before.to_submit)} of {len(before.statuses)} targets need a "
                       f"prefetch ({why})\n")

    def _report(self, final: Plan) -> None:
        drifted = final.drifted
        if drifted:
            counts: dict[str, int] = {}
            for status in drifted:
                counts[status.state.value] = counts.get(status.state.value, 0) + 1
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            self.log.write(f"warning: set {self.inputs.set}: {len(drifted)} of {len(final.statuses)} targets "
                           f"not warm ({summary}); see the set's drifted output\n")


def with_content(observations: Iterable[HistoryRow], contents: Mapping[tuple[str, str], str]) -> list[HistoryRow]:
    """History rows carry no ETag: add the one our records or submits say each task was for."""
    if not contents:
        return list(observations)
    return [replace(o, content=contents[(o.url, o.task_id)]) if not o.content and (o.url, o.task_id) in contents
            else o for o in observations]
