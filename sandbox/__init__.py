"""A local emulator of the cloud prefetch APIs: the product's default backend and every test's.

It speaks the real wire protocols (Tencent API 3.0 with TC3-HMAC-SHA256 for EdgeOne and CDN, and
UCloud's SHA1-signed RetCode API for UCDN), so the official SDKs work against it unchanged; its state
is one SQLite file that tests and the CLI steer directly: who owns which zone and domain
(`sandbox.accounts`; two built-in key pairs per cloud, `sandbox.keys`), outcome rules, settings, and faults
(`SandboxStore.add_fault`, `python -m sandbox fault ...`) that make it throttle, fail, stall, reset
or answer garbage the way the real clouds and networks do (see `sandbox.faults`).
"""

from .keys import (
    OTHER_SECRET_ID,
    OTHER_SECRET_KEY,
    OTHER_UCLOUD_PRIVATE_KEY,
    OTHER_UCLOUD_PUBLIC_KEY,
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
)
from .server import Sandbox
from .store import SandboxStore

__all__ = [
    "Sandbox", "SandboxStore", "SANDBOX_SECRET_ID", "SANDBOX_SECRET_KEY",
    "SANDBOX_UCLOUD_PUBLIC_KEY", "SANDBOX_UCLOUD_PRIVATE_KEY", "OTHER_SECRET_ID", "OTHER_SECRET_KEY",
    "OTHER_UCLOUD_PUBLIC_KEY", "OTHER_UCLOUD_PRIVATE_KEY",
]
