"""One status model for every cloud, and the plain words a reviewer reads in a preview."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from typing import Mapping, Optional


class TaskKind(str, Enum):
    """What a cloud task does to a URL: prefetch (fetch it into the edge) or purge (evict the edge's copy)."""

    PREFETCH = "prefetch"
    PURGE = "purge"


class TargetState(str, Enum):
    """Where a declared target stands. Only WARM is in sync; every other state is drift.

    The last three exist for sets that purge changed content before prefetching it again
    (``onChange: purge-then-prefetch``): a prefetch does not replace an unexpired cached copy.
    """

    QUEUED = "queued"        # accepted by the cloud, not started
    RUNNING = "running"      # prefetch in progress
    WARM = "warm"            # last prefetch succeeded within the set's freshness
    FAILED = "failed"        # last prefetch failed, was canceled, rejected, or the origin answered 4xx/5xx
    TIMED_OUT = "timed_out"  # last prefetch timed out at the cloud
    EXPIRED = "expired"      # last success is older than the set's freshness
    MISSING = "missing"      # never submitted (no task found in history or state)
    UNKNOWN = "unknown"      # the cloud answered a status we do not recognise (raw value kept), or none, or
                             # our submit of it is unconfirmed (plan/unconfirmed.py)
    STALE = "stale"          # last prefetch succeeded, but for content (ETag, revision) since replaced
    PURGING = "purging"      # changed content: its purge is queued or running
    PURGED = "purged"        # changed content: purged, its prefetch is due
    PURGE_FAILED = "purge_failed"  # changed content: its purge failed or timed out (the prefetch waits for it)

    @property
    def in_flight(self) -> bool:
        """A task is still working on it: submitting again would duplicate it."""
        return self in _IN_FLIGHT

    @property
    def needs_submit(self) -> bool:
        """A prefetch may fix it (`up` re-submits exactly these, unless they are due for a purge first).
        UNKNOWN is not: its task may well have warmed it, and a submit on a guess spends quota every
        ``up``; it is re-warmed once its task is older than the set's freshness (then EXPIRED)."""
        return self in _NEEDS_SUBMIT


ALL_STATES: tuple[TargetState, ...] = tuple(TargetState)
# Looked up once per target of a set (100,000 times): sets, not tuples built on every call.
_IN_FLIGHT = frozenset({TargetState.QUEUED, TargetState.RUNNING, TargetState.PURGING})
_NEEDS_SUBMIT = frozenset({TargetState.FAILED, TargetState.TIMED_OUT, TargetState.EXPIRED, TargetState.MISSING,
                           TargetState.STALE, TargetState.PURGED})
#: States of a target whose changed content is being purged: a purge task, not a prefetch, decided them.
PURGE_STATES = frozenset({TargetState.PURGING, TargetState.PURGED, TargetState.PURGE_FAILED})


class OnChange(str, Enum):
    """What a set does when a target's content changed (origin ETag, or the declared revision)."""

    PURGE_THEN_PREFETCH = "purge-then-prefetch"  # the default: evict the old copy, then warm the new one
    PREFETCH = "prefetch"                        # prefetch only (an unexpired cached copy stays as it was)


@dataclass(frozen=True)
class ContentVersion:
    """Which content a target stands for: an origin object's ETag (short form) and size, or a sitemap's
    ``<lastmod>`` for the URL (declare/sitemap.py).

    ``etag`` is what staleness is judged on (for a lastmod, a digest of it); ``size`` or ``lastmod`` is
    shown to reviewers. The marker travels in the target's desired value (``warm (etag 9b2cf535d3e1,
    2048 bytes)``, ``warm (lastmod 2026-05-01T10:00:00Z)``), so the engine's own input diff shows a
    target whose content changed.
    """

    etag: str
    size: int
    lastmod: Optional[str] = None

    @property
    def marker(self) -> str:
        if self.lastmod is not None:
            return f"lastmod {self.lastmod}"
        return f"etag {self.etag}, {self.size} bytes"

    @classmethod
    def of(cls, etag: str, size: int) -> "ContentVersion":
        return cls(short_etag(etag), size)

    @classmethod
    def of_lastmod(cls, lastmod: str) -> "ContentVersion":
        """The version a sitemap's (normalised) ``<lastmod>`` gives a URL: its digest is the token records keep."""
        return cls(short_etag(f"lastmod {lastmod}"), 0, lastmod)


# An ETag that is a hash: MD5 hex (single-part upload), or MD5-of-parts hex plus "-<parts>" (multipart).
_HASH_ETAG = re.compile(r"^[0-9a-fA-F]{32,}(-\d+)?$")
SHORT_ETAG_LENGTH = 12


def short_etag(raw: str) -> str:
    """The ETag as targets carry it: 12 hex digits of a hash ETag, else a 12-hex digest of the whole ETag.

    12 hex digits are 48 bits of a hash: two versions of one object collide with odds of about
    1 in 3*10^14, while each of 100,000 targets costs 12 characters of state instead of 32-40.
    An ETag that is not a hash (some S3-compatible servers answer e.g. ``<mtime>-<size>``) is
    digested whole, since its first characters need not differ between versions.
    """
    text = (raw or "").strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if _HASH_ETAG.match(text):
        return text[:SHORT_ETAG_LENGTH].lower()
    return "h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:SHORT_ETAG_LENGTH - 1]


REVISION_MARK = "@"  # never in a short ETag (hex, or "h" + hex)
OPTIONS_MARK = "#"   # nor this: what follows it (up to a revision) is the options' digest
OPTIONS_TOKEN_LENGTH = 10


def options_token(options: Mapping[str, object]) -> Optional[str]:
    """A short digest of the prefetch options a task is submitted with (None: none declared), for the record.

    Any change to them (a header added, another layer) gives another digest: the edge's copy from a
    prefetch with other options is not the one the set asks for now (plan/reconcile.py).
    """
    if not options:
        return None
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:OPTIONS_TOKEN_LENGTH]


