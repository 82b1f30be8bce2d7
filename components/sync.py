"""Bring one set's destination in line: read history, plan, submit what needs it, wait, report.

This is the only place that sequences cloud calls. The cloud's task history is the truth, not
our state: every operation reads it first, so a running task is never submitted twice and tasks
submitted by an interrupted ``up`` are found again.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TextIO

from .clouds.base import CloudAdapter, CloudError
from .durations import parse_duration
from .reconcile import Plan, plan as make_plan
from .records import SetInputs, SubmittedTask, prior_observations, prior_submitted
from .status import Observation, TargetState

# History is read this far beyond the freshness window, so a success just older than freshness
# is seen (and reported as expired) rather than mistaken for "never submitted".
HISTORY_MARGIN = timedelta(days=1)
POLL_FIRST = 1.0
POLL_MAX = 15.0
PROGRESS_EVERY = 30.0


class SubmitError(Exception):
    """Submission stopped part-way or was refused; the message says what was submitted and what not."""


@dataclass
class SyncResult:
    plan: Plan
    submitted: list[dict[str, Any]]
    verified_at: datetime
    new_tasks: list[SubmittedTask] = field(default_factory=list)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DestinationSync:
    """One set on one destination, with the clock and sleep injectable for tests."""

    def __init__(
        self,
        adapter: CloudAdapter,
        inputs: SetInputs,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        log: TextIO = sys.stderr,
    ):
        self.adapter = adapter
        self.inputs = inputs
        self.freshness = parse_duration(inputs.freshness)
        self.wait = parse_duration(inputs.wait)
        self.clock = clock
        self.sleep = sleep
        self.log = log

    # -- read -----------------------------------------------------------------------------------
    def observe(self, prior_outputs: Optional[Mapping[str, Any]] = None) -> SyncResult:
        """Live status of every target, from the cloud's history (and old records it no longer keeps)."""
        now = self.clock()
        observations, _ = self._history_with_prior(now, prior_outputs)
        return SyncResult(self._plan(observations, now), prior_submitted(prior_outputs), now)

    def _plan(self, observations: list[Observation], now: datetime) -> Plan:
        return make_plan(self.inputs.targets, observations, now=now, freshness=self.freshness,
                         content=self.inputs.content)

    def _history_with_prior(
        self, now: datetime, prior_outputs: Optional[Mapping[str, Any]]
    ) -> tuple[list[Observation], dict[tuple[str, str], str]]:
        """History rows (with the ETag each of our tasks was for) plus old records the cloud no longer keeps.

        Also returns what is known of task contents, keyed by (url, task id), for rows read later.
        """
        since = now - self.freshness - HISTORY_MARGIN
        prior = prior_observations(prior_outputs)
        contents = {(o.url, o.task_id): o.content for o in prior if o.content}
        observations = with_content(self.adapter.history(since, now), contents)
        for obs in prior:
            if obs.created >= since:
                continue  # inside the window the cloud's history is authoritative
            if obs.state.in_flight:
                obs = Observation(obs.url, obs.task_id, TargetState.UNKNOWN, obs.created, obs.updated,
                                  "task no longer in the cloud's history", None, obs.content)
            observations.append(obs)
        return observations, contents

    # -- create/update --------------------------------------------------------------------------
    def converge(self, prior_outputs: Optional[Mapping[str, Any]] = None) -> SyncResult:
        """Submit exactly the targets that need it (within live quota), wait up to the set's deadline."""
        start = self.clock()
        observations, contents = self._history_with_prior(start, prior_outputs)
        before = self._plan(observations, start)
        submitted = prior_submitted(prior_outputs)
        new_tasks: list[SubmittedTask] = []
        if before.to_submit:
            self._announce(before)
            fresh = self._submit(list(before.to_submit), new_tasks)
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
        return SyncResult(final, submitted, now, new_tasks)

    def _submit(self, urls: list[str], new_tasks: list[SubmittedTask]) -> list[Observation]:
        """Submit in batches within live quota; returns a note per URL (queued, or rejected)."""
        adapter, name = self.adapter, self.inputs.set
        quota = adapter.quota()
        if len(urls) > quota.available:
            raise SubmitError(
                f"set {name!r} on {adapter.describe_scope()}: {len(urls)} targets need a prefetch but only "
                f"{quota.available} of today's {quota.daily} prefetch quota are left; nothing was submitted. "
                "Wait for the quota to reset, raise it with the cloud, or split the set."
            )
        batch = max(1, quota.batch)
        notes: list[Observation] = []
        for index in range(0, len(urls), batch):
            chunk = urls[index:index + batch]
            try:
                result = adapter.submit(chunk)
            except CloudError as exc:
                done = sum(t.count for t in new_tasks)
                ids = ", ".join(t.task_id for t in new_tasks) or "none"
                raise SubmitError(
                    f"set {name!r} on {adapter.describe_scope()}: submitting batch {index // batch + 1} of "
                    f"{-(-len(urls) // batch)} failed: {exc}. Submitted before the failure: {done} targets "
                    f"(task ids: {ids}); not submitted: {len(urls) - done}. The next refresh finds the "
                    "submitted tasks and the next up submits only the rest."
                ) from None
            at = self.clock()
            new_tasks.append(SubmittedTask(result.task_id, at, len(result.accepted)))
            self.log.write(f"set {name}: submitted {len(result.accepted)} targets as task {result.task_id}"
                           f" on {adapter.describe_scope()}\n")
            for url in result.accepted:
                notes.append(Observation(url, result.task_id, TargetState.QUEUED, at, None, None, None,
                                         self._etag(url)))
            for url, reason in result.rejected.items():
                notes.append(Observation(url, result.task_id, TargetState.FAILED, at, at,
                                         f"rejected at submit: {reason}", "rejected", self._etag(url)))
        return notes

    def _etag(self, url: str) -> Optional[str]:
        """The ETag a task submitted now is for: the origin's current one (None for URL targets)."""
        version = self.inputs.content.get(url)
        return version.etag if version else None

    def _wait(self, start: datetime, pending: set[str]) -> list[Observation]:
        """Poll history for the submitted targets until none is in flight or the deadline passes."""
        deadline = start + self.wait
        interval = POLL_FIRST
        last_progress = start
        latest: list[Observation] = []
        since = start - timedelta(minutes=5)  # tolerate a cloud clock a little behind ours
        while pending and self.wait.total_seconds() > 0:
            now = self.clock()
            if now >= deadline:
                break
            self.sleep(min(interval, max(0.0, (deadline - now).total_seconds())))
            interval = min(interval * 2, POLL_MAX)
            rows = [o for o in self.adapter.history(since, self.clock()) if o.url in pending and o.created >= since]
            latest = rows
            newest: dict[str, Observation] = {}
            for obs in rows:
                if obs.url not in newest or obs.created >= newest[obs.url].created:
                    newest[obs.url] = obs
            in_flight = {u for u in pending if u not in newest or newest[u].state.in_flight}
            now = self.clock()
            if (now - last_progress).total_seconds() >= PROGRESS_EVERY:
                left = max(0, int((deadline - now).total_seconds()))
                self.log.write(f"set {self.inputs.set}: {len(pending) - len(in_flight)} of {len(pending)} "
                               f"submitted targets finished, {len(in_flight)} running, {left}s left\n")
                last_progress = now
            if not in_flight:
                break
        return latest

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


def with_content(observations: Iterable[Observation], contents: Mapping[tuple[str, str], str]) -> list[Observation]:
    """History rows carry no ETag: add the one our records or submits say each task was for."""
    if not contents:
        return list(observations)
    return [replace(o, content=contents[(o.url, o.task_id)]) if not o.content and (o.url, o.task_id) in contents
            else o for o in observations]
