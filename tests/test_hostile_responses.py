"""Malformed API responses never crash the adapters and never silently drop a row (issue #5).

Hypothesis generates response bodies with fields missing, null, of the wrong type or with odd
status strings; each body goes through the official SDK's own parsing and then our adapter. The
only allowed outcomes: observations (odd statuses become ``unknown`` with the raw value kept), or a
CloudError that names the cloud and the API.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.clouds.base import CloudError
from components.clouds.edgeone import EdgeOneAdapter
from components.clouds.edgeone import make_client as teo_client
from components.clouds.ratelimit import SlidingWindowLimiter
from components.clouds.tencent_cdn import TencentCdnAdapter
from components.clouds.tencent_cdn import make_client as cdn_client
from components.clouds.ucloud import UCloudAdapter
from components.clouds.ucloud import make_client as ucloud_client
from components.model.connection import Endpoint, TencentCredentials, UCloudCredentials
from components.model.status import HistoryRow, TargetState
from tests.fakes import replace_tencent_transport

SINCE, UNTIL = datetime(2026, 11, 22, tzinfo=timezone.utc), datetime(2026, 11, 23, tzinfo=timezone.utc)
ENDPOINT = Endpoint("url", "http", "127.0.0.1:9")  # never contacted: the transport is replaced
EXAMPLES = 500

junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=False),
                 st.text(max_size=12), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                            st.integers(), max_size=2))
statuses = st.one_of(st.sampled_from(["processing", "success", "failed", "timeout", "canceled", "invalid",
                                      "process", "done", "fail", "Done", "SUCCESS", "wait", "failure", "unknow",
                                      "Paused", ""]), st.text(max_size=10))
urls = st.one_of(st.builds(lambda p: f"https://static.example.com/{p}", st.text("abc/ .%é+", max_size=12)),
                 st.text(max_size=20))


def field(valid):
    """A field that is usually valid, sometimes junk, sometimes missing (None here means drop it)."""
    return st.one_of(valid, valid, valid, junk, st.just(...))


def body_of(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not ...}


iso = st.builds(lambda s: datetime.fromtimestamp(1795000000 + s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                st.integers(0, 86400))
beijing = st.builds(lambda s: datetime.fromtimestamp(1795000000 + s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                    st.integers(0, 86400))
teo_task = st.fixed_dictionaries({"JobId": field(st.text("abc123", min_size=1, max_size=12)), "Target": field(urls),
                                  "Type": field(st.just("prefetch_url")), "Status": field(statuses),
                                  "CreateTime": field(iso), "UpdateTime": field(iso),
                                  "FailType": field(st.text(max_size=8)), "FailMessage": field(st.text(max_size=8))})
cdn_task = st.fixed_dictionaries({"TaskId": field(st.text("0123456789", min_size=1, max_size=20)), "Url": field(urls),
                                  "Status": field(statuses), "Percent": field(st.integers(0, 100)),
                                  "CreateTime": field(beijing), "UpdateTime": field(beijing),
                                  "Area": field(st.sampled_from(["mainland", "global"]))})
ucloud_url = st.fixed_dictionaries({"Url": field(urls), "Status": field(statuses), "Progress": field(st.integers(0, 100)),
                                    "CreateTime": field(st.integers(1795000000, 1795086400)),
                                    "FinishTime": field(st.integers(0, 1795086400))})
ucloud_task = st.fixed_dictionaries({"TaskId": field(st.text("abcXYZ", min_size=1, max_size=8)),
                                     "Status": field(statuses), "CreateTime": field(st.integers(1795000000, 1795086400)),
                                     "UrlLists": field(st.lists(st.builds(body_of, ucloud_url), max_size=3))})


def check_outcome(run, rows_sent: int, cloud: str, action: str):
    try:
        observations = list(run())
    except CloudError as error:
        assert error.cloud == cloud and error.action == action
        assert str(error).startswith(f"{cloud} {action} failed:")
        return
    for obs in observations:
        assert isinstance(obs, HistoryRow) and isinstance(obs.url, str) and obs.task_id
        assert isinstance(obs.state, TargetState) and obs.created.tzinfo is not None
    assert len(observations) == rows_sent, "a row that parsed must not be dropped"


def tencent_adapter(adapter, body: dict):
    """The body answers the first page; later pages are empty (the API's TotalCount may overstate)."""
    first = json.dumps({"Response": {**body, "RequestId": "r"}})
    empty = json.dumps({"Response": {"TotalCount": 0, "Tasks": [], "PushLogs": [], "RequestId": "r"}})
    replace_tencent_transport(adapter._call.client, lambda action, params: first if params.get("Offset", 0) == 0 else empty)
    return adapter


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.one_of(st.lists(st.builds(body_of, teo_task), max_size=4), junk), total=field(st.integers(0, 4)))
def test_edgeone_describe_prefetch_tasks(tasks, total):
    body = body_of({"Tasks": tasks, "TotalCount": total if total is not ... else ...})
    adapter = tencent_adapter(EdgeOneAdapter(teo_client(ENDPOINT, TencentCredentials("i", "k")), "zone-a",
                                             limiter=SlidingWindowLimiter(10**6)), body)
    sent = len(tasks) if isinstance(tasks, list) else 0
    check_outcome(lambda: adapter.history(SINCE, UNTIL), sent, "edgeone", "DescribePrefetchTasks")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.one_of(st.lists(st.builds(body_of, cdn_task), max_size=4), junk), total=field(st.integers(0, 4)))
def test_tencent_cdn_describe_push_tasks(tasks, total):
    body = body_of({"PushLogs": tasks, "TotalCount": total})
    adapter = tencent_adapter(TencentCdnAdapter(cdn_client(ENDPOINT, TencentCredentials("i", "k")), "mainland",
                                                limiter=SlidingWindowLimiter(10**6)), body)
    sent = len(tasks) if isinstance(tasks, list) else 0
    check_outcome(lambda: adapter.history(SINCE, UNTIL), sent, "tencent-cdn", "DescribePushTasks")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.one_of(st.lists(st.builds(body_of, ucloud_task), max_size=3), junk), total=field(st.integers(0, 3)))
def test_ucloud_describe_prefetch_cache_task(tasks, total):
    body = body_of({"TaskList": tasks, "TotalCount": total, "RetCode": 0,
                    "Action": "DescribeNewUcdnPrefetchCacheTaskResponse"})
    client = ucloud_client(ENDPOINT, UCloudCredentials("p", "k"))
    client.invoke = lambda action, args=None, **options: (
        body if int((args or {}).get("Offset", 0)) == 0 else {"TaskList": [], "TotalCount": 0, "RetCode": 0})
    adapter = UCloudAdapter(client, "ucdn-a", call_limiter=SlidingWindowLimiter(10**6))
    sent = sum(len(t["UrlLists"]) for t in tasks if isinstance(t, dict) and isinstance(t.get("UrlLists"), list)) \
        if isinstance(tasks, list) else 0
    check_outcome(lambda: adapter.history(SINCE, UNTIL), sent, "ucloud", "DescribeNewUcdnPrefetchCacheTask")
