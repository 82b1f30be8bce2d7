"""UCloud's wire protocol (form or JSON parameters, SHA1 signature, RetCode envelope), for UCDN.

Kept apart from the actions (`sandbox.ucloud`), as `sandbox.tencent` is from `edgeone` and `tencent_cdn`: the
envelope, auth, throttling and logging are the protocol's, whatever the action.

Requests are recognised by an `Action`, `PublicKey` or `Signature` parameter (form-encoded POST as
the SDK sends it, a JSON POST, or a GET query), at any path: `base_url` may carry one. Every answer
is HTTP 200 `{"Action": "<Action>Response", "RetCode": 0, ...}`, errors `{..., "RetCode": N,
"Message": ...}`, with the request id in `X-UCloud-Request-Uuid` (the SDK reads it).

Checks, in order: Action present (160), Signature present (170), PublicKey known (172), signature
right (171), Action known (161), rate (153), parameters. The signature is verified exactly as
`ucloud/core/auth/_cfg.py` computes it (cdn-apis.md §4.2). Choices where the docs leave it open:
- A bad or missing parameter is RetCode 230 ("Params [X] not available"), like UCloud's gateway.
- Every action: `rate_limit_per_second` per (PublicKey, action) (153).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

from . import tencent
from .store import SandboxStore
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
    now: float  # true time: when tasks are created and finish
    public_key: str  # the account: tasks and the submit interval are per PublicKey
    request_id: str
    clock_offset: int = 0  # the cloud's clock minus true time, whole seconds (a clock_skew fault)

    @property
    def cloud_now(self) -> int:
        """Now on the cloud's clock, in the Unix seconds of its API."""
        return int(self.now) + self.clock_offset


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


Handler = Callable[[Params, Context], dict[str, Any]]


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


def handle(req: HttpRequest, env: Env, actions: Mapping[str, Handler]) -> Reply:
    """Authenticate, throttle and dispatch one UCloud request to `actions`; never raises."""
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
        handler = actions.get(action)
        if handler is None:
            raise UCloudError(RET_UNKNOWN_ACTION, f"Action [{action}] does not exist")
        limit = int(env.store.get_setting("rate_limit_per_second"))
        if not env.limiter.allow((public_key, SERVICE_NAME, action), limit):
            raise UCloudError(RET_THROTTLED, f"Request throttled: more than {limit} {action} calls per second")
        ctx = Context(env.store, env.clock(), public_key, request_id, clock_offset=round(env.clock_offset))
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