def version_token(etag: Optional[str], revision: Optional[str], options: Optional[str] = None) -> Optional[str]:
    """What a task was submitted for, as our records keep it: the short ETag, ``#`` and the options'
    digest (``options_token``), ``@`` and the set's revision; each part only when there is one.

    ``9b2cf535d3e1`` (origin object, no revision: the form records had before revisions),
    ``@r42`` (URL target of a set with a revision), ``9b2cf535d3e1@r42`` (both), ``#5d41402abc`` (a URL
    target prefetched with declared options), None (none of them).
    """
    head = (etag or "") + (OPTIONS_MARK + options if options else "")
    if revision is None:
        return head or None
    return f"{head}{REVISION_MARK}{revision}"


def split_version(token: Optional[str]) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """Inverse of version_token: (short ETag, revision, options' digest), each or None."""
    if not token:
        return None, None, None
    head, mark, revision = token.partition(REVISION_MARK)
    etag, _, options = head.partition(OPTIONS_MARK)
    return etag or None, (revision if mark else None), options or None


@dataclass(frozen=True, slots=True)  # slots: 100,000 rows of history in half the memory
class HistoryRow:
    """One history row about one URL, already normalised by a cloud adapter.

    ``content`` is the version the task was submitted for (``version_token``: short ETag and/or
    revision). Clouds do not know it: it comes from our own records (outputs) and submits, and stays
    None for tasks we have no record of.
    """

    url: str
    task_id: str
    state: TargetState
    created: datetime
    updated: Optional[datetime] = None
    reason: Optional[str] = None
    raw_status: Optional[str] = None
    content: Optional[str] = None

    def __init__(self, url: str, task_id: str, state: TargetState, created: datetime,
                 updated: Optional[datetime] = None, reason: Optional[str] = None,
                 raw_status: Optional[str] = None, content: Optional[str] = None):
        # Written out (the dataclass keeps it) because the generated __init__ of a frozen class
        # sets each field through object.__setattr__: 1.4 µs per observation, a third of what a
        # history row costs. The slot setters below do the same in half the time. Fields,
        # defaults and immutability are the dataclass's; a test checks this matches its fields.
        _SET_URL(self, url)
        _SET_TASK_ID(self, task_id)
        _SET_STATE(self, state)
        _SET_CREATED(self, created)
        _SET_UPDATED(self, updated)
        _SET_REASON(self, reason)
        _SET_RAW_STATUS(self, raw_status)
        _SET_CONTENT(self, content)

    @property
    def at(self) -> datetime:
        """When the row last changed: the finish time for finished tasks."""
        return self.updated or self.created


