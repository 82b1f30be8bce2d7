"""Malformed API responses never crash the adapters and never silently drop a row (issue #5).

Hypothesis generates response bodies with fields missing, null, of the wrong type or with odd
status strings; each body goes through the official SDK's own parsing and then our adapter. The
only allowed outcomes: observations (odd statuses become ``unknown`` with the raw value kept), or a
CloudError that names the cloud and the API.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

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


def edgeone_answering(body: dict) -> EdgeOneAdapter:
    return tencent_adapter(EdgeOneAdapter(teo_client(ENDPOINT, TencentCredentials("i", "k")), "zone-a",
                                          limiter=SlidingWindowLimiter(10**6)), body)


def tencent_cdn_answering(body: dict) -> TencentCdnAdapter:
    return tencent_adapter(TencentCdnAdapter(cdn_client(ENDPOINT, TencentCredentials("i", "k")), "mainland",
                                             limiter=SlidingWindowLimiter(10**6)), body)


def ucloud_answering(body: dict) -> UCloudAdapter:
    """The body answers the first page; later pages are empty. As the SDK's ``invoke`` (which the adapter's
    history reads call) returns it: no response schema between the body and clouds/ucloud_rows.py."""
    client = ucloud_client(ENDPOINT, UCloudCredentials("p", "k"))
    client.invoke = lambda action, args=None, **options: (
        body if int((args or {}).get("Offset", 0)) == 0 else {"TaskList": [], "TotalCount": 0, "RetCode": 0})
    return UCloudAdapter(client, "ucdn-a", call_limiter=SlidingWindowLimiter(10**6))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.one_of(st.lists(st.builds(body_of, teo_task), max_size=4), junk), total=field(st.integers(0, 4)))
def test_edgeone_describe_prefetch_tasks(tasks, total):
    body = body_of({"Tasks": tasks, "TotalCount": total if total is not ... else ...})
    adapter = edgeone_answering(body)
    sent = len(tasks) if isinstance(tasks, list) else 0
    check_outcome(lambda: adapter.history(SINCE, UNTIL), sent, "edgeone", "DescribePrefetchTasks")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.one_of(st.lists(st.builds(body_of, cdn_task), max_size=4), junk), total=field(st.integers(0, 4)))
def test_tencent_cdn_describe_push_tasks(tasks, total):
    body = body_of({"PushLogs": tasks, "TotalCount": total})
    adapter = tencent_cdn_answering(body)
    sent = len(tasks) if isinstance(tasks, list) else 0
    check_outcome(lambda: adapter.history(SINCE, UNTIL), sent, "tencent-cdn", "DescribePushTasks")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.one_of(st.lists(st.builds(body_of, ucloud_task), max_size=3), junk), total=field(st.integers(0, 3)))
def test_ucloud_describe_prefetch_cache_task(tasks, total):
    body = body_of({"TaskList": tasks, "TotalCount": total, "RetCode": 0,
                    "Action": "DescribeNewUcdnPrefetchCacheTaskResponse"})
    adapter = ucloud_answering(body)
    sent = sum(len(t["UrlLists"]) for t in tasks if isinstance(t, dict) and isinstance(t.get("UrlLists"), list)) \
        if isinstance(tasks, list) else 0
    check_outcome(lambda: adapter.history(SINCE, UNTIL), sent, "ucloud", "DescribeNewUcdnPrefetchCacheTask")


# -- documented-valid answers: an adapter that refused everything would pass the tests above, not these ----
# What each API's documentation says a row holds; the states are the documented meanings of its statuses.
VALID_EXAMPLES = 100
WARM, RUNNING, FAILED = TargetState.WARM, TargetState.RUNNING, TargetState.FAILED
DOCUMENTED = {
    "edgeone": {"processing": RUNNING, "success": WARM, "failed": FAILED, "timeout": TargetState.TIMED_OUT,
                "canceled": FAILED, "invalid": FAILED},
    "tencent-cdn": {"process": RUNNING, "done": WARM, "Done": WARM, "fail": FAILED, "invalid": FAILED},
    "ucloud": {"wait": TargetState.QUEUED, "process": RUNNING, "success": WARM, "failure": FAILED,
               "unknow": TargetState.UNKNOWN},
}
moments = st.integers(1795000000, 1795086400).map(lambda s: datetime.fromtimestamp(s, timezone.utc))
# (the URL an observation must carry, how the cloud may spell it: it echoes what was submitted, so no
# dot segment: a submitted URL never has one)
valid_urls = st.builds(lambda host, path: (f"https://{host.lower()}/{path}", f"https://{host}/{path}"),
                       st.sampled_from(["static.example.com", "Static.Example.COM"]),
                       st.text("abcdefghijklmnopqrstuvwxyz0123456789-_./", max_size=16).filter(
                           lambda path: not {".", ".."} & set(path.split("/"))))
task_ids = st.text("abcXYZ0123456789", min_size=1, max_size=12)


def seen(observations) -> list[tuple]:
    return [(o.url, o.task_id, o.state, o.created, o.raw_status) for o in observations]


@st.composite
def valid_teo_tasks(draw):
    """(Tasks as DescribePrefetchTasks answers them, the observations they mean)."""
    tasks, expected = [], []
    for _ in range(draw(st.integers(0, 6))):
        (url, written), job, status, created = draw(valid_urls), draw(task_ids), draw(
            st.sampled_from(sorted(DOCUMENTED["edgeone"]))), draw(moments)
        row = {"JobId": job, "Target": written, "Type": "prefetch_url", "Status": status,
               "CreateTime": created.strftime("%Y-%m-%dT%H:%M:%SZ")}
        row.update(draw(st.fixed_dictionaries({}, optional={
            "UpdateTime": moments.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ")),
            "FailType": st.sampled_from(["", "originPullFailed"]), "FailMessage": st.text(max_size=8)})))
        tasks.append(row)
        expected.append((url, job, DOCUMENTED["edgeone"][status], created, status))
    return tasks, expected


@st.composite
def valid_push_logs(draw):
    """(PushLogs as DescribePushTasks answers them, the observations a mainland destination sees)."""
    logs, expected = [], []
    for _ in range(draw(st.integers(0, 6))):
        (url, written), task, status, created = draw(valid_urls), draw(task_ids), draw(
            st.sampled_from(sorted(DOCUMENTED["tencent-cdn"]))), draw(moments)
        area = draw(st.sampled_from(["mainland", "overseas", "global"]))
        logs.append({"TaskId": task, "Url": written, "Status": status, "Percent": draw(st.integers(0, 100)),
                     "CreateTime": beijing_of(created), "UpdateTime": beijing_of(draw(moments)), "Area": area})
        if area != "overseas":  # the other area's rows are not this destination's
            expected.append((url, task, DOCUMENTED["tencent-cdn"][status], created, status))
    return logs, expected


def beijing_of(moment: datetime) -> str:
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


@st.composite
def valid_ucloud_tasks(draw):
    """(TaskList as DescribeNewUcdnPrefetchCacheTask answers it, the observations it means)."""
    tasks, expected = [], []
    for _ in range(draw(st.integers(0, 4))):
        task_id, task_status, task_created = draw(task_ids), draw(st.sampled_from(sorted(DOCUMENTED["ucloud"]))), \
            draw(moments)
        items = []
        for _ in range(draw(st.integers(0, 4))):
            (url, written), item = draw(valid_urls), {}
            item["Url"] = written
            status = draw(st.one_of(st.none(), st.sampled_from(sorted(DOCUMENTED["ucloud"]))))
            if status is not None:  # a URL without its own status: in flight with its task, else unknown
                item["Status"] = status
            created = draw(st.one_of(st.none(), moments))
            if created is not None:  # a URL without its own creation time was created with its task
                item["CreateTime"] = int(created.timestamp())
            item["Progress"] = draw(st.integers(0, 100))
            item["FinishTime"] = draw(st.one_of(st.just(0), st.integers(1795000000, 1795086400)))
            items.append(item)
            raw = status or (task_status if task_status in ("wait", "process") else None)
            state = DOCUMENTED["ucloud"][raw] if raw else TargetState.UNKNOWN
            expected.append((url, task_id, state, created or task_created, raw))
        tasks.append({"TaskId": task_id, "Status": task_status, "CreateTime": int(task_created.timestamp()),
                      "UrlLists": items})
    return tasks, expected


@settings(max_examples=VALID_EXAMPLES, deadline=None)
@given(case=valid_teo_tasks())
def test_edgeone_documented_rows_become_their_observations(case):
    tasks, expected = case
    assert seen(edgeone_answering({"Tasks": tasks, "TotalCount": len(tasks)}).history(SINCE, UNTIL)) == expected


@settings(max_examples=VALID_EXAMPLES, deadline=None)
@given(case=valid_push_logs())
def test_tencent_cdn_documented_rows_become_their_observations(case):
    logs, expected = case
    adapter = tencent_cdn_answering({"PushLogs": logs, "TotalCount": len(logs)})
    assert seen(adapter.history(SINCE, UNTIL)) == expected


@settings(max_examples=VALID_EXAMPLES, deadline=None)
@given(case=valid_ucloud_tasks())
def test_ucloud_documented_tasks_become_one_observation_per_url(case):
    tasks, expected = case
    adapter = ucloud_answering({"TaskList": tasks, "TotalCount": len(tasks), "RetCode": 0,
                                "Action": "DescribeNewUcdnPrefetchCacheTaskResponse"})
    assert seen(adapter.history(SINCE, UNTIL)) == expected
