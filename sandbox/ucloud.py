"""UCloud UCDN: a second wire protocol (form or JSON parameters, SHA1 signature, RetCode envelope).

Requests are recognised by an `Action`, `PublicKey` or `Signature` parameter (form-encoded POST as
the SDK sends it, a JSON POST, or a GET query), at any path: `base_url` may carry one. Every answer
is HTTP 200 `{"Action": "<Action>Response", "RetCode": 0, ...}`, errors `{..., "RetCode": N,
"Message": ...}`, with the request id in `X-UCloud-Request-Uuid` (the SDK reads it).

Checks, in order: Action present (160), Signature present (170), PublicKey known (172), signature
right (171), Action known (161), rate (153), parameters. The signature is verified exactly as
`ucloud/core/auth/_cfg.py` computes it (cdn-apis.md §4.2). Choices where the docs leave it open:
- A bad or missing parameter is RetCode 230 ("Params [X] not available"), like UCloud's gateway.
- A `rejected` rule fails the whole PrefetchNewUcdnDomainCache with 230 naming the URL.
- The daily quota (per host, `ucloud_prefetch_daily`, Beijing-time day) is RetCode 44010,
  "prefetch quota exceeded for domain ..."; nothing is created. Note that the SDK flags every
  RetCode above 2000 as retryable.
- GetUcdnDomainPrefetchRefreshState knows DomainIds declared with `add_ucloud_domain` (or the CLI's
  `ucloud-domain add`); any other DomainId is RetCode 44003 "domain not found".
- Submits: at most one per `ucloud_prefetch_interval` seconds per PublicKey (153); only accepted
  submits start the interval. Other actions: `rate_limit_per_second` per action (153).
- History: the default window (BeginTime = EndTime - 1 day) applies even when TaskId.N is given;
  `Limit` absent or 0 means everything. Tasks are per PublicKey. `IsDcdn` is checked to be a
  boolean and otherwise ignored: SDK 0.11.150 cannot send it on submit, so a filter on it could
  only ever hide the tasks the SDK created.
- A task is `wait` for the first 10% of its progress time, then `process`; once every URL is done
  it is `failure` if any URL failed, else `unknow` if any URL is unknown, else `success`.
  Outcomes: success -> success; failed, timeout, canceled, invalid -> failure; unknown -> unknow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import sys
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from . import tencent
from .store import Charge, NewTask, QuotaExceeded, SandboxStore, SubmitTooSoon, pick_rule, task_progress
from .wire import Env, HttpRequest, Identity, Reply

SERVICE_NAME = "ucloud"
REQUEST_UUID_HEADER = "X-UCloud-Request-Uuid"

RET_INTERNAL = 150  # service unavailable: a sandbox bug
RET_THROTTLED = 153
RET_MISSING_ACTION = 160
RET_UNKNOWN_ACTION = 161
RET_MISSING_SIGNATURE = 170
RET_BAD_SIGNATURE = 171
RET_UNKNOWN_USER = 172
RET_BAD_PARAMS = 230
RET_DOMAIN_NOT_FOUND = 44003
RET_QUOTA_EXCEEDED = 44010

WAIT_FRACTION = 0.1  # share of a task's progress time reported as `wait`
TASK_STATUSES = ("wait", "process", "success", "failure", "unknow")
REPORTED_STATUS = {
    "success": "success", "failed": "failure", "timeout": "failure", "canceled": "failure",
    "invalid": "failure", "unknown": "unknow",
}
"""Sandbox outcome -> UCloud Status of a finished URL."""
REFRESH_FILE_QUOTA, REFRESH_DIR_QUOTA = 10000, 100  # refresh is not emulated: reported untouched
_TASK_ID_ALPHABET = string.ascii_letters + string.digits
_INTEGER = re.compile(r"-?\d+")


class UCloudError(Exception):
    """An error answered as `{"RetCode": code, "Message": message}`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"RetCode {code}: {message}")
        self.code = code
        self.message = message


def bad_param(name: str, why: str) -> UCloudError:
    return UCloudError(RET_BAD_PARAMS, f"Params [{name}] not available: {why}")


