import threading
import time

from components.ratelimit import SlidingWindowLimiter


class ManualClock:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += max(seconds, 0.0)


def test_never_more_than_the_limit_in_any_window():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock=clock, sleep=clock.sleep, margin=0.0)
    stamps = []
    for _ in range(100):
        limiter.acquire("teo:DescribePrefetchTasks")
        stamps.append(clock())
    for i in range(len(stamps) - 20):
        assert stamps[i + 20] - stamps[i] >= 1.0  # the 21st request is a full window after the 1st
    assert stamps[-1] >= 4.0  # 100 requests at 20/s: at least four windows


def test_keys_are_limited_independently():
    clock = ManualClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock, sleep=clock.sleep, margin=0.0)
    limiter.acquire("a")
    limiter.acquire("b")
    assert clock() == 0.0
    limiter.acquire("a")
    assert clock() == 10.0


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
