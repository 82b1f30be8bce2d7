"""The one small interface every CDN adapter implements: quota, submit, history.

Each cloud's quirks (time formats, status spellings, paging, filters) stay inside its adapter;
what comes out is the shared status model, so reconcile logic never knows which cloud it is.

A destination has two kinds of task, prefetch and purge (``TaskKind``). An adapter serves one kind;
``purger()`` gives the same destination's purge tasks behind the same interface, so history
sharing, the quota ledger, retries and the confirmation of ambiguous submits serve purges unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterator, Mapping, Optional, Sequence

from ..model.quota import Quota
from ..model.status import HistoryRow, TargetState, TaskKind


@dataclass(frozen=True)
class SubmitResult:
    """One submit call: the task id, and which URLs the cloud refused at once (url -> reason)."""

    task_id: str
    accepted: tuple[str, ...]
    rejected: Mapping[str, str] = field(default_factory=dict)


class CloudError(Exception):
    """A cloud call failed. The message names the cloud, the action and the cloud's code; never a credential.

    ``kind`` classifies it for the retry policy: throttled | transient | quota | auth | invalid | malformed | other.
    """

    def __init__(self, cloud: str, action: str, code: str, message: str, request_id: Optional[str] = None,
                 kind: str = "other"):
        self.cloud, self.action, self.code, self.request_id, self.kind = cloud, action, code, request_id, kind
        suffix = f" (RequestId {request_id})" if request_id else ""
        super().__init__(f"{cloud} {action} failed: {code}: {message}{suffix}")


def key_tail(key_id: str) -> str:
    """Enough of a key id (SecretId, PublicKey) to tell key pairs apart in a message, never all of it."""
    return f"…{key_id[-4:]}" if len(key_id) >= 8 else "…"


class MalformedResponse(CloudError):
    """The cloud answered, but not in the documented shape."""

    def __init__(self, cloud: str, action: str, field_name: str, detail: str):
        super().__init__(cloud, action, "MalformedResponse", f"field {field_name}: {detail}", kind="malformed")
        self.field_name = field_name


class PurgeUnsupported(CloudError):
    """The cloud (its registry entry says ``supports_purge=False``) has no purge this program can use."""

    def __init__(self, cloud: str):
        super().__init__(cloud, "purge", "Unsupported", "this cloud's adapter cannot purge", kind="invalid")


class CloudAdapter(ABC):
    """Talks to one CDN on behalf of one destination scope (e.g. an EdgeOne zone), for one kind of task.

    For a purge adapter (``kind`` PURGE): ``quota()`` is the URL-purge quota, ``submit()`` purges URLs,
    ``history()`` yields purge rows, where WARM means the purge finished successfully, and
    ``history_key()`` differs from the prefetch adapter's (it ends with ``"purge"``).
    """

    cloud: str
    #: Longest time span one history query may cover.
    max_window: timedelta
    #: Which tasks this adapter submits and reads.
    kind: TaskKind = TaskKind.PREFETCH
    #: Error codes of a submit refused for carrying too many URLs (not executed): a guessed batch size
    #: (``Quota.unreported``) steps down on them (clouds/page_size.py ``SHARED_BATCH_SIZES``).
    batch_refusal_codes: frozenset[str] = frozenset()

    @abstractmethod
    def quota(self) -> Quota:
        """Live batch size and remaining daily prefetch quota."""

    def quotas(self) -> dict[TaskKind, Quota]:
        """This adapter's quota, and its sibling kind's when the same call answers it too (EdgeOne's
        DescribeContentQuota, UCloud's GetUcdnDomainPrefetchRefreshState): the quota ledger then reads one
        call per destination for both. A sibling entry the answer lacks or garbles is left out, never an error."""
        return {self.kind: self.quota()}

    def quota_key(self) -> Optional[tuple]:
        """Whose quotas ``quotas()`` reads: destination and account, the same for the prefetch and the purge
        adapter of one destination when one call answers both. None: shared with no one."""
        key = self.history_key()
        return None if key is None else (key, self.describe_scope())

    @abstractmethod
    def submit(self, urls: Sequence[str]) -> SubmitResult:
        """Submit one batch (len(urls) <= quota().batch). Not idempotent: never call blindly twice."""

    @abstractmethod
    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        """Every prefetch row created in [since, until], all pages, as normalised observations."""

    def task_rows(self, task_ids: Sequence[str]) -> Optional[list[HistoryRow]]:
        """The rows of these tasks whatever their creation time, or None: this cloud is read by time only.

        For a cloud whose signatures carry no time, so that its clock may be any distance from ours:
        reading our own tasks by id shows where its clock stands (clouds/history.py ``learn_clock_by_id``).
        """
        return None

    #: How polls read the tasks an ``up`` waits for (registry ``poll_reads``: ``task`` | ``window``), or None:
    #: the shared open windows of clouds/history.py. An adapter sets it only when it reads by ``task_history``.
    poll_reads: Optional[str] = None

    def task_history(self, task_id: str) -> Iterator[HistoryRow]:
        """Every row of one task, by the cloud's task-id filter (all pages), whatever its creation time.

        For the poll rounds (clouds/poll_rounds.py) of an adapter whose ``poll_reads`` is set.
        """
        raise NotImplementedError(f"{self.cloud} reads no task by id")

    def describe_scope(self) -> str:
        """Short human name of the destination for messages, e.g. ``edgeone zone zone-abc``."""
        return self.cloud

    def purger(self) -> "CloudAdapter":
        """The same destination's purge tasks (URL purge), as an adapter of kind PURGE.

        Called on a prefetch adapter; it shares the client (one connection, one rate limiter per
        action). Clouds without purge raise PurgeUnsupported.
        """
        raise PurgeUnsupported(self.cloud)

    def history_key(self) -> Optional[tuple]:
        """What decides the rows ``history`` yields: cloud, endpoint, credential id (never a secret), scope.

        Adapters with the same key read the same history, so one read serves them all (history.py).
        None (the default) means "shared with no one": an adapter that cannot name its scope
        exactly must not be served rows read for another.
        """
        return None


StatusTable = Mapping[str, tuple[TargetState, Optional[str]]]


def lookup_status(table: StatusTable, raw: object) -> tuple[TargetState, Optional[str]]:
    """A cloud's status string -> (state, reason), case-insensitive; anything else is UNKNOWN.

    Clouds spell their statuses loosely (Tencent's own example says ``Done``); the raw value is
    kept by the caller so an unknown status is reported, never a crash.
    """
    if not isinstance(raw, str):
        return TargetState.UNKNOWN, None
    return table.get(raw) or table.get(raw.strip().lower(), (TargetState.UNKNOWN, None))


def windows(since: datetime, until: datetime, span: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Split [since, until] into consecutive windows of at most ``span`` (clouds cap query spans)."""
    start = since
    while start < until:
        end = min(start + span, until)
        yield start, end
        start = end
