"""UCloud UCDN (service `ucloud` in the store): the prefetch and refresh (purge) actions the product uses.

The wire protocol (parameters, signature, RetCode envelope) is `sandbox.ucloud_wire`'s, as Tencent's is
`sandbox.tencent`'s for `edgeone` and `tencent_cdn`. Modules are named by product, as the client's
adapters are (`components/clouds/`). Choices where the docs leave it open:
- A `rejected` rule fails the whole PrefetchNewUcdnDomainCache with 230 naming the URL.
- The daily quota (per host, `ucloud_prefetch_daily`, Beijing-time day) is RetCode 44010,
  "prefetch quota exceeded for domain ..."; nothing is created. Note that the SDK flags every
  RetCode above 2000 as retryable.
- GetUcdnDomainPrefetchRefreshState knows DomainIds declared with `add_ucloud_domain` (or the CLI's
  `ucloud-domain add`); any other DomainId is RetCode 44003 "domain not found". It reports prefetch,
  file-refresh and directory-refresh quota and today's use per domain.
- Accounts (`sandbox.accounts`): another account's DomainId, or a submitted URL on the host of another
  account's domain, is RetCode 299 (IAM permission check failed).
- Clock (a `clock_skew` fault): the cloud's clock may be off true time. Every time of the API is on
  it: CreateTime and FinishTime in answers, BeginTime/EndTime and their defaults (EndTime = its now).
  Tasks still run in true time (progress, the submit interval, the quota day).
- Refresh (RefreshNewUcdnDomainCache, DescribeNewUcdnRefreshCacheTask) is prefetch's twin with its
  own history and quotas: `Type` is `file` or `dir` (the API doc's two; the SDK also names `m3u8`,
  answered 230), a `dir` URL must end with `/`. At most `ucloud_refresh_batch` URLs per call (30,
  the API doc and console; the SDK docstring says 100), `ucloud_refresh_daily` file and
  `ucloud_refresh_dir_daily` directory refreshes per domain and day (700 and 20, the console doc),
  RetCode 44010 beyond. No interval between refresh submits is documented: `ucloud_refresh_interval`
  (default 0, none) can set one. Refresh tasks report their `Type` (a deprecated TaskInfo field).
- Submits: at most one per `ucloud_prefetch_interval` seconds per PublicKey (153); only accepted
  submits start the interval.
- History: the default window (BeginTime = EndTime - 1 day) applies even when TaskId.N is given;
  `Limit` absent or 0 means everything. Tasks are per PublicKey. `IsDcdn` is checked to be a
  boolean and otherwise ignored: SDK 0.11.150 cannot send it on submit, so a filter on it could
  only ever hide the tasks the SDK created.
- A task is `wait` for the first 10% of its progress time, then `process`; once every URL is done
  it is `failure` if any URL failed, else `unknow` if any URL is unknown, else `success`.
  Outcomes: success -> success; failed, timeout, canceled, invalid -> failure; unknown -> unknow.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from .accounts import RET_NOT_PERMITTED
from .steering import steered_tasks
from .tasks import Charge, QuotaExceeded, SubmitTooSoon, task_progress
from .ucloud_wire import RET_THROTTLED, SERVICE_NAME, Context, Handler, Params, UCloudError, bad_param
from .wire import is_http_url

RET_DOMAIN_NOT_FOUND = 44003
RET_QUOTA_EXCEEDED = 44010

WAIT_FRACTION = 0.1  # share of a task's progress time reported as `wait`
TASK_STATUSES = ("wait", "process", "success", "failure", "unknow")
REPORTED_STATUS = {
    "success": "success", "failed": "failure", "timeout": "failure", "canceled": "failure",
    "invalid": "failure", "unknown": "unknow",
}
"""Sandbox outcome -> UCloud Status of a finished URL."""
REFRESH_TYPES = ("file", "dir")
_TASK_ID_ALPHABET = string.ascii_letters + string.digits


def new_task_id() -> str:
    """8 random letters and digits, the shape of real TaskIds (e.g. `IhrznXRB`)."""
    return "".join(secrets.choice(_TASK_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class _Kind:
    """What differs between prefetch and refresh: settings, words, and whether tasks have a Type."""

    name: str            # the tasks' kind in the store
    noun: str            # in messages
    batch_setting: str
    daily_setting: str
    interval_setting: str
    typed: bool          # submits name a Type (file|dir), tasks report it


PREFETCH = _Kind("prefetch", "prefetch", "ucloud_prefetch_batch", "ucloud_prefetch_daily", "ucloud_prefetch_interval",
                 False)
REFRESH = _Kind("purge", "refresh", "ucloud_refresh_batch", "ucloud_refresh_daily", "ucloud_refresh_interval", True)


def _too_soon(kind: _Kind, retry_after: float) -> UCloudError:
    return UCloudError(
        RET_THROTTLED, f"Request throttled: one {kind.noun} submit per interval; retry in {retry_after:.1f} s"
    )


def prefetch_new_ucdn_domain_cache(params: Params, ctx: Context) -> dict[str, Any]:
    return _submit(params, ctx, PREFETCH)


def refresh_new_ucdn_domain_cache(params: Params, ctx: Context) -> dict[str, Any]:
    return _submit(params, ctx, REFRESH)


def _submit(params: Params, ctx: Context, kind: _Kind) -> dict[str, Any]:
    store = ctx.store
    interval = float(store.get_setting(kind.interval_setting))
    last = store.last_submit(SERVICE_NAME, ctx.public_key, kind=kind.name)
    if interval and last is not None and ctx.now - last < interval:  # the gateway refuses before validating
        raise _too_soon(kind, interval - (ctx.now - last))
    params.string("ProjectId")
    params.boolean("IsDcdn")
    refresh_type = params.string("Type", required=True) if kind.typed else None
    if refresh_type is not None and refresh_type not in REFRESH_TYPES:
        raise bad_param("Type", f"must be file or dir; got {refresh_type!r}")
    urls = params.strings("UrlList")
    batch = int(store.get_setting(kind.batch_setting))
    if not urls:
        raise bad_param("UrlList", "at least one URL is required")
    if len(urls) > batch:
        raise bad_param("UrlList", f"{len(urls)} URLs submitted; at most {batch} per call")
    for i, url in enumerate(urls):
        if not is_http_url(url):
            raise bad_param(f"UrlList.{i}", f"must start with http:// or https:// and name a domain; got {url!r}")
        if refresh_type == "dir" and not url.endswith("/"):
            raise bad_param(f"UrlList.{i}", f"a directory must end with /; got {url!r}")
    by_host = store.ucloud_domain_ids({(urlsplit(url).hostname or "").lower() for url in urls})
    _own_domains(ctx, [domain_id for ids in by_host.values() for domain_id in ids])

    tasks = steered_tasks(store, SERVICE_NAME, urls, now=ctx.now, kind=kind.name)
    for task in tasks:
        if task.outcome == "rejected":
            raise bad_param("UrlList", f"{task.target} cannot be submitted: {task.fail_message}")
    if refresh_type is not None:
        tasks = [dataclasses.replace(t, extra={"type": refresh_type}) for t in tasks]

    quota_kind = "purge_dir" if refresh_type == "dir" else kind.name
    daily = int(store.get_setting("ucloud_refresh_dir_daily" if refresh_type == "dir" else kind.daily_setting))
    per_host = Counter(t.host for t in tasks)
    task_id = new_task_id()
    try:
        store.create_tasks(
            SERVICE_NAME, ctx.public_key, task_id, tasks, now=ctx.now, kind=kind.name, account=ctx.public_key,
            charges=[Charge(host, count, daily, quota_kind) for host, count in sorted(per_host.items())],
            min_interval=interval,
        )
    except SubmitTooSoon as exc:
        raise _too_soon(kind, exc.retry_after) from None
    except QuotaExceeded as exc:
        raise UCloudError(
            RET_QUOTA_EXCEEDED,
            f"{kind.noun} quota exceeded for domain {exc.scope}: {exc.used} used today + {exc.requested} "
            f"submitted > {exc.limit}",
        ) from None
    return {"TaskId": task_id}


def _own_domains(ctx: Context, domain_ids: list[str]) -> None:
    """The caller's account may use these domains (those nobody owns yet become its own), or the call fails."""
    foreign = ctx.store.claim(SERVICE_NAME, domain_ids, ctx.public_key)
    if foreign:
        raise UCloudError(RET_NOT_PERMITTED, f"IAM permission check failed: domain {min(foreign)} does not "
                                             "belong to this account")


