"""Pure reconcile: declared targets + observed history -> per-target status + what to submit.

No I/O here: the provider feeds it what the clouds said, so every rule is tested without servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Optional, Sequence

from ..model.durations import format_duration
from ..model.status import ContentVersion, HistoryRow, TargetState, TargetStatus, split_version, version_token


@dataclass(frozen=True)
class Plan:
    """The reconcile result for one set on one destination: verdicts, and the two kinds of task due.

    ``to_purge``: targets whose content changed (or whose purge failed), to purge before anything
    else; ``to_submit``: targets a prefetch fixes now (never one of ``to_purge``, never one in flight).
    """

    statuses: Mapping[str, TargetStatus]
    to_submit: Sequence[str] = field(default_factory=tuple)
    to_purge: Sequence[str] = field(default_factory=tuple)

    @property
    def in_flight(self) -> list[str]:
        return [u for u, s in self.statuses.items() if s.state.in_flight]

    @property
    def drifted(self) -> list[TargetStatus]:
        return [s for s in self.statuses.values() if s.state is not TargetState.WARM]

    @property
    def in_sync(self) -> bool:
        return not self.drifted

    @property
    def changed(self) -> list[str]:
        """Targets whose content changed since their last prefetch (stale): those a purge history read concerns."""
        return [u for u, s in self.statuses.items() if s.state is TargetState.STALE]


#: Why a warm target is due again after its destination's prefetch options changed.
OTHER_OPTIONS = "prefetched with other prefetch options than the destination declares now (headers, layer, ...)"


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
    revision: Optional[str] = None,
    purges: Optional[Iterable[HistoryRow]] = None,
    options: Optional[str] = None,
) -> dict[str, TargetStatus]:
    """Verdict per declared target, in declaration order; observations of other URLs are ignored.

    ``content`` gives the origin's current version of origin-derived targets, ``revision`` the
    set's declared revision. A success whose task was submitted for another ETag or another
    revision is STALE (it warmed content since replaced), even within freshness. A task we have no
    record of (submitted by an ``up`` that died before saving, or before the target came from an
    origin or the set had a revision) is taken to be for the current version, as a URL target's
    success is; its verdict records that version, so a later change is caught. A task whose status
    is unknown is never submitted again on a guess: it stays UNKNOWN until it is older than
    freshness, then it is EXPIRED like a success (due again either way).

    ``options`` is the digest of the destination's declared prefetch options (model/status.py
    ``options_token``; None: none). A success whose task was made with other options (a header
    added, another layer) is EXPIRED, due for a prefetch but not a purge: the content did not change,
    but the edge holds another variant than the one asked for. A task recorded without options counts
    as made without them, so declaring options for the first time makes every target due once.

    ``purges`` (purge history rows; given for sets that purge changed content) decide what a stale
    target waits for: a purge created after its last prefetch that is in flight (PURGING), done
    (PURGED: prefetch due) or failed (PURGE_FAILED: purge again); none: STALE, purge due.
    """
    latest = latest_by_url(observations)
    purged = latest_by_url(purges) if purges is not None else None
    content = content or {}
    # One subtraction for the whole set: ``now - at > freshness`` is ``at < cutoff``, exactly.
    cutoff = now - freshness
    warm, expired, stale, missing = TargetState.WARM, TargetState.EXPIRED, TargetState.STALE, TargetState.MISSING
    unknown = TargetState.UNKNOWN
    get = latest.get
    freshness_text = format_duration(freshness)
    too_old = f"last warmed more than {freshness_text} ago"
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
        recorded_etag, recorded_revision, recorded_options = split_version(obs.content)
        prefetched_etag = recorded_etag or (wanted.etag if wanted else None)
        prefetched_revision = recorded_revision if recorded_revision is not None else revision
        if state is warm and at < cutoff:
            state = expired
            reason = too_old
        elif state is unknown and at < cutoff:  # never submitted on a guess, but re-warmed when due anyway
            state = expired
            reason = f"status unknown ({obs.raw_status or reason or 'none given'}) and older than {freshness_text}"
        if state is warm or state is expired:
            change = _change(wanted, prefetched_etag, revision, prefetched_revision)
            if change:
                state, reason = stale, change
            elif state is warm and recorded_options != options:
                state, reason = expired, OTHER_OPTIONS
        version = version_token(prefetched_etag, prefetched_revision, recorded_options)
        if state is stale and purged is not None:
            purge = purged.get(url)
            if purge is not None and purge.created >= obs.created:
                result[url] = _after_purge(url, purge, version, obs.task_id)
                continue
            reason += "; purge, then prefetch"
        result[url] = TargetStatus(url, state, obs.task_id, at, reason, obs.raw_status, version)
    return result


def _change(wanted: Optional[ContentVersion], prefetched_etag: Optional[str], revision: Optional[str],
            prefetched_revision: Optional[str]) -> Optional[str]:
    """Why a successful prefetch no longer warms the current content, or None: it does."""
    changes = []
    if wanted and prefetched_etag != wanted.etag:
        changes.append(f"the sitemap's lastmod changed since last prefetch: it now says {wanted.lastmod}"
                       if wanted.lastmod else f"origin changed since last prefetch: etag {prefetched_etag} was "
                       f"prefetched, the origin now has etag {wanted.etag}")
    if revision is not None and revision != prefetched_revision:  # a revision removed changes nothing
        changes.append(f"revision {prefetched_revision} was prefetched, the set now declares revision {revision}")
    return "; ".join(changes) or None


def _after_purge(url: str, purge: HistoryRow, version: Optional[str], prefetch_task: str) -> TargetStatus:
    """A stale target with a purge since its last prefetch (``prefetch_task``): the purge's state decides."""
    at = purge.updated or purge.created
    if purge.state.in_flight:
        return TargetStatus(url, TargetState.PURGING, purge.task_id, at, purge.reason, purge.raw_status, version,
                            prefetch_task)
    if purge.state is TargetState.WARM:
        return TargetStatus(url, TargetState.PURGED, purge.task_id, at, None, purge.raw_status, version,
                            prefetch_task)
    if purge.state is TargetState.TIMED_OUT:
        reason = "purge timed out" + (f": {purge.reason}" if purge.reason else "")
    elif purge.state is TargetState.UNKNOWN:
        reason = f"purge status {purge.raw_status!r} not recognised"
    else:
        reason = purge.reason or "the cloud reported the purge failed"
    return TargetStatus(url, TargetState.PURGE_FAILED, purge.task_id, at, reason, purge.raw_status, version,
                        prefetch_task)


def make_plan(
    targets: Sequence[str],
    observations: Iterable[HistoryRow],
    *,
    now: datetime,
    freshness: timedelta,
    content: Optional[Mapping[str, ContentVersion]] = None,
    revision: Optional[str] = None,
    purges: Optional[Iterable[HistoryRow]] = None,
    options: Optional[str] = None,
) -> Plan:
    """Assess, then choose exactly the targets that need a new task (never one still in flight).

    With ``purges`` given (the set purges changed content), stale targets and failed purges are
    purged, and prefetched only once their purge is done; without, stale targets are prefetched.
    """
    statuses = assess(targets, observations, now=now, freshness=freshness, content=content, revision=revision,
                      purges=purges, options=options)
    if purges is None:
        return Plan(statuses, tuple(u for u, s in statuses.items() if s.state.needs_submit))
    purge_due = (TargetState.STALE, TargetState.PURGE_FAILED)
    to_purge = tuple(u for u, s in statuses.items() if s.state in purge_due)
    to_submit = tuple(u for u, s in statuses.items() if s.state.needs_submit and s.state not in purge_due)
    return Plan(statuses, to_submit, to_purge)
