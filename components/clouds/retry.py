"""Retries of our own: exponential backoff with full jitter and an overall deadline.

Only errors that prove the request did no work (throttling) or that are safe to repeat
(transient errors on read-only calls) are retried. Quota, parameter and auth errors fail at once.
A submit is retried only when throttled: after a timeout or a 5xx the cloud may have accepted it,
and a blind re-send would duplicate the prefetch (the caller re-reads history instead).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from .base import CloudError

T = TypeVar("T")

THROTTLED, TRANSIENT = "throttled", "transient"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 15.0
    deadline: float = 120.0  # seconds for all attempts of one call

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return rng() * min(self.max_delay, self.base_delay * (2 ** attempt))


DEFAULT_POLICY = RetryPolicy()


def call_with_retry(
    fn: Callable[[], T],
    *,
    read_only: bool,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    min_delay: float = 0.0,
) -> T:
    """Run ``fn``; retry throttled errors always, transient ones only for read-only calls."""
    start = clock()
    attempt = 0
    while True:
        try:
            return fn()
        except CloudError as error:
            retryable = error.kind == THROTTLED or (read_only and error.kind == TRANSIENT)
            attempt += 1
            if not retryable or attempt >= policy.max_attempts:
                raise
            pause = max(min_delay, policy.delay(attempt))
            if clock() - start + pause > policy.deadline:
                raise
            sleep(pause)
