"""A history page size that is a guess, learnt once per process (components/clouds/page_size.py), with fakes.

The fake cloud refuses a ``Limit`` above its largest with ``InvalidParameter.CdnParamError`` and a
message that names no parameter, as Tencent Cloud CDN's does: the learning may only go by the code
and by which request was refused.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Optional

import pytest

from components.clouds.base import CloudError
from components.clouds.page_size import PageKey, PageLadder, PageSizes
from components.clouds.paging import read_pages

PARAM_ERROR = "InvalidParameter.CdnParamError"
LADDER = PageLadder((1000, 100, 20), frozenset({PARAM_ERROR}))
KEY = PageKey("tencent-cdn", "DescribePushTasks", ("http", "127.0.0.1:1", "id"))


class Cloud:
    """A history of ``rows`` rows, newest first; ``fetch(offset, limit)`` answers (TotalCount, page).

    Refuses a Limit above ``largest`` (or caps it when ``cap``), refuses every request whose offset
    is in ``bad_offsets`` with ``bad_code`` (a refusal for another reason), and records every request
    as (offset, limit, refused code or None).
    """

    def __init__(self, rows: int = 0, largest: int = 1000, *, cap: bool = False, bad_offsets: tuple[int, ...] = (),
                 bad_code: str = PARAM_ERROR, delay: float = 0.0):
        self.rows, self.largest, self.cap = list(range(rows)), largest, cap
        self.bad_offsets, self.bad_code, self.delay = bad_offsets, bad_code, delay
        self.requests: list[tuple[int, int, Optional[str]]] = []
        self.lock = threading.Lock()

    def fetch(self, offset: int, limit: int) -> tuple[int, list]:
        if self.delay:
            time.sleep(random.uniform(0, self.delay))  # answers come back in any order
        refusal = None
        if offset in self.bad_offsets:
            refusal = self.bad_code
        elif limit > self.largest and not self.cap:
            refusal = PARAM_ERROR
        with self.lock:
            self.requests.append((offset, limit, refusal))
        if refusal:
            raise CloudError("tencent-cdn", "DescribePushTasks", refusal, "参数错误，请参考文档中示例参数填充。",
                             "req-1", kind="invalid")
        return len(self.rows), self.rows[offset:offset + min(limit, self.largest)]

    def refused(self) -> list[int]:
        return [limit for _, limit, code in self.requests if code]

    def limits(self) -> Counter:
        return Counter(limit for _, limit, code in self.requests if not code)


def read(sizes: PageSizes, cloud: Cloud, key: PageKey = KEY) -> list:
    """Every row of one read through the shared pager, each page at the learnt size (as the adapter pages)."""
    def fetch(offset: int) -> tuple[int, list]:
        return sizes.fetch(key, LADDER, lambda limit: cloud.fetch(offset, limit))

    return [row for page in read_pages(fetch) for row in page]


@pytest.mark.parametrize("largest, refused, kept", [(1000, [], 1000), (500, [1000], 100), (100, [1000], 100),
                                                    (99, [1000, 100], 20), (20, [1000, 100], 20)])
def test_steps_down_once_per_size_above_what_the_cloud_takes_and_keeps_it(largest, refused, kept):
    sizes, cloud = PageSizes(log=lambda line: None), Cloud(2500, largest)
    for _ in range(3):  # three reads in one process
        assert read(sizes, cloud) == list(range(2500))
    assert cloud.refused() == refused  # each size above it refused once in the process, never again
    assert sizes.size(KEY, LADDER) == kept and set(cloud.limits()) == {kept}


def test_a_cloud_that_caps_silently_keeps_the_largest_limit_and_is_read_in_its_page_size():
    sizes, cloud = PageSizes(log=lambda line: None), Cloud(450, 100, cap=True)
    assert read(sizes, cloud) == list(range(450))
    assert cloud.refused() == [] and [offset for offset, _, _ in cloud.requests] == [0, 100, 200, 300, 400]
    assert sizes.size(KEY, LADDER) == 1000


def test_a_refusal_with_another_code_is_raised_at_once_and_teaches_nothing():
    sizes, cloud = PageSizes(log=lambda line: None), Cloud(50, 1000, bad_offsets=(0,),
                                                            bad_code="InvalidParameter.CdnStatInvalidDate")
    with pytest.raises(CloudError, match="CdnStatInvalidDate"):
        read(sizes, cloud)
    assert cloud.requests == [(0, 1000, "InvalidParameter.CdnStatInvalidDate")]  # one request, not retried smaller
    assert sizes.size(KEY, LADDER) == 1000


def test_a_parameter_error_that_every_size_gets_is_not_taken_for_the_limits():
    """A bad Offset or time span answered with the same generic code: even the documented size is refused."""
    sizes, cloud = PageSizes(log=lambda line: None), Cloud(50, 1000, bad_offsets=(0,))
    with pytest.raises(CloudError, match=PARAM_ERROR) as info:
        read(sizes, cloud)
    assert [limit for _, limit, _ in cloud.requests] == [1000, 100, 20]
    assert info.value.code == PARAM_ERROR
    assert sizes.size(KEY, LADDER) == 1000  # not stuck at 20: the next read starts from the top again
    cloud.bad_offsets = ()
    assert read(sizes, cloud) == list(range(50)) and cloud.requests[-1] == (0, 1000, None)


def test_a_refusal_at_a_size_already_answered_is_raised_and_the_size_kept():
    """A later page refused (its Offset, say) once the size worked: never a reason to step down mid-read."""
    sizes, cloud = PageSizes(log=lambda line: None), Cloud(3000, 100, bad_offsets=(1500,))
    with pytest.raises(CloudError, match=PARAM_ERROR):
        read(sizes, cloud)
    assert cloud.refused() == [1000, 100]  # the probe's refusal, then the bad page's (at 100, not retried at 20)
    assert sizes.size(KEY, LADDER) == 100 and {limit for _, limit, code in cloud.requests if code is None} == {100}


def test_a_probe_cut_short_by_another_error_does_not_send_the_refused_size_again():
    sizes = PageSizes(log=lambda line: None)
    sent: list[int] = []

    def send(limit: int) -> str:
        sent.append(limit)
        if limit == 1000:
            raise CloudError("tencent-cdn", "DescribePushTasks", PARAM_ERROR, "", kind="invalid")
        if len(sent) == 2:
            raise CloudError("tencent-cdn", "DescribePushTasks", "InternalError", "try again", kind="transient")
        return "page"

    with pytest.raises(CloudError, match="InternalError"):
        sizes.fetch(KEY, LADDER, send)
    assert sizes.fetch(KEY, LADDER, send) == "page"
    assert sent == [1000, 100, 100]  # the next read started where the last one stopped


def test_keys_learn_apart():
    """One action's page size says nothing of another's, nor of another endpoint or account's."""
    sizes = PageSizes(log=lambda line: None)
    strict, open_ = Cloud(10, 20), Cloud(10, 1000)
    purge = PageKey("tencent-cdn", "DescribePurgeTasks", KEY.account)
    other_account = PageKey("tencent-cdn", "DescribePushTasks", ("http", "127.0.0.1:1", "another-id"))
    read(sizes, strict)
    read(sizes, open_, purge)
    read(sizes, open_, other_account)
    assert (sizes.size(KEY, LADDER), sizes.size(purge, LADDER), sizes.size(other_account, LADDER)) == (20, 1000, 1000)
    assert open_.refused() == []