# ----- encoding and signing (a port of ucloud.core.typesystem.encoder and auth._cfg) -------------


def encode_value(value: Any) -> str:
    """How the SDK renders a scalar: bools lower-case, floats with a zero fraction as integers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value % 1 == 0 else str(value)
    return str(value)


def flatten(params: Mapping[str, Any]) -> dict[str, str]:
    """`{"UrlList": [a, b]}` -> `{"UrlList.0": a, "UrlList.1": b}`, exactly like the SDK's encoder."""
    result: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            for sub_key, sub_value in flatten(value).items():
                result[f"{key}.{sub_key}"] = sub_value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    for sub_key, sub_value in flatten(item).items():
                        result[f"{key}.{i}.{sub_key}"] = sub_value
                else:
                    result[f"{key}.{i}"] = encode_value(item)
        else:
            result[key] = encode_value(value)
    return result


def signature(params: Mapping[str, str], private_key: str) -> str:
    """SHA1 hex of every `key + value` (sorted by key, no escaping, Signature excluded) + private key."""
    text = "".join(f"{key}{value}" for key, value in sorted(params.items()) if key != "Signature")
    return hashlib.sha1((text + private_key).encode("utf-8")).hexdigest()


def sign(params: Mapping[str, Any], public_key: str, private_key: str) -> dict[str, str]:
    """Client side: flatten, add PublicKey and Signature (for tests and tools)."""
    flat = flatten({**params, "PublicKey": public_key})
    flat["Signature"] = signature(flat, private_key)
    return flat


# ----- the envelope --------------------------------------------------------------------------------


