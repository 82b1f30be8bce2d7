"""What the Tencent adapters share: the raw-JSON history call and the read-ahead of history pages."""

from __future__ import annotations

import json
import threading
import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.teo.v20220901 import models

from components.clouds.base import CloudError
from components.clouds.edgeone import make_client
from components.clouds.tencent import TencentCaller, read_ahead
from components.ratelimit import SlidingWindowLimiter
from components.retry import RetryPolicy
from components.settings import Endpoint, TencentCredentials


# -- read_ahead: the same pages as a plain loop, the next one already on its way ----------------------
def plain_loop(fetch):
    offset, pages = 0, []
    while True:
        total, rows = fetch(offset)
        pages.append(rows)
        offset += len(rows)
        if not rows or offset >= total:
            return pages


def pages_of(rows_per_page, totals):
    """A fake API: page n has rows_per_page[n] rows and reports totals[n]; records the offsets asked for."""
    asked = []

    def fetch(offset):
        asked.append(offset)
        n = len(asked) - 1
        if n >= len(rows_per_page):
            return totals[-1], []
        return totals[n], [f"row{offset + i}" for i in range(rows_per_page[n])]

    return fetch, asked


@pytest.mark.parametrize("rows_per_page, totals", [
    ([3, 3, 1], [7, 7, 7]),          # ordinary paging
    ([3, 3], [6, 6]),                # exact multiple
    ([2, 0], [9, 9]),                # TotalCount overstates: an empty page ends it
    ([3, 3, 3, 1], [7, 8, 10, 10]),  # rows arrive while paging: the latest total is followed
    ([0], [0]),                      # nothing at all
    ([3, 3], [5, 3]),                # total shrinks: stop as soon as the offset reaches it
])
def test_read_ahead_asks_for_exactly_the_pages_a_plain_loop_asks_for(rows_per_page, totals):
    expected_fetch, expected_asked = pages_of(rows_per_page, totals)
    fetch, asked = pages_of(rows_per_page, totals)
    assert list(read_ahead(fetch)) == plain_loop(expected_fetch)
    assert asked == expected_asked


def test_read_ahead_requests_the_next_page_while_the_caller_works_on_this_one():
    in_flight, most, lock = [0], [0], threading.Lock()
    started = []

    def fetch(offset):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        started.append(offset)
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return 30, ["r"] * 10

    pages = read_ahead(fetch)
    next(pages)
    time.sleep(0.02)
    assert started == [0, 10]  # page two is already requested before the caller asks for it
    rest = list(pages)
    assert len(rest) == 2 and most[0] == 1  # never more than one request in flight


def test_read_ahead_raises_the_error_of_the_page_that_failed():
    def fetch(offset):
        if offset:
            raise CloudError("edgeone", "DescribePrefetchTasks", "InternalError", "boom", kind="transient")
        return 20, ["r"] * 10

    pages = read_ahead(fetch)
    assert next(pages) == ["r"] * 10
    with pytest.raises(CloudError, match="boom"):
        next(pages)


def test_a_caller_that_stops_early_does_not_wait_for_the_page_in_flight():
    release = threading.Event()

    def fetch(offset):
        if offset:
            release.wait(5)
        return 20, ["r"] * 10

    pages = read_ahead(fetch)
    next(pages)
    start = time.monotonic()
    pages.close()
    assert time.monotonic() - start < 1
    release.set()


# -- TencentCaller.json: the model path's transport and error translation, without the models -----------
def caller(answer):
    """A real teo client whose transport is replaced (nothing is ever sent)."""
    client = make_client(Endpoint("url", "http", "127.0.0.1:9"), TencentCredentials("i", "k"))
    client.call = answer
    return TencentCaller("edgeone", client, models, SlidingWindowLimiter(10**6), RetryPolicy(max_attempts=1))


def test_json_returns_the_response_object_as_sent():
    seen = {}

    def answer(action, params, options=None, headers=None):
        seen.update(action=action, params=params)
        return json.dumps({"Response": {"TotalCount": 1, "Tasks": [{"JobId": "j"}], "RequestId": "r"}}).encode()

    body = caller(answer).json("DescribePrefetchTasks", {"ZoneId": "zone-a", "Offset": 0, "Limit": 1000})
    assert body == {"TotalCount": 1, "Tasks": [{"JobId": "j"}], "RequestId": "r"}
    assert seen == {"action": "DescribePrefetchTasks", "params": {"ZoneId": "zone-a", "Offset": 0, "Limit": 1000}}


@pytest.mark.parametrize("answer, code, kind", [
    (b"<html>502</html>", "JSONDecodeError", "malformed"),
    (b'{"NoResponse": {}}', "KeyError", "malformed"),
    (b"[1, 2]", "TypeError", "malformed"),
    (TencentCloudSDKException("RequestLimitExceeded", "slow down", "rid"), "RequestLimitExceeded", "throttled"),
    (TencentCloudSDKException("AuthFailure.SignatureFailure", "bad", "rid"), "AuthFailure.SignatureFailure", "auth"),
])
def test_json_fails_like_the_model_path_would(answer, code, kind):
    def call(action, params, options=None, headers=None):
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(CloudError) as raised:
        caller(call).json("DescribePrefetchTasks", {"ZoneId": "zone-a"})
    assert (raised.value.code, raised.value.kind, raised.value.action) == (code, kind, "DescribePrefetchTasks")
    with pytest.raises(CloudError) as model_path:
        caller(call)("DescribePrefetchTasks", {"ZoneId": "zone-a"})
    assert (model_path.value.code, model_path.value.kind) == (code, kind)
