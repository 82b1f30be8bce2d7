import math
import threading
import time
from contextlib import ExitStack, contextmanager

import pytest

from components.clouds.adaptive_rate import BETA
from components.clouds.ratelimit import IN_FLIGHT, SlidingWindowLimiter
from tests.fakes import FakeClock


def test_never_more_than_the_limit_in_any_window():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    stamps = []
    for _ in range(100):
        limiter.acquire("teo:DescribePrefetchTasks")
        stamps.append(clock.monotonic())
    for i in range(len(stamps) - 20):
        assert stamps[i + 20] - stamps[i] >= 1.0 - 1e-9  # the 21st request is a full window after the 1st
    assert stamps[-1] >= 4.0  # 100 requests at 20/s: at least four windows


def test_keys_are_limited_independently():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    limiter.acquire("a")
    limiter.acquire("b")
    assert clock.monotonic() == 0.0
    limiter.acquire("a")
    assert clock.monotonic() == 10.0


def test_threads_share_one_budget():
    """The provider host runs up to four calls at once: together they must stay within the limit."""
    limiter = SlidingWindowLimiter(10, 0.5, margin=0.0)
    stamps, lock = [], threading.Lock()

    def worker():
        for _ in range(10):
            limiter.acquire("shared")
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 40
    for i in range(len(stamps) - 10):
        assert stamps[i + 10] - stamps[i] >= 0.5 - 0.01


def refused_by_the_sandbox(send_through, delays, db):
    """Requests sent one after another through ``send_through(limiter, key)`` (our default margin).
    Each reaches the server ``delay`` after its send, where the sandbox's own limiter counts it, and
    its answer comes back then. Returns the numbers of the requests the sandbox refused."""
    from sandbox import SandboxStore
    from sandbox.wire import RateLimiter

    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep)
    server = RateLimiter(SandboxStore(db), 1.0, clock=clock.monotonic)
    refused = []
    for n, delay in enumerate(delays):
        with send_through(limiter, "cdn:PushUrlsCache"):
            clock.sleep(delay)
            if not server.allow("cdn:PushUrlsCache", 20):
                refused.append(n)
    return refused


@contextmanager
def counted_from_send(limiter, key):
    limiter.acquire(key)
    yield


def test_a_request_counts_until_its_answer_so_a_late_arrival_is_never_throttled(tmp_path):
    """The first request reaches the server 0.3 s after it was sent, the others at once: counted from
    its send only, the 21st request lands in the same server window as the first."""
    delays = [0.3] + [0.0] * 40
    assert refused_by_the_sandbox(lambda limiter, key: limiter.request(key), delays, tmp_path / "a.db") == []
    assert refused_by_the_sandbox(counted_from_send, delays, tmp_path / "b.db") == [20]  # what the 20 ms margin let through


def test_requests_in_flight_hold_their_slots_until_answered():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    answer = threading.Event()
    entered = []

    def slow():
        with limiter.request("k"):
            answer.wait(10)
        clock.sleep(0.5)  # the answers arrived at 0.0; time goes on

    def third():
        with limiter.request("k"):
            entered.append(clock.monotonic())

    holders = [threading.Thread(target=slow) for _ in range(2)]
    for t in holders:
        t.start()
    waiter = threading.Thread(target=third)
    waiter.start()
    waiter.join(0.3)
    assert entered == [] and waiter.is_alive()  # both slots are held while their answers are out
    answer.set()
    waiter.join(10)
    for t in holders:
        t.join(10)
    assert entered and entered[0] >= 1.0  # a full window after the answers arrived


# -- adaptive: several processes on one account (issue 19) ----------------------------------------------------
def answered(limiter, key, clock, *, throttled=False, latency=0.05):
    """One request through ``limiter``: sent when it allows, answered ``latency`` later, reported as told."""
    with limiter.request(key) as slot:
        clock.sleep(latency)
    limiter.answered(slot, throttled=throttled)
    return slot


