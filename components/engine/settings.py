"""The provider's config contract: endpoints per cloud and credentials, from stack config or the environment.

Read in the dynamic provider's ``configure()`` (the engine sends it the whole stack config), never
passed as resource inputs, so credentials stay out of state, outputs and logs.
"""

from __future__ import annotations

import json
from typing import Callable, Mapping, Optional
from urllib.parse import urlsplit

from components.model.connection import (
    DEFAULT_SANDBOX_DB,
    ConfigError,
    Endpoint,
    ProviderSettings,
    TencentCredentials,
    UCloudCredentials,
)

PROJECT = "cdn-prefetch"
CLOUDS = ("edgeone", "tencent-cdn", "ucloud")
SANDBOX = "sandbox"


def parse_endpoint(key: str, value: object) -> Endpoint:
    """``sandbox`` or an http(s) URL; anything else is a config error naming the key."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"stack config {key} must be 'sandbox' or a URL such as http://127.0.0.1:8787")
    text = value.strip()
    if text == SANDBOX:
        return Endpoint(SANDBOX)
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"stack config {key} = {text!r} is not an endpoint; use 'sandbox' or a URL such as "
            "http://127.0.0.1:8787 (scheme, host and port only)"
        )
    return Endpoint("url", parts.scheme, parts.netloc)


def settings_from_config(get: Callable[[str], Optional[str]], env: Mapping[str, str]) -> ProviderSettings:
    """Build settings from namespaced config keys (``get("cdn-prefetch:endpoints")``) and the environment."""
    endpoints: dict[str, Endpoint] = {}
    raw = get(f"{PROJECT}:endpoints")
    if raw not in (None, ""):
        try:
            table = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            table = raw
        if not isinstance(table, dict):
            raise ConfigError(
                f"stack config {PROJECT}:endpoints must be a map from cloud ({', '.join(CLOUDS)}) to "
                "'sandbox' or a URL"
            )
        for cloud, value in table.items():
            if cloud not in CLOUDS:
                raise ConfigError(
                    f"stack config {PROJECT}:endpoints has unknown cloud {cloud!r}; use {', '.join(CLOUDS)}"
                )
            endpoints[cloud] = parse_endpoint(f"{PROJECT}:endpoints.{cloud}", value)
    secret_id = get("tencentcloud:secretId")
    secret_key = get("tencentcloud:secretKey")
    token = get("tencentcloud:securityToken") or None
    source = "config"
    if not (secret_id or secret_key):
        secret_id, secret_key = env.get("TENCENTCLOUD_SECRET_ID"), env.get("TENCENTCLOUD_SECRET_KEY")
        token = env.get("TENCENTCLOUD_SECURITY_TOKEN") or None
        source = "environment"
    tencent = None
    if secret_id or secret_key:
        if not (secret_id and secret_key):
            missing = "secretKey" if secret_id else "secretId"
            raise ConfigError(
                f"Tencent Cloud credentials from the {source} are incomplete: {missing} is missing; set "
                "both tencentcloud:secretId and tencentcloud:secretKey (pulumi config set --secret ...) "
                "or both TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"
            )
        tencent = TencentCredentials(secret_id.strip(), secret_key.strip(), token, source)
    return ProviderSettings(endpoints, tencent, get(f"{PROJECT}:sandboxDb") or DEFAULT_SANDBOX_DB,
                            _ucloud_credentials(get, env))


def _ucloud_credentials(get: Callable[[str], Optional[str]], env: Mapping[str, str]) -> Optional[UCloudCredentials]:
    public, private, source = get("ucloud:publicKey"), get("ucloud:privateKey"), "config"
    if not (public or private):
        public, private, source = env.get("UCLOUD_PUBLIC_KEY"), env.get("UCLOUD_PRIVATE_KEY"), "environment"
    if not (public or private):
        return None
    if not (public and private):
        missing = "privateKey" if public else "publicKey"
        raise ConfigError(
            f"UCloud credentials from the {source} are incomplete: {missing} is missing; set both "
            "ucloud:publicKey and ucloud:privateKey (pulumi config set --secret ...) or both "
            "UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY"
        )
    return UCloudCredentials(public.strip(), private.strip(), source)
