import threading
import time
from contextlib import contextmanager

from components.clouds.ratelimit import SlidingWindowLimiter
from tests.fakes import FakeClock


def test_never_more_than_the_limit_in_any_window():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    stamps = []
    for _ in range(100):
        limiter.acquire("teo:DescribePrefetchTasks")
        stamps.append(clock.monotonic())
    for i in range(len(stamps) - 20):
        assert stamps[i + 20] - stamps[i] >= 1.0  # the 21st request is a full window after the 1st
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
