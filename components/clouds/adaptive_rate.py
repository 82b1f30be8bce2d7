"""The request rate one provider process allows itself when it may share an account's limit.

Why: several pipelines on one account share its limit (20/s per action for Tencent), and the
clouds' throttling answers are the only coordination between them. So, as botocore's ``adaptive``
retry mode does, each process starts at the documented limit, cuts its rate on a throttling
answer (multiplicative decrease, ``BETA``) and recovers along a CUBIC curve: fast while far below
the rate at which it was last throttled, slowly near it, probing above it only after a while.

Where this differs from botocore, and why (figures: bench/shared_account_bench.py, 4 processes):

- The cut starts from the process's share of the full window (its answered requests in the last
  window), as botocore cuts from its measured send rate: a throttling answer says the account's
  window is full, and N processes that each keep ``BETA`` of their share keep ``BETA`` of the limit
  together. Cutting the allowed rate instead takes ``log(1/N) / log(BETA)`` rounds of throttles
  (4 for N = 4). But one answer never cuts below ``BETA ** 4`` of the rate: a process that started
  just before the window filled has no share yet, and its own cut would starve it.
- The recovery levels off at that share (``w_max``), not at the rate it was allowed.
- ``SCALE`` is 0.1, not 0.4: with 4 processes at 5/s each, 0.4 brings a process back to its share
  1.5 s after a cut and over it soon after, so each probes into a throttle about every 2 s; with
  0.1 it is 2.5 s and the probe above is gentler, and a process left alone still regains the whole
  limit within 8 s of answers. (Single bench runs while tuning: 0.4 threw 7-10 % of the calls, 0.1
  5-7 %, 0.2 no fewer than 0.1; 0.05 no fewer either, and left stragglers.)
- The recovery's clock runs only while answers come (``IDLE``): a key idle between poll rounds
  does not climb back to the full limit unused, to start its next round in a burst of throttles.

Pure logic over an injected monotonic clock; ratelimit.py applies it per key.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

BETA = 0.7  # the share of the rate kept after a throttling answer (botocore's value)
SCALE = 0.1  # CUBIC's scale constant (botocore's is 0.4: see the module docstring)
MIN_RATE = 0.5  # never below one request per two seconds, so recovery always gets answers
IDLE = 1.0  # at most this much of a spell without answers (beyond the paced gap) counts towards the recovery


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
        self.floor = min(MIN_RATE, self.ceiling / 10)  # one UCloud submit per 10 s may still back off
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = self.ceiling
        self._w_max = self.ceiling  # the rate at the last throttling answer
        self._last_throttle: Optional[float] = None
        self._busy = 0.0  # seconds of sending since the last throttle: the recovery's time
        self._last_answer = 0.0

    @property
    def rate(self) -> float:
        """The rate now: the recovery is a curve of the time since the last throttle, read when asked."""
        with self._lock:
            return self._recovered()

    def throttled(self, achieved: Optional[float] = None) -> float:
        """A throttling answer arrived: cut the rate; returns the new rate.

        ``achieved``: the rate this process was really getting (its answered requests in the last
        window), when it knows it: the recovery levels off there, and the cut starts from it, but
        goes no lower than four plain cuts at once (see the module docstring).
        """
        with self._lock:
            rate = self._recovered()
            share = rate if achieved is None else max(self.floor, min(rate, achieved))
            self._w_max = share
            self._rate = max(self.floor, BETA * max(share, BETA ** 3 * rate))
            self._last_throttle = self._last_answer = self._clock()
            self._busy = 0.0
            return self._rate

    def succeeded(self) -> float:
        """An answer that was not throttled: where the CUBIC recovery stands; returns the rate."""
        with self._lock:
            now = self._clock()
            self._busy += min(now - self._last_answer, self._idle())
            self._last_answer = now
            return self._recovered()

    def _idle(self) -> float:
        """The most of a spell without answers that counts: ``IDLE`` beyond the paced gap (a slow rate's
        own gaps between answers are not idleness)."""
        return IDLE + 1.0 / self._rate

    def _recovered(self) -> float:
        if self._last_throttle is not None:
            t = self._busy + min(self._clock() - self._last_answer, self._idle())
            k = (self._w_max * (1 - BETA) / SCALE) ** (1 / 3)
            self._rate = max(self._rate, min(self.ceiling, SCALE * (t - k) ** 3 + self._w_max))
        return self._rate
