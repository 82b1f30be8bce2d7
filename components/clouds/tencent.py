"""What the two Tencent adapters (EdgeOne, Cloud CDN) share: client profile, calls, error translation.

Both speak API 3.0 through the official SDK. The SDK's own retryer is never used: it re-sends
after a throttling error even when a later attempt succeeded, duplicating prefetch submits.
"""

from __future__ import annotations

import json
import warnings
from types import ModuleType
from typing import Any, Callable, Optional

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from .base import CloudError, key_tail
from .ratelimit import SlidingWindowLimiter
from .retry import DEFAULT_POLICY, THROTTLED, RetryPolicy, call_with_retry
from ..model.connection import Endpoint, TencentCredentials

# Actions that change something at the cloud: never re-sent blindly after an ambiguous failure.
SUBMIT_ACTIONS = frozenset({"CreatePrefetchTask", "PushUrlsCache", "CreatePurgeTask", "PurgeUrlsCache"})
THROTTLE_CODES = frozenset({"UnauthorizedOperation.OperationTooOften", "LimitExceeded.CdnHostOpTooOften"})
QUOTA_CODES = frozenset({"LimitExceeded.DailyQuota", "LimitExceeded.BatchQuota",
                         "LimitExceeded.CdnPushExceedDayLimit", "LimitExceeded.CdnPushExceedBatchLimit",
                         "LimitExceeded.CdnPurgeExceedDayLimit", "LimitExceeded.CdnPurgeExceedBatchLimit",
                         "LimitExceeded.CdnPurgeUrlExceedDayLimit", "LimitExceeded.CdnPurgeUrlExceedBatchLimit"})
ACCOUNT_CODES = {
    "ResourceUnavailable.ZoneNotFound": "zone", "InvalidParameter.ZoneNotFound": "zone",
    "InvalidParameter.DomainNotFound": "domain", "ResourceNotFound.CdnHostNotExists": "domain",
    "UnauthorizedOperation.CdnHostUnauthorized": "domain",
}
"""Codes for a zone or domain the key's account does not have ("does not exist or does not belong to this
account"): a wrong id, or the key pair of another account. Classified as auth errors: never retried."""
CREDENTIALS = "tencentcloud:secretId/secretKey or TENCENTCLOUD_SECRET_ID/KEY"
HINTS = {
    "auth": f"check the credentials ({CREDENTIALS}), their CAM permissions, and this machine's clock",
    "quota": "the prefetch or purge quota is used up for today; wait for it to reset or ask Tencent Cloud to "
             "raise it",
}


def classify(code: str) -> str:
    """The retry class of a Tencent error code (see retry.py)."""
    if code in THROTTLE_CODES or code.startswith("RequestLimitExceeded"):
        return "throttled"
    if code in ("ClientNetworkError", "ServerNetworkError") or code.startswith("InternalError"):
        return "transient"
    if code in QUOTA_CODES:
        return "quota"
    if code in ACCOUNT_CODES or code.startswith(("AuthFailure", "UnauthorizedOperation")):
        return "auth"
    if code.startswith(("InvalidParameter", "MissingParameter", "UnknownParameter", "InvalidAction",
                        "NoSuchVersion", "ResourceNotFound", "ResourceUnavailable")):
        return "invalid"
    # The SDK wraps a body it cannot deserialize as an exception named after the Python error.
    if code in ("JSONDecodeError", "KeyError", "TypeError", "AttributeError", "ValueError", "IndexError"):
        return "malformed"
    return "other"


def hint(code: str, kind: str, secret_id: str, scope: Optional[str]) -> Optional[str]:
    """What an error means for the user and how to fix it, naming the key (by its tail) and the scope."""
    key = f"the key pair whose SecretId ends in {key_tail(secret_id)}"
    if ACCOUNT_CODES.get(code) == "zone":
        return (f"{scope or 'the zone'} is not in the account of {key}: check the zone id, or use the key pair "
                f"of the account that owns the zone ({CREDENTIALS})")
    if code in ACCOUNT_CODES:
        return (f"a URL's domain is not a domain of the account of {key}{f' ({scope})' if scope else ''}: check "
                f"that the domain is added to that account, or use the key pair of the account that owns it "
                f"({CREDENTIALS})")
    if kind == "auth":
        return f"{key}{f' on {scope}' if scope else ''}: {HINTS['auth']}"
    return HINTS.get(kind)


def client_profile(endpoint: Endpoint, timeout: int = 30) -> ClientProfile:
    """A profile for the real cloud (default endpoint) or an explicit one such as the sandbox."""
    if endpoint.kind == "default":
        http = HttpProfile(reqTimeout=timeout)
    else:
        # protocol must be given to the constructor (it picks the scheme there); endpoint is host:port.
        http = HttpProfile(protocol=endpoint.scheme, endpoint=endpoint.netloc, reqTimeout=timeout)
    return ClientProfile(httpProfile=http)


def wire_headers(headers: Any) -> list[dict[str, str]]:
    """Declared headers (``[{name, value}]``) as both Tencent APIs take them: ``[{Name, Value}]``."""
    return [{"Name": h["name"], "Value": h["value"]} for h in headers or ()]


def sdk_credential(creds: TencentCredentials) -> credential.Credential:
    return credential.Credential(creds.secret_id, creds.secret_key, creds.token)


def client_identity(client: Any) -> tuple[str, str, str]:
    """(scheme, API host, SecretId) of an SDK client: whose history it reads, and where. Never the key."""
    http = client.profile.httpProfile
    # No explicit endpoint: the SDK client's own default host for its service (teo/cdn.tencentcloudapi.com).
    return http.scheme or "https", http.endpoint or client._endpoint, getattr(client.credential, "secret_id", "")


