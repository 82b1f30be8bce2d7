"""What the two Tencent adapters (EdgeOne, Cloud CDN) share: client profile, calls, error translation.

Both speak API 3.0 through the official SDK. The SDK's own retryer is never used: it re-sends
after a throttling error even when a later attempt succeeded, duplicating prefetch submits.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Callable

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from ..ratelimit import SlidingWindowLimiter
from ..settings import Endpoint, TencentCredentials
from .base import CloudError


def client_profile(endpoint: Endpoint, timeout: int = 30) -> ClientProfile:
    """A profile for the real cloud (default endpoint) or an explicit one such as the sandbox."""
    if endpoint.kind == "default":
        http = HttpProfile(reqTimeout=timeout)
    else:
        # protocol must be given to the constructor (it picks the scheme there); endpoint is host:port.
        http = HttpProfile(protocol=endpoint.scheme, endpoint=endpoint.netloc, reqTimeout=timeout)
    return ClientProfile(httpProfile=http)


def sdk_credential(creds: TencentCredentials) -> credential.Credential:
    return credential.Credential(creds.secret_id, creds.secret_key, creds.token)


class TencentCaller:
    """Calls one action of one SDK client under the shared rate limiter, translating SDK errors."""

    def __init__(self, cloud: str, client: Any, models: ModuleType, limiter: SlidingWindowLimiter):
        self.cloud, self.client, self.models, self.limiter = cloud, client, models, limiter

    def __call__(self, action: str, params: dict[str, Any]) -> Any:
        request = getattr(self.models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        self.limiter.acquire((self.cloud, action))
        method: Callable[[Any], Any] = getattr(self.client, action)
        try:
            return method(request)
        except TencentCloudSDKException as exc:
            raise CloudError(self.cloud, action, exc.get_code() or "Error", exc.get_message() or "",
                             exc.get_request_id()) from None
