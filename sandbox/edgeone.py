"""Tencent EdgeOne (service `teo`, API 2022-09-01): the prefetch and URL-purge actions the product uses.

Behaviour follows cdn-apis.md §2 and §9. Prefetch (CreatePrefetchTask, DescribePrefetchTasks) and purge
(CreatePurgeTask, DescribePurgeTasks) are separate APIs with separate histories, as the SDK documents
them ("查询预热任务" / "查询清除缓存历史记录"): a purge never shows in DescribePrefetchTasks, nor a
prefetch in DescribePurgeTasks. One code path serves both kinds (`_Kind` says what differs).
Choices where the docs leave it open:
- An unknown ZoneId (anything not matching `zone-[a-z0-9]+`) answers
  `InvalidParameter.ZoneNotFound`, a code listed in the SDK's teo errorcodes.py ("site not found").
  A zone of another account is `ResourceUnavailable.ZoneNotFound` on every action (`sandbox.accounts`).
- An empty `Targets` list answers `MissingParameter` (nothing to prefetch is the same as no field).
- Query times must carry a UTC offset (`+08:00` or `Z`), as RFC 3339 requires; a naive time is
  `InvalidParameter.ParameterError` rather than a silent guess at the zone.
- `Limit` outside 1..1000 and a negative `Offset` are `InvalidParameter.ParameterError`.
- Quotas: `Mode=edge` shares the normal prefetch quota (the real separate edge quota is not emulated).
  URL purges have their own (`purge_batch`, `purge_daily` per zone); DescribeContentQuota reports
  the other purge types (not emulated) untouched.
- CreatePrefetchTask's options: `Headers` items take only Name and Value (another field is
  `UnknownParameter`); a Name that is not an HTTP field name or a Value holding a control character is
  `InvalidParameter.ParameterError` (the docs give no limit on their number or size, so none is enforced).
  `EncodeUrl` must be a boolean (else `InvalidParameter`), `PrefetchMediaSegments` `on` or `off` (else
  `InvalidParameter.ParameterError`). The sandbox accepts them for every account (the real
  PrefetchMediaSegments and Mode=edge are allow-listed) and records them in the request log.
- CreatePurgeTask emulates `Type=purge_url` only: the other documented types (purge_prefix,
  purge_host, purge_all, purge_cache_tag) are `InvalidParameter.ParameterError` naming the type.
  `Method` (invalidate|delete) is checked; the docs say it acts on directory, host and whole-site
  purges only, so URL purge rows report `delete`, the method URL purges use. `EncodeUrl` is checked
  to be a boolean and otherwise ignored.
- Outcomes EdgeOne's Task.Status has no word for: a rule outcome `invalid` (origin answered 4xx/5xx)
  is reported as Status `failed` with FailType `originPullFailed`, and `unknown` as `failed` with
  FailType `taskFailed`; the `statuses` filter `failed` finds both. The filter value `invalid`
  (documented for the filter only, "origin returned non-2xx") finds exactly the `invalid` rows.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from .accounts import ZONE_NOT_OWNED
from .steering import steered_tasks
from .tasks import NewTask, QuotaExceeded
from .tencent import ApiError, Context, Params, TencentService, check_headers
from .wire import is_http_url

SERVICE_NAME = "teo"
VERSION = "2022-09-01"
ZONE_ID = re.compile(r"zone-[a-z0-9]+")
ZONE_NOT_FOUND = "InvalidParameter.ZoneNotFound"
PARAMETER_ERROR = "InvalidParameter.ParameterError"
MAX_WINDOW = timedelta(days=7)
MAX_LIMIT = 1000
MAX_FILTER_VALUES = 20
STATUSES = ("processing", "success", "failed", "timeout", "canceled", "invalid")
PURGE_STATUSES = ("processing", "success", "failed", "timeout", "canceled")  # no `invalid` for purges
PURGE_TYPES = ("purge_url", "purge_prefix", "purge_host", "purge_all", "purge_cache_tag")
METHODS = ("invalidate", "delete")
_JOB_ID_ALPHABET = string.ascii_lowercase + string.digits
REPORTED_STATUS = {"invalid": "failed", "unknown": "failed"}
"""Sandbox outcomes rendered differently in Task.Status (all others are EdgeOne words already)."""
FILTER_STATES: dict[str, tuple[str, ...]] = {
    "processing": ("processing",),
    "success": ("success",),
    "failed": ("failed", "invalid", "unknown"),
    "timeout": ("timeout",),
    "canceled": ("canceled",),
    "invalid": ("invalid",),
}
"""A `statuses` filter value -> the sandbox states it finds."""


@dataclass(frozen=True)
class _Kind:
    """What differs between the prefetch and the purge actions: their rows, filters and quota."""

    name: str                 # the tasks' kind in the store
    task_type: str            # Task.Type of its rows (and its quota entry's Type)
    method: str               # Task.Method of its rows
    statuses: tuple[str, ...]  # what a `statuses` filter accepts
    filters: tuple[str, ...]  # the filter names it accepts
    fuzzy: frozenset[str]     # the filters that may be fuzzy
    batch_setting: str
    daily_setting: str


PREFETCH = _Kind("prefetch", "prefetch_url", "", STATUSES, ("job-id", "target", "statuses", "domains"),
                 frozenset(), "prefetch_batch", "prefetch_daily")
PURGE = _Kind("purge", "purge_url", "delete", PURGE_STATUSES, ("job-id", "target", "statuses", "domains", "type"),
              frozenset({"target"}), "purge_batch", "purge_daily")


def new_job_id() -> str:
    """12 random lowercase alphanumerics, the shape of real JobIds (e.g. `20ga521cpwch`)."""
    return "".join(secrets.choice(_JOB_ID_ALPHABET) for _ in range(12))


def render_time(ts: float) -> str:
    """Responses carry UTC times with a `Z`, to the second."""
    return _render_second(int(ts))


@lru_cache(maxsize=4096)
def _render_second(second: int) -> str:
    """Memoised: the rows of a history page share a few seconds, and strftime was a quarter of its cost."""
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(
            PARAMETER_ERROR,
            f"{name} must be ISO 8601 with a UTC offset, e.g. 2024-01-01T00:00:00+08:00; got {value!r}.",
        )
    return parsed


def _zone(params: Params, ctx: Context) -> str:
    """The request's ZoneId: a zone of the caller's account (one nobody owns yet becomes its own)."""
    zone_id = params.string("ZoneId", required=True)
    assert zone_id is not None
    if not ZONE_ID.fullmatch(zone_id):
        raise ApiError(ZONE_NOT_FOUND, f"Zone `{zone_id}` does not exist.")
    if ctx.store.claim(SERVICE_NAME, [zone_id], ctx.account):
        raise ApiError(ZONE_NOT_OWNED, f"Zone `{zone_id}` does not exist or does not belong to this account.")
    return zone_id


def create_prefetch_task(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["ZoneId", "Targets", "Mode", "Headers", "EncodeUrl", "PrefetchMediaSegments"])
    zone_id = _zone(params, ctx)
    targets = _targets(params)
    mode = params.string("Mode")
    if mode not in (None, "default", "edge"):
        raise ApiError(PARAMETER_ERROR, f"Mode must be `default` or `edge`; got {mode!r}.")
    check_headers(params, PARAMETER_ERROR)
    params.boolean("EncodeUrl")
    segments = params.string("PrefetchMediaSegments")
    if segments not in (None, "on", "off"):
        raise ApiError(PARAMETER_ERROR, f"PrefetchMediaSegments must be `on` or `off`; got {segments!r}.")
    return _submit(ctx, PREFETCH, zone_id, targets)


def create_purge_task(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["ZoneId", "Type", "Method", "Targets", "EncodeUrl", "CacheTag"])
    zone_id = _zone(params, ctx)
    kind = params.string("Type", required=True)
    if kind not in PURGE_TYPES:
        raise ApiError(PARAMETER_ERROR, f"Type must be one of {', '.join(PURGE_TYPES)}; got {kind!r}.")
    if kind != PURGE.task_type:
        raise ApiError(PARAMETER_ERROR, f"Type `{kind}` is not emulated by this sandbox (only purge_url is).")
    method = params.string("Method")
    if method not in (None, *METHODS):
        raise ApiError(PARAMETER_ERROR, f"Method must be `invalidate` or `delete`; got {method!r}.")
    params.boolean("EncodeUrl")
    if params.raw("CacheTag") is not None:
        raise ApiError(PARAMETER_ERROR, "CacheTag applies to Type purge_cache_tag only.")
    return _submit(ctx, PURGE, zone_id, _targets(params))


def _targets(params: Params) -> list[str]:
    targets = params.strings("Targets", required=True) or []
    if not targets:
        raise ApiError("MissingParameter", "The request is missing a required parameter `Targets`.")
    return targets


def _submit(ctx: Context, kind: _Kind, zone_id: str, targets: list[str]) -> dict[str, Any]:
    """Checks, steering and quota shared by both kinds; `rejected` targets go to FailedList."""
    bad = [t for t in targets if not is_http_url(t)]
    if bad:
        raise ApiError("InvalidParameter.Target", f"Targets must be http:// or https:// URLs; invalid: {bad[0]!r}.")
    store = ctx.store
    batch = int(store.get_setting(kind.batch_setting))
    if len(targets) > batch:
        raise ApiError("LimitExceeded.BatchQuota", f"{len(targets)} targets submitted; at most {batch} per submission.")

    rejected: dict[str, list[str]] = {}
    tasks: list[NewTask] = []
    for task in steered_tasks(store, SERVICE_NAME, targets, now=ctx.now, kind=kind.name):
        if task.outcome == "rejected":
            rejected.setdefault(task.fail_message, []).append(task.target)
        else:
            tasks.append(task)

    job_id = new_job_id()
    daily = int(store.get_setting(kind.daily_setting))
    try:
        store.create_tasks(SERVICE_NAME, zone_id, job_id, tasks, now=ctx.now, daily_limit=daily, kind=kind.name,
                           account=ctx.account)
    except QuotaExceeded as exc:
        raise ApiError(
            "LimitExceeded.DailyQuota",
            f"Daily {kind.name} quota exceeded for {zone_id}: {exc.used} used today + {exc.requested} "
            f"submitted > {exc.limit}.",
        ) from None
    return {
        "JobId": job_id,
        "FailedList": [{"Reason": reason, "Targets": urls} for reason, urls in rejected.items()],
    }


def describe_prefetch_tasks(params: Params, ctx: Context) -> dict[str, Any]:
    return _describe(params, ctx, PREFETCH)


def describe_purge_tasks(params: Params, ctx: Context) -> dict[str, Any]:
    return _describe(params, ctx, PURGE)


def _describe(params: Params, ctx: Context, kind: _Kind) -> dict[str, Any]:
    params.only(["ZoneId", "StartTime", "EndTime", "Offset", "Limit", "Filters"])
    zone_id = _zone(params, ctx)  # required since 2024-05-30
    offset = params.integer("Offset", 0)
    limit = params.integer("Limit", 20)
    if offset < 0:
        raise ApiError(PARAMETER_ERROR, f"Offset must be >= 0; got {offset}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(PARAMETER_ERROR, f"Limit must be between 1 and {MAX_LIMIT} (the maximum); got {limit}.")

    query: dict[str, Any] = {}
    singles: dict[str, set[str]] = {}  # job-id / target / type: one value each; repeated filters are ANDed
    filters = params.objects("Filters", ["Name", "Values", "Fuzzy"]) or []
    total_values = 0
    for f in filters:
        name = f.string("Name", required=True)
        values = f.strings("Values", required=True) or []
        fuzzy = bool(f.boolean("Fuzzy"))
        if fuzzy and name not in kind.fuzzy:
            raise ApiError(PARAMETER_ERROR, f"Filter `{name}` does not support fuzzy matching.")
        if not values:
            raise ApiError(PARAMETER_ERROR, f"Filter `{name}` needs at least one value.")
        total_values += len(values)
        if name not in kind.filters:
            raise ApiError(PARAMETER_ERROR, f"Unknown filter `{name}`; allowed: {', '.join(kind.filters)}.")
        if name in ("job-id", "target", "type"):
            if len(values) != 1:
                raise ApiError(PARAMETER_ERROR, f"Filter `{name}` takes a single value; got {len(values)}.")
            if name == "type" and values[0] not in PURGE_TYPES:
                raise ApiError(PARAMETER_ERROR, f"Unknown type {values[0]!r}; allowed: {', '.join(PURGE_TYPES)}.")
            key = {"job-id": "job_id", "target": "target_contains" if fuzzy else "target", "type": "type"}[name]
            singles.setdefault(key, set()).add(values[0])
        elif name == "statuses":
            unknown = [v for v in values if v not in kind.statuses]
            if unknown:
                raise ApiError(PARAMETER_ERROR, f"Unknown status {unknown[0]!r}; allowed: {', '.join(kind.statuses)}.")
            states = {state for v in values for state in FILTER_STATES[v]}
            query["statuses"] = [v for v in sorted(states) if v in query.get("statuses", states)]
        else:  # domains
            wanted = [v.lower() for v in values]
            query["hosts"] = [v for v in wanted if v in query.get("hosts", wanted)]
    if total_values > MAX_FILTER_VALUES:
        raise ApiError(PARAMETER_ERROR, f"At most {MAX_FILTER_VALUES} filter values in total; got {total_values}.")

    start_s, end_s = params.string("StartTime"), params.string("EndTime")
    if (start_s is None) != (end_s is None):
        raise ApiError(PARAMETER_ERROR, "StartTime and EndTime must be given together.")
    if start_s is not None and end_s is not None:
        start, end = parse_time("StartTime", start_s), parse_time("EndTime", end_s)
        if end < start or end - start > MAX_WINDOW:
            raise ApiError(PARAMETER_ERROR, "EndTime not within the allowed range [StartTime, StartTime + 7 days].")
        query["start"] = int(-(-start.timestamp() // 1))  # ceil: whole seconds at or after StartTime
        query["end"] = int(end.timestamp() // 1)
    elif "job_id" not in singles:
        raise ApiError(PARAMETER_ERROR, "Either StartTime and EndTime or a `job-id` filter is required.")

    if singles.pop("type", {kind.task_type}) != {kind.task_type}:  # only URL purges are emulated
        return {"TotalCount": 0, "Tasks": []}
    for key, one_value in singles.items():
        if len(one_value) > 1:  # e.g. two different job-ids ANDed: nothing can match
            return {"TotalCount": 0, "Tasks": []}
        query[key] = one_value.pop()
    total, rows = ctx.store.query_tasks(
        SERVICE_NAME, zone_id, now=ctx.now, offset=offset, limit=limit, kind=kind.name, **query
    )
    tasks = []
    for row in rows:
        status = row.status(ctx.now)
        status = REPORTED_STATUS.get(status, status)
        failed = status not in ("processing", "success")
        tasks.append(
            {
                "JobId": row.job_id,
                "Target": row.target,
                "Type": kind.task_type,
                "Method": kind.method,
                "Status": status,
                "CreateTime": render_time(row.created),
                "UpdateTime": render_time(row.updated(ctx.now)),
                "FailType": row.fail_type if failed else "",
                "FailMessage": row.fail_message if failed else "",
            }
        )
    return {"TotalCount": total, "Tasks": tasks}


def describe_content_quota(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["ZoneId"])
    zone_id = _zone(params, ctx)
    prefetch, purge = (_quota(ctx, zone_id, kind) for kind in (PREFETCH, PURGE))
    untouched = [{**purge, "Type": t, "DailyAvailable": purge["Daily"]} for t in PURGE_TYPES[1:4]]  # not emulated
    return {"PurgeQuota": [purge, *untouched], "PrefetchQuota": [prefetch]}


def _quota(ctx: Context, zone_id: str, kind: _Kind) -> dict[str, Any]:
    batch = int(ctx.store.get_setting(kind.batch_setting))
    daily = int(ctx.store.get_setting(kind.daily_setting))
    used = ctx.store.used_today(SERVICE_NAME, zone_id, now=ctx.now, kind=kind.name)
    return {"Type": kind.task_type, "Batch": batch, "Daily": daily, "DailyAvailable": max(0, daily - used)}


SERVICE = TencentService(
    name=SERVICE_NAME,
    version=VERSION,
    actions={
        "CreatePrefetchTask": create_prefetch_task,
        "DescribePrefetchTasks": describe_prefetch_tasks,
        "CreatePurgeTask": create_purge_task,
        "DescribePurgeTasks": describe_purge_tasks,
        "DescribeContentQuota": describe_content_quota,
    },
)
