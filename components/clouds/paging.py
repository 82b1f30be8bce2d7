"""Reading a cloud's task history page by page: the pager every adapter shares.

Why its own module: the pager is generic over clouds (a ``fetch(offset) -> (total, rows)``), and
getting it right took the most care of anything in the adapters: pages are fetched a few at a
time, clouds list newest first, and a task stamped inside the window during the read moves every
row back; each page is placed where its rows were when the read started and what no page covered
is fetched again (``read_pages``). ``paged_history`` adds the time windows a cloud caps queries
to; ``TaskMemo`` and the ``checked_*`` helpers turn rows into observations once per task.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable, Hashable, Iterator, Optional

from .base import CloudError, MalformedResponse, windows
from ..model.status import HistoryRow

# Pages of one history query fetched at once (each still waits for its slot in the shared limiter).
PAGES_IN_FLIGHT = 4


# Rounds of re-fetching what no page covered (``read_pages``): rows stop moving once the window closes.
REPAIR_ROUNDS = 3


# Distinct per-task parts kept at once. A task's rows share one key, or a few when finish times
# differ by the second, so this covers many pages; when full the memo is emptied, not aged.
TASK_MEMO_SIZE = 4096


def read_pages(fetch: Callable[[int], tuple[int, list]], *, in_flight: int = PAGES_IN_FLIGHT,
               cloud: str = "", action: str = "") -> Iterator[list]:
    """Every page of one history query, in order: ``fetch(offset)`` answers (TotalCount, rows) of one page.

    The stop rules are a plain loop's: after a page, stop when it was empty or the offset (the rows
    read so far) reached that page's TotalCount; otherwise the next page starts at that offset.
    What differs is when pages are asked for: the first page tells how many rows there are and
    how many a page holds, so the following offsets are known and up to ``in_flight`` of them are
    fetched at once (each under the shared rate limiter inside ``fetch``), while the caller parses
    the pages already here. Every page the plain loop reads is asked for once, and pages are
    yielded in offset order.

    A page is used only when it was fetched at exactly the offset the plain loop would ask for. A
    short page in the middle moves that offset: the pages fetched ahead are dropped and the rest
    is planned again from there. A TotalCount that grew extends the plan; one that shrank ends the
    read where the plain loop would (pages fetched ahead of it are dropped, unread).

    Rows added while pages are read: the query's window is fixed when the read starts (EndTime is
    the caller's "now"), so a task created later is not in the query at all. Only a task the cloud
    stamps inside the window during the read can join it (within the last, rounded-up second, or
    with a cloud clock behind ours); it belongs to a later view of history and may or may not be
    seen. The clouds list newest first, one row per URL, so such a task moves every other row back
    by its number of URLs. A page answered after it starts that much further back; since pages
    are fetched at once and answered in any order, a page answered before it may end short of
    where a later-answered page before it began, and the rows between would be skipped. So each
    page's rows are placed in the listing as it was when the read started (its offset less the
    growth of its own TotalCount), and what no page covered is fetched again at where it has moved
    to (the largest growth seen), for at most ``REPAIR_ROUNDS`` rounds. Rows still uncovered then
    fail the read (a transient CloudError: read again) rather than go missing. A row may come
    twice (the history snapshot keeps it once). Two cases are left as the plain loop leaves them:
    a TotalCount that shrank (the cloud dropping its oldest rows, far outside the windows read
    here) cannot be placed, and an empty page ends the listing (a TotalCount that overstated it).
    """
    pool = ThreadPoolExecutor(max_workers=max(1, in_flight), thread_name_prefix="history-page")
    ahead: deque[tuple[int, Future]] = deque()
    try:
        total, rows = fetch(0)
        first = total  # the listing's length when the read started: where rows are placed from
        listed = first  # how much of it must be covered (less, once an empty page showed where it ends)
        covered: list[tuple[int, int]] = []
        placeable = _cover(covered, 0, total, first, len(rows))
        grown = 0  # the most rows listed ahead of the old ones that any answer has shown
        step = len(rows)  # what the cloud puts in a page (its Limit, or less if it caps it)
        offset = planned = 0
        while True:
            offset += len(rows)
            more = bool(rows) and offset < total
            if more and ahead and ahead[0][0] != offset:
                _drop(ahead)  # fetched for offsets the plain loop would not ask for
            if more:
                if not ahead:
                    planned = offset
                while len(ahead) < in_flight and planned < total:
                    ahead.append((planned, pool.submit(fetch, planned)))
                    planned += step
            yield rows
            if not more:
                break
            at, future = ahead.popleft()
            total, rows = future.result()
            grown = max(grown, total - first)
            placeable = _cover(covered, at, total, first, len(rows)) and placeable
            if not rows:  # an empty page ends the listing there (TotalCount overstated it), as for the plain loop
                listed = min(listed, max(0, at - (total - first)))
        if not placeable:
            return
        for _ in range(REPAIR_ROUNDS):
            gaps = _gaps(covered, listed)
            if not gaps:
                return
            for start, end in gaps:
                while start < end:
                    at = start + grown  # where the first uncovered row is now, as far as we know
                    total, rows = fetch(at)
                    grown = max(grown, total - first)
                    if not _cover(covered, at, total, first, len(rows)):
                        return  # the listing shrank since the start: as the plain loop
                    if not rows:
                        # The listing ends before ``at`` now (TotalCount overstated it): what lies past that
                        # end was never there, but the other gaps still are (the check below fails the
                        # read if they stay uncovered; returning here lost them silently).
                        listed = min(listed, max(0, at - (total - first)))
                        break
                    yield rows
                    reached = at - (total - first) + len(rows)  # the end of what this page covered
                    if reached <= start:
                        break  # rows moved again before it was answered: the next round looks again
                    start = reached
        missing = sum(end - start for start, end in _gaps(covered, listed))
        if missing:
            raise CloudError(cloud, action, "HistoryMoved",
                             f"{missing} rows of the history were not seen: tasks kept being listed in the "
                             f"queried window while it was read; read again", kind="transient")
    finally:
        # A caller that stops early (a malformed row) leaves at most the started read-only requests
        # to finish unseen.
        _drop(ahead)
        pool.shutdown(wait=False, cancel_futures=True)


def _cover(covered: list[tuple[int, int]], offset: int, total: int, first: int, count: int) -> bool:
    """Record which rows of the listing as it was at the start (``first`` rows) a page covered; False
    when the page cannot be placed (the listing shrank since the start)."""
    moved = total - first  # rows listed ahead of the old ones since the start
    if moved < 0:
        return False
    start, end = max(0, offset - moved), min(first, offset - moved + count)
    if start < end:
        covered.append((start, end))
    return True


def _gaps(covered: list[tuple[int, int]], first: int) -> list[tuple[int, int]]:
    """The spans of [0, first) that no covered span holds, in order."""
    gaps: list[tuple[int, int]] = []
    reached = 0
    for start, end in sorted(covered):
        if start > reached:
            gaps.append((reached, start))
        reached = max(reached, end)
    if reached < first:
        gaps.append((reached, first))
    return gaps


def _drop(ahead: deque[tuple[int, Future]]) -> None:
    for _, future in ahead:
        future.cancel()
    ahead.clear()


def paged_history(since: datetime, until: datetime, span: timedelta,
                  page: Callable[[datetime, datetime, int], tuple[int, list]],
                  observation: Callable[[Any], Optional[HistoryRow]], *, cloud: str = "",
                  action: str = "") -> Iterator[HistoryRow]:
    """The history of both Tencent APIs: windows of at most ``span``, each read page by page.

    ``page(start, end, offset)`` answers one checked page; ``observation(row)`` turns a row into
    an observation, or None for a row that is not a prefetch of this destination.
    """
    # The APIs take whole seconds: widen to whole seconds so no row on the edge is lost.
    since = since.replace(microsecond=0)
    if until.microsecond:
        until = until.replace(microsecond=0) + timedelta(seconds=1)
    # One whole second (since == until) is a window too: EndTime is inclusive (clouds/poll_rounds.py reads so).
    for start, end in windows(since, until, span) if since < until else [(since, until)] if since == until else []:
        for rows in read_pages(lambda offset, start=start, end=end: page(start, end, offset), cloud=cloud,
                               action=action):
            for row in rows:
                obs = observation(row)
                if obs is not None:
                    yield obs


class TaskMemo(dict):
    """The per-task part of history rows, checked and converted once per distinct key: ``memo[key]``.

    Every row of a task repeats its id, creation time and status (and mostly its finish time);
    checking, parsing and interning those once per task instead of once per row is most of what a
    row used to cost (100,000 rows hold a few hundred distinct keys). ``build(*key)`` checks every
    field of the key and raises MalformedResponse for a bad one, so only keys that passed are
    stored and a malformed row is reported however many rows came before it.

    Equal keys must mean equal parts: ``build`` may depend on nothing but the key, and a field
    whose meaning depends on its type where equal values differ (``True == 1``) must be kept out
    of the key or told apart. A key holding an unhashable value (a list where a string belongs)
    raises TypeError on lookup: callers then call ``build`` directly. Safe to share between
    threads: a lost race builds one key twice, to equal values.
    """

    def __init__(self, build: Callable[..., Any], size: int = TASK_MEMO_SIZE):
        super().__init__()
        self.build, self.size = build, size

    def part(self, key: tuple[Any, ...]) -> Any:
        """``build(*key)``, from the memo when the key is hashable (an unhashable one is built, never stored)."""
        try:
            return self[key]
        except TypeError:  # a list or object where a string belongs: checked, never stored
            return self.build(*key)

    def __missing__(self, key: tuple[Hashable, ...]) -> Any:
        value = self.build(*key)
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


def checked_page(resp: Any, cloud: str, action: str, rows_field: str) -> tuple[int, list]:
    """(TotalCount, rows) of one page of a history answer (plain JSON), both checked."""
    if not isinstance(resp, dict):
        raise MalformedResponse(cloud, action, "Response", f"expected an object, got {type(resp).__name__}")
    total = resp.get("TotalCount")
    if not isinstance(total, int):
        raise MalformedResponse(cloud, action, "TotalCount", f"expected an integer, got {total!r}")
    rows = resp.get(rows_field) or []
    if not isinstance(rows, list):
        raise MalformedResponse(cloud, action, rows_field, f"expected a list, got {type(rows).__name__}")
    return total, rows


def checked_counts(item: Any, names: tuple[str, ...], cloud: str, action: str, prefix: str) -> dict[str, int]:
    """The named fields of one quota entry (an SDK model), each a non-negative integer."""
    values = {}
    for name in names:
        value = getattr(item, name)
        if not isinstance(value, int) or value < 0:
            raise MalformedResponse(cloud, action, f"{prefix}.{name}", f"expected a non-negative integer, got {value!r}")
        values[name] = value
    return values


def checked_time(value: Any, parse: Callable[[str], datetime], expected: str, cloud: str, action: str,
                 field_name: str, *, required: bool) -> Optional[datetime]:
    """A time field of a history row: ``parse`` of its text, None when absent and not required."""
    if value in (None, ""):
        if required:
            raise MalformedResponse(cloud, action, field_name, "missing")
        return None
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        return parse(value)
    except (TypeError, ValueError):
        raise MalformedResponse(cloud, action, field_name, f"expected {expected}, got {value!r}") from None