# The slots' own setters, which a frozen class's __setattr__ does not guard.
(_SET_URL, _SET_TASK_ID, _SET_STATE, _SET_CREATED, _SET_UPDATED, _SET_REASON, _SET_RAW_STATUS,
 _SET_CONTENT) = (getattr(HistoryRow, f.name).__set__ for f in fields(HistoryRow))


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """The verdict on one declared target."""

    url: str
    state: TargetState
    task_id: Optional[str] = None
    at: Optional[datetime] = None
    reason: Optional[str] = None
    raw_status: Optional[str] = None
    content: Optional[str] = None  # version (version_token) the latest prefetch was for
    prefetch_task: Optional[str] = None  # in a purge state: the prefetch the purge (task_id) follows

    def __init__(self, url: str, state: TargetState, task_id: Optional[str] = None, at: Optional[datetime] = None,
                 reason: Optional[str] = None, raw_status: Optional[str] = None, content: Optional[str] = None,
                 prefetch_task: Optional[str] = None):
        # Written out as HistoryRow's is, for the same reason: one verdict per target, 100,000 per refresh.
        _SET_STATUS_URL(self, url)
        _SET_STATUS_STATE(self, state)
        _SET_STATUS_TASK_ID(self, task_id)
        _SET_STATUS_AT(self, at)
        _SET_STATUS_REASON(self, reason)
        _SET_STATUS_RAW_STATUS(self, raw_status)
        _SET_STATUS_CONTENT(self, content)
        _SET_STATUS_PREFETCH_TASK(self, prefetch_task)

    def describe(self) -> str:
        """Plain words for previews and reports, e.g. ``failed: origin returned HTTP 502 (task j1, 2026-11-23 10:00:00Z)``."""
        if self.state is TargetState.WARM:
            return "warm"
        words = {
            TargetState.QUEUED: "queued",
            TargetState.RUNNING: "running",
            TargetState.FAILED: "failed",
            TargetState.TIMED_OUT: "timed out",
            TargetState.EXPIRED: "expired",
            TargetState.MISSING: "missing",
            TargetState.UNKNOWN: "unknown",
            TargetState.STALE: "stale",
            TargetState.PURGING: "purging",
            TargetState.PURGED: "purged, prefetch due",
            TargetState.PURGE_FAILED: "purge failed",
        }[self.state]
        detail = self.reason
        if self.state is TargetState.UNKNOWN and self.raw_status is not None:
            detail = f"cloud reported status {self.raw_status!r}" + (f", {self.reason}" if self.reason else "")
        context = []
        if self.task_id:
            context.append(f"task {self.task_id}")
        if self.at is not None:
            context.append(format_time(self.at))
        text = words
        if detail:
            text += f": {detail}"
        if context:
            text += f" ({', '.join(context)})"
        return text


(_SET_STATUS_URL, _SET_STATUS_STATE, _SET_STATUS_TASK_ID, _SET_STATUS_AT, _SET_STATUS_REASON, _SET_STATUS_RAW_STATUS,
 _SET_STATUS_CONTENT, _SET_STATUS_PREFETCH_TASK) = (getattr(TargetStatus, f.name).__set__ for f in fields(TargetStatus))


def shared(text: str) -> str:
    """One copy of a string that many history rows repeat (task ids, statuses): interned if a plain str."""
    return sys.intern(text) if type(text) is str else text


# Times repeat: every row of one task shares its creation time, and finish times bunch by the
# second. Both conversions are cached, so 100,000 rows cost a few thousand real conversions.
TIME_CACHE_SIZE = 1 << 14


@lru_cache(maxsize=TIME_CACHE_SIZE)
def format_time(moment: datetime) -> str:
    """UTC, second precision, ISO 8601 with Z: the one time format of outputs and previews."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=TIME_CACHE_SIZE)
def parse_time(text: str) -> datetime:
    """Inverse of format_time (accepts any ISO 8601 with offset or Z)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value
