"""The paged reader of history every adapter shares (components/clouds/paging.py): read_pages and TaskMemo."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.clouds import paging
from components.clouds.base import CloudError
from components.clouds.paging import read_pages
from components.clouds.ratelimit import SlidingWindowLimiter
from tests.fakes import FakeClock


# -- read_pages: the plain loop's pages, a few fetched at once, yielded in order ------------------------
class Server:
    """A history API over ``rows``, newest first: ``fetch(offset)`` answers (TotalCount, page).

    ``cap`` is the most rows it puts in a page (the Limit asked for, or less); ``on_call(n)`` runs
    before the n-th answer (1-based) and may change the rows.
    """

    def __init__(self, rows, cap=1000, on_call=None):
        self.rows, self.cap, self.on_call = list(rows), cap, on_call
        self.asked = []
        self.lock = threading.Lock()

    def __call__(self, offset):
        with self.lock:
            self.asked.append(offset)
            if self.on_call:
                self.on_call(len(self.asked))
            return len(self.rows), self.rows[offset:offset + self.cap]


def plain_loop(fetch):
    offset, pages = 0, []
    while True:
        total, rows = fetch(offset)
        pages.append(rows)
        offset += len(rows)
        if not rows or offset >= total:
            return pages


@pytest.mark.parametrize("count", [0, 1, 999, 1000, 1001, 2500, 10_000])
def test_every_row_once_in_order_and_one_call_per_page(count):
    server = Server(range(count))
    pages = list(read_pages(server))
    assert [row for page in pages for row in page] == list(range(count))
    assert sorted(server.asked) == list(range(0, max(count, 1), 1000))  # each page asked for once
    assert pages == plain_loop(Server(range(count)))


def test_a_cloud_that_caps_the_page_size_is_paged_by_its_own_page_size():
    server = Server(range(2345), cap=100)
    assert [row for page in read_pages(server) for row in page] == list(range(2345))
    assert sorted(server.asked) == list(range(0, 2345, 100))


def test_a_few_pages_are_fetched_at_once_while_the_caller_parses():
    release, started = threading.Event(), threading.Semaphore(0)
    server = Server(range(10_000))

    def fetch(offset):
        if offset:
            started.release()
            assert release.wait(10)
        return server(offset)

    pages = read_pages(fetch, in_flight=4)
    assert len(next(pages)) == 1000
    for _ in range(4):
        assert started.acquire(timeout=10)  # pages two to five were asked for before the caller asked
    assert not started.acquire(timeout=0.2)  # and no more than four at once
    release.set()
    assert sum(len(p) for p in pages) == 9000
    assert sorted(server.asked) == list(range(0, 10_000, 1000))


@pytest.mark.parametrize("pages, totals, expected", [
    ([3, 3, 1], [7, 7, 7], [0, 3, 6]),           # ordinary paging
    ([3, 3], [6, 6], [0, 3]),                    # exact multiple
    ([2, 0], [9, 9], None),                      # TotalCount overstates: an empty page ends it
    ([3, 3, 3, 1], [7, 8, 10, 10], [0, 3, 6, 9]),  # the total grows while paging: the latest is followed
    ([0], [0], [0]),                             # nothing at all
    ([3, 3], [5, 3], [0, 3]),                    # the total shrinks: stop as soon as the offset reaches it
])
def test_the_stop_rules_are_the_plain_loops(pages, totals, expected):
    """Answers by offset (page n starts at the sum of the earlier pages), as the plain loop reads them."""
    starts = [sum(pages[:n]) for n in range(len(pages))]

    def make():
        asked = []

        def fetch(offset):
            asked.append(offset)
            n = starts.index(offset) if offset in starts else None
            if n is None:
                return totals[-1], []
            return totals[n], list(range(offset, offset + pages[n]))
        return fetch, asked

    fetch, asked = make()
    plain, plain_asked = make()
    assert list(read_pages(fetch)) == plain_loop(plain)
    assert len(asked) == len(set(asked))  # no offset asked twice: nothing the plain loop covers is re-read
    if expected is not None:
        assert sorted(asked) == expected == plain_asked


def test_rows_listed_first_during_the_read_lose_no_row_that_was_there():
    """A task stamped inside the window while the pages are read (newest first) moves the other rows back."""
    original = [f"old{i}" for i in range(2500)]

    def arrive(call):
        if call == 2:  # after the first page was answered
            server.rows[:0] = ["new0", "new1", "new2"]

    server = Server(original, on_call=arrive)
    read = [row for page in read_pages(server, in_flight=1) for row in page]
    assert set(original) <= set(read)  # none lost; a row at a page boundary may come twice
    assert len(read) == len(server.rows)  # the latest TotalCount was followed to the end
    assert sorted(server.asked) == [0, 1000, 2000]


def out_of_order_server(count=4500):
    """Pages at once are answered in any order: here the page at 2000 before three new rows are listed,
    the page at 1000 after them (the pages at 3000 and 4000 whenever)."""
    server = Server([f"old{i}" for i in range(count)])
    answered_2000 = threading.Event()

    def fetch(offset):
        if offset == 1000:
            assert answered_2000.wait(10)
            with server.lock:
                server.rows[:0] = ["new0", "new1", "new2"]
        answer = server(offset)
        if offset == 2000:
            answered_2000.set()
        return answer

    return server, fetch


def test_rows_listed_first_between_two_pages_answered_out_of_order_lose_no_row():
    """The page at 1000 then ends three rows short of where the page at 2000 began; those rows are
    fetched again at their moved offset, and nothing more is asked for."""
    server, fetch = out_of_order_server()
    original = [f"old{i}" for i in range(4500)]
    read = [row for page in read_pages(fetch, in_flight=4) for row in page]
    assert set(original) <= set(read)
    assert server.asked[:1] == [0] and sorted(server.asked[1:5]) == [1000, 2000, 3000, 4000]
    # The plain loop's five pages (the last one holds the three rows more), then one page for the three
    # rows skipped, old1997..old1999, fetched where they are now: three rows further back, at 2000.
    assert server.asked[5:] == [2000]


def test_a_repair_that_meets_the_end_of_an_overstated_listing_still_repairs_the_gaps_before_it():
    """A history whose TotalCount overstates it by 150 rows, read a page at a time while tasks are listed
    ahead of the old rows, each page answered from the listing as it was when that page was served (as
    pages fetched at once are). The page at 300 comes from before 19 rows were listed, so old281..old299
    are a gap; the empty page at 573 too, so the listing seems to end at 573 and [554, 573) is a gap that
    never held rows. The repair of the real gap is answered a page further back (236 more rows): it must be
    looked for again after the repair of the other gap meets the listing's end, not given up silently."""
    old = [f"old{i}" for i in range(554)]
    v1 = [f"new{i}" for i in range(19)] + old
    v2 = [f"later{i}" for i in range(236)] + v1
    served = {1: old, 2: old, 3: v1, 4: old, 5: v1, 6: v1, 7: old}  # the listing each call was answered from
    asked = []

    def fetch(offset):
        asked.append(offset)
        rows = served.get(len(asked), v2)
        return len(rows) + 150, rows[offset:offset + 100]

    read = [row for page in read_pages(fetch, in_flight=1) for row in page]
    assert asked[:9] == [0, 100, 200, 300, 400, 500, 573, 300, 809]  # the plain loop, then the two repairs
    assert set(old) <= set(read)


