"""What every emulated protocol shares: the parsed HTTP request, the reply, the rate limiter.

A protocol module (Tencent API 3.0, UCloud) turns an `HttpRequest` into a `Reply`;
the server does the HTTP plumbing, JSON encoding and request logging, so protocols stay testable
without sockets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping

from .steering import split_url
from .store import SandboxStore


@dataclass(frozen=True)
class HttpRequest:
    method: str  # "GET" / "POST"
    path: str  # without the query string
    query: str  # raw query string, exactly as received (it is signed as is)
    headers: Mapping[str, str]  # lowercase names
    body: bytes
    client: str = ""


@dataclass(frozen=True)
class Identity:
    """What a request names, read before it is handled: faults match on it, and a request a fault
    cuts off before its handler is still logged with it. Best effort: unreadable parts are None."""

    service: str | None
    action: str | None
    params: Any = None
    secret_id: str | None = None


@dataclass
class Reply:
    """A JSON body to send with HTTP 200, plus what the request log should record about it."""

    body: dict[str, Any]
    request_id: str
    service: str | None = None
    action: str | None = None
    params: Any = None
    secret_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (UCloud's request uuid)


class RateLimiter:
    """A sliding one-second window per key, counted in the store's file (sandbox/rate_table.py): every
    server on one file, in any process, shares one count per account and action, as a cloud's gateway does."""

    def __init__(self, store: SandboxStore, window_seconds: float = 1.0, clock: Callable[[], float] = time.time):
        self._store = store
        self._window = window_seconds
        self._clock = clock  # wall time by default: the one clock every process reads alike

    def allow(self, key: Hashable, limit: int) -> bool:
        """Admit and count one request, or refuse it. Refused requests do not count."""
        return self._store.admit(repr(key), limit, self._clock(), self._window)


@dataclass
class Env:
    """What a protocol handler may use: the store, the accepted credentials, the limiter, a clock."""

    store: SandboxStore
    credentials: Mapping[str, str]  # Tencent SecretId -> SecretKey
    limiter: RateLimiter | None = None  # None: the store's shared count (set after init)
    clock: Callable[[], float] = time.time
    ucloud_credentials: Mapping[str, str] = field(default_factory=dict)  # UCloud PublicKey -> PrivateKey
    clock_offset: float = 0.0
    """How far the cloud's clock is ahead of `clock` (negative: behind), set by a clock_skew fault. Tencent
    checks TC3 timestamps on it; UCloud reads and writes every time of its API on it (sandbox.faults)."""

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(self.store)


def is_http_url(url: str) -> bool:
    """What every cloud's submit takes as a URL: http(s), a host, no surrounding blanks."""
    parts = split_url(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and url == url.strip()
