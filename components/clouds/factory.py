"""Build the adapter for a destination from provider settings; start the embedded sandbox on demand.

An endpoint value of ``sandbox`` starts the local emulator inside the provider process, on
loopback, with its state in SQLite, so a new user's ``pulumi up`` needs no account and no server.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from components.clouds.base import CloudAdapter
from components.model.connection import (
    ConfigError,
    Endpoint,
    ProviderSettings,
    TencentCredentials,
    UCloudCredentials,
)

_SANDBOXES: dict[str, Any] = {}
_LOCK = threading.Lock()


def embedded_sandbox(db_path: str) -> Any:
    """The process-wide sandbox for ``db_path`` (started once, stopped when the process exits)."""
    from sandbox import (
        Sandbox,  # the product's own emulator package at the project root
    )

    key = str(Path(db_path).resolve())
    with _LOCK:
        if key not in _SANDBOXES:
            Path(key).parent.mkdir(parents=True, exist_ok=True)
            _SANDBOXES[key] = Sandbox(key).start()
        return _SANDBOXES[key]


def tencent_connection(cloud: str, settings: ProviderSettings) -> tuple[Endpoint, TencentCredentials]:
    """Endpoint and credentials for a Tencent API; the sandbox always gets its own built-in pair."""
    endpoint = settings.endpoint(cloud)
    if endpoint.kind == "sandbox":
        from sandbox import SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY

        box = embedded_sandbox(settings.sandbox_db)
        return Endpoint("url", "http", box.endpoint), TencentCredentials(
            SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY, None, "sandbox")
    if settings.tencent is None:
        raise ConfigError(
            f"no Tencent Cloud credentials for {cloud}: run `pulumi config set --secret tencentcloud:secretId ...` "
            "and `pulumi config set --secret tencentcloud:secretKey ...`, or set TENCENTCLOUD_SECRET_ID and "
            f"TENCENTCLOUD_SECRET_KEY; or set cdn-prefetch:endpoints.{cloud} to 'sandbox' to try it locally"
        )
    return endpoint, settings.tencent


def ucloud_connection(settings: ProviderSettings, domain_ids: tuple[str, ...] = ()) -> tuple[Endpoint, UCloudCredentials]:
    """Endpoint and key pair for UCloud; the sandbox always gets its own built-in pair."""
    endpoint = settings.endpoint("ucloud")
    if endpoint.kind == "sandbox":
        from sandbox import SANDBOX_UCLOUD_PRIVATE_KEY, SANDBOX_UCLOUD_PUBLIC_KEY

        box = embedded_sandbox(settings.sandbox_db)
        for domain_id in domain_ids:
            # The sandbox needs to know a domain before it reports its quota; a new user's example
            # domain is registered on first use (its usage is counted under a placeholder host).
            if box.store.ucloud_domain_host(domain_id) is None:
                box.store.add_ucloud_domain(domain_id, f"{domain_id}.sandbox.invalid")
        return Endpoint("url", "http", box.endpoint), UCloudCredentials(
            SANDBOX_UCLOUD_PUBLIC_KEY, SANDBOX_UCLOUD_PRIVATE_KEY, "sandbox")
    if settings.ucloud is None:
        raise ConfigError(
            "no UCloud credentials: run `pulumi config set --secret ucloud:publicKey ...` and "
            "`pulumi config set --secret ucloud:privateKey ...`, or set UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY; "
            "or set cdn-prefetch:endpoints.ucloud to 'sandbox' to try it locally"
        )
    return endpoint, settings.ucloud


def adapter_for(destination: Mapping[str, Any], settings: ProviderSettings) -> CloudAdapter:
    """The adapter for one destination (``{"provider": ..., <scope keys>}``)."""
    cloud = destination.get("provider")
    if cloud == "edgeone":
        from components.clouds import edgeone

        endpoint, creds = tencent_connection(cloud, settings)
        return edgeone.EdgeOneAdapter(edgeone.make_client(endpoint, creds), destination["zone"],
                                      destination.get("mode", "default"))
    if cloud == "tencent-cdn":
        from components.clouds import tencent_cdn

        endpoint, creds = tencent_connection(cloud, settings)
        return tencent_cdn.TencentCdnAdapter(
            tencent_cdn.make_client(endpoint, creds), destination.get("area", "mainland"),
            user_agent=destination.get("userAgent"), layer=destination.get("layer"),
            parse_m3u8=bool(destination.get("parseM3U8", False)), headers=destination.get("headers") or ())
    if cloud == "ucloud":
        from components.clouds import ucloud

        endpoint, ucreds = ucloud_connection(settings, (destination["domainId"],))
        project = destination.get("projectId")
        return ucloud.UCloudAdapter(ucloud.make_client(endpoint, ucreds, project), destination["domainId"], project)
    raise ConfigError(f"unknown provider {cloud!r}; use edgeone, tencent-cdn or ucloud")
