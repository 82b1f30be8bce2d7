"""The Tencent Cloud CDN adapter through the official cdn SDK against the sandbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.clouds import tencent_cdn
from components.clouds.base import CloudError, MalformedResponse
from components.clouds.ratelimit import SlidingWindowLimiter
from components.clouds.tencent_cdn import TencentCdnAdapter, make_client, map_status, parse_beijing
from components.model.connection import Endpoint, TencentCredentials
from components.model.status import TargetState
from sandbox import SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY
from tests.fakes import near_duplicates, now

URL = "https://static.example.com/{}.js"


pytestmark = pytest.mark.sandbox(progress_seconds=0.0)


def adapter(sb, area="mainland", **options):
    client = make_client(Endpoint("url", "http", sb.endpoint), TencentCredentials(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY))
    return TencentCdnAdapter(client, area, limiter=SlidingWindowLimiter(20), **options)



def test_round_trip_maps_done_fail_and_invalid(sb):
    sb.store.add_rule(URL.format("bad"), "failed")
    sb.store.add_rule(URL.format("origin"), "invalid")
    urls = [URL.format(n) for n in ("ok", "bad", "origin")]
    task = adapter(sb).submit(urls)
    rows = {o.url: o for o in adapter(sb).history(now() - timedelta(hours=1), now())}
    assert {u: rows[u].state for u in urls} == {urls[0]: TargetState.WARM, urls[1]: TargetState.FAILED,
                                               urls[2]: TargetState.FAILED}
    assert "invalid" in rows[urls[2]].reason and rows[urls[0]].task_id == task.task_id


def test_options_reach_the_api(sb):
    adapter(sb, "overseas", user_agent="cdn-prefetch-test", parse_m3u8=True,
            headers=[{"name": "X-Warm", "value": "1"}]).submit([URL.format("a")])
    [request] = sb.store.requests(action="PushUrlsCache")
    params = request["params"]
    assert (params["Area"], params["UserAgent"], params["ParseM3U8"]) == ("overseas", "cdn-prefetch-test", True)
    assert params["Headers"] == [{"Name": "X-Warm", "Value": "1"}]


def test_quota_of_global_is_what_both_areas_have_left(sb):
    sb.store.set_setting("cdn_push_daily_overseas", 5)
    adapter(sb, "overseas").submit([URL.format("x")])
    assert adapter(sb, "mainland").quota().available == 1000
    assert adapter(sb, "global").quota().available == 4


def test_area_destination_ignores_the_other_area_but_counts_global(sb):
    adapter(sb, "overseas").submit([URL.format("o")])
    adapter(sb, "global").submit([URL.format("g")])
    seen = {o.url for o in adapter(sb, "mainland").history(now() - timedelta(hours=1), now())}
    assert seen == {URL.format("g")}


def test_every_page_is_read(sb):
    sb.store.set_setting("cdn_push_daily_mainland", 5000)
    urls = [URL.format(f"p{i}") for i in range(1200)]
    a = adapter(sb)
    for i in range(0, 1200, 500):
        a.submit(urls[i:i + 500])
    assert sorted(o.url for o in a.history(now() - timedelta(hours=1), now())) == sorted(urls)
    assert [r["params"]["Offset"] for r in sb.store.requests(action="DescribePushTasks")] == [0, 1000]


def test_history_key_names_endpoint_credential_id_and_area_never_the_key(sb):
    key = adapter(sb).history_key()
    assert key == ("tencent-cdn", "http", sb.endpoint, SANDBOX_SECRET_ID, "mainland")
    assert SANDBOX_SECRET_KEY not in repr(key)
    assert adapter(sb, "overseas").history_key() != key  # same query, but the area decides which rows are ours


def test_beijing_time_is_converted():
    assert parse_beijing("2018-07-30 18:10:53") == datetime(2018, 7, 30, 10, 10, 53, tzinfo=timezone.utc)


def test_a_domain_of_another_account_names_the_key_and_the_fix_never_the_secret(sb):
    sb.store.grant("cdn", "static.example.com", "someone-else")
    with pytest.raises(CloudError) as info:
        adapter(sb).submit([URL.format("a")])
    message = str(info.value)
    assert info.value.kind == "auth" and info.value.code == "ResourceNotFound.CdnHostNotExists"
    assert "static.example.com" in message  # the sandbox's message names it; the hint says what to do
    assert ("a URL's domain is not a domain of the account of the key pair whose SecretId ends in …t-id "
            "(tencent-cdn area mainland): check that the domain is added to that account") in message
    assert SANDBOX_SECRET_KEY not in message and SANDBOX_SECRET_ID not in message
    assert len(sb.store.requests(action="PushUrlsCache")) == 1


def test_day_limit_is_a_quota_error_that_is_not_retried(sb):
    sb.store.set_setting("cdn_push_daily_mainland", 1)
    with pytest.raises(CloudError) as info:
        adapter(sb).submit([URL.format("a"), URL.format("b")])
    assert info.value.kind == "quota" and "CdnPushExceedDayLimit" in str(info.value)
    assert len(sb.store.requests(action="PushUrlsCache")) == 1


@pytest.mark.parametrize("raw, state", [("process", TargetState.RUNNING), ("Done", TargetState.WARM),
                                        ("FAIL", TargetState.FAILED), ("invalid", TargetState.FAILED),
                                        ("queued", TargetState.UNKNOWN), (None, TargetState.UNKNOWN)])
def test_status_mapping(raw, state):
    assert map_status(raw)[0] is state


# -- rows of one task: their shared fields are checked once, their own differences kept ---------------------
T0, T1 = "2026-11-23 18:00:00", "2026-11-23 18:00:05"


def row(name, **fields):
    """A history row of task ``1001``, as the API answers it (plain JSON), with ``fields`` replaced."""
    return {"TaskId": "1001", "Url": URL.format(name), "Status": "done", "Percent": 100, "CreateTime": T0,
            "Area": "mainland", "UpdateTime": T1, **fields}


def offline(area="mainland"):
    client = make_client(Endpoint("url", "http", "127.0.0.1:9"), TencentCredentials("id", "key"))
    return TencentCdnAdapter(client, area)


def history_of(rows, area="mainland"):
    """The adapter's history over one page holding ``rows`` (no server: the page is given)."""
    cdn = offline(area)
    cdn._page = lambda start, end, offset: (len(rows), rows if offset == 0 else [])
    return list(cdn.history(now() - timedelta(hours=1), now()))


