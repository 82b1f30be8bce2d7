"""Bring one shard in line: read history, plan, purge and submit what needs it, wait, report (``ShardSync``).

This is the only place that sequences cloud calls. The cloud's task history is the truth, not
our state: every operation reads it first, so a running task is never submitted twice and tasks
submitted by an interrupted ``up`` are found again.

Changed content (an origin object's new ETag, a new revision) of a set that purges on change: a
prefetch does not replace an unexpired cached copy, so such a target is purged first and prefetched
only once its purge shows as done in the purge history. One ``up``: purges go out first, then the
prefetches of targets that need no purge, then (as their purges finish, within ``wait``) the
prefetches of the purged ones. A purge still running at the deadline is left to the next ``up``.
The purge history is read only when some target changed, so a steady set costs no extra call.

How batches are sent (and never sent twice blindly) is ``resource/submitter.py``; how we wait,
``resource/poller.py``; how much one ``up`` may submit or purge, ``plan/safety.py``; what a later
read of history decides about submits whose answer was lost, ``plan/unconfirmed.py`` (their targets
are held until it does, and the record is carried from outputs to outputs).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TextIO

from ..clouds.base import CloudAdapter, CloudError
from ..clouds.history import SHARED_HISTORY, HistoryCache, window_start
from ..clouds.quota_ledger import SHARED_QUOTA, QuotaLedger
from ..model.clouds import find
from ..model.durations import parse_duration
from ..model.policy import Policy
from ..model.status import HistoryRow, TargetState, TaskKind, format_time
from ..plan.reconcile import Plan, make_plan
from ..plan.safety import QuotaDecision, check_purge, decide_quota
from ..plan.unconfirmed import Attempt, hold, prior_attempts, settle
from .inputs import ShardInputs
from .outputs import SubmittedTask, prior_contents, prior_observations, prior_submitted
from .poller import TaskPoller
from .progress import ProgressSink
from .submitter import SubmitError, TaskSubmitter

__all__ = ["ShardSync", "SyncResult", "SubmitError", "with_content"]

# History is read this far beyond the freshness window, so a success just older than freshness
# is seen (and reported as expired) rather than mistaken for "never submitted".
HISTORY_MARGIN = timedelta(days=1)
# A shared read of the scope's history (history.py) that started this recently serves a refresh
# or the first read of an up: the sets and shards of one engine command read it once.
SHARED_READ_FRESH = timedelta(seconds=30)
# When quota runs short and the set allows partial submission, these go first: never warmed or
# broken before merely old.
SUBMIT_PRIORITY = {TargetState.MISSING: 0, TargetState.FAILED: 1, TargetState.TIMED_OUT: 1,
                   TargetState.UNKNOWN: 2, TargetState.PURGED: 3, TargetState.STALE: 3, TargetState.EXPIRED: 4}


@dataclass
class SyncResult:
    plan: Plan
    submitted: list[dict[str, Any]]
    verified_at: datetime
    new_tasks: list[SubmittedTask] = field(default_factory=list)
    quota: Optional[QuotaDecision] = None  # what the quota allows for plan.to_submit, when checked
    purge_quota: Optional[QuotaDecision] = None  # what the purge quota allows for plan.to_purge, when checked
    unconfirmed: list[Attempt] = field(default_factory=list)  # submits history has not confirmed yet


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Kind:
    """What one kind of task needs in one sync: its adapter, submitter and poller."""

    adapter: CloudAdapter
    submitter: TaskSubmitter
    poller: TaskPoller


class ShardSync:
    """One set on one destination, with the clock and sleep injectable for tests.

    ``can_purge`` (default: the destination's cloud, from the registry) and the policy's ``onChange``
    decide whether changed content is purged before it is prefetched again.
    """

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
        can_purge: Optional[bool] = None,
        on_progress: Optional[ProgressSink] = None,
    ):
        self.adapter, self.history, self.quota_ledger = adapter, history, quota
        self.policy, self.inputs = policy, inputs
        self.freshness = parse_duration(inputs.freshness)
        self.wait = parse_duration(inputs.wait)
        # on_progress: the command's live display hears every batch and poll; the provider logs plain lines.
        self.clock, self.sleep, self.log, self.on_progress = clock, sleep, log, on_progress
        if can_purge is None:
            spec = find(inputs.destination.get("provider"))
            can_purge = bool(spec and spec.supports_purge)
        self.purges = policy.purges_on_change(can_purge)
        # Task id -> our time when its submit returned (submitter): clock evidence for the polls.
        self._sent_at: dict[str, datetime] = {}
        self.prefetch = self._kind(adapter)
        self._purge: Optional[_Kind] = None
        # Unconfirmed submits (earlier ones history has not decided, then this up's): their targets are held.
        self._attempts: list[Attempt] = []
        self._found: list[SubmittedTask] = []  # tasks history showed for earlier unconfirmed submits

    def _kind(self, adapter: CloudAdapter) -> _Kind:
        common: dict[str, Any] = dict(adapter=adapter, set_name=self.inputs.set, clock=self.clock, sleep=self.sleep,
                                      log=self.log, history=self.history, sent_at=self._sent_at,
                                      on_progress=self.on_progress)
        submitter = TaskSubmitter(where=self._where(), version_of=self.inputs.version, pause=self.policy.pace_pause,
                                  **common)
        return _Kind(adapter, submitter, TaskPoller(wait=self.wait, **common))

    @property
    def purge(self) -> _Kind:
        """The purge side of this destination (built when first needed: a steady set never needs it)."""
        if self._purge is None:
            self._purge = self._kind(self.adapter.purger())
        return self._purge

    # -- read -----------------------------------------------------------------------------------
    def observe(self, prior_outputs: Optional[Mapping[str, Any]] = None, *, check_quota: bool = False) -> SyncResult:
        """Live status of every target, from the cloud's history (and old records it no longer keeps).

        With ``check_quota`` (the provider's ``read``, i.e. a refreshed preview), targets that need a
        prefetch or a purge are also held against the live quotas and the safety rails, and a warning
        line says what the next ``up`` will do when it cannot submit them all.
        """
        now = self.clock()
        observations, _, read_at = self._history_with_prior(now, prior_outputs)
        plan, _ = self._full_plan(observations, now, prior_outputs, read_at)
        quota = purge_quota = None
        if check_quota and (plan.to_submit or plan.to_purge):
            quota = self._outlook(plan)
            purge_quota = self._purge_outlook(plan) if plan.to_purge else None
        submitted = prior_submitted(prior_outputs) + [t.to_dict() for t in self._found]
        return SyncResult(plan, submitted, now, quota=quota, purge_quota=purge_quota, unconfirmed=self._attempts)

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
        decision = decide_quota(len(plan.to_submit) + len(plan.to_purge), quota, self.policy, self._where())
        for line in decision.preview_warnings(self._where(False)):
            self.log.write(line + "\n")
        return decision

    def _purge_outlook(self, plan: Plan) -> Optional[QuotaDecision]:
        """What a refreshed preview says about the next up's purges: the share rail, then the purge quota."""
        refusal = check_purge(len(plan.to_purge), len(self.inputs.targets), self.policy, self._where())
        if refusal:
            self.log.write(f"warning: up will refuse to purge: {refusal}\n")
        try:
            quota = self.quota_ledger.available(self.purge.adapter)
        except CloudError as exc:
            self.log.write(f"warning: {self._where(False)}: could not read the purge quota ({exc}); the preview "
                           "cannot say whether today's quota fits the targets that need a purge\n")
            return None
        decision = decide_quota(len(plan.to_purge), quota, self.policy.for_purge(), self._where(), noun="purge")
        for line in decision.preview_warnings(self._where(False)):
            self.log.write(line + "\n")
        return decision

    def _plan(self, observations: list[HistoryRow], now: datetime,
              purges: Optional[Iterable[HistoryRow]] = None) -> Plan:
        """The plan, with the targets of unconfirmed submits held (plan/unconfirmed.py)."""
        return hold(self._raw_plan(observations, now, purges), self._attempts)

    def _raw_plan(self, observations: list[HistoryRow], now: datetime,
                  purges: Optional[Iterable[HistoryRow]] = None) -> Plan:
        return make_plan(self.inputs.targets, observations, now=now, freshness=self.freshness, purges=purges,
                         content=self.inputs.content, revision=self.inputs.revision, options=self.inputs.options)

    def _full_plan(self, observations: list[HistoryRow], now: datetime, prior_outputs: Optional[Mapping[str, Any]],
                   read_at: datetime) -> tuple[Plan, Optional[list[HistoryRow]]]:
        """The plan, and the purge rows it used (None for a set that does not purge on change), once
        history has decided what it can about earlier unconfirmed submits (``_settle``).

        The purge history is read only when some target changed: only a stale target's verdict
        depends on it, and a steady set then costs no purge-history call, nor a second plan.
        """
        purges: Optional[list[HistoryRow]] = None
        raw: Optional[Plan] = None  # the plan, when it needs no purge rows (reconcile is pure)
        if self.purges:
            raw, purges = self._raw_plan(observations, now, []), []
            if changed := raw.changed:
                raw = None  # the purge rows decide the changed targets' verdicts
                adapter = self.purge.adapter
                since = self._purge_window(now)
                snapshot = self.history.read(adapter, since, now, urls=changed,
                                             fresh_after=now - SHARED_READ_FRESH, fresh_by_end=True)
                purges = snapshot.rows_for(changed, since)
                read_at = min(read_at, snapshot.until)  # the earlier of the two reads decides
        self._settle(prior_attempts(prior_outputs), observations, purges, read_at)
        return (self._plan(observations, now, purges) if raw is None else hold(raw, self._attempts)), purges

    def _settle(self, attempts: list[Attempt], observations: list[HistoryRow], purges: Optional[list[HistoryRow]],
                read_at: datetime) -> None:
        """What the history read at ``read_at`` decides about earlier unconfirmed submits (plan/unconfirmed.py)."""
        settled = settle(attempts, {TaskKind.PREFETCH: observations, TaskKind.PURGE: purges}, read_at,
                         self.inputs.targets)
        self._attempts, self._found = settled.pending, []
        for kind, rows in settled.found.items():
            (self.purge if kind is TaskKind.PURGE else self.prefetch).submitter.record_found(rows, self._found)
        for attempt in settled.expired:
            self.log.write(f"set {self.inputs.set}: history read after {format_time(attempt.until)} shows no task "
                           f"for {len(attempt.urls)} targets of the unconfirmed submit at {format_time(attempt.at)}: "
                           "it was not executed; they are sent as history says\n")

    def _history_with_prior(
        self, now: datetime, prior_outputs: Optional[Mapping[str, Any]]
    ) -> tuple[list[HistoryRow], dict[tuple[str, str], str], datetime]:
        """History rows of our targets (with the version each of our tasks was for) plus old records the
        cloud no longer keeps.

        The history comes from the process's shared read of the scope when one started or ended in
        the last SHARED_READ_FRESH, or is in flight; only our targets' rows are taken from it. The read's window starts
        at ``since`` floored to the 10 minutes (history.window_start), so that shards and sets
        whose clocks were read a few seconds apart ask for the same read; the rows older than
        ``since`` are left out, as a read of our own window would have. Also returns what is
        known of task versions, keyed by (url, task id), for rows read later, and when the read started.
        """
        since = now - self.freshness - HISTORY_MARGIN
        targets = self.inputs.targets
        snapshot = self.history.read(self.adapter, window_start(since, now, self.adapter.max_window), now,
                                     urls=targets, fresh_after=now - SHARED_READ_FRESH, fresh_by_end=True)
        contents = prior_contents(prior_outputs)
        observations = with_content(snapshot.rows_for(targets, since), contents)
        # Inside the window the cloud's history is authoritative: only older records are kept.
        for obs in prior_observations(prior_outputs, older_than=since):
            if obs.state.in_flight:
                obs = HistoryRow(obs.url, obs.task_id, TargetState.UNKNOWN, obs.created, obs.updated,
                                  "task no longer in the cloud's history", None, obs.content)
            observations.append(obs)
        return observations, contents, snapshot.until

    # -- create/update --------------------------------------------------------------------------
    def converge(self, prior_outputs: Optional[Mapping[str, Any]] = None) -> SyncResult:
        """Purge what changed, submit what needs a prefetch (within live quotas and the safety rails),
        prefetch what the purges cleared, and wait up to the deadline."""
        start = self.clock()
        observations, contents, read_at = self._history_with_prior(start, prior_outputs)
        before, purges = self._full_plan(observations, start, prior_outputs, read_at)
        submitted = prior_submitted(prior_outputs) + [t.to_dict() for t in self._found]
        new_tasks: list[SubmittedTask] = []
        fresh_attempts: list[Attempt] = []  # this up's unconfirmed submits: once there is one, nothing more is sent
        decision: Optional[QuotaDecision] = None
        purge_decision: Optional[QuotaDecision] = None
        # Purges an earlier up submitted (its host may have died) and still running: their prefetch follows here.
        purging = [u for u, s in before.statuses.items() if s.state is TargetState.PURGING] if purges else []
        if before.to_submit or before.to_purge or purging:
            self._announce(before, purging)
            purge_decision = self._reserve_purge(before) if before.to_purge else None
            decision = self._reserve(self.prefetch.adapter, len(before.to_submit) + len(before.to_purge) + len(purging),
                                     self.policy, "prefetch")
            budget = decision.submit
            urls = sorted(before.to_submit, key=lambda u: SUBMIT_PRIORITY.get(before.statuses[u].state, 5))[:budget]
            budget -= len(urls)
            # Purge only what can be prefetched after it in this up (allowPartial), and what the purge quota fits.
            purge_urls = list(before.to_purge)[:min(budget, purge_decision.submit)] if purge_decision else []
            awaited = purging[:budget - len(purge_urls)]
            pending_purges = set(awaited)
            if purge_urls:
                notes = self.purge.submitter.submit(purge_urls, self._batches(purge_decision),
                                                    {(o.url, o.task_id) for o in purges or ()}, start, new_tasks,
                                                    fresh_attempts)
                assert purges is not None  # a set that purges has its purge rows (maybe none)
                purges.extend(notes)
                pending_purges.update(o.url for o in notes if o.state.in_flight)
            known = {(o.url, o.task_id) for o in observations}
            fresh = self._send(urls, decision, known, start, new_tasks, contents, fresh_attempts) if urls else []
            if pending_purges:
                earlier = self._purge_window(start) if awaited else None
                purges = _merged(purges or [], self.purge.poller.until_done(start, pending_purges, since=earlier))
            followed = purge_urls + awaited
            if followed:  # a purge confirmed from history (an ambiguous submit) may be done already
                after = self._plan(observations, self.clock(), purges)
                cleared = [u for u in followed if after.statuses[u].state is TargetState.PURGED]
                fresh += self._send(cleared, decision, known, start, new_tasks, contents, fresh_attempts) \
                    if cleared else []
            submitted.extend(t.to_dict() for t in new_tasks)
            self._attempts.extend(fresh_attempts)
            tasks = {o.url: o.task_id for o in fresh if o.state.in_flight}
            polled = with_content(self.prefetch.poller.until_done(start, set(tasks), tasks=tasks), contents)
            observations = _merged(observations, polled, fresh)
        now = self.clock()
        final = self._plan(observations, now, purges)
        self._report(final)
        return SyncResult(final, submitted, now, new_tasks, decision, purge_decision, self._attempts)

    def _send(self, urls: list[str], decision: QuotaDecision, known: set[tuple[str, str]], start: datetime,
              new_tasks: list[SubmittedTask], contents: dict[tuple[str, str], str],
              attempts: list[Attempt]) -> list[HistoryRow]:
        """Prefetch ``urls``; the versions of the new tasks join ``contents`` (for the rows polls read)."""
        fresh = self.prefetch.submitter.submit(urls, self._batches(decision), known, start, new_tasks, attempts)
        contents.update({(o.url, o.task_id): o.content for o in fresh if o.content})
        return fresh

    def _batches(self, decision: QuotaDecision) -> tuple[int, ...]:
        """URLs per submit (the cloud's batch, or the set's pacing when smaller), then a guessed batch's smaller sizes."""
        batch = max(1, decision.batch)
        pace = self.policy.pace_batch_size
        first = min(batch, pace) if pace else batch
        return (first, *(size for size in decision.smaller_batches if size < first))

    def _reserve(self, adapter: CloudAdapter, needed: int, policy: Policy, noun: str) -> QuotaDecision:
        """The quota ledger's decision for ``needed`` targets; SubmitError (nothing submitted) on refusal."""
        decision = self.quota_ledger.reserve(adapter, self.inputs.set, needed, policy, self._where(), noun=noun)
        if decision.refusal:
            raise SubmitError(decision.refusal)
        for line in decision.up_warnings(self._where(False)):
            self.log.write(line + "\n")
        return decision

    def _reserve_purge(self, plan: Plan) -> QuotaDecision:
        """The purge rails: the share of the set one up may purge, then the purge quota (and its share)."""
        refusal = check_purge(len(plan.to_purge), len(self.inputs.targets), self.policy, self._where())
        if refusal:
            raise SubmitError(refusal)
        return self._reserve(self.purge.adapter, len(plan.to_purge), self.policy.for_purge(), "purge")

    def _announce(self, before: Plan, purging: Sequence[str] = ()) -> None:
        """Say why targets are about to be purged or submitted, e.g. ``3 targets need a prefetch (3 stale)``."""
        total = len(before.statuses)
        prefetch = f"need a prefetch ({_counts(before, before.to_submit)})"
        parts = []
        if before.to_purge:
            parts.append(f"{len(before.to_purge)} of {total} targets changed, to purge then prefetch "
                         f"({_counts(before, before.to_purge)})")
        if purging:
            parts.append(f"{len(purging)} {'more ' if parts else f'of {total} targets '}wait for a purge an earlier "
                         "up submitted, then a prefetch")
        if before.to_submit:
            parts.append(f"{len(before.to_submit)} {'more ' if parts else f'of {total} targets '}{prefetch}")
        self.log.write(f"set {self.inputs.set}: {'; '.join(parts)}\n")

    def _purge_window(self, now: datetime) -> datetime:
        """Where the purge history read for this sync's plan starts: an earlier up's purges are in it."""
        return window_start(now - self.freshness - HISTORY_MARGIN, now, self.purge.adapter.max_window)

    def _report(self, final: Plan) -> None:
        drifted = final.drifted
        if drifted:
            counts: dict[str, int] = {}
            for status in drifted:
                counts[status.state.value] = counts.get(status.state.value, 0) + 1
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            self.log.write(f"warning: set {self.inputs.set}: {len(drifted)} of {len(final.statuses)} targets "
                           f"not warm ({summary}); see the set's drifted output\n")


def _counts(plan: Plan, urls: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for url in urls:
        state = plan.statuses[url].state.value
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _merged(rows: list[HistoryRow], polled: list[HistoryRow], notes: Iterable[HistoryRow] = ()) -> list[HistoryRow]:
    """``rows`` plus our submit notes and what polls read; what history says about a new task replaces
    our own note about it (``notes`` may also already be in ``rows``: purge notes are)."""
    seen = {(o.url, o.task_id) for o in polled}
    if not seen:
        return [*rows, *notes]
    kept = [o for o in rows if (o.url, o.task_id) not in seen]
    kept.extend(o for o in notes if (o.url, o.task_id) not in seen)
    kept.extend(polled)
    return kept


def with_content(observations: Iterable[HistoryRow], contents: Mapping[tuple[str, str], str]) -> list[HistoryRow]:
    """History rows carry no ETag: add the one our records or submits say each task was for."""
    if not contents:
        return list(observations)
    return [replace(o, content=contents[(o.url, o.task_id)]) if not o.content and (o.url, o.task_id) in contents
            else o for o in observations]