def test_a_bursty_write_is_paced_with_one_in_flight_from_the_start_and_a_read_is_not():
    """Several resources submit at once: unpaced, all of them would be in flight when a full window's
    throttle comes back, and all throttled (ratelimit.py's docstring)."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    first, _ = limiter.reserve("submit", IN_FLIGHT, paced=True)
    assert first is not None
    assert limiter.reserve("submit", IN_FLIGHT, paced=True) == (None, math.inf)  # one in flight at a time
    clock.sleep(0.01)
    first.stamp[0] = clock.monotonic()  # its answer is in
    slot, wait = limiter.reserve("submit", IN_FLIGHT, paced=True)
    assert slot is None and wait == pytest.approx(1 / 20 - 0.01)  # and the next is due 1/rate after the first
    clock.sleep(wait)
    assert limiter.reserve("submit", IN_FLIGHT, paced=True)[0] is not None
    reads = [limiter.reserve("history", IN_FLIGHT) for _ in range(5)]
    assert all(slot is not None and wait == 0.0 for slot, wait in reads)  # reads: at once, five in flight


def paced_submits(latency, *, requests=100, threads=8):
    """Simulated time, one process alone: ``threads`` submitting through one paced key, each answer
    ``latency`` after its send. Returns (seconds to send them all, most in flight at once)."""
    import heapq

    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep)
    events, left, flying, most = [(0.0, t, None) for t in range(threads)], requests, 0, 0
    while events:
        at, t, slot = heapq.heappop(events)
        clock.sleep(at - clock.monotonic())
        if slot is None:
            if left <= 0:
                continue
            slot, wait = limiter.reserve("submit", IN_FLIGHT, paced=True)
            if slot is None:
                heapq.heappush(events, (at + (0.005 if wait == math.inf else wait), t, None))
                continue
            left, flying = left - 1, flying + 1
            most = max(most, flying)
            heapq.heappush(events, (at + latency, t, slot))
            continue
        slot.stamp[0] = at
        limiter.answered(slot, throttled=False)
        flying -= 1
        heapq.heappush(events, (at, t, None))
    return clock.monotonic(), most


@pytest.mark.parametrize("latency", [0.02, 0.12, 0.3])
def test_paced_submits_keep_as_few_in_flight_as_the_rate_needs_over_their_answer_time(latency):
    """One in flight while answers come within 1/rate; more for a far (or busy) cloud, which one in flight
    would cap at 1/latency: 100 submits at 0.3 s each would take 30 s instead of about 5 windows."""
    seconds, most = paced_submits(latency)
    assert most == max(1, math.ceil(20 * latency))
    # The window counts each request until its answer + 1 s (module docstring): 20 per (1 + latency) s,
    # and a window more while the average answer time is learnt (it starts at 0: one in flight).
    assert seconds <= 6 * (1.0 + latency + 0.02)


def test_a_throttle_cuts_the_rate_from_the_share_the_process_had_and_holds_the_key_until_that_share_left():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    first = answered(limiter, "k", clock)
    for _ in range(11):
        answered(limiter, "k", clock)  # 12 answered within the window: this process's share of it
    throttled = answered(limiter, "k", clock, throttled=True)
    assert limiter.rate("k") == pytest.approx(12 * BETA)
    after = [answered(limiter, "k", clock).sent for _ in range(6)]
    assert after[0] >= first.sent + 1.0 > throttled.sent  # held until its oldest request left the window
    gaps = [b - a for a, b in zip(after, after[1:])]
    assert min(gaps) >= 1 / limiter.rate("k") - 1e-9  # then paced, never in a burst


def test_a_throttled_request_sent_before_the_last_cut_does_not_cut_again():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    with ExitStack() as in_flight:
        slots = [in_flight.enter_context(limiter.request("k")) for _ in range(3)]
        clock.sleep(0.05)
    limiter.answered(slots[0], throttled=True)
    cut = limiter.rate("k")
    for slot in slots[1:]:
        limiter.answered(slot, throttled=True)  # in flight when the first answer came: nothing new
    assert limiter.rate("k") == cut == pytest.approx(20 * BETA ** 4)  # no share yet: four cuts at most
    answered(limiter, "k", clock, throttled=True)  # sent after the cut: the account is still full
    assert limiter.rate("k") == pytest.approx(cut * BETA)


def test_a_share_learnt_on_one_action_is_taken_by_the_others_not_throttled_yet():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    answered(limiter, "history", clock)
    for _ in range(10):
        answered(limiter, "submit", clock)
    answered(limiter, "submit", clock, throttled=True)
    assert limiter.rate("history") == limiter.rate("submit") == pytest.approx(10 * BETA)
    assert limiter.rate("quota") == pytest.approx(10 * BETA)  # a key first used afterwards too


def test_a_known_share_sets_the_ceiling_and_applying_it_again_keeps_what_was_learnt():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    limiter.set_share(0.25)
    stamps = [answered(limiter, "k", clock, latency=0.0).sent for _ in range(10)]
    assert stamps[5] - stamps[0] >= 1.0  # 5 a window
    answered(limiter, "k", clock, throttled=True)
    cut = limiter.rate("k")
    limiter.set_share(0.25)  # every adapter built applies the stack's share again
    assert limiter.rate("k") == cut < 5
    limiter.set_share(None)
    assert limiter.rate("k") == 20


def test_processes_sharing_an_account_back_off_to_it_and_every_request_gets_through(tmp_path):
    """Four processes (four limiters) start together on one account of the sandbox's rate table, 20/s, each with
    100 requests on two threads. Reporting the answers, they back off to the shared limit: few throttles, every
    request admitted once, close to the time the limit allows; fewer still with the submits paced from the
    start. Not reporting them (a fixed limit per process, as
    before issue 19), every process assumes the whole limit and leans on retries: over a third of the calls are
    throttled. (Simulated time, seeded: the same figures every run; bench/shared_account_bench.py measures.)"""
    adaptive = share_one_account(tmp_path / "adaptive.db", report=True)
    fixed = share_one_account(tmp_path / "fixed.db", report=False)
    unpaced = share_one_account(tmp_path / "unpaced.db", report=True, paced=False)
    assert adaptive["admitted"] == fixed["admitted"] == unpaced["admitted"] == 400
    assert fixed["throttled"] >= 0.35 * fixed["calls"]
    assert adaptive["throttled"] <= 0.05 * adaptive["calls"]
    # Submits paced from the start with one in flight (as TencentCaller asks): the first contention costs a
    # throttle per process, not one per request each had in flight (29 of 429 calls unpaced, 18 of 418 paced;
    # with four threads a process, 34 of 434 and 23 of 423).
    assert adaptive["throttled"] <= 0.7 * unpaced["throttled"]
    paced = share_one_account(tmp_path / "paced.db", report=True, threads=4)
    unpaced = share_one_account(tmp_path / "unpaced4.db", report=True, threads=4, paced=False)
    assert paced["admitted"] == unpaced["admitted"] == 400
    assert paced["throttled"] <= 0.7 * unpaced["throttled"]
    assert adaptive["throttled"] * 5 <= fixed["throttled"] * fixed["calls"] / adaptive["calls"]
    assert adaptive["seconds"] <= 1.35 * 400 / 20


def share_one_account(db, *, report, paced=True, processes=4, requests=100, threads=2, latency=0.05):
    """Simulated time: each thread's next event (a send, or the answer to its request) in time order."""
    import heapq
    import random

    from sandbox import SandboxStore
    from sandbox.wire import RateLimiter

    clock, rng = FakeClock(), random.Random(7)
    server = RateLimiter(SandboxStore(db), 1.0, clock=clock.monotonic)
    limiters = [SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep) for _ in range(processes)]
    left = [requests] * processes
    counts = {"calls": 0, "throttled": 0, "admitted": 0, "seconds": 0.0}
    events = [(rng.uniform(0, 0.05), p, t, None) for p in range(processes) for t in range(threads)]
    while events:
        at, p, t, slot = heapq.heappop(events)
        clock.sleep(at - clock.monotonic())
        if slot is None:  # this thread sends its process's next request when the limiter lets it
            if left[p] <= 0:
                continue
            slot, wait = limiters[p].reserve("teo:CreatePrefetchTask", IN_FLIGHT, paced=paced)
            if slot is None:
                heapq.heappush(events, (at + (0.01 if wait == math.inf else wait), p, t, None))
            else:
                left[p] -= 1
                heapq.heappush(events, (at + latency, p, t, slot))
            continue
        admitted = server.allow(("sandbox-id", "teo", "CreatePrefetchTask"), 20)
        slot.stamp[0] = at  # the answer is in (what request() does when its block ends)
        if report:
            limiters[p].answered(slot, throttled=not admitted)
        counts["calls"] += 1
        counts["admitted" if admitted else "throttled"] += 1
        if not admitted:
            left[p] += 1  # retried (retry.py: after a jittered backoff)
        heapq.heappush(events, (at + (0.0 if admitted else rng.uniform(0, 1.0)), p, t, None))
        counts["seconds"] = at
    return counts