def test_rows_still_uncovered_after_the_repairs_fail_the_read_instead_of_going_missing(monkeypatch):
    monkeypatch.setattr(paging, "REPAIR_ROUNDS", 0)  # no repair allowed: the three skipped rows stay uncovered
    _, fetch = out_of_order_server()
    with pytest.raises(CloudError) as info:
        list(read_pages(fetch, in_flight=4, cloud="edgeone", action="DescribePrefetchTasks"))
    assert info.value.kind == "transient" and info.value.action == "DescribePrefetchTasks"
    assert "3 rows" in str(info.value) and "read again" in str(info.value)


@settings(max_examples=80, deadline=None)
@given(rows=st.integers(0, 5000), cap=st.sampled_from([100, 1000]), in_flight=st.integers(1, 4),
       inserts=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 400)), max_size=4),
       delays=st.lists(st.floats(0, 0.003), min_size=8, max_size=8), overstated=st.sampled_from([0, 0, 1, 150]))
def test_no_row_listed_at_the_start_is_lost_whatever_is_listed_first_and_whenever(rows, cap, in_flight, inserts,
                                                                                  delays, overstated):
    """Whatever is listed first, whenever, and in whatever order the pages are answered; also when the
    cloud's TotalCount says ``overstated`` rows more than it has (an empty page then ends the listing)."""
    original = [f"old{i}" for i in range(rows)]
    added = iter(range(10**6))
    when = dict(inserts)

    def arrive(call):
        for _ in range(when.get(call, 0)):
            server.rows.insert(0, f"new{next(added)}")

    server = Server(original, cap=cap, on_call=arrive)

    def fetch(offset):
        time.sleep(delays[(offset // cap) % len(delays)])  # pages answered in a shuffled order
        total, page = server(offset)
        return (total + overstated if rows else total), page

    read = [row for page in read_pages(fetch, in_flight=in_flight) for row in page]
    assert set(original) <= set(read)


def test_a_short_page_in_the_middle_replans_from_where_the_plain_loop_goes_on():
    rows = list(range(3000))

    def fetch(offset):
        if offset == 1000:
            return 3000, rows[1000:1500]  # the cloud answered only half a page this time
        return 3000, rows[offset:offset + 1000]

    assert [r for page in read_pages(fetch) for r in page] == rows


def test_the_error_of_a_page_is_raised_in_order():
    def fetch(offset):
        if offset == 2000:
            raise CloudError("edgeone", "DescribePrefetchTasks", "InternalError", "boom", kind="transient")
        return 5000, ["r"] * 1000

    pages = read_pages(fetch)
    assert next(pages) and next(pages)
    with pytest.raises(CloudError, match="boom"):
        next(pages)


def test_a_caller_that_stops_early_does_not_wait_for_the_pages_in_flight():
    release = threading.Event()

    def fetch(offset):
        if offset:
            release.wait(5)
        return 5000, ["r"] * 1000

    pages = read_pages(fetch)
    next(pages)
    start = time.monotonic()
    pages.close()
    assert time.monotonic() - start < 1
    release.set()


def test_pages_fetched_at_once_stay_within_the_limit_of_the_server():
    """Each page holds its limiter slot from send to answer: whatever moment between the two the
    server counts it at, no server window of 1 s holds more than 5 of them."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 1.0, clock=clock.monotonic, sleep=clock.sleep, margin=0.0)
    server = Server(range(30_000))
    spans, lock = [], threading.Lock()

    def fetch(offset):
        with limiter.request("teo:DescribePrefetchTasks"):
            send = clock.monotonic()
            clock.sleep(0.07)  # the request's flight
            answer = server(offset)
            done = clock.monotonic()
        with lock:
            spans.append((send, done))
        return answer

    assert sum(len(p) for p in read_pages(fetch, in_flight=4)) == 30_000
    assert len(spans) == 30
    for send, _ in spans:
        # the requests sent up to this one that may still be counted in the server window ending now
        # (a count exactly one window old has left it, as in the sandbox; 1e-9 absorbs float sums)
        live = [1 for s, d in spans if s <= send and d > send - 1.0 + 1e-9]
        assert len(live) <= 5


# -- TaskMemo: the per-task part of history rows, built once per distinct key -----------------------------
def test_task_memo_builds_once_per_key_and_never_stores_a_refusal():
    from components.clouds.paging import TaskMemo

    built = []

    def build(a, b):
        built.append((a, b))
        if b == "bad":
            raise ValueError(b)
        return a + b

    memo = TaskMemo(build, size=3)
    assert [memo[("x", "1")], memo[("x", "1")], memo[("x", "2")]] == ["x1", "x1", "x2"]
    assert built == [("x", "1"), ("x", "2")]
    for _ in range(2):  # refused each time it is asked, never remembered
        with pytest.raises(ValueError):
            memo[("x", "bad")]
    assert built[-2:] == [("x", "bad"), ("x", "bad")] and ("x", "bad") not in memo
    with pytest.raises(TypeError):  # an unhashable key: the caller builds it directly
        memo[("x", ["1"])]


def test_task_memo_is_emptied_when_full_so_it_stays_small():
    from components.clouds.paging import TaskMemo

    memo = TaskMemo(lambda n: n * 2, size=3)
    for n in range(10):
        assert memo[(n,)] == n * 2
        assert len(memo) <= 3
