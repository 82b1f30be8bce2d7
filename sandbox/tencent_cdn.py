"""Tencent Cloud CDN (service `cdn`, API 2018-06-06): the three prefetch ("push") actions.

Behaviour follows cdn-apis.md §1: one task row per URL, all rows of a submit sharing a long digit
TaskId; per-area batch size and daily quota (Beijing-time day), a `global` push spending both
areas' quota; times as `YYYY-MM-DD hh:mm:ss` in Beijing time (UTC+8, no zone in the string).
Choices where the docs leave it open:
- `DescribePushTasks.Limit` has no documented maximum; the sandbox allows 1..1000 and answers
  `InvalidParameter.CdnParamError` outside that (also for a negative Offset).
- No maximum query window is enforced, but rows older than `cdn_history_days` (default 30, what
  the legacy log API documented) are never returned.
- A time that is not `YYYY-MM-DD hh:mm:ss`, or EndTime before StartTime, is
  `InvalidParameter.CdnStatInvalidDate` (the Go SDK lists it for this action). StartTime without
  EndTime has no upper bound; neither TaskId nor StartTime is `InvalidParameter.CdnParamError`.
- `Area` filters on the Area given at submit time, exactly (`mainland` does not find `global` rows).
- Outcomes: success -> `done`; failed, timeout, canceled, unknown -> `fail` (CDN has no timeout
  status); invalid -> `invalid`. A `rejected` rule fails the whole PushUrlsCache with
  `InvalidParameter.CdnHostInvalidParam` naming the URL (CDN has no FailedList); nothing is created.
- An empty `Urls` list, a bad Area/Layer/Status, or oversize Headers are `InvalidParameter.CdnParamError`.
- DescribePushQuota answers `UrlPush` only: SDK 3.1.169's response model has no other field (and
  warns "fileds are useless" about unknown ones); the purge quota is DescribePurgeQuota's business.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .steering import steered_tasks
from .tasks import Charge, QuotaExceeded
from .tencent import ApiError, Context, Params, TencentService

SERVICE_NAME = "cdn"
VERSION = "2018-06-06"
PARAM_ERROR = "InvalidParameter.CdnParamError"
HOST_INVALID = "InvalidParameter.CdnHostInvalidParam"
INVALID_DATE = "InvalidParameter.CdnStatInvalidDate"
AREAS = ("mainland", "overseas")
SUBMIT_AREAS = (*AREAS, "global")
MAX_LIMIT = 1000
MAX_HEADERS, MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES = 20, 128, 1024
BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REPORTED_STATUS = {
    "processing": "process", "success": "done", "failed": "fail", "timeout": "fail",
    "canceled": "fail", "unknown": "fail", "invalid": "invalid",
}
"""Sandbox state -> PushTask.Status."""
FILTER_STATES: dict[str, tuple[str, ...]] = {
    "process": ("processing",),
    "done": ("success",),
    "fail": ("failed", "timeout", "canceled", "unknown"),
    "invalid": ("invalid",),
}
"""A `Status` filter value -> the sandbox states it finds."""


def new_task_id(now: float) -> str:
    """23 digits, the shape of real TaskIds (e.g. `15475444535871929928456`): ms clock + 10 random."""
    return f"{int(now * 1000):013d}{secrets.randbelow(10**10):010d}"


def render_time(ts: float) -> str:
    """`YYYY-MM-DD hh:mm:ss` in Beijing time, to the second."""
    return _render_second(int(ts))


@lru_cache(maxsize=4096)
def _render_second(second: int) -> str:
    """Memoised: the rows of a history page share a few seconds, and strftime was a quarter of its cost."""
    return datetime.fromtimestamp(second, BEIJING).strftime(TIME_FORMAT)


def parse_time(name: str, value: str) -> int:
    """A Beijing-time `YYYY-MM-DD hh:mm:ss` as Unix seconds."""
    try:
        parsed = datetime.strptime(value.strip(), TIME_FORMAT)
    except ValueError:
        raise ApiError(INVALID_DATE, f"{name} must be `YYYY-MM-DD hh:mm:ss` (Beijing time); got {value!r}.") from None
    return int(parsed.replace(tzinfo=BEIJING).timestamp())


def _is_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and url == url.strip()


def _daily_limits(ctx: Context) -> dict[str, int]:
    return {area: int(ctx.store.get_setting(f"cdn_push_daily_{area}")) for area in AREAS}


def push_urls_cache(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["Urls", "UserAgent", "Area", "Layer", "ParseM3U8", "DisableRange", "Headers", "UrlEncode"])
    urls = params.strings("Urls", required=True) or []
    if not urls:
        raise ApiError(PARAM_ERROR, "Urls must list at least one URL.")
    params.string("UserAgent")
    area = params.string("Area") or "mainland"
    if area not in SUBMIT_AREAS:
        raise ApiError(PARAM_ERROR, f"Area must be one of {', '.join(SUBMIT_AREAS)}; got {area!r}.")
    layer = params.string("Layer")
    if layer not in (None, "middle"):
        raise ApiError(PARAM_ERROR, f"Layer can only be `middle`; got {layer!r}.")
    for flag in ("ParseM3U8", "DisableRange", "UrlEncode"):
        params.boolean(flag)
    headers = params.objects("Headers", ["Name", "Value"]) or []
    if len(headers) > MAX_HEADERS:
        raise ApiError(PARAM_ERROR, f"At most {MAX_HEADERS} Headers; got {len(headers)}.")
    for header in headers:
        name = header.string("Name", required=True) or ""
        value = header.string("Value", required=True) or ""
        if not name or len(name.encode("utf-8")) > MAX_HEADER_NAME_BYTES:
            raise ApiError(PARAM_ERROR, f"A header Name must be 1..{MAX_HEADER_NAME_BYTES} bytes; got {name[:40]!r}.")
        if len(value.encode("utf-8")) > MAX_HEADER_VALUE_BYTES:
            raise ApiError(PARAM_ERROR, f"The value of header {name!r} exceeds {MAX_HEADER_VALUE_BYTES} bytes.")
    bad = [u for u in urls if not _is_url(u)]
    if bad:
        raise ApiError(PARAM_ERROR, f"Urls must start with http:// or https://; invalid: {bad[0]!r}.")

    store = ctx.store
    batch = int(store.get_setting("cdn_push_batch"))
    if len(urls) > batch:
        raise ApiError(
            "LimitExceeded.CdnPushExceedBatchLimit",
            f"{len(urls)} URLs submitted; at most {batch} per PushUrlsCache for area {area}.",
        )

    tasks = steered_tasks(store, SERVICE_NAME, urls, now=ctx.now)
    for task in tasks:
        if task.outcome == "rejected":
            raise ApiError(HOST_INVALID, f"URL {task.target!r} cannot be prefetched: {task.fail_message}.")

    limits = _daily_limits(ctx)
    spent = AREAS if area == "global" else (area,)
    task_id = new_task_id(ctx.now)
    try:
        store.create_tasks(
            SERVICE_NAME, area, task_id, tasks, now=ctx.now,
            charges=[Charge(a, len(tasks), limits[a]) for a in spent],
        )
    except QuotaExceeded as exc:
        raise ApiError(
            "LimitExceeded.CdnPushExceedDayLimit",
            f"Daily prefetch quota exceeded in {exc.scope}: {exc.used} used today + {exc.requested} "
            f"submitted > {exc.limit}.",
        ) from None
    return {"TaskId": task_id}


def describe_push_tasks(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["StartTime", "EndTime", "TaskId", "Keyword", "Offset", "Limit", "Area", "Status"])
    offset = params.integer("Offset", 0)
    limit = params.integer("Limit", 20)
    if offset < 0:
        raise ApiError(PARAM_ERROR, f"Offset must be >= 0; got {offset}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(PARAM_ERROR, f"Limit must be between 1 and {MAX_LIMIT}; got {limit}.")
    task_id = params.string("TaskId")
    start_s, end_s = params.string("StartTime"), params.string("EndTime")
    if not task_id and not start_s:
        raise ApiError(PARAM_ERROR, "Either TaskId or StartTime is required.")

    query: dict[str, Any] = {}
    history_days = int(ctx.store.get_setting("cdn_history_days"))
    oldest = int(-(-(ctx.now - history_days * 86400) // 1))  # ceil: nothing older than the retention
    start = parse_time("StartTime", start_s) if start_s else None
    end = parse_time("EndTime", end_s) if end_s else None
    if start is not None and end is not None and end < start:
        raise ApiError(INVALID_DATE, "EndTime must not be earlier than StartTime.")
    query["start"] = oldest if start is None else max(start, oldest)
    if end is not None:
        query["end"] = end
    if task_id:
        query["job_id"] = task_id

    area = params.string("Area")
    if area is not None:
        if area not in SUBMIT_AREAS:
            raise ApiError(PARAM_ERROR, f"Area must be one of {', '.join(SUBMIT_AREAS)}; got {area!r}.")
    status = params.string("Status")
    if status is not None:
        if status not in FILTER_STATES:
            raise ApiError(PARAM_ERROR, f"Status must be one of {', '.join(FILTER_STATES)}; got {status!r}.")
        query["statuses"] = FILTER_STATES[status]
    keyword = (params.string("Keyword") or "").strip()
    if keyword.lower().startswith(("http://", "https://")):
        query["target"] = keyword
    elif keyword:
        query["hosts"] = [keyword.lower()]

    total, rows = ctx.store.query_tasks(SERVICE_NAME, area, now=ctx.now, offset=offset, limit=limit, **query)
    logs = [
        {
            "TaskId": row.job_id,
            "Url": row.target,
            "Status": REPORTED_STATUS.get(row.status(ctx.now), "fail"),
            "Percent": row.progress(ctx.now),
            "CreateTime": render_time(row.created),
            "Area": row.scope,
            "UpdateTime": render_time(row.updated(ctx.now)),
        }
        for row in rows
    ]
    return {"PushLogs": logs, "TotalCount": total}


def describe_push_quota(params: Params, ctx: Context) -> dict[str, Any]:
    params.only([])
    batch = int(ctx.store.get_setting("cdn_push_batch"))
    limits = _daily_limits(ctx)
    quotas = []
    for area in AREAS:
        used = ctx.store.used_today(SERVICE_NAME, area, now=ctx.now)
        quotas.append({"Area": area, "Batch": batch, "Total": limits[area], "Available": max(0, limits[area] - used)})
    return {"UrlPush": quotas}


SERVICE = TencentService(
    name=SERVICE_NAME,
    version=VERSION,
    actions={
        "PushUrlsCache": push_urls_cache,
        "DescribePushTasks": describe_push_tasks,
        "DescribePushQuota": describe_push_quota,
    },
)