def decode(req: HttpRequest) -> dict[str, str]:
    """The flat string parameters of a GET query, a form POST or a JSON POST."""
    if req.method == "GET":
        text, kind = req.query, "form"
    else:
        content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            text = req.body.decode("utf-8")
        except UnicodeDecodeError:
            raise UCloudError(RET_BAD_PARAMS, "The request body is not UTF-8.") from None
        kind = "json" if content_type == "application/json" else "form"
    if kind == "json":
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise UCloudError(RET_BAD_PARAMS, f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise UCloudError(RET_BAD_PARAMS, "The request body must be a JSON object.")
        return flatten(data)
    pairs = parse_qsl(text, keep_blank_values=True)
    result: dict[str, str] = {}
    for key, value in pairs:
        if key in result:
            raise bad_param(key, "given more than once")
        result[key] = value
    return result


def claims(req: HttpRequest) -> bool:
    """A UCloud request: no Tencent markers, and UCloud's own parameter names."""
    if tencent.claims(req):
        return False
    try:
        params = decode(req)
    except UCloudError:
        return False
    return any(k in params for k in ("Action", "PublicKey", "Signature"))


@dataclass(frozen=True)
class Context:
    """What an action handler gets besides its parameters."""

    store: SandboxStore
    now: float
    public_key: str  # the account: tasks and the submit interval are per PublicKey
    request_id: str


class Params:
    """Typed access to flat string parameters; mistakes are RetCode 230. Unknown names are ignored."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if (value is None or value == "") and required:
            raise bad_param(name, "required")
        return value

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not _INTEGER.fullmatch(value.strip()):
            raise bad_param(name, f"expected an integer, got {value!r}")
        return int(value)

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if value.lower() not in ("true", "false"):
            raise bad_param(name, f"expected true or false, got {value!r}")
        return value.lower() == "true"

    def strings(self, name: str) -> list[str]:
        """`Name.0`, `Name.1`, ... in order; the indexes must run 0..n-1."""
        if name in self.values:
            raise bad_param(name, f"send a list as {name}.0, {name}.1, ...")
        indexed: dict[int, str] = {}
        prefix = f"{name}."
        for key, value in self.values.items():
            if key.startswith(prefix):
                index = key[len(prefix):]
                if not index.isdigit():
                    raise bad_param(key, "unknown field")
                indexed[int(index)] = value
        if sorted(indexed) != list(range(len(indexed))):
            raise bad_param(name, "list indexes must run from 0 without gaps")
        return [indexed[i] for i in range(len(indexed))]


def loggable(params: Mapping[str, str]) -> dict[str, Any]:
    """Parameters for the request log: lists rebuilt (`UrlList.0` -> UrlList), never the Signature.

    `Action` is left out like on Tencent (the log has its own column); the PublicKey stays.
    """
    pairs = [(k, v) for k, v in params.items() if k not in ("Signature", "Action")]
    try:
        return tencent.unflatten(pairs)
    except tencent.ApiError:
        return dict(pairs)


def identify(req: HttpRequest) -> Identity:
    """Action, loggable parameters and PublicKey, without checking anything."""
    try:
        params = decode(req)
    except UCloudError:
        return Identity(service=SERVICE_NAME, action=None)
    return Identity(
        service=SERVICE_NAME, action=params.get("Action") or None, params=loggable(params),
        secret_id=params.get("PublicKey") or None,
    )


def handle(req: HttpRequest, env: Env) -> Reply:
    """Authenticate, throttle and dispatch one UCloud request; never raises."""
    request_id = str(uuid.uuid4())
    reply = Reply(body={}, request_id=request_id, service=SERVICE_NAME, headers={REQUEST_UUID_HEADER: request_id})
    action = ""
    try:
        params = decode(req)
        reply.params = loggable(params)
        action = params.get("Action", "")
        reply.action = action or None
        reply.secret_id = params.get("PublicKey") or None
        if not action:
            raise UCloudError(RET_MISSING_ACTION, "Missing Action")
        if not params.get("Signature"):
            raise UCloudError(RET_MISSING_SIGNATURE, "Missing Signature")
        public_key = params.get("PublicKey", "")
        private_key = env.ucloud_credentials.get(public_key)
        if private_key is None:
            raise UCloudError(RET_UNKNOWN_USER, f"User does not exist: no account has PublicKey {public_key!r}")
        if not hmac.compare_digest(signature(params, private_key), params["Signature"]):
            raise UCloudError(RET_BAD_SIGNATURE, "Signature VerifyAC Error")
        handler = ACTIONS.get(action)
        if handler is None:
            raise UCloudError(RET_UNKNOWN_ACTION, f"Action [{action}] does not exist")
        limit = int(env.store.get_setting("rate_limit_per_second"))
        if not env.limiter.allow((public_key, SERVICE_NAME, action), limit):
            raise UCloudError(RET_THROTTLED, f"Request throttled: more than {limit} {action} calls per second")
        ctx = Context(env.store, env.clock(), public_key, request_id)
        result = handler(Params(params), ctx)
        reply.body = {"Action": f"{action}Response", "RetCode": 0, **result}
    except UCloudError as exc:
        reply.error_code, reply.error_message = str(exc.code), exc.message
        reply.body = error_body(action, exc.code, exc.message)
    except Exception:  # a sandbox bug: answer like the cloud would, keep the trace for us
        traceback.print_exc(file=sys.stderr)
        message = "Internal error in the sandbox (see its stderr)."
        reply.error_code, reply.error_message = str(RET_INTERNAL), message
        reply.body = error_body(action, RET_INTERNAL, message)
    return reply


def error_body(action: str, code: int, message: str) -> dict[str, Any]:
    return {"Action": f"{action}Response", "RetCode": code, "Message": message}


# ----- actions -------------------------------------------------------------------------------------


def new_task_id() -> str:
    """8 random letters and digits, the shape of real TaskIds (e.g. `IhrznXRB`)."""
    return "".join(secrets.choice(_TASK_ID_ALPHABET) for _ in range(8))


def _is_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and url == url.strip()


def _too_soon(retry_after: float) -> UCloudError:
    return UCloudError(
        RET_THROTTLED, f"Request throttled: one prefetch submit per interval; retry in {retry_after:.1f} s"
    )


def prefetch_new_ucdn_domain_cache(params: Params, ctx: Context) -> dict[str, Any]:
    store = ctx.store
    interval = float(store.get_setting("ucloud_prefetch_interval"))
    last = store.last_submit(SERVICE_NAME, ctx.public_key)
    if interval and last is not None and ctx.now - last < interval:  # the gateway refuses before validating
        raise _too_soon(interval - (ctx.now - last))
    params.string("ProjectId")
    params.boolean("IsDcdn")
    urls = params.strings("UrlList")
    batch = int(store.get_setting("ucloud_prefetch_batch"))
    if not urls:
        raise bad_param("UrlList", "at least one URL is required")
    if len(urls) > batch:
        raise bad_param("UrlList", f"{len(urls)} URLs submitted; at most {batch} per call")
    for i, url in enumerate(urls):
        if not _is_url(url):
            raise bad_param(f"UrlList.{i}", f"must start with http:// or https:// and name a domain; got {url!r}")

    rules = store.rule_objects()
    progress = float(store.get_setting("progress_seconds"))
    tasks: list[NewTask] = []
    for url in urls:
        rule = pick_rule(rules, url, SERVICE_NAME)
        outcome = rule.outcome if rule else "success"
        if rule is not None and outcome == "rejected":
            raise bad_param("UrlList", f"{url} cannot be prefetched: {rule.failure()[1]}")
        fail_type, fail_message = rule.failure() if rule and outcome != "success" else ("", "")
        delay = rule.delay_seconds if rule and rule.delay_seconds is not None else progress
        host = (urlsplit(url).hostname or "").lower()
        tasks.append(NewTask(url, host, ctx.now + delay, outcome, fail_type, fail_message))

    daily = int(store.get_setting("ucloud_prefetch_daily"))
    per_host = Counter(t.host for t in tasks)
    task_id = new_task_id()
    try:
        store.create_tasks(
            SERVICE_NAME, ctx.public_key, task_id, tasks, now=ctx.now,
            charges=[Charge(host, count, daily) for host, count in sorted(per_host.items())],
            min_interval=interval,
        )
    except SubmitTooSoon as exc:
        raise _too_soon(exc.retry_after) from None
    except QuotaExceeded as exc:
        raise UCloudError(
            RET_QUOTA_EXCEEDED,
            f"prefetch quota exceeded for domain {exc.scope}: {exc.used} used today + {exc.requested} "
            f"submitted > {exc.limit}",
        ) from None
    return {"TaskId": task_id}


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
    params.string("ProjectId")
    task_ids = params.strings("TaskId")
    begin, end = params.integer("BeginTime"), params.integer("EndTime")
    if end is not None and begin is None:
        raise bad_param("BeginTime", "required when EndTime is given")
    if end is None:
        end = int(ctx.now)
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

    rows = ctx.store.task_values(
        SERVICE_NAME, ctx.public_key, URL_COLUMNS, now=ctx.now, start=begin, end=end, job_ids=task_ids or None,
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
            "CreateTime": int(task_rows[0][2]),
            "Status": aggregate,
            "UrlLists": [
                {
                    "Url": target,
                    "CreateTime": int(created),
                    "FinishTime": int(finish) if now >= finish else 0,
                    "Status": _url_status(created, finish, outcome, now),
                    "Progress": task_progress(created, finish, now),
                }
                for _, target, created, finish, outcome in task_rows
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
    return {
        "PrefetchQuota": int(ctx.store.get_setting("ucloud_prefetch_daily")),
        "SubmitPrefetchCount": ctx.store.used_today(SERVICE_NAME, host, now=ctx.now),
        "RefreshQuota": REFRESH_FILE_QUOTA,
        "SubmitRefreshCount": 0,
        "RefreshFileQuota": REFRESH_FILE_QUOTA,
        "SubmitRefreshFile": 0,
        "RefreshDirQuota": REFRESH_DIR_QUOTA,
        "SubmitRefreshDir": 0,
    }


ACTIONS: Mapping[str, Callable[[Params, Context], dict[str, Any]]] = {
    "PrefetchNewUcdnDomainCache": prefetch_new_ucdn_domain_cache,
    "DescribeNewUcdnPrefetchCacheTask": describe_new_ucdn_prefetch_cache_task,
    "GetUcdnDomainPrefetchRefreshState": get_ucdn_domain_prefetch_refresh_state,
}
"""Emulated UCloud actions by name."""
