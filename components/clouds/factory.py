"""Build the adapter for a destination from provider settings; start the embedded sandbox on demand.

An endpoint value of ``sandbox`` starts the local emulator inside the provider process, on
loopback, with its state in SQLite, so a new user's ``pulumi up`` needs no account and no server.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any, Mapping

from .base import CloudAdapter
from .ratelimit import set_rate_share
from ..model.clouds import CloudSpec, UnknownCloud, cloud
from ..model.connection import ConfigError, Endpoint, ProviderSettings

_SANDBOXES: dict[str, Any] = {}
_LOCK = threading.Lock()


def sandbox_package(module: str = "") -> Any:
    """The product's own emulator: ``sandbox`` at the repository's root, or ``<package>.sandbox`` when
    installed (``cdn_prefetch.sandbox``: pyproject.toml), so that no bare ``sandbox`` lands in site-packages."""
    root = __name__.split(".")[0]
    name = "sandbox" if root == "components" else f"{root}.sandbox"
    return importlib.import_module(f"{name}.{module}" if module else name)


def adapter_module(name: str) -> str:
    """A registry entry's adapter module as importable here: the built-in ``components.clouds.*`` under the
    installed package's name (``cdn_prefetch.clouds.*``); another package's module as it is."""
    root = __name__.split(".")[0]
    return f"{root}{name[len('components'):]}" if name.startswith("components.") else name


def embedded_sandbox(db_path: str) -> Any:
    """The process-wide sandbox for ``db_path`` (started once, stopped when the process exits)."""
    Sandbox = sandbox_package().Sandbox

    key = str(Path(db_path).resolve())
    with _LOCK:
        if key not in _SANDBOXES:
            Path(key).parent.mkdir(parents=True, exist_ok=True)
            _SANDBOXES[key] = Sandbox(key).start()
        return _SANDBOXES[key]


def connection(spec: CloudSpec, settings: ProviderSettings) -> tuple[Endpoint, object, Any]:
    """Endpoint, credentials and the embedded sandbox (None for a real cloud or an explicit URL) of one cloud.

    The sandbox always gets its own built-in key pair: a user's real credentials never reach it.
    """
    endpoint = settings.endpoint(spec.key)
    family = spec.credentials
    if endpoint.kind == "sandbox":
        sandbox = sandbox_package()
        box = embedded_sandbox(settings.sandbox_db)
        key_id, secret = (getattr(sandbox, name) for name in family.sandbox_pair)
        return Endpoint("url", "http", box.endpoint), family.make(key_id, secret, None, "sandbox"), box
    credentials = settings.credentials_for(family.name)
    if credentials is None:
        raise ConfigError(
            f"no {family.title} credentials for {spec.key}: {family.hint()}; or set "
            f"cdn-prefetch:endpoints.{spec.key} to 'sandbox' to try it locally"
        )
    return endpoint, credentials, None


def adapter_for(destination: Mapping[str, Any], settings: ProviderSettings) -> CloudAdapter:
    """The adapter for one destination (``{"provider": ..., <scope keys>}``), built by its cloud's module."""
    try:
        spec = cloud(destination.get("provider"))
    except UnknownCloud as exc:
        raise ConfigError(exc.args[0]) from None
    endpoint, credentials, box = connection(spec, settings)
    set_rate_share(settings.rate_share)  # the process's limiters: a known share of each account limit
    module = importlib.import_module(adapter_module(spec.adapter))
    if box is not None and hasattr(module, "prepare_sandbox"):
        module.prepare_sandbox(box, destination)
    return module.build(destination, endpoint, credentials)
