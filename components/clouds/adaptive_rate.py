"""The request rate one provider process allows itself when it may share an account's limit.

Why: several pipelines on one account share its limit (20/s per action for Tencent), and the
clouds' throttling answers are the only coordination between them. So, as botocore's ``adaptive``
retry mode does, each process starts at the documented limit, cuts its rate on a throttling
answer (multiplicative decrease, ``BETA``) and recovers along a CUBIC curve: fast while far below
the rate at which it was last throttled, slowly near it, probing above it only after a while.
Pure logic over an injected monotonic clock; wiring it into the limiters is separate.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

BETA = 0.7  # the share of the rate kept after a throttling answer (botocore's value)
SCALE = 0.4  # CUBIC's scale constant (botocore's value)
MIN_RATE = 0.5  # never below one request per two seconds, so recovery always gets answers


def share_rate(limit: float, share: Optional[float]) -> float:
    """The starting ceiling: ``share`` is a fraction of ``limit`` (<= 1) or requests/s (> 1)."""
    if share is None:
        return limit
    if share <= 0:
        raise ValueError("rateShare must be positive: a fraction of the limit or requests/s")
    return min(limit, share * limit if share <= 1 else share)


class AdaptiveRate:
    """The allowed rate (requests/s) for one key, following throttling answers."""

    def __init__(self, limit: float, *, share: Optional[float] = None, clock: Callable[[], float]):
        self.ceiling = share_rate(limit, share)
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = self.ceiling
        self._w_max = self.ceiling  # the rate at the last throttling answer
        self._last_throttle: Optional[float] = None

    @property
    def rate(self) -> float:
        with self._lock:
            return self._rate

    def throttled(self) -> float:
        """A throttling answer arrived: cut the rate; returns the new rate."""
        with self._lock:
            self._w_max = self._rate
            self._rate = max(MIN_RATE, self._rate * BETA)
            self._last_throttle = self._clock()
            return self._rate

    def succeeded(self) -> float:
        """An answer that was not throttled: move along the CUBIC recovery; returns the rate."""
        with self._lock:
            if self._last_throttle is None:
                return self._rate
            t = self._clock() - self._last_throttle
            k = (self._w_max * (1 - BETA) / SCALE) ** (1 / 3)
            self._rate = max(self._rate, min(self.ceiling, SCALE * (t - k) ** 3 + self._w_max))
            return self._rate
