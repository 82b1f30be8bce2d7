"""The Tencent Cloud API 3.0 envelope, shared by every Tencent service the sandbox emulates.

A request is routed by the service named in the credential scope (`.../teo/tc3_request`) and the
`X-TC-Action` header, after the same checks the cloud makes, in this order: Authorization syntax,
secret id, timestamp window, signature, service, version, action, rate limit, parameters.
Adding a service (e.g. `cdn` 2018-06-06) means one module exposing a `TencentService` and one
line in the server's registry; the envelope, auth, throttling and logging come for free.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qsl

from tencentcloud.common.sign import Sign

from . import tc3
from .keys import SANDBOX_SECRET_ID
from .store import SandboxStore
from .wire import Env, HttpRequest, Identity, Reply

MAX_BODY_BYTES = 10 * 1024 * 1024  # API 3.0 caps request bodies at 10 MB


class ApiError(Exception):
    """An error the API answers with `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Context:
    """What an action handler gets besides its parameters."""

    store: SandboxStore
    now: float  # wall clock, Unix seconds, fixed for the whole request
    request_id: str
    from_query: bool = False  # GET: every scalar arrived as a string
    account: str = SANDBOX_SECRET_ID  # the caller's SecretId: what it may use is its account's (sandbox.accounts)


Handler = Callable[["Params", Context], dict[str, Any]]


@dataclass(frozen=True)
class TencentService:
    """One emulated service: its credential-scope name, its single API version, its actions."""

    name: str
    version: str
    actions: Mapping[str, Handler]


# ----- parameters ----------------------------------------------------------------------------------


class Params:
    """Typed access to request parameters that fails with the codes the cloud uses.

    MissingParameter for an absent required field, InvalidParameter for a wrong type,
    UnknownParameter for a field the action does not define (catches `Target` vs `Targets`).
    JSON null counts as absent. On GET, numbers and booleans arrive as strings and are accepted.
    """

    def __init__(self, values: Mapping[str, Any], *, from_query: bool = False, prefix: str = "") -> None:
        self.values = values
        self.from_query = from_query
        self.prefix = prefix

    def _name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _invalid(self, name: str, expected: str) -> ApiError:
        return ApiError("InvalidParameter", f"The value type of parameter `{self._name(name)}` is not valid; expected {expected}.")

    def only(self, allowed: Sequence[str]) -> None:
        for key in self.values:
            if key not in allowed:
                raise ApiError("UnknownParameter", f"The parameter `{self._name(key)}` is not recognized.")

    def raw(self, name: str, *, required: bool = False) -> Any:
        value = self.values.get(name)
        if value is None and required:
            raise ApiError("MissingParameter", f"The request is missing a required parameter `{self._name(name)}`.")
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw(name, required=required)
        if value is not None and not isinstance(value, str):
            raise self._invalid(name, "a string")
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if self.from_query and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._invalid(name, "an integer")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        if self.from_query and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self._invalid(name, "a boolean")
        return value

    def strings(self, name: str, *, required: bool = False) -> list[str] | None:
        value = self.raw(name, required=required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._invalid(name, "an array of strings")
        return value

    def objects(self, name: str, allowed: Sequence[str]) -> list[Params] | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._invalid(name, "an array of objects")
        items = [Params(v, from_query=self.from_query, prefix=f"{self._name(name)}.{i}.") for i, v in enumerate(value)]
        for item in items:
            item.only(allowed)
        return items


# An RFC 9110 field name (a token); a field value may hold no control character but a tab.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_headers(params: Params, code: str, *, most: int | None = None, name_bytes: int | None = None,
                  value_bytes: int | None = None) -> None:
    """A prefetch's `Headers` ([{Name, Value}]), as both Tencent APIs take them: a field the header object
    does not define is `UnknownParameter`; a name that is not an HTTP field name, a value with a control
    character, and past a documented limit (``most`` headers, ``name_bytes``/``value_bytes`` UTF-8 bytes)
    are ``code``, the service's parameter error (neither API documents a narrower code for headers)."""
    headers = params.objects("Headers", ["Name", "Value"]) or []
    if most is not None and len(headers) > most:
        raise ApiError(code, f"At most {most} Headers; got {len(headers)}.")
    for header in headers:
        name = header.string("Name", required=True) or ""
        value = header.string("Value", required=True) or ""
        if not _HEADER_NAME.fullmatch(name) or (name_bytes is not None and len(name.encode("utf-8")) > name_bytes):
            limit = f" of 1..{name_bytes} bytes" if name_bytes is not None else ""
            raise ApiError(code, f"A header Name must be an HTTP field name{limit}; got {name[:40]!r}.")
        if _HEADER_VALUE_CONTROL.search(value):
            raise ApiError(code, f"The value of header {name!r} holds a control character.")
        if value_bytes is not None and len(value.encode("utf-8")) > value_bytes:
            raise ApiError(code, f"The value of header {name!r} exceeds {value_bytes} bytes.")


def unflatten(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """`Filters.0.Values.1=x` (the SDK's GET encoding) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ApiError("InvalidParameter", f"The query parameter `{key}` conflicts with another one.")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ApiError("InvalidParameter", f"The query parameter `{key}` conflicts with another one.")
        node[parts[-1]] = value
    result = _lists(root, "")
    if not isinstance(result, dict):  # a query of bare indexes (`0=a&1=b`) is not a parameter set
        raise ApiError("InvalidParameter", "The query string must name its parameters.")
    return result


def _lists(node: Any, path: str) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        indexes = sorted(int(k) for k in node)
        if indexes != list(range(len(indexes))):
            raise ApiError("InvalidParameter", f"The list parameter `{path}` has gaps in its indexes.")
        return [_lists(node[str(i)], f"{path}.{i}") for i in indexes]
    return {k: _lists(v, f"{path}.{k}" if path else k) for k, v in node.items()}


def decode_params(req: HttpRequest) -> dict[str, Any]:
    """The action parameters: the JSON object of a POST, or the flattened query of a GET."""
    if req.method == "GET":
        return unflatten(parse_qsl(req.query, keep_blank_values=True))
    content_type = req.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower() == "application/json":
        raise ApiError("InvalidParameter", f"Content-Type {content_type!r} is not supported; send application/json.")
    if not req.body.strip():
        return {}
    try:
        params = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError("InvalidParameter", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(params, dict):
        raise ApiError("InvalidParameter", "The request body must be a JSON object.")
    return params


# ----- the envelope --------------------------------------------------------------------------------

# The signature method before TC3 (API 3.0 still takes it): every parameter in a form (or query), these
# among them, and `Signature` an HMAC of "METHOD host path?k=v&..." (sorted, unencoded) as the SDK's
# `Sign.sign` computes it (abstract_client._build_req_with_old_signature).
V1_METHODS = frozenset({"HmacSHA256", "HmacSHA1"})
V1_COMMON = frozenset({"Action", "RequestClient", "Nonce", "Timestamp", "Version", "Region", "Token", "SecretId",
                       "SignatureMethod", "Language", "Signature"})
SIGNATURE_WINDOW = 300  # seconds a signed request stays valid, either way (as TC3's)


def _v1_form(req: HttpRequest) -> dict[str, str] | None:
    """The parameters of a request signed the old way (HmacSHA256/HmacSHA1), else None."""
    if req.method == "GET":
        text = req.query
    elif req.headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        text = req.body.decode("utf-8", "replace")
    else:
        return None
    form = dict(parse_qsl(text, keep_blank_values=True))
    return form if form.get("SignatureMethod") in V1_METHODS and "SecretId" in form else None


def claims(req: HttpRequest) -> bool:
    """Is this an API 3.0 request, TC3-signed or signed the old way? (UCloud's carry none of these.)"""
    return ("x-tc-action" in req.headers or req.headers.get("authorization", "").startswith("TC3-")
            or _v1_form(req) is not None)


def _v1_service(form: Mapping[str, str], services: Mapping[str, TencentService]) -> str | None:
    """An old-style request names no service (the real API reads it from the host): its Version tells ours."""
    return next((s.name for s in services.values() if s.version == form.get("Version")), None)


def identify(req: HttpRequest, services: Mapping[str, TencentService] | None = None) -> Identity:
    """Service (from the credential scope), action, parameters and SecretId, without checking anything."""
    form = _v1_form(req)
    if form is not None:
        return Identity(service=_v1_service(form, services or {}), action=form.get("Action") or None,
                        params=_v1_params(form), secret_id=form.get("SecretId"))
    try:
        auth: tc3.Authorization | None = tc3.parse_authorization(req.headers.get("authorization"))
    except tc3.Tc3Error:
        auth = None
    try:
        params: dict[str, Any] | None = decode_params(req)
    except ApiError:
        params = None
    return Identity(
        service=auth.service if auth else None, action=req.headers.get("x-tc-action") or None,
        params=params, secret_id=auth.secret_id if auth else None,
    )


def _form_params(form: Mapping[str, str]) -> dict[str, Any]:
    """The action parameters of an old-style request: its form without the signature's own keys."""
    return unflatten([(k, v) for k, v in form.items() if k not in V1_COMMON])


def _v1_params(form: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        return _form_params(form)
    except ApiError:
        return None


@dataclass
class _Signed:
    """Who sent a request, to which service, version and action: what either signature method says."""

    service: str | None
    version: str | None
    secret_id: str


def _verify_tc3(req: HttpRequest, env: Env, now: float, reply: Reply) -> _Signed:
    auth = tc3.parse_authorization(req.headers.get("authorization"))
    reply.service, reply.secret_id = auth.service, auth.secret_id
    tc3.verify(
        auth, secret_key=_secret_key(env, auth.secret_id), timestamp_header=req.headers.get("x-tc-timestamp"),
        now=now + env.clock_offset,
        method=req.method, path=req.path, query=req.query if req.method == "GET" else "",
        headers=req.headers, payload=req.body,
    )
    return _Signed(auth.service, req.headers.get("x-tc-version"), auth.secret_id)


def _verify_v1(req: HttpRequest, form: Mapping[str, str], env: Env, now: float, reply: Reply,
               services: Mapping[str, TencentService]) -> _Signed:
    secret_id = form["SecretId"]
    reply.secret_id, reply.action = secret_id, form.get("Action") or None
    reply.service = _v1_service(form, services)
    secret_key = _secret_key(env, secret_id)
    try:
        age = now + env.clock_offset - int(form.get("Timestamp", ""))
    except ValueError:
        raise ApiError("AuthFailure.InvalidAuthorization", "The Timestamp parameter is not a Unix time.") from None
    if abs(age) > SIGNATURE_WINDOW:
        raise ApiError("AuthFailure.SignatureExpire", "The signature has expired: Timestamp is more than 300 s away "
                                                      "from the server time.")
    signed = "&".join(f"{k.replace('_', '.')}={v}" for k, v in sorted(form.items()) if k != "Signature")
    text = f"{req.method}{req.headers.get('host', '')}{req.path}?{signed}"
    expected = Sign.sign(secret_key, text, form["SignatureMethod"])
    if not hmac.compare_digest(expected, form.get("Signature", "")):
        raise ApiError("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please "
                                                       "check your signature is correct.")
    return _Signed(reply.service, form.get("Version"), secret_id)


def _secret_key(env: Env, secret_id: str) -> str:
    secret_key = env.credentials.get(secret_id)
    if secret_key is None:
        raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct.")
    return secret_key


def handle(req: HttpRequest, env: Env, services: Mapping[str, TencentService]) -> Reply:
    """Authenticate, throttle and dispatch one API 3.0 request; never raises for client mistakes."""
    now = env.clock()
    reply = Reply(body={}, request_id=str(uuid.uuid4()), action=req.headers.get("x-tc-action") or None)
    form = _v1_form(req)
    params: dict[str, Any] | None = None
    params_error: ApiError | None = None
    try:
        params = decode_params(req) if form is None else _form_params(form)
    except ApiError as exc:
        params_error = exc
    reply.params = params
    try:
        if len(req.body) > MAX_BODY_BYTES:
            raise ApiError("RequestSizeLimitExceeded", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
        signed = (_verify_tc3(req, env, now, reply) if form is None
                  else _verify_v1(req, form, env, now, reply, services))
        service = services.get(signed.service or "")
        if service is None:
            if form is not None:
                raise ApiError("NoSuchVersion", f"The requested version `{form.get('Version')}` matches no service of "
                                                f"this sandbox ({', '.join(f'{s.name} {s.version}' for s in services.values())}).")
            raise ApiError(
                "InvalidAction",
                f"Service `{signed.service}` is not emulated by this sandbox (emulated: {', '.join(sorted(services))}).",
            )
        version = signed.version
        if not version:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Version`.")
        if version != service.version:
            raise ApiError("NoSuchVersion", f"The requested version `{version}` of service `{service.name}` does not exist (use {service.version}).")
        if reply.action is None:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Action`.")
        handler = service.actions.get(reply.action)
        if handler is None:
            raise ApiError("InvalidAction", f"The requested action `{reply.action}` of service `{service.name}` does not exist.")
        limit = int(env.store.get_setting("rate_limit_per_second"))
        if not env.limiter.allow((signed.secret_id, service.name, reply.action), limit):
            raise ApiError("RequestLimitExceeded", f"Your current request frequency exceeded the limit of {limit} requests per second for {reply.action}.")
        if params_error is not None:
            raise params_error
        assert params is not None
        from_query = req.method == "GET" or form is not None  # a form, like a query, carries only strings
        ctx = Context(env.store, now, reply.request_id, from_query=from_query, account=signed.secret_id)
        result = handler(Params(params, from_query=ctx.from_query), ctx)
        reply.body = {"Response": {**result, "RequestId": reply.request_id}}
    except (ApiError, tc3.Tc3Error) as exc:
        reply.error_code, reply.error_message = exc.code, exc.message
        reply.body = error_body(exc.code, exc.message, reply.request_id)
    return reply


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}
