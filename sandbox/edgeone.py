"""Tencent EdgeOne (service `teo`, API 2022-09-01): the three prefetch actions the product uses.

Behaviour follows cdn-apis.md §2. Choices where the docs leave it open:
- An unknown ZoneId (anything not matching `zone-[a-z0-9]+`) answers
  `InvalidParameter.ZoneNotFound`, a code listed in the SDK's teo errorcodes.py ("site not found").
- An empty `Targets` list answers `MissingParameter` (nothing to prefetch is the same as no field).
- Query times must carry a UTC offset (`+08:00` or `Z`), as RFC 3339 requires; a naive time is
  `InvalidParameter.ParameterError` rather than a silent guess at the zone.
- `Limit` outside 1..1000 and a negative `Offset` are `InvalidParameter.ParameterError`.
- Quotas: `Mode=edge` shares the normal prefetch quota (the real separate edge quota is not emulated).
- Outcomes EdgeOne's Task.Status has no word for: a rule outcome `invalid` (origin answered 4xx/5xx)
  is reported as Status `failed` with FailType `originPullFailed`, and `unknown` as `failed` with
  FailType `taskFailed`; the `statuses` filter `failed` finds both. The filter value `invalid`
  (documented for the filter only, "origin returned non-2xx") finds exactly the `invalid` rows.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .steering import steered_tasks
from .tasks import NewTask, QuotaExceeded
from .tencent import ApiError, Context, Params, TencentService

SERVICE_NAME = "teo"
VERSION = "2022-09-01"
ZONE_ID = re.compile(r"zone-[a-z0-9]+")
ZONE_NOT_FOUND = "InvalidParameter.ZoneNotFound"
PARAMETER_ERROR = "InvalidParameter.ParameterError"
MAX_WINDOW = timedelta(days=7)
MAX_LIMIT = 1000
MAX_FILTER_VALUES = 20
STATUSES = ("processing", "success", "failed", "timeout", "canceled", "invalid")
PURGE_BATCH, PURGE_DAILY = 1000, 10000  # purge is not emulated; its quota is reported as untouched
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


def _zone(params: Params) -> str:
    zone_id = params.string("ZoneId", required=True)
    assert zone_id is not None
    if not ZONE_ID.fullmatch(zone_id):
        raise ApiError(ZONE_NOT_FOUND, f"Zone `{zone_id}` does not exist.")
    return zone_id


def _is_url(target: str) -> bool:
    parts = urlsplit(target)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and target == target.strip()


def create_prefetch_task(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["ZoneId", "Targets", "Mode", "Headers", "EncodeUrl", "PrefetchMediaSegments"])
    zone_id = _zone(params)
    targets = params.strings("Targets", required=True) or []
    if not targets:
        raise ApiError("MissingParameter", "The request is missing a required parameter `Targets`.")
    mode = params.string("Mode")
    if mode not in (None, "default", "edge"):
        raise ApiError(PARAMETER_ERROR, f"Mode must be `default` or `edge`; got {mode!r}.")
    for header in params.objects("Headers", ["Name", "Value"]) or []:
        header.string("Name", required=True)
        header.string("Value", required=True)
    params.boolean("EncodeUrl")
    segments = params.string("PrefetchMediaSegments")
    if segments not in (None, "on", "off"):
        raise ApiError(PARAMETER_ERROR, f"PrefetchMediaSegments must be `on` or `off`; got {segments!r}.")
    bad = [t for t in targets if not _is_url(t)]
    if bad:
        raise ApiError("InvalidParameter.Target", f"Targets must be http:// or https:// URLs; invalid: {bad[0]!r}.")

    store = ctx.store
    batch = int(store.get_setting("prefetch_batch"))
    if len(targets) > batch:
        raise ApiError("LimitExceeded.BatchQuota", f"{len(targets)} targets submitted; at most {batch} per submission.")

    rejected: dict[str, list[str]] = {}
    tasks: list[NewTask] = []
    for task in steered_tasks(store, SERVICE_NAME, targets, now=ctx.now):
        if task.outcome == "rejected":
            rejected.setdefault(task.fail_message, []).append(task.target)
        else:
            tasks.append(task)

    job_id = new_job_id()
    daily = int(store.get_setting("prefetch_daily"))
    try:
        store.create_tasks(SERVICE_NAME, zone_id, job_id, tasks, now=ctx.now, daily_limit=daily)
    except QuotaExceeded as exc:
        raise ApiError(
            "LimitExceeded.DailyQuota",
            f"Daily prefetch quota exceeded for {zone_id}: {exc.used} used today + {exc.requested} "
            f"submitted > {exc.limit}.",
        ) from None
    return {
        "JobId": job_id,
        "FailedList": [{"Reason": reason, "Targets": urls} for reason, urls in rejected.items()],
    }


def describe_prefetch_tasks(params: Params, ctx: Context) -> dict[str, Any]:
    params.only(["ZoneId", "StartTime", "EndTime", "Offset", "Limit", "Filters"])
    zone_id = _zone(params)  # required since 2024-05-30
    offset = params.integer("Offset", 0)
    limit = params.integer("Limit", 20)
    if offset < 0:
        raise ApiError(PARAMETER_ERROR, f"Offset must be >= 0; got {offset}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(PARAMETER_ERROR, f"Limit must be between 1 and {MAX_LIMIT} (the maximum); got {limit}.")

    query: dict[str, Any] = {}
    singles: dict[str, set[str]] = {}  # job-id / target: one value each; repeated filters are ANDed
    filters = params.objects("Filters", ["Name", "Values", "Fuzzy"]) or []
    total_values = 0
    for f in filters:
        name = f.string("Name", required=True)
        values = f.strings("Values", required=True) or []
        if f.boolean("Fuzzy"):
            raise ApiError(PARAMETER_ERROR, f"Filter `{name}` does not support fuzzy matching.")
        if not values:
            raise ApiError(PARAMETER_ERROR, f"Filter `{name}` needs at least one value.")
        total_values += len(values)
        if name in ("job-id", "target"):
            if len(values) != 1:
                raise ApiError(PARAMETER_ERROR, f"Filter `{name}` takes a single value; got {len(values)}.")
            singles.setdefault("job_id" if name == "job-id" else "target", set()).add(values[0])
        elif name == "statuses":
            unknown = [v for v in values if v not in STATUSES]
            if unknown:
                raise ApiError(PARAMETER_ERROR, f"Unknown status {unknown[0]!r}; allowed: {', '.join(STATUSES)}.")
            states = {state for v in values for state in FILTER_STATES[v]}
            query["statuses"] = [v for v in sorted(states) if v in query.get("statuses", states)]
        elif name == "domains":
            wanted = [v.lower() for v in values]
            query["hosts"] = [v for v in wanted if v in query.get("hosts", wanted)]
        else:
            raise ApiError(PARAMETER_ERROR, f"Unknown filter `{name}`; allowed: job-id, target, statuses, domains.")
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

    for key, one_value in singles.items():
        if len(one_value) > 1:  # e.g. two different job-ids ANDed: nothing can match
            return {"TotalCount": 0, "Tasks": []}
        query[key] = one_value.pop()
    total, rows = ctx.store.query_tasks(
        SERVICE_NAME, zone_id, now=ctx.now, offset=offset, limit=limit, **query
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
                "Type": "prefetch_url",
                "Method": "",
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
    zone_id = _zone(params)
    batch = int(ctx.store.get_setting("prefetch_batch"))
    daily = int(ctx.store.get_setting("prefetch_daily"))
    used = ctx.store.used_today(SERVICE_NAME, zone_id, now=ctx.now)
    return {
        "PurgeQuota": [{"Type": "purge_url", "Batch": PURGE_BATCH, "Daily": PURGE_DAILY, "DailyAvailable": PURGE_DAILY}],
        "PrefetchQuota": [{"Type": "prefetch_url", "Batch": batch, "Daily": daily, "DailyAvailable": max(0, daily - used)}],
    }


SERVICE = TencentService(
    name=SERVICE_NAME,
    version=VERSION,
    actions={
        "CreatePrefetchTask": create_prefetch_task,
        "DescribePrefetchTasks": describe_prefetch_tasks,
        "DescribeContentQuota": describe_content_quota,
    },
)