class TencentCaller:
    """Calls one action of one SDK client under the shared rate limiter, translating SDK errors."""

    def __init__(self, cloud: str, client: Any, models: ModuleType, limiter: SlidingWindowLimiter,
                 policy: RetryPolicy = DEFAULT_POLICY, scope: Optional[str] = None):
        self.cloud, self.client, self.models, self.limiter, self.policy = cloud, client, models, limiter, policy
        self.scope = scope  # what error hints name: the destination, e.g. "edgeone zone zone-x"

    def __call__(self, action: str, params: dict[str, Any]) -> Any:
        """The action's response model, as the SDK's own method for it returns it."""
        request = self._request(action, params)
        method: Callable[[Any], Any] = getattr(self.client, action)
        return self._with_retry(action, lambda: method(request))

    def json(self, action: str, params: dict[str, Any]) -> Any:
        """The body's ``Response`` object as plain JSON, for pages of history.

        Same transport and signing (the SDK client's ``_call``), the same status and error checks
        (``response_of``), limiter and retries as ``__call__``, but the rows are not turned into SDK models: that costs ~3 µs a row (0.3 s of CPU
        per 100,000 rows), and the adapters check every field they read themselves anyway.
        Whatever goes wrong while decoding becomes the exception the SDK's method would raise
        (named after the Python error), so failures classify exactly as on the model path.
        """
        wire = self._request(action, params)._serialize()
        return self._with_retry(action, _sdk_errors(lambda: self.client._call(action, wire, None, None)),
                                _sdk_errors(lambda answer: response_of(self.client, answer)))

    def _request(self, action: str, params: dict[str, Any]) -> Any:
        request = getattr(self.models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        return request

    def _with_retry(self, action: str, send: Callable[[], Any], finish: Optional[Callable[[Any], Any]] = None) -> Any:
        """``send()`` under the limiter, then ``finish(answer)`` (if given) once its slot is released, with retries.

        The slot is held until the answer arrives (see ratelimit.py for why), not while it is
        decoded: a page of 1,000 rows takes milliseconds to decode, and the next request waits
        for that slot.
        """
        def once() -> Any:
            slot = None
            try:
                with self.limiter.request((self.cloud, action), paced=action in SUBMIT_ACTIONS) as slot:
                    answer = send()
                result = answer if finish is None else finish(answer)
            except TencentCloudSDKException as exc:
                code = exc.get_code()
                # A code that is not text (a malformed error answer) must not break the classification.
                code = code if isinstance(code, str) and code else (str(code) if code else "Error")
                kind = classify(code)
                if slot is not None and code != "ClientNetworkError":  # an answer: the limiter adapts to it
                    self.limiter.answered(slot, throttled=kind == THROTTLED)
                message = exc.get_message() or ""
                advice = hint(code, kind, client_identity(self.client)[2], self.scope)
                if advice:
                    message = f"{message} ({advice})" if message else advice
                raise CloudError(self.cloud, action, code, message, exc.get_request_id(), kind) from None
            self.limiter.answered(slot, throttled=False)
            return result

        return call_with_retry(once, read_only=action not in SUBMIT_ACTIONS, policy=self.policy)


def response_of(client: Any, answer: Any) -> Any:
    """``Response`` of an answer of the SDK client's transport (``client._call``), as ``call_json`` checks it.

    The SDK's ``call``/``call_json`` decode every answer in ``_check_error`` only to look for
    ``Response.Error``, and then hand back the raw body (or decode it again). For a page of 1,000
    history rows that second decode is ~1.3 ms of CPU: 0.13 s per 100,000 rows. This does the
    same checks (``_check_status``, then the error check) with one decode, and raises the same
    TencentCloudSDKException(code, message, request id) for an error answer. A body that is not
    JSON raises the decoder's error, as ``call_json`` would.

    Pinned to the SDK version in requirements.txt: ``_call``, ``_check_status`` and the checks
    mirrored here are the SDK's private API, and tests/test_clouds_tencent.py holds this path to the
    model path's answers for the same bodies.
    """
    client._check_status(answer)
    data = json.loads(answer.content)
    # From here on, the SDK's own _check_error (abstract_client.py), statement for statement, on
    # the body already decoded: same content types, same lookups, so the same exceptions (a
    # missing RequestId is a KeyError, ``"Error": null`` a TypeError, as there).
    if answer.headers.get("Content-Type") in ("text/plain", "application/json"):
        if "Error" in data["Response"]:
            raise TencentCloudSDKException(data["Response"]["Error"]["Code"], data["Response"]["Error"]["Message"],
                                           data["Response"]["RequestId"])
        if "DeprecatedWarning" in data["Response"]:
            warnings.filterwarnings("default")
            warnings.warn("This action is deprecated, detail: %s" % data["Response"]["DeprecatedWarning"],
                          DeprecationWarning)
    return data["Response"]


def _sdk_errors(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, with any other exception raised as the TencentCloudSDKException the SDK's methods make of it.

    The generated methods (the model path) name it after the Python error (``JSONDecodeError``,
    ``KeyError``...), so a failure classifies the same whichever path met it.
    """
    def wrapped(*args: Any) -> Any:
        try:
            return call(*args)
        except TencentCloudSDKException:
            raise
        except Exception as exc:  # noqa: BLE001 - as the SDK's generated methods wrap it
            raise TencentCloudSDKException(type(exc).__name__, str(exc)) from None

    return wrapped


