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

Several processes on one account (issue 19) share that limit, and each one's throttling answers
are all it learns of the others. So each key's limit is adaptive (adaptive_rate.py): callers
report every answer (``answered``), a throttling one cuts the key's rate, and the window's limit
follows the rate (at least one request a window). More rules keep the throttles few:

- Pacing, once throttled: requests are then spaced ``1 / rate`` apart, never in bursts. Not before,
  for reads: alone on an account a key may send as fast as the window allows (100 history pages
  arrive 0.45 s sooner than paced ones, 7 % of a refresh). Writes that come in bursts (submits,
  ``request(key, paced=True)``) are paced from the start and have one request in flight at a time:
  several resources submit at once, so a process that meets a full window unpaced has all of them
  in flight (3 to 5 per process, 12 of the ~20 throttles of 4 processes), and all of them are
  throttled; with one in flight, one is. Pacing alone was not enough: a busy server answers later
  than the paced gap, so two or three paced submits were still out. 4 processes: 13-15 throttled
  submits a run before, 7-8 after. "One" is as many as the rate needs over the key's answer time
  (``ceil(rate * latency)``, at least one; latency a moving average of its answers): a submit
  answered within 1/20 s has one in flight, but a cloud far away (or a busy one: 1,000 URLs a submit
  took 85 ms on a loaded machine) would otherwise cap a process at 1/latency (11.5 submits/s there,
  not 20). The average starts at 0, so a slow first answer (a cold connection) opens no burst; after a
  throttle the cut rate lowers the cap with it. 4 processes on one account: 2.9-4.1 % of calls
  throttled with it (bench/RESULTS.md, session 7), as with one in flight.
- A hold: a throttling answer means the account's window is full now, and it stays full until
  its oldest requests leave it. The key resumes when its own oldest answered request of that
  window has left it (the others started about when it did; in a steady state that is at once).
  Sending at the cut rate before then would only collect more throttles.
- One cut per reaction: a throttled request sent before the last cut tells what the process did
  before it reacted, so it does not cut again (as TCP cuts its window once per round trip).
