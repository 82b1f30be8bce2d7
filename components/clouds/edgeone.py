"""Tencent EdgeOne (teo 2022-09-01) adapter: CreatePrefetchTask, DescribePrefetchTasks, DescribeContentQuota;
and for purges (``purger()``): CreatePurgeTask (``purge_url``), DescribePurgeTasks, the quota's ``purge_url`` entry.

Talks through the official ``tencentcloud-sdk-python-teo`` client, the same code path for the
real cloud and the sandbox. Its quirks stay here: ISO 8601 times answered in UTC, a 7-day cap
per history query, Limit <= 1000, ``FailedList`` partial success, status spellings.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Optional, Sequence

from tencentcloud.teo.v20220901 import models, teo_client

from .base import CloudAdapter, MalformedResponse, SubmitResult, lookup_status
from .paging import TaskMemo, checked_counts, checked_page, checked_time, paged_history, read_pages
from .ratelimit import TENCENT_LIMITER, SlidingWindowLimiter
from .tencent import TencentCaller, client_identity, client_profile, sdk_credential, wire_headers
from ..model.clouds import cloud
from ..model.connection import Endpoint, TencentCredentials
from ..model.quota import Quota
from ..model.status import HistoryRow, TargetState, TaskKind, parse_time, shared
from ..model.urls import InvalidUrl, normalize_url

SPEC = cloud("edgeone")
CLOUD = SPEC.key
ACTION = "DescribePrefetchTasks"  # the history action, named in every MalformedResponse about a row
PURGE_ACTION = "DescribePurgeTasks"  # the purge history: the same Task rows, the same paging
PAGE_LIMIT = SPEC.history_page  # documented maximum (both history actions)
# What one kind of task calls (clouds/base.py TaskKind): submit action, quota entry, history action.
ACTIONS = {
    TaskKind.PREFETCH: ("CreatePrefetchTask", "PrefetchQuota", "prefetch_url", ACTION),
    TaskKind.PURGE: ("CreatePurgeTask", "PurgeQuota", "purge_url", PURGE_ACTION),
}
STATUS_MAP = {
    "processing": (TargetState.RUNNING, None),
    "success": (TargetState.WARM, None),
    "failed": (TargetState.FAILED, None),
    "timeout": (TargetState.TIMED_OUT, None),
    "canceled": (TargetState.FAILED, "task was canceled"),
    "invalid": (TargetState.FAILED, "origin answered an error status"),
}


def map_status(raw: Optional[str]) -> tuple[TargetState, Optional[str]]:
    return lookup_status(STATUS_MAP, raw)


def _quota_entry(resp: Any, kind: TaskKind) -> Quota:
    """The ``kind`` entry of a DescribeContentQuota answer, checked. The API documents PrefetchQuota and
    PurgeQuota as possibly null: a quota the answer does not give is unreported (nothing judged against it,
    the batch size learnt from the cloud's refusals), never an error that stops every up."""
    _, field_name, quota_type, _ = ACTIONS[kind]
    for item in getattr(resp, field_name, None) or []:
        if (getattr(item, "Type", None) or "").lower() == quota_type:
            values = checked_counts(item, ("Batch", "Daily", "DailyAvailable"), CLOUD, "DescribeContentQuota",
                                    field_name)
            return Quota(values["Batch"], values["Daily"], values["DailyAvailable"])
    return Quota.unreported(SPEC.unreported_batches)


def make_client(endpoint: Endpoint, creds: TencentCredentials, timeout: int = 30) -> teo_client.TeoClient:
    return teo_client.TeoClient(sdk_credential(creds), "", client_profile(endpoint, timeout))


def build(destination: Mapping[str, Any], endpoint: Endpoint, credentials: TencentCredentials) -> "EdgeOneAdapter":
    """The adapter for one destination (components/clouds/factory.py)."""
    return EdgeOneAdapter(make_client(endpoint, credentials), destination["zone"], destination.get("mode", "default"),
                          options=SPEC.declared_options(destination))


def option_params(options: Mapping[str, Any]) -> dict[str, Any]:
    """CreatePrefetchTask's parameters for the declared prefetch options (registry ``prefetch_options``)."""
    params: dict[str, Any] = {}
    if options.get("headers"):
        params["Headers"] = wire_headers(options["headers"])
    if "encodeUrl" in options:
        params["EncodeUrl"] = bool(options["encodeUrl"])
    if "prefetchMediaSegments" in options:
        params["PrefetchMediaSegments"] = options["prefetchMediaSegments"]
    return params


class EdgeOneAdapter(CloudAdapter):
    cloud = CLOUD
    max_window = SPEC.history_window
    poll_reads = SPEC.poll_reads
    batch_refusal_codes = frozenset({"LimitExceeded.BatchQuota"})

    def __init__(self, client: teo_client.TeoClient, zone: str, mode: str = "default",
                 limiter: SlidingWindowLimiter = TENCENT_LIMITER, *, options: Optional[Mapping[str, Any]] = None):
        self.client = client
        self.zone = zone
        self.mode = mode
        self.options = option_params(options or {})  # prefetches only: a purge takes none of them
        self._call = TencentCaller(CLOUD, client, models, limiter, scope=SPEC.describe(zone))

    def describe_scope(self) -> str:
        return SPEC.describe(self.zone)

    def purger(self) -> "EdgeOneAdapter":
        """The zone's URL purges, through the same client and rate limiter."""
        return EdgeOnePurgeAdapter(self._call.client, self.zone, limiter=self._call.limiter)

    def quota(self) -> Quota:
        return self.quotas()[self.kind]

    def quotas(self) -> dict[TaskKind, Quota]:
        """One DescribeContentQuota answers the zone's prefetch and purge quotas."""
        resp = self._call("DescribeContentQuota", {"ZoneId": self.zone})
        found = {self.kind: _quota_entry(resp, self.kind)}
        for kind in ACTIONS:
            if kind is not self.kind:
                try:
                    found[kind] = _quota_entry(resp, kind)
                except MalformedResponse:
                    pass  # asked for when that kind is used, and reported then
        return found

    def quota_key(self) -> tuple:
        return ((CLOUD, *client_identity(self.client), self.zone), self.describe_scope())

    def _submit_params(self, urls: Sequence[str]) -> dict[str, Any]:
        params: dict[str, Any] = {"ZoneId": self.zone, "Targets": list(urls)}
        if self.mode != "default":
            params["Mode"] = self.mode
        return {**params, **self.options}

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        action = ACTIONS[self.kind][0]
        resp = self._call(action, self._submit_params(urls))
        if not isinstance(resp.JobId, str) or not resp.JobId:
            raise MalformedResponse(CLOUD, action, "JobId", f"expected a task id, got {resp.JobId!r}")
        rejected: dict[str, str] = {}
        for failure in resp.FailedList or []:
            for target in failure.Targets or []:
                rejected[_normalize_or_raw(target)] = failure.Reason or "rejected by the cloud"
        accepted = tuple(u for u in urls if u not in rejected)
        return SubmitResult(resp.JobId, accepted, rejected)

    def history_key(self) -> tuple:
        # What decides the rows history() yields: the API and account it asks, and the zone.
        return (CLOUD, *client_identity(self.client), self.zone)

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        return paged_history(since, until, self.max_window, self._page, _observation,
                             cloud=CLOUD, action=ACTION)

    def task_history(self, task_id: str) -> Iterator[HistoryRow]:
        """One task's rows: filter ``job-id`` (one value), no time range (the API takes either)."""
        action = ACTIONS[self.kind][3]
        params = {"ZoneId": self.zone, "Filters": [{"Name": "job-id", "Values": [task_id]}], "Limit": PAGE_LIMIT}

        def page(offset: int) -> tuple[int, list]:
            return checked_page(self._call.json(action, {**params, "Offset": offset}), CLOUD, action, "Tasks")

        convert = _purge_observation if self.kind is TaskKind.PURGE else _observation
        for rows in read_pages(page, cloud=CLOUD, action=action):
            for row in rows:
                obs = convert(row)
                if obs is not None:
                    yield obs

    def _page(self, start: datetime, end: datetime, offset: int) -> tuple[int, list]:
        """(TotalCount, Tasks) of one page of history, both checked."""
        action = ACTIONS[self.kind][3]
        resp = self._call.json(action, {
            "ZoneId": self.zone,
            "StartTime": _iso(start),
            "EndTime": _iso(end),
            "Offset": offset,
            "Limit": PAGE_LIMIT,
        })
        return checked_page(resp, CLOUD, action, "Tasks")


class EdgeOnePurgeAdapter(EdgeOneAdapter):
    """The zone's URL purges (``purge_url``, ``Method: delete``: the cached copy is evicted, so the
    prefetch that follows fetches the current object). Rows of other purge types (prefix, host,
    cache tag) name no URL of ours and are skipped."""

    kind = TaskKind.PURGE
    poll_reads = None  # purges are polled in the shared windows (history.py)

    def purger(self) -> "EdgeOneAdapter":
        raise AssertionError("purger() is asked of the prefetch adapter")

    def _submit_params(self, urls: Sequence[str]) -> dict[str, Any]:
        return {"ZoneId": self.zone, "Type": "purge_url", "Method": "delete", "Targets": list(urls)}

    def history_key(self) -> tuple:
        return (*super().history_key(), "purge")

    def history(self, since: datetime, until: datetime) -> Iterator[HistoryRow]:
        return paged_history(since, until, self.max_window, self._page, _purge_observation,
                             cloud=CLOUD, action=PURGE_ACTION)


def _observation(task: Any, purges: bool = False) -> Optional[HistoryRow]:
    """One row of ``Tasks`` (plain JSON): every field it reads is checked, the per-task ones once per task.

    ``purges``: a row of the purge history (only ``purge_url`` rows are kept), else of the prefetch
    history (purge rows, should it list any, are skipped).
    """
    action = PURGE_ACTION if purges else ACTION
    if not isinstance(task, dict):
        raise MalformedResponse(CLOUD, action, "Tasks[]", f"expected an object, got {type(task).__name__}")
    get = task.get
    target = get("Target")
    if not isinstance(target, str):
        return _row_without_url(get("Type"), get("JobId"), target, purges)
    key = (purges, get("JobId"), get("Type"), get("Status"), get("CreateTime"), get("UpdateTime"), get("FailType"),
           get("FailMessage"))
    part = _TASKS.part(key)
    if part is None:
        return None
    return HistoryRow(_normalize_or_raw(target), *part)


def _purge_observation(task: Any) -> Optional[HistoryRow]:
    return _observation(task, purges=True)


def _task_part(purges: bool, job_id: Any, kind: Any, status: Any, create_time: Any, update_time: Any,
               fail_type: Any, fail_message: Any) -> Optional[tuple]:
    """What a row says besides its URL: (task id, state, created, updated, reason, raw status), None for a
    row of the other kind.

    A pure function of the row's non-URL fields, so rows that repeat them share one result
    (``_TASKS``). Non-string values of the same field all mean the same here (ignored, UNKNOWN or
    malformed), so keys that are equal but differently typed (``True == 1``) agree.
    """
    if _skipped(kind, purges):
        return None  # a row of the other kind; any other row is kept, never silently dropped
    action = PURGE_ACTION if purges else ACTION
    _check_job_id(job_id, action)
    created = _time(create_time, "Tasks[].CreateTime", action, required=True)
    updated = _time(update_time, "Tasks[].UpdateTime", action, required=False)
    state, reason = map_status(status)
    if state is TargetState.FAILED or state is TargetState.TIMED_OUT:
        details = [x for x in (fail_type, fail_message) if isinstance(x, str) and x]
        if details:
            reason = ": ".join(details)
    raw = shared(status) if isinstance(status, str) else None
    # Interned: every row of a task repeats its id and status (100,000 rows, a few hundred distinct strings).
    return shared(job_id), state, created, updated, reason, raw


_TASKS = TaskMemo(_task_part)


def _row_without_url(kind: Any, job_id: Any, target: Any, purges: bool) -> None:
    """A row whose Target is not a string: skipped if of the other kind, else reported (its JobId checked first)."""
    if _skipped(kind, purges):
        return None
    action = PURGE_ACTION if purges else ACTION
    _check_job_id(job_id, action)
    raise MalformedResponse(CLOUD, action, "Tasks[].Target", f"expected a URL, got {target!r}")


def _skipped(kind: Any, purges: bool) -> bool:
    """A prefetch history skips purge rows; a purge history keeps only URL purges (``purge_url``)."""
    text = kind.lower() if isinstance(kind, str) else ""
    if purges:
        return text.startswith("purge") and text != "purge_url"
    return text.startswith("purge")


def _check_job_id(job_id: Any, action: str = ACTION) -> None:
    if not isinstance(job_id, str) or not job_id:
        raise MalformedResponse(CLOUD, action, "Tasks[].JobId", f"expected a task id, got {job_id!r}")


def _time(value: Any, field_name: str, action: str = ACTION, *, required: bool) -> Optional[datetime]:
    return checked_time(value, parse_time, "an ISO 8601 time", CLOUD, action, field_name, required=required)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _normalize_or_raw(url: str) -> str:
    try:
        return normalize_url(url)
    except InvalidUrl:
        return url
