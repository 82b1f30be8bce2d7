"""Build the adapter for a destination from provider settings; start the embedded sandbox on demand.

An endpoint value of ``sandbox`` starts the local emulator inside the provider process, on
loopback, with its state in SQLite, so a new user's ``pulumi up`` needs no account and no server.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from ..settings import ConfigError, Endpoint, ProviderSettings, TencentCredentials
from .base import CloudAdapter

_SANDBOXES: dict[str, Any] = {}
_LOCK = threading.Lock()


def embedded_sandbox(db_path: str) -> Any:
    """The process-wide sandbox for ``db_path`` (started once, stopped when the process exits)."""
    from sandbox import Sandbox  # the product's own emulator package at the project root

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


def adapter_for(destination: Mapping[str, str], settings: ProviderSettings) -> CloudAdapter:
    cloud = destination.get("provider")
    if cloud == "edgeone":
        from .edgeone import EdgeOneAdapter, make_client

        endpoint, creds = tencent_connection(cloud, settings)
        return EdgeOneAdapter(make_client(endpoint, creds), destination["zone"], destination.get("mode", "default"))
    raise ConfigError(f"provider {cloud!r} is not available in this version yet (available: edgeone)")
