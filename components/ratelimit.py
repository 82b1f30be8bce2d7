"""Client-side rate limiting shared by every call in one provider process.

The provider host runs up to four RPCs at once, and the clouds count requests per account and
action (20/s for Tencent APIs), so the limiter is process-wide and thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Hashable


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions per key in any ``window`` seconds (a strict sliding window)."""

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
        self.margin = margin  # slack for the server's clock reading our request a little later
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: dict[Hashable, deque[float]] = {}

    def acquire(self, key: Hashable) -> float:
        """Block until a request for ``key`` may go out; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                sent = self._sent.setdefault(key, deque())
                while sent and now - sent[0] >= self.window + self.margin:
                    sent.popleft()
                if len(sent) < self.limit:
                    sent.append(now)
                    return waited
                delay = sent[0] + self.window + self.margin - now
            self._sleep(delay)
            waited += delay


# One limiter per process: 20 requests/s per (cloud, action), the documented Tencent limit.
TENCENT_LIMITER = SlidingWindowLimiter(limit=20, window=1.0)