def test_rows_of_one_task_keep_their_own_finish_time_status_and_progress():
    rows = [row("a"), row("b", UpdateTime="2026-11-23 18:00:09"), row("c", Status="fail"),
            row("d", Status="process", Percent=10, UpdateTime=""),
            row("e", Status="process", Percent=60, UpdateTime=""),
            row("f", Status="process", Percent=True, UpdateTime=""), row("g", Status="invalid"), row("h")]
    got = [(o.url.rsplit("/", 1)[1], o.state, o.updated and o.updated.second, o.reason, o.raw_status)
           for o in history_of(rows)]
    assert got == [("a.js", TargetState.WARM, 5, None, "done"), ("b.js", TargetState.WARM, 9, None, "done"),
                   ("c.js", TargetState.FAILED, 5, None, "fail"),
                   ("d.js", TargetState.RUNNING, None, "10% done", "process"),
                   ("e.js", TargetState.RUNNING, None, "60% done", "process"),
                   ("f.js", TargetState.RUNNING, None, None, "process"),  # True is no percentage, though True == 1
                   ("g.js", TargetState.FAILED, 5, "origin answered 4xx/5xx (invalid)", "invalid"),
                   ("h.js", TargetState.WARM, 5, None, "done")]


@pytest.mark.parametrize("fields, name, detail", [
    ({"CreateTime": "2026/11/23"}, "PushLogs[].CreateTime",
     "expected 'YYYY-MM-DD hh:mm:ss' (Beijing time), got '2026/11/23'"),
    ({"CreateTime": ""}, "PushLogs[].CreateTime", "missing"),
    ({"UpdateTime": 5}, "PushLogs[].UpdateTime", "expected 'YYYY-MM-DD hh:mm:ss' (Beijing time), got 5"),
    ({"TaskId": ""}, "PushLogs[].TaskId", "expected a task id, got ''"),
    ({"Url": None}, "PushLogs[].Url", "expected a URL, got None"),
    # Two bad fields: the first in the order a row was always checked is the one named.
    ({"TaskId": 7, "Url": None}, "PushLogs[].TaskId", "expected a task id, got 7"),
    ({"Url": None, "CreateTime": "2026/11/23"}, "PushLogs[].Url", "expected a URL, got None"),
])
def test_a_malformed_field_in_a_later_row_of_a_known_task_is_still_reported(fields, name, detail):
    with pytest.raises(MalformedResponse) as info:
        history_of([row("a"), row("b"), row("c", **fields)])
    assert info.value.field_name == name
    assert str(info.value) == f"tencent-cdn DescribePushTasks failed: MalformedResponse: field {name}: {detail}"


