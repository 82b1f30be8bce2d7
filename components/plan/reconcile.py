"""Pure reconcile: declared targets + observed history -> per-target status + what to submit.

No I/O here: the provider feeds it what the clouds said, so every rule is tested without servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Optional, Sequence

from components.model.durations import format_duration
from components.model.status import ContentVersion, HistoryRow, TargetState, TargetStatus


@dataclass(frozen=True)
class Plan:
    """The reconcile result for one set on one destination."""

    statuses: Mapping[str, TargetStatus]
    to_submit: Sequence[str] = field(default_factory=tuple)

    @property
    def in_flight(self) -> list[str]:
        return [u for u, s in self.statuses.items() if s.state.in_flight]

    @property
    def drifted(self) -> list[TargetStatus]:
        return [s for s in self.statuses.values() if s.state is not TargetState.WARM]

    @property
    def in_sync(self) -> bool:
        return not self.drifted


def latest_by_url(observations: Iterable[HistoryRow]) -> dict[str, HistoryRow]:
    """Keep, per URL, the most recently created task (ties: the later-changed row wins).

    The newest task decides: a failure followed by a successful retry is warm, and a success
    followed by a failed re-prefetch is failed.
    """
    latest: dict[str, HistoryRow] = {}
    get = latest.get
    for obs in observations:
        url = obs.url
        best = get(url)
        if best is None or (obs.created, obs.at) > (best.created, best.at):
            latest[url] = obs
    return latest


def assess(
    targets: Iterable[str],
    observations: Iterable[HistoryRow],
    *,
    now: datetime,
    freshness: timedelta,
    content: Optional[Mapping[str, ContentVersion]] = None,
) -> dict[str, TargetStatus]:
    """Verdict per declared target, in declaration order; observations of other URLs are ignored.

    ``content`` gives the origin's current version of origin-derived targets. A success whose task
    was submitted for another ETag is STALE (it warmed content the origin has since replaced), even
    within freshness. A task we have no ETag record of (submitted by an ``up`` that died before
    saving, or before the target came from an origin) is taken to be for the current content, as
    a URL target's success is; its verdict records that ETag, so a later change is caught.
    """
    latest = latest_by_url(observations)
    content = content or {}
    # One subtraction for the whole set: ``now - at > freshness`` is ``at < cutoff``, exactly.
    cutoff = now - freshness
    warm, expired, stale, missing = TargetState.WARM, TargetState.EXPIRED, TargetState.STALE, TargetState.MISSING
    get = latest.get
    too_old = f"last warmed more than {format_duration(freshness)} ago"
    result: dict[str, TargetStatus] = {}
    for url in targets:
        obs = get(url)
        if obs is None:
            result[url] = TargetStatus(url, missing, reason="never submitted")
            continue
        state = obs.state
        reason = obs.reason
        at = obs.updated or obs.created
        wanted = content.get(url) if content else None
        prefetched = obs.content or (wanted.etag if wanted else None)
        if state is warm and at < cutoff:
            state = expired
            reason = too_old
        if wanted and (state is warm or state is expired) and prefetched != wanted.etag:
            state = stale
            reason = (f"origin changed since last prefetch: etag {prefetched} was prefetched, "
                      f"the origin now has etag {wanted.etag}")
        result[url] = TargetStatus(url, state, obs.task_id, at, reason, obs.raw_status, prefetched)
    return result


def make_plan(
    targets: Sequence[str],
    observations: Iterable[HistoryRow],
    *,
    now: datetime,
    freshness: timedelta,
    content: Optional[Mapping[str, ContentVersion]] = None,
) -> Plan:
    """Assess, then choose exactly the targets that need a new task (never one still in flight)."""
    statuses = assess(targets, observations, now=now, freshness=freshness, content=content)
    to_submit = tuple(u for u, s in statuses.items() if s.state.needs_submit)
    return Plan(statuses, to_submit)
