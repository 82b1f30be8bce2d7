"""Client-side rate limiting shared by every call in one provider process.

The provider host runs up to four RPCs at once, and the clouds count requests per account and
action (20/s for Tencent APIs), so the limiter is process-wide and thread-safe.

When does the server count a request? Somewhere between our send and its answer: the sandbox
counts it when its handler gets to it, after reading and authenticating it, and a real gateway
when the request reaches it. Counting from the send alone is not enough: a request that reaches
the server late (a busy server, a slow first connection) is counted in a later window than ours,
and the request sent one window after ours can then land in the same server window as it (one
CDN submit out of 303 was throttled that way at 100,000 targets). So ``request()`` counts a call
from its send until its answer has arrived, and for one window after that: the server's count of
it lies inside that span, whatever the delays, so the server never sees more than ``limit`` of
ours in any window of its own.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Hashable, Iterator, Optional

IN_FLIGHT = float("inf")  # the stamp of a request whose answer has not arrived: it counts until it does


class SlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds (a strict sliding window)."""

    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.02,
    ):
        self.limit = limit
        self.window = window
        self.margin = margin  # slack for a server clock that ticks a little differently from ours
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        # Per key, one mutable stamp per counted request: [send or answer time], or [IN_FLIGHT].
        self._stamps: dict[Hashable, list[list[float]]] = {}

    @contextmanager
    def request(self, key: Hashable) -> Iterator[float]:
        """Hold a slot for one request while it is in flight (yields the seconds waited for it).

        The slot counts from the send until the answer (or the error) arrives, and then for one
        window: see the module docstring for why that is what keeps the server's count in bounds.
        """
        stamp, waited = self._take(key, IN_FLIGHT)
        try:
            yield waited
        finally:
            with self._lock:
                stamp[0] = self._clock()
                self._answered.notify_all()

    def acquire(self, key: Hashable) -> float:
        """Count one request from now (its send); returns the seconds waited.

        For callers that cannot say when the answer arrived; prefer ``request()``.
        """
        return self._take(key, None)[1]

    def _take(self, key: Hashable, initial: Optional[float]) -> tuple[list[float], float]:
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                span = self.window + self.margin
                stamps = self._stamps.setdefault(key, [])
                # The same sum as the delay below, so that sleeping that delay always frees the slot.
                stamps[:] = [s for s in stamps if s[0] + span > now]
                if len(stamps) < self.limit:
                    stamp = [now if initial is None else initial]
                    stamps.append(stamp)
                    return stamp, waited
                oldest = min(s[0] for s in stamps)
                if oldest == IN_FLIGHT:
                    # Every slot is held by a request still in flight: its answer frees the slot
                    # one window later, so wait for an answer (the timeout only re-checks).
                    self._answered.wait(timeout=self.window)
                    waited += max(0.0, self._clock() - now)
                    continue
                delay = oldest + span - now
            self._sleep(delay)
            waited += delay


# One limiter per process: 20 requests/s per (cloud, action), the documented Tencent limit.
TENCENT_LIMITER = SlidingWindowLimiter(limit=20, window=1.0)
