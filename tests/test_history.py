"""The shared history read: one read per scope, singleflight, windows, freshness, submits, bounds."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone

import pytest

import components.clouds.history as history_module
from components.clouds.base import CloudError
from components.clouds.history import HistoryCache, index
from components.model.status import HistoryRow, TargetState
from tests.fakes import FakeClock, FakeCloud

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
A, B, C = (f"https://cdn.example.com/{x}.js" for x in "abc")


class Shared(FakeCloud):
    """A fake cloud whose history is shared under ``key``; its reads can be held until released."""

    def __init__(self, key=("fake", "zone-a"), *, gate=None, fail=None):
        super().__init__(FakeClock(NOW))
        self.key, self.gate, self.fail = key, gate, fail
        self.started = threading.Event()
        self._inside_lock = threading.Lock()
        self.inside = self.most_inside = 0  # reads running at once, now and at most

    def history_key(self):
        return self.key

    def history(self, since, until):
        with self._inside_lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self.started.set()
            if self.gate is not None:
                assert self.gate.wait(10)
            if self.fail is not None:
                self.history_calls.append((since, until))
                raise self.fail
            return list(super().history(since, until))  # FakeCloud.history counts the call
        finally:
            with self._inside_lock:
                self.inside -= 1


def seeded(**kwargs):
    cloud = Shared(**kwargs)
    cloud.add_row(A, TargetState.WARM, NOW - timedelta(hours=3), "t1")
    cloud.add_row(B, TargetState.FAILED, NOW - timedelta(hours=2), "t2")
    cloud.add_row(A, TargetState.WARM, NOW - timedelta(hours=1), "t3")
    return cloud


def read(cache, cloud, since=NOW - DAY, until=NOW, urls=(A, B, C), fresh_after=NOW - timedelta(seconds=30),
         newer_than=0):
    return cache.read(cloud, since, until, urls=urls, fresh_after=fresh_after, newer_than=newer_than)


class CountingFuture(Future):
    """Counts the callers that started waiting on a read in flight (tests only)."""

    waiting = threading.Semaphore(0)

    def result(self, timeout=None):
        if not self.done():
            CountingFuture.waiting.release()
        return super().result(timeout)

    def exception(self, timeout=None):
        if not self.done():
            CountingFuture.waiting.release()
        return super().exception(timeout)


@pytest.fixture
def counted(monkeypatch):
    CountingFuture.waiting = threading.Semaphore(0)
    monkeypatch.setattr(history_module, "Future", CountingFuture)
    return CountingFuture


def start_read_then_joiners(cache, cloud, joiners, counted):
    """One read in flight (held by the gate) and ``joiners`` callers waiting on it; returns the results."""
    results, threads = [None] * (joiners + 1), []

    def call(n):
        try:
            results[n] = read(cache, cloud)
        except Exception as exc:  # noqa: BLE001 - the test compares what each caller got
            results[n] = exc

    threads.append(threading.Thread(target=call, args=(0,)))
    threads[0].start()
    assert cloud.started.wait(10)
    for n in range(1, joiners + 1):
        threads.append(threading.Thread(target=call, args=(n,)))
        threads[-1].start()
    for _ in range(joiners):
        assert counted.waiting.acquire(timeout=10)  # every joiner waits on the read in flight
    cloud.gate.set()
    for thread in threads:
        thread.join(10)
    return results


# -- singleflight ---------------------------------------------------------------------------------
def test_callers_arriving_while_a_read_runs_wait_for_it_instead_of_reading_again(counted):
    cache, cloud = HistoryCache(), seeded(gate=threading.Event())
    results = start_read_then_joiners(cache, cloud, 5, counted)
    assert len(cloud.history_calls) == 1
    assert all(r is results[0] for r in results)  # one snapshot, shared


def test_an_error_reaches_every_waiting_caller_and_is_not_kept(counted):
    error = CloudError("fake", "History", "InternalError", "history unavailable", kind="transient")
    cache, cloud = HistoryCache(), seeded(gate=threading.Event(), fail=error)
    results = start_read_then_joiners(cache, cloud, 3, counted)
    assert all(r is error for r in results)  # the same CloudError, to the leader and every waiter
    cloud.fail = None
    assert read(cache, cloud).rows == 3  # the next caller reads again
    assert len(cloud.history_calls) == 2


def test_a_finished_read_serves_later_callers_of_the_same_scope():
    cache, cloud = HistoryCache(), seeded()
    first = read(cache, cloud)
    other = seeded()  # another set's adapter, same key: same cloud, endpoint, credential id, scope
    assert read(cache, other, until=NOW + timedelta(seconds=10)) is first
    assert len(cloud.history_calls) == 1 and other.history_calls == []


def test_scopes_with_different_keys_never_share():
    cache, zone_a, zone_b = HistoryCache(), seeded(), seeded(key=("fake", "zone-b"))
    read(cache, zone_a)
    read(cache, zone_b)
    assert len(zone_a.history_calls) == len(zone_b.history_calls) == 1


def test_an_adapter_without_a_key_shares_with_no_one():
    cache, cloud = HistoryCache(), seeded(key=None)
    read(cache, cloud)
    read(cache, cloud)
    assert len(cloud.history_calls) == 2


# -- which read serves whom -----------------------------------------------------------------------------
def test_a_read_of_a_wider_window_serves_a_narrower_one_with_only_its_rows():
    cache, cloud = HistoryCache(), seeded()
    read(cache, cloud, since=NOW - DAY)
    later = NOW - timedelta(minutes=90)
    narrow = read(cache, cloud, since=later)
    assert len(cloud.history_calls) == 1
    assert [o.task_id for o in narrow.rows_for([A, B], later)] == ["t3"]  # t1, t2 are older than its window


def test_a_caller_that_needs_an_earlier_start_reads_again():
    cache, cloud = HistoryCache(), seeded()
    read(cache, cloud, since=NOW - DAY)
    read(cache, cloud, since=NOW - 2 * DAY)
    assert [since for since, _ in cloud.history_calls] == [NOW - DAY, NOW - 2 * DAY]


def test_a_read_that_started_before_the_callers_fresh_after_is_not_used():
    cache, cloud = HistoryCache(), seeded()
    first = read(cache, cloud, until=NOW)
    assert read(cache, cloud, until=NOW + timedelta(seconds=30), fresh_after=NOW) is first  # started at NOW
    second = read(cache, cloud, until=NOW + timedelta(seconds=31), fresh_after=NOW + timedelta(seconds=1))
    assert second is not first and len(cloud.history_calls) == 2


def test_a_long_read_serves_callers_that_want_a_recent_view_by_when_it_ended():
    """A read of 250 s (5,000 pages at 20 rows) is 250 s old when it ends, and so would a new one be when
    it ended: a refresh (``fresh_by_end``) takes it within the freshness of its end; a poller does not."""
    ticks = Monotonic()
    cache, cloud = HistoryCache(monotonic=ticks), seeded()
    original = cloud.history

    def slow_history(since, until):
        ticks.now += 250.0
        return original(since, until)

    cloud.history = slow_history
    first = read(cache, cloud, until=NOW)
    later = NOW + timedelta(seconds=260)  # 10 s after the read ended
    fresh_after = later - timedelta(seconds=30)
    assert cache.read(cloud, NOW - DAY, later, urls=(A,), fresh_after=fresh_after, fresh_by_end=True) is first
    assert read(cache, cloud, until=later, fresh_after=fresh_after) is not first  # judged by its start
    assert len(cloud.history_calls) == 2


def test_a_caller_that_wants_a_recent_view_joins_a_read_in_flight_however_long_ago_it_started(counted):
    cache, cloud = HistoryCache(), seeded(gate=threading.Event())
    results = {}
    leader = threading.Thread(target=lambda: results.setdefault("leader", read(cache, cloud)))
    leader.start()
    assert cloud.started.wait(10)
    late = NOW + timedelta(minutes=5)
    joiner = threading.Thread(target=lambda: results.setdefault("joiner", cache.read(
        cloud, NOW - DAY, late, urls=(A,), fresh_after=late - timedelta(seconds=30), fresh_by_end=True)))
    joiner.start()
    assert counted.waiting.acquire(timeout=10)  # it waits on the read in flight
    cloud.gate.set()
    leader.join(10)
    joiner.join(10)
    assert results["joiner"] is results["leader"] and len(cloud.history_calls) == 1


def test_a_poller_gets_a_read_newer_than_the_one_it_saw_last():
    cache, cloud = HistoryCache(), seeded()
    first = read(cache, cloud)
    again = read(cache, cloud, newer_than=first.seq)
    assert again is not first and again.seq > first.seq
    assert read(cache, cloud, newer_than=first.seq) is again  # another poller of that round shares it


def test_after_a_submit_earlier_reads_no_longer_serve_callers_with_those_urls():
    cache, cloud = HistoryCache(), seeded()
    before = read(cache, cloud, urls=(A, B))
    cache.invalidate(cloud, [A])
    assert read(cache, cloud, urls=(B, C)) is before  # a shard without A: its rows cannot have changed
    after = read(cache, cloud, urls=(A,))
    assert after is not before and len(cloud.history_calls) == 2
    assert read(cache, cloud, urls=(A, B)) is after  # a read that started after the submit serves everyone


def test_a_read_in_flight_during_a_submit_does_not_serve_callers_with_those_urls():
    cache, cloud = HistoryCache(), seeded(gate=threading.Event())
    leader = threading.Thread(target=read, args=(cache, cloud))
    leader.start()
    assert cloud.started.wait(10)
    cache.invalidate(cloud, [A])  # a submit ended while the read ran: it may not show the new task
    cloud.gate.set()
    leader.join(10)
    read(cache, cloud, urls=(A,))
    assert len(cloud.history_calls) == 2


# -- the snapshot ----------------------------------------------------------------------------------------------------
def test_each_caller_takes_only_its_own_urls_rows():
    cache, cloud = HistoryCache(), seeded()
    for n in range(1000):
        cloud.add_row(f"https://cdn.example.com/other/{n}.js", TargetState.WARM, NOW - timedelta(minutes=5))
    snapshot = read(cache, cloud)
    assert snapshot.rows == 1003
    assert sorted(o.task_id for o in snapshot.rows_for([A])) == ["t1", "t3"]
    assert [o.task_id for o in snapshot.rows_for([B, C])] == ["t2"]


def test_the_index_keeps_a_row_read_twice_once_and_every_task_of_a_url():
    first = HistoryRow(A, "t1", TargetState.RUNNING, NOW)
    done = HistoryRow(A, "t1", TargetState.WARM, NOW, NOW + timedelta(minutes=1))
    other = HistoryRow(B, "t2", TargetState.WARM, NOW)
    by_url, count = index([first, other, first, done, other])
    assert count == 5
    assert by_url[A] == [first, done] and by_url[B] == other  # a changed row of one task is kept: the newer decides


# -- bounds -------------------------------------------------------------------------------------------------
class Monotonic:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_entries_expire_after_the_ttl():
    ticks = Monotonic()
    cache, cloud = HistoryCache(ttl=60.0, monotonic=ticks), seeded()
    read(cache, cloud)
    ticks.now = 59.0
    read(cache, cloud)
    ticks.now = 61.0
    read(cache, cloud)
    assert len(cloud.history_calls) == 2


def test_only_a_few_entries_are_kept():
    cache = HistoryCache(max_entries=2)
    zones = [seeded(key=("fake", f"zone-{n}")) for n in range(3)]
    for zone in zones:
        read(cache, zone)
    read(cache, zones[2])
    read(cache, zones[0])  # the oldest was dropped to keep two
    assert [len(z.history_calls) for z in zones] == [2, 1, 1]
    assert len(cache._done) == 2


def test_a_newer_read_replaces_the_ones_it_covers():
    cache, cloud = HistoryCache(), seeded()
    first = read(cache, cloud)
    read(cache, cloud, newer_than=first.seq)
    assert len(cache._done) == 1


# -- windows that start apart: floored first reads, registered pollers -----------------------------------------
def test_a_window_start_is_floored_to_the_ten_minutes():
    since = datetime(2026, 11, 22, 11, 7, 31, 500_000, tzinfo=timezone.utc)
    floored = datetime(2026, 11, 22, 11, 0, tzinfo=timezone.utc)
    assert history_module.window_start(since, NOW, timedelta(days=7)) == floored
    assert history_module.window_start(NOW - DAY, NOW, timedelta(days=7)) == NOW - DAY  # already on the grid


def test_a_window_start_is_not_floored_when_that_costs_one_more_query_window():
    until = NOW + timedelta(minutes=7)
    since = until - timedelta(days=7)  # freshness 6d + the 1-day margin: exactly one 7-day query
    assert history_module.window_start(since, until, timedelta(days=7)) == since


def test_a_read_started_while_callers_poll_covers_every_pollers_window():
    cache, cloud = HistoryCache(), seeded()
    cloud.add_row(C, TargetState.RUNNING, NOW - timedelta(minutes=4), "t4")
    early, late = NOW - timedelta(minutes=5), NOW - timedelta(minutes=2)
    with cache.polling(cloud, early), cache.polling(cloud, late):
        polled = read(cache, cloud, since=late, urls=(C,))  # the later poller asks first
        assert cloud.history_calls == [(early, NOW)]  # read from the earliest registered start
        assert polled.rows_for([C], late) == []  # t4 is older than the asker's own window
        assert read(cache, cloud, since=early, urls=(C,), fresh_after=NOW) is polled  # served: both ways
        assert [o.task_id for o in polled.rows_for([C], early)] == ["t4"]
    assert cache._pollers == {}
    read(cache, cloud, since=late, urls=(C,), newer_than=polled.seq)
    assert cloud.history_calls[-1] == (late, NOW)  # nobody polls any more: a window of the caller's own


def test_polling_is_per_scope_and_ends_even_when_the_poller_fails():
    cache, zone_a, zone_b = HistoryCache(), seeded(), seeded(key=("fake", "zone-b"))
    with pytest.raises(RuntimeError):
        with cache.polling(zone_a, NOW - timedelta(minutes=5)):
            read(cache, zone_b, since=NOW - timedelta(minutes=1))
            raise RuntimeError("the poll loop failed")
    assert zone_b.history_calls == [(NOW - timedelta(minutes=1), NOW)]  # zone-a's poller does not widen zone-b
    assert cache._pollers == {}


def test_pollers_wait_for_the_read_in_flight_that_cannot_serve_them_then_share_the_next(counted):
    cache, cloud = HistoryCache(), seeded(gate=threading.Event())
    first = threading.Thread(target=read, args=(cache, cloud))
    first.start()
    assert cloud.started.wait(10)
    cache.invalidate(cloud, [A, B])  # two shards' submits ended while the read ran: it cannot show their tasks
    polled = [None, None]

    def poll(n, url):
        cache.settle(cloud)
        polled[n] = read(cache, cloud, since=NOW - timedelta(minutes=5), urls=(url,))

    pollers = [threading.Thread(target=poll, args=(n, url)) for n, url in enumerate((A, B))]
    for poller in pollers:
        poller.start()
    for _ in pollers:
        assert counted.waiting.acquire(timeout=10)  # both wait for the read in flight to end
    cloud.gate.set()
    for thread in (first, *pollers):
        thread.join(10)
    assert polled[0] is polled[1]  # then one read for both
    assert len(cloud.history_calls) == 2 and cloud.most_inside == 1  # never two reads of the scope side by side


def test_settle_does_not_wait_for_another_scope_or_when_nothing_is_in_flight():
    cache, zone_a, zone_b = HistoryCache(), seeded(gate=threading.Event()), seeded(key=("fake", "zone-b"))
    reader = threading.Thread(target=read, args=(cache, zone_a))
    reader.start()
    assert zone_a.started.wait(10)
    cache.settle(zone_b)  # returns at once: zone-a's read is not zone-b's
    zone_a.gate.set()
    reader.join(10)
    cache.settle(zone_a)
    assert len(zone_a.history_calls) == 1