def test_rows_of_the_other_area_are_skipped_before_any_check_and_the_area_is_the_destinations():
    rows = [row("a"), row("o", Area="overseas", Url=None, CreateTime="junk"), row("g", Area="global")]
    assert [o.url for o in history_of(rows)] == [URL.format("a"), URL.format("g")]
    assert [o.url for o in history_of(rows[:1] + rows[2:], area="overseas")] == [URL.format("g")]


# Few values per field, so rows repeat each other's fields; junk of every type, with 1 == True among it.
ROW_VALUES = {
    "TaskId": ["1001", "1002"],
    "Url": [URL.format("a"), "HTTPS://Static.Example.com/b.js", "not a url"],
    "Status": ["done", "process", "fail", "invalid", "Done", "queued"],
    "Percent": [0, 1, 60],
    "CreateTime": [T0, T1],
    "UpdateTime": [T1, T0, ""],
    "Area": ["mainland", "overseas", "global", "MAINLAND"],
}
ROW_JUNK = {
    "TaskId": ["", 1, True, None, ["1001"]],
    "Url": [None, 5],
    "Status": [None, 1, True, ["done"]],
    "Percent": [True, 1.0, None, "5"],
    "CreateTime": ["", None, "2026/11/23", 1, True, [T0]],
    "UpdateTime": [None, "2026/11/23", 0, False, 1, True],
    "Area": [None, 1, ["mainland"]],
}


def parsed(cdn, task):
    """What one row becomes: its observation (or None), or the field and message it is refused for."""
    try:
        return cdn._observation(task)
    except MalformedResponse as error:
        return error.field_name, str(error)


@settings(max_examples=300, deadline=None)
@given(near_duplicates(ROW_VALUES, ROW_JUNK), st.sampled_from(["mainland", "overseas", "global"]))
def test_a_row_parses_the_same_whatever_rows_came_before(rows, area):
    cdn = offline(area)
    tencent_cdn._TASKS.clear()
    together = [parsed(cdn, task) for task in rows]
    alone = []
    for task in rows:
        tencent_cdn._TASKS.clear()  # nothing remembered from other rows
        alone.append(parsed(cdn, task))
    assert together == alone


def test_adapters_of_different_areas_never_share_a_row_verdict():
    tencent_cdn._TASKS.clear()
    overseas_row = row("a", Area="overseas")
    assert offline("mainland")._observation(overseas_row) is None
    assert offline("overseas")._observation(overseas_row).url == URL.format("a")


def test_layer_from_a_declared_destination_reaches_the_api(sb):
    """Issue 20: Layer (only `middle` exists), from a destination as declared (build)."""
    a = tencent_cdn.build({"provider": "tencent-cdn", "area": "overseas", "layer": "middle", "parseM3U8": False},
                          Endpoint("url", "http", sb.endpoint), TencentCredentials(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY))
    a.submit([URL.format("a")])
    [request] = sb.store.requests(action="PushUrlsCache")
    assert request["error_code"] is None and request["params"]["Layer"] == "middle"
    assert "ParseM3U8" not in request["params"]
