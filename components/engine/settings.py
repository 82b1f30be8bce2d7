"""The provider's config contract: endpoints per cloud and credentials, from stack config or the environment.

Read in the dynamic provider's ``configure()`` (the engine sends it the whole stack config), never
passed as resource inputs, so credentials stay out of state, outputs and logs.
"""

from __future__ import annotations

import json
from typing import Callable, Mapping, Optional
from urllib.parse import urlsplit

from ..model.clouds import CredentialFamily, cloud_keys, credential_families, find
from ..model.connection import DEFAULT_SANDBOX_DB, ConfigError, Endpoint, ProviderSettings

PROJECT = "cdn-prefetch"
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
                f"stack config {PROJECT}:endpoints must be a map from cloud ({', '.join(cloud_keys())}) to "
                "'sandbox' or a URL"
            )
        for cloud, value in table.items():
            if find(cloud) is None:
                raise ConfigError(
                    f"stack config {PROJECT}:endpoints has unknown cloud {cloud!r}; use {', '.join(cloud_keys())}"
                )
            endpoints[cloud] = parse_endpoint(f"{PROJECT}:endpoints.{cloud}", value)
    credentials = {}
    for family in credential_families():
        found = family_credentials(family, get, env)
        if found is not None:
            credentials[family.name] = found
    return ProviderSettings(endpoints, credentials, get(f"{PROJECT}:sandboxDb") or DEFAULT_SANDBOX_DB,
                            parse_rate_share(get(f"{PROJECT}:rateShare")))


def parse_rate_share(value: object) -> Optional[float]:
    """``cdn-prefetch:rateShare``: unset (None), a fraction of each limit (0 < x <= 1) or requests/s (> 1)."""
    if value in (None, ""):
        return None
    try:
        share = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        share = 0.0
    if not share > 0 or share == float("inf"):
        raise ConfigError(f"stack config {PROJECT}:rateShare must be a fraction of each API rate limit (e.g. 0.25 "
                          f"for one of four pipelines on one account) or requests per second (e.g. 5); got {value!r}")
    return share


def family_credentials(family: CredentialFamily, get: Callable[[str], Optional[str]],
                       env: Mapping[str, str]) -> Optional[object]:
    """One family's key pair: from stack config if either key is set there, else from the environment.

    One source per pair: half a pair in config is an error, never completed from the environment.
    """
    (id_key, secret_key), token_key = family.config_keys, family.token_config_key
    key_id, secret, source = get(id_key), get(secret_key), "config"
    token = (get(token_key) or None) if token_key else None
    if not (key_id or secret):
        (id_env, secret_env), token_env = family.env_keys, family.token_env_key
        key_id, secret, source = env.get(id_env), env.get(secret_env), "environment"
        token = (env.get(token_env) or None) if token_env else None
    if not (key_id or secret):
        return None
    if not (key_id and secret):
        missing = (secret_key if key_id else id_key).partition(":")[2]
        raise ConfigError(
            f"{family.title} credentials from the {source} are incomplete: {missing} is missing; set both "
            f"{id_key} and {secret_key} (pulumi config set --secret ...) or both "
            f"{family.env_keys[0]} and {family.env_keys[1]}"
        )
    return family.make(key_id.strip(), secret.strip(), token, source)