URL_COLUMNS = ("job_id", "target", "created", "finish", "outcome")
"""What a history answer needs of a task row (`SandboxStore.task_values`): plain tuples, because an
answer may carry 100,000 URLs and building a StoredTask for each cost more than anything else."""


def _url_status(created: float, finish: float, outcome: str, now: float) -> str:
    if now >= finish:
        return REPORTED_STATUS.get(outcome, "unknow")
    return "wait" if now - created < WAIT_FRACTION * (finish - created) else "process"


def task_status(rows: list[tuple[Any, ...]], now: float) -> str:
    """One task's status from its URLs (URL_COLUMNS rows, oldest first): wait/process while any runs,
    then the aggregate outcome."""
    if any(now < r[3] for r in rows):
        created, last = rows[0][2], max(r[3] for r in rows)
        return "wait" if now - created < WAIT_FRACTION * (last - created) else "process"
    finals = {REPORTED_STATUS.get(r[4], "unknow") for r in rows}  # every URL is finished
    for status in ("failure", "unknow"):
        if status in finals:
            return status
    return "success"


def describe_new_ucdn_prefetch_cache_task(params: Params, ctx: Context) -> dict[str, Any]:
    return _describe(params, ctx, PREFETCH)


def describe_new_ucdn_refresh_cache_task(params: Params, ctx: Context) -> dict[str, Any]:
    return _describe(params, ctx, REFRESH)