- A share learnt on one key is taken by the keys of this limiter not throttled yet: the processes
  that share the account's submits are likely to share its history reads next, and learning that
  on each action costs another round of throttles (7 at once when 4 processes' polls began).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterator, Optional

from .adaptive_rate import AdaptiveRate

IN_FLIGHT = float("inf")  # the stamp of a request whose answer has not arrived: it counts until it does
LATENCY_WEIGHT = 0.3  # of the newest answer in a key's moving average of answer times


@dataclass
class Slot:
    """One request's hold on its key: when it was sent and how long it waited for that."""

    key: Hashable
    sent: float
    waited: float
    stamp: list[float] = field(repr=False)


@dataclass
class _Lane:
    """One key's state: its counted requests, its adaptive rate, its pacing and its hold."""

    rate: AdaptiveRate
    stamps: list[list[float]] = field(default_factory=list)  # [send or answer time], or [IN_FLIGHT]
    due: float = -math.inf  # when the next request is due on the paced schedule (once throttled)
    hold_until: float = -math.inf
    last_cut: float = -math.inf
    paced: bool = False  # paced from the start (bursty writes), not only once throttled
    answered: deque = field(default_factory=deque)  # send times of recent answered, unthrottled requests
    latency: float = 0.0  # moving average of send -> answer (paced keys: how many may be in flight)


class SlidingWindowLimiter:
    """At most ``limit`` requests per key in any ``window`` seconds (a strict sliding window),
    fewer while that key's answers say the account is shared (see the module docstring)."""

    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.02,
        share: Optional[float] = None,
    ):
        self.limit = limit
        self.window = window
        self.margin = margin  # slack for a server clock that ticks a little differently from ours
        self._share = share
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._lanes: dict[Hashable, _Lane] = {}
        self._learnt: Optional[float] = None  # the share of a limit the last measured throttle showed

    def set_share(self, share: Optional[float]) -> None:
        """Known sharing (``cdn-prefetch:rateShare``): a fraction of the limit (<= 1) or requests/s (> 1),
        the ceiling every key starts at and recovers to; None: the whole limit. A new share starts every
        key afresh; the same share again changes nothing (it is applied for every resource)."""
        with self._lock:
            if share != self._share:
                self._share, self._learnt = share, None
                self._lanes.clear()

    def rate(self, key: Hashable) -> float:
        """The requests/s ``key`` allows itself now."""
        with self._lock:
            return self._lane(key).rate.rate

    @contextmanager
    def request(self, key: Hashable, *, paced: bool = False) -> Iterator[Slot]:
        """Hold a slot for one request while it is in flight (yields it: pass it to ``answered``).

        The slot counts from the send until the answer (or the error) arrives, and then for one
        window: see the module docstring for why that is what keeps the server's count in bounds.
        ``paced``: the key's requests come in bursts (submits): spaced ``1 / rate`` apart from the start.
        """
        slot = self._take(key, IN_FLIGHT, paced)
        try:
            yield slot
        finally:
            with self._lock:
                slot.stamp[0] = self._clock()
                self._answered.notify_all()

    def acquire(self, key: Hashable) -> float:
        """Count one request from now (its send); returns the seconds waited.

        For callers that cannot say when the answer arrived; prefer ``request()``.
        """
        return self._take(key, None, False).waited

    def answered(self, slot: Slot, throttled: bool) -> None:
        """What the answer to ``slot``'s request was: a throttling one cuts its key's rate and holds it."""
        with self._lock:
            lane, now = self._lane(slot.key), self._clock()
            if slot.stamp[0] != IN_FLIGHT:
                took = slot.stamp[0] - slot.sent
                # From 0: one slow first answer (a cold connection) does not open the lane to a burst at once.
                lane.latency = (1 - LATENCY_WEIGHT) * lane.latency + LATENCY_WEIGHT * took
            while lane.answered and lane.answered[0] <= now - self.window:
                lane.answered.popleft()
            if not throttled:
                lane.answered.append(slot.sent)
                lane.rate.succeeded()
                return
            if slot.sent < lane.last_cut:
                return  # sent before this process reacted to the last throttle: nothing new
            # What it was getting counts only over a full window of sending since its last hold ended:
            # just after one, its few answers would cut it to almost nothing.
            measured = now - self.window >= lane.hold_until
            achieved = len(lane.answered) / self.window if measured else None
            lane.rate.throttled(achieved=achieved)
            # Resume when this process's oldest answered request of the full window has left it.
            oldest = lane.answered[0] if lane.answered else now - self.window
            lane.hold_until = max(lane.hold_until, oldest + self.window + self.margin, now)
            lane.last_cut = now
            lane.due = lane.hold_until  # paced from the hold's end
            lane.answered.clear()
            if achieved is not None:
                # The account is shared, likely by the same processes on its other actions too: the keys
                # not throttled yet take the share learnt here instead of each learning it by throttles.
                self._learnt = achieved
                for other in self._lanes.values():
                    if other.last_cut == -math.inf:
                        self._assume(other, now)

    def _assume(self, lane: _Lane, now: float) -> None:
        """Start ``lane`` at the share learnt on another key, as if it had been throttled there."""
        if self._learnt is not None:
            lane.rate.throttled(achieved=self._learnt)
            lane.last_cut = now

    def _lane(self, key: Hashable) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            rate = AdaptiveRate(self.limit / self.window, share=self._share, clock=self._clock)
            lane = self._lanes[key] = _Lane(rate)
            self._assume(lane, self._clock())
        return lane

    def reserve(self, key: Hashable, initial: Optional[float] = None, *,
                paced: bool = False) -> tuple[Optional[Slot], float]:
        """Take a slot for ``key`` now if one is free: (the slot, 0.0), else (None, seconds to wait before
        asking again; ``math.inf`` when every slot is held by a request in flight)."""
        with self._lock:
            return self._reserve(key, initial, paced)

    def _reserve(self, key: Hashable, initial: Optional[float], paced: bool) -> tuple[Optional[Slot], float]:
        now = self._clock()
        lane = self._lane(key)
        lane.paced = lane.paced or paced
        rate = lane.rate.rate
        span = self.window + self.margin
        # The same sum as the delay below, so that sleeping that delay always frees the slot.
        lane.stamps[:] = [s for s in lane.stamps if s[0] + span > now]
        allowed = min(self.limit, max(1, math.ceil(rate * self.window)))  # the window follows the rate
        waits = [lane.hold_until - now]
        if lane.paced or lane.last_cut > -math.inf:  # bursty writes, or the account is known to be shared
            waits.append(lane.due - now)
        if lane.paced:  # a bursty write: as few in flight as its rate needs over its answer time (module docstring)
            flying = sum(1 for s in lane.stamps if s[0] == IN_FLIGHT)
            if flying >= max(1, math.ceil(rate * lane.latency)):
                waits.append(math.inf)
        if len(lane.stamps) >= allowed:
            oldest = min(s[0] for s in lane.stamps)
            waits.append(oldest + span - now)  # inf: every slot is held by a request in flight
        wait = max(waits)
        if wait > 0:
            return None, wait
        stamp = [now if initial is None else initial]
        lane.stamps.append(stamp)
        lane.due = max(lane.due, now) + 1.0 / rate  # paced: the next one is due 1/rate later
        return Slot(key, now, 0.0, stamp), 0.0

    def _take(self, key: Hashable, initial: Optional[float], paced: bool) -> Slot:
        waited = 0.0
        while True:
            with self._lock:
                start = self._clock()
                slot, delay = self._reserve(key, initial, paced)
                if slot is not None:
                    slot.waited = waited
                    return slot
                if delay == math.inf:
                    # Every slot is held by a request still in flight: its answer frees the slot
                    # one window later, so wait for an answer (the timeout only re-checks).
                    self._answered.wait(timeout=self.window)
                    waited += max(0.0, self._clock() - start)
                    continue
            self._sleep(delay)
            waited += delay


PROCESS_LIMITERS: list[SlidingWindowLimiter] = []
"""The limiters every adapter of this process shares by default (one per cloud's limit): what
``cdn-prefetch:rateShare`` applies to (``set_rate_share``)."""


def process_limiter(limit: int, window: float = 1.0, **options: float) -> SlidingWindowLimiter:
    """A limiter shared by the whole process, registered for ``set_rate_share``."""
    limiter = SlidingWindowLimiter(limit, window, **options)
    PROCESS_LIMITERS.append(limiter)
    return limiter


def set_rate_share(share: Optional[float]) -> None:
    """The share of each account limit this process may use (``cdn-prefetch:rateShare``; None: all of it)."""
    for limiter in PROCESS_LIMITERS:
        limiter.set_share(share)


# One limiter per process: 20 requests/s per (cloud, action), the documented Tencent limit.
TENCENT_LIMITER = process_limiter(limit=20, window=1.0)
