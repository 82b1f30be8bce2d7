"""Tencent Cloud CDN (service `cdn`, API 2018-06-06): the prefetch ("push") and URL purge actions.

Behaviour follows cdn-apis.md §1 and §9: one task row per URL, all rows of a submit sharing a long
digit TaskId; per-area batch size and daily quota (Beijing-time day), a `global` push spending both
areas' quota; times as `YYYY-MM-DD hh:mm:ss` in Beijing time (UTC+8, no zone in the string).
Push (PushUrlsCache, DescribePushTasks, DescribePushQuota) and purge (PurgeUrlsCache,
DescribePurgeTasks, DescribePurgeQuota) have separate histories and quotas; one code path serves
both (`_Kind` says what differs: limits, error codes, the rows' fields).
Choices where the docs leave it open:
- `DescribePushTasks.Limit` and `DescribePurgeTasks.Limit` have no documented maximum (only "default
  20"); the sandbox serves up to the setting `cdn_history_max_limit` (default 1000). A larger Limit is refused with
  `InvalidParameter.CdnParamError` (`cdn_history_over_limit` = `refuse`, the default) or served
  capped to that many rows (`cap`). Below 1 is always refused, as is a negative Offset.
- Accounts (`sandbox.accounts`): a URL (or a Keyword) on another account's domain is
  `ResourceNotFound.CdnHostNotExists`; histories and the daily quotas of each area are per account.
- No maximum query window is enforced, but rows older than `cdn_history_days` (default 30, what
  the legacy log API documented) are never returned.
- A time that is not `YYYY-MM-DD hh:mm:ss`, or EndTime before StartTime, is
  `InvalidParameter.CdnStatInvalidDate` (the Go SDK lists it for this action). StartTime without
  EndTime has no upper bound; neither TaskId nor StartTime is `InvalidParameter.CdnParamError`.
- `Area` filters on the Area given at submit time, exactly (`mainland` does not find `global` rows).
- Outcomes: success -> `done`; failed, timeout, canceled, unknown -> `fail` (CDN has no timeout
  status); invalid -> `invalid`. A `rejected` rule fails the whole PushUrlsCache with
  `InvalidParameter.CdnHostInvalidParam` naming the URL (CDN has no FailedList); nothing is created.
- An empty `Urls` list, a bad Area/Layer/Status, or Headers past the documented limits (20, Name 128 bytes,
  Value 1024 bytes), with a Name that is not an HTTP field name or a Value holding a control character, are
  `InvalidParameter.CdnParamError`.
- DescribePushQuota answers `UrlPush` only: SDK 3.1.169's response model has no other field (and
  warns "fileds are useless" about unknown ones); the purge quota is DescribePurgeQuota's business.
- PurgeUrlsCache: `Area` is `mainland` or `overseas` (the SDK documents no `global`); without it the
  docs purge "the domain's acceleration areas", which the sandbox (knowing no domains) records as
  area `global`, spending both areas' purge quota. A `rejected` rule fails the whole call with
  `ResourceNotFound.CdnHostNotExists` (a code the Go SDK lists for it). A `*` in a URL's host is
  `InvalidParameter.CdnPurgeWildcardNotAllowed` (`CdnPushWildcardNotAllowed` for a push).
- DescribePurgeTasks rows carry what SDK 3.1.169's PurgeTask has: TaskId, Url, Status
  (`process`/`done`/`fail`: every failed outcome is `fail`), PurgeType `url`, FlushType `delete`
  and CreateTime; no UpdateTime, Percent or Area. `PurgeType=path` finds nothing (directory purge,
  PurgePathCache, is not emulated); DescribePurgeQuota reports PathPurge untouched.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from .accounts import CDN_HOST_NOT_OWNED
from .steering import steered_tasks
from .tasks import Charge, QuotaExceeded, StoredTask
from .tencent import ApiError, Context, Params, TencentService, check_headers
from .wire import is_http_url

SERVICE_NAME = "cdn"
VERSION = "2018-06-06"
PARAM_ERROR = "InvalidParameter.CdnParamError"
HOST_INVALID = "InvalidParameter.CdnHostInvalidParam"
INVALID_DATE = "InvalidParameter.CdnStatInvalidDate"
AREAS = ("mainland", "overseas")
SUBMIT_AREAS = (*AREAS, "global")
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
PATH_PURGE_BATCH, PATH_PURGE_DAILY = 20, 100  # documented defaults; directory purge is not emulated


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


@dataclass(frozen=True)
class _Kind:
    """What differs between push and purge: areas, settings, error codes, filters and rows."""

    name: str                           # the tasks' kind in the store
    submit_areas: tuple[str, ...]       # what the submit's Area accepts
    default_area: str                   # a submit without Area
    batch_setting: str
    daily_setting: str                  # with `_<area>` appended
    batch_code: str
    day_code: str
    rejected_code: str                  # a `rejected` rule fails the whole call with this
    wildcard_code: str
    filter_states: Mapping[str, tuple[str, ...]]  # a Status filter value -> the sandbox states it finds
    params: tuple[str, ...]             # the history action's parameters
    logs: str                           # the rows' field in the history answer
    row: Callable[[StoredTask, float], dict[str, Any]]


def _push_row(row: StoredTask, now: float) -> dict[str, Any]:
    return {
        "TaskId": row.job_id,
        "Url": row.target,
        "Status": REPORTED_STATUS.get(row.status(now), "fail"),
        "Percent": row.progress(now),
        "CreateTime": render_time(row.created),
        "Area": row.scope,
        "UpdateTime": render_time(row.updated(now)),
    }


def _purge_row(row: StoredTask, now: float) -> dict[str, Any]:
    status = REPORTED_STATUS.get(row.status(now), "fail")
    return {
        "TaskId": row.job_id,
        "Url": row.target,
        "Status": "fail" if status == "invalid" else status,
        "PurgeType": "url",
        "FlushType": "delete",
        "CreateTime": render_time(row.created),
    }


_HISTORY_PARAMS = ("StartTime", "EndTime", "TaskId", "Keyword", "Offset", "Limit", "Area", "Status")
PUSH = _Kind("prefetch", SUBMIT_AREAS, "mainland", "cdn_push_batch", "cdn_push_daily",
             "LimitExceeded.CdnPushExceedBatchLimit", "LimitExceeded.CdnPushExceedDayLimit", HOST_INVALID,
             "InvalidParameter.CdnPushWildcardNotAllowed", FILTER_STATES, _HISTORY_PARAMS, "PushLogs",
             _push_row)
PURGE = _Kind("purge", AREAS, "global", "cdn_purge_batch", "cdn_purge_daily",
              "LimitExceeded.CdnPurgeUrlExceedBatchLimit", "LimitExceeded.CdnPurgeUrlExceedDayLimit",
              "ResourceNotFound.CdnHostNotExists", "InvalidParameter.CdnPurgeWildcardNotAllowed",
              {"process": FILTER_STATES["process"], "done": FILTER_STATES["done"],
               "fail": FILTER_STATES["fail"] + FILTER_STATES["invalid"]},  # a purge has no `invalid`
              (*_HISTORY_PARAMS, "PurgeType"), "PurgeLogs", _purge_row)


def _daily_limits(ctx: Context, kind: _Kind) -> dict[str, int]:
    return {area: int(ctx.store.get_setting(f"{kind.daily_setting}_{area}")) for area in AREAS}


def push_urls_cache(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["Urls", "UserAgent", "Area", "Layer", "ParseM3U8", "DisableRange", "Headers", "UrlEncode"])
    urls = _urls(params)
    params.string("UserAgent")
    area = _submit_area(params, PUSH)
    layer = params.string("Layer")
    if layer not in (None, "middle"):
        raise ApiError(PARAM_ERROR, f"Layer can only be `middle`; got {layer!r}.")
    for flag in ("ParseM3U8", "DisableRange"):
        params.boolean(flag)
    check_headers(params, PARAM_ERROR, most=MAX_HEADERS, name_bytes=MAX_HEADER_NAME_BYTES,
                  value_bytes=MAX_HEADER_VALUE_BYTES)
    return _submit(params, ctx, PUSH, urls, area)


def purge_urls_cache(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["Urls", "Area", "UrlEncode"])
    urls = _urls(params)
    return _submit(params, ctx, PURGE, urls, _submit_area(params, PURGE))


def _urls(params: Params) -> list[str]:
    urls = params.strings("Urls", required=True) or []
    if not urls:
        raise ApiError(PARAM_ERROR, "Urls must list at least one URL.")
    return urls


def _submit_area(params: Params, kind: _Kind) -> str:
    area = params.string("Area")
    if area is not None and area not in kind.submit_areas:
        raise ApiError(PARAM_ERROR, f"Area must be one of {', '.join(kind.submit_areas)}; got {area!r}.")
    return area or kind.default_area


def _submit(params: Params, ctx: Context, kind: _Kind, urls: list[str], area: str) -> dict[str, Any]:
    """Checks, steering and quota shared by push and purge: the whole call succeeds or fails."""
    params.boolean("UrlEncode")
    bad = [u for u in urls if not is_http_url(u)]
    if bad:
        raise ApiError(PARAM_ERROR, f"Urls must start with http:// or https://; invalid: {bad[0]!r}.")
    wildcard = [u for u in urls if "*" in (urlsplit(u).hostname or "")]
    if wildcard:
        raise ApiError(kind.wildcard_code, f"A wildcard domain cannot be submitted: {wildcard[0]!r}.")

    store = ctx.store
    batch = int(store.get_setting(kind.batch_setting))
    if len(urls) > batch:
        raise ApiError(kind.batch_code, f"{len(urls)} URLs submitted; at most {batch} per call for area {area}.")
    _own_domains(ctx, [_host(u) for u in urls])

    tasks = steered_tasks(store, SERVICE_NAME, urls, now=ctx.now, kind=kind.name)
    for task in tasks:
        if task.outcome == "rejected":
            raise ApiError(kind.rejected_code, f"URL {task.target!r} cannot be submitted: {task.fail_message}.")

    limits = _daily_limits(ctx, kind)
    spent = AREAS if area == "global" else (area,)
    task_id = new_task_id(ctx.now)
    try:
        store.create_tasks(
            SERVICE_NAME, area, task_id, tasks, now=ctx.now, kind=kind.name, account=ctx.account,
            charges=[Charge(a, len(tasks), limits[a], account=ctx.account) for a in spent],
        )
    except QuotaExceeded as exc:
        raise ApiError(
            kind.day_code,
            f"Daily {kind.name} quota exceeded in {exc.scope}: {exc.used} used today + {exc.requested} "
            f"submitted > {exc.limit}.",
        ) from None
    return {"TaskId": task_id}


def describe_push_tasks(params: Params, ctx: Context) -> dict[str, Any]:
    return _describe(params, ctx, PUSH)


def describe_purge_tasks(params: Params, ctx: Context) -> dict[str, Any]:
    purge_type = params.string("PurgeType")
    if purge_type not in (None, "url", "path"):
        raise ApiError(PARAM_ERROR, f"PurgeType must be `url` or `path`; got {purge_type!r}.")
    answer = _describe(params, ctx, PURGE)
    return {"PurgeLogs": [], "TotalCount": 0} if purge_type == "path" else answer


def _describe(params: Params, ctx: Context, kind: _Kind) -> dict[str, Any]:
    params.only(kind.params)
    offset = params.integer("Offset", 0)
    limit = params.integer("Limit", 20)
    if offset < 0:
        raise ApiError(PARAM_ERROR, f"Offset must be >= 0; got {offset}.")
    limit = _served_limit(limit, ctx)
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
        if status not in kind.filter_states:
            raise ApiError(PARAM_ERROR, f"Status must be one of {', '.join(kind.filter_states)}; got {status!r}.")
        query["statuses"] = kind.filter_states[status]
    keyword = (params.string("Keyword") or "").strip()
    if keyword.lower().startswith(("http://", "https://")):
        query["target"] = keyword
        _own_domains(ctx, [_host(keyword)])
    elif keyword:
        query["hosts"] = [keyword.lower()]
        _own_domains(ctx, [keyword])

    total, rows = ctx.store.query_tasks(SERVICE_NAME, area, now=ctx.now, offset=offset, limit=limit,
                                        kind=kind.name, account=ctx.account, **query)
    return {kind.logs: [kind.row(row, ctx.now) for row in rows], "TotalCount": total}


def _own_domains(ctx: Context, hosts: list[str]) -> None:
    """The caller's account may use these domains (those nobody owns yet become its own), or the call fails."""
    foreign = ctx.store.claim(SERVICE_NAME, [h for h in hosts if h], ctx.account)
    if foreign:
        raise ApiError(CDN_HOST_NOT_OWNED, f"The domain {min(foreign)} was not found in this account; "
                                           "check that the domain is correct.")