def _describe(params: Params, ctx: Context, kind: _Kind) -> dict[str, Any]:
    params.string("ProjectId")
    task_ids = params.strings("TaskId")
    begin, end = params.integer("BeginTime"), params.integer("EndTime")
    if end is not None and begin is None:
        raise bad_param("BeginTime", "required when EndTime is given")
    if end is None:
        end = ctx.cloud_now
    if begin is None:
        begin = end - 86400
    if begin > end:
        raise bad_param("EndTime", "must not be earlier than BeginTime")
    status = params.string("Status")
    if status is not None and status not in TASK_STATUSES:
        raise bad_param("Status", f"must be one of {', '.join(TASK_STATUSES)}; got {status!r}")
    offset = params.integer("Offset") or 0
    limit = params.integer("Limit") or 0
    if offset < 0:
        raise bad_param("Offset", "must be >= 0")
    if limit < 0:
        raise bad_param("Limit", "must be >= 0")
    params.boolean("IsDcdn")

    columns = (*URL_COLUMNS, "extra") if kind.typed else URL_COLUMNS
    skew = ctx.clock_offset  # the window is on the cloud's clock, the rows in true time
    rows = ctx.store.task_values(
        SERVICE_NAME, ctx.public_key, columns, now=ctx.now, start=begin - skew, end=end - skew,
        job_ids=task_ids or None, kind=kind.name,
    )
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:  # newest task first; its URLs come newest-id first, so reverse them below
        grouped.setdefault(row[0], []).append(row)
    now = ctx.now
    found: list[tuple[str, str, list[tuple[Any, ...]]]] = []  # (TaskId, Status, rows oldest first)
    for task_id, task_rows in grouped.items():
        task_rows.reverse()
        aggregate = task_status(task_rows, now)
        if status is None or aggregate == status:
            found.append((task_id, aggregate, task_rows))
    page = found[offset:offset + limit] if limit else found[offset:]
    tasks = [  # only the page's URLs are rendered
        {
            "TaskId": task_id,
            "CreateTime": int(task_rows[0][2]) + skew,
            "Status": aggregate,
            **({"Type": json.loads(task_rows[0][5]).get("type", "file")} if kind.typed else {}),
            "UrlLists": [
                {
                    "Url": target,
                    "CreateTime": int(created) + skew,
                    "FinishTime": int(finish) + skew if now >= finish else 0,
                    "Status": _url_status(created, finish, outcome, now),
                    "Progress": task_progress(created, finish, now),
                }
                for _, target, created, finish, outcome, *_ in task_rows
            ],
        }
        for task_id, aggregate, task_rows in page
    ]
    return {"TotalCount": len(found), "TaskList": tasks}


def get_ucdn_domain_prefetch_refresh_state(params: Params, ctx: Context) -> dict[str, Any]:
    params.string("ProjectId")
    domain_id = params.string("DomainId", required=True)
    assert domain_id is not None
    host = ctx.store.ucloud_domain_host(domain_id)
    if host is None:
        raise UCloudError(
            RET_DOMAIN_NOT_FOUND,
            f"domain not found: {domain_id} (declare it with `python -m sandbox ucloud-domain add`)",
        )
    _own_domains(ctx, [domain_id])
    def used(kind: str) -> int:
        return ctx.store.used_today(SERVICE_NAME, host, now=ctx.now, kind=kind)

    return {
        "PrefetchQuota": int(ctx.store.get_setting("ucloud_prefetch_daily")),
        "SubmitPrefetchCount": used("prefetch"),
        "RefreshFileQuota": int(ctx.store.get_setting("ucloud_refresh_daily")),
        "SubmitRefreshFile": used("purge"),
        "RefreshDirQuota": int(ctx.store.get_setting("ucloud_refresh_dir_daily")),
        "SubmitRefreshDir": used("purge_dir"),
    }


ACTIONS: Mapping[str, Handler] = {
    "PrefetchNewUcdnDomainCache": prefetch_new_ucdn_domain_cache,
    "DescribeNewUcdnPrefetchCacheTask": describe_new_ucdn_prefetch_cache_task,
    "GetUcdnDomainPrefetchRefreshState": get_ucdn_domain_prefetch_refresh_state,
    "RefreshNewUcdnDomainCache": refresh_new_ucdn_domain_cache,
    "DescribeNewUcdnRefreshCacheTask": describe_new_ucdn_refresh_cache_task,
}
"""Emulated UCloud actions by name."""