def test_concurrent_reads_cost_one_refusal_and_read_every_row_once():
    """The provider host serves several RPCs at once: reads that start together wait for one probe, and
    the pages each read fetches at once all use one page size."""
    sizes, cloud = PageSizes(log=lambda line: None), Cloud(1234, 100, delay=0.002)
    start = threading.Barrier(8)
    results: list[list] = []
    errors: list[BaseException] = []

    def one_read() -> None:
        try:
            start.wait()
            results.append(read(sizes, cloud))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one_read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 8
    assert all(rows == list(range(1234)) for rows in results)  # no row skipped or read twice, in order
    assert cloud.refused() == [1000]
    answered = [(offset, limit) for offset, limit, code in cloud.requests if code is None]
    assert {limit for _, limit in answered} == {100}
    assert all(offset % 100 == 0 for offset, _ in answered)  # every page where a plain loop of 100 would ask
    assert len(answered) == 8 * 13  # each read fetched each of its 13 pages once


def test_the_step_down_is_said_once_per_key():
    lines: list[str] = []
    sizes, cloud = PageSizes(log=lines.append), Cloud(30, 20)
    read(sizes, cloud)
    read(sizes, cloud)
    assert lines == [f"tencent-cdn DescribePushTasks: the cloud refused Limit 1000 ({PARAM_ERROR}), "
                     f"100 ({PARAM_ERROR}); this process uses 20 rows a page"]
    quiet: list[str] = []
    read(PageSizes(log=quiet.append), Cloud(30, 1000))
    assert quiet == []


@pytest.mark.parametrize("sizes", [(), (100, 1000), (100, 100, 20), (100, 0)])
def test_a_ladder_is_distinct_sizes_largest_first(sizes):
    with pytest.raises(ValueError):
        PageLadder(sizes, frozenset({PARAM_ERROR}))
    assert LADDER.below(1000) == 100 and LADDER.below(100) == 20 and LADDER.below(20) is None