def _host(url: str) -> str:
    """A URL's host, lowercase; "" if it has none (or is no URL at all)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ""


def _served_limit(limit: int, ctx: Context) -> int:
    """The rows a page of `limit` holds: refused below 1, and above the largest as the settings say."""
    largest = int(ctx.store.get_setting("cdn_history_max_limit"))
    if limit < 1 or (limit > largest and ctx.store.get_setting("cdn_history_over_limit") == "refuse"):
        raise ApiError(PARAM_ERROR, f"Limit must be between 1 and {largest}; got {limit}.")
    return min(limit, largest)


def describe_push_quota(params: Params, ctx: Context) -> dict[str, Any]:
    params.only([])
    return {"UrlPush": _quotas(ctx, PUSH)}


def describe_purge_quota(params: Params, ctx: Context) -> dict[str, Any]:
    params.only([])
    paths = [{"Area": area, "Batch": PATH_PURGE_BATCH, "Total": PATH_PURGE_DAILY, "Available": PATH_PURGE_DAILY}
             for area in AREAS]
    return {"UrlPurge": _quotas(ctx, PURGE), "PathPurge": paths}


def _quotas(ctx: Context, kind: _Kind) -> list[dict[str, Any]]:
    batch = int(ctx.store.get_setting(kind.batch_setting))
    limits = _daily_limits(ctx, kind)
    quotas = []
    for area in AREAS:
        used = ctx.store.used_today(SERVICE_NAME, area, now=ctx.now, kind=kind.name, account=ctx.account)
        quotas.append({"Area": area, "Batch": batch, "Total": limits[area], "Available": max(0, limits[area] - used)})
    return quotas


SERVICE = TencentService(
    name=SERVICE_NAME,
    version=VERSION,
    actions={
        "PushUrlsCache": push_urls_cache,
        "DescribePushTasks": describe_push_tasks,
        "DescribePushQuota": describe_push_quota,
        "PurgeUrlsCache": purge_urls_cache,
        "DescribePurgeTasks": describe_purge_tasks,
        "DescribePurgeQuota": describe_purge_quota,
    },
)
