"""The Tencent Cloud CDN adapter through the official cdn SDK against the sandbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from components.clouds.base import CloudError
from components.clouds.tencent_cdn import TencentCdnAdapter, make_client, map_status, parse_beijing
from components.ratelimit import SlidingWindowLimiter
from components.settings import Endpoint, TencentCredentials
from components.status import TargetState
from sandbox import SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY, Sandbox

URL = "https://static.example.com/{}.js"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def sb(tmp_path):
    with Sandbox(tmp_path / "sandbox.db", progress_seconds=0.0) as box:
        yield box


def adapter(sb, area="mainland", **options):
    client = make_client(Endpoint("url", "http", sb.endpoint), TencentCredentials(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY))
    return TencentCdnAdapter(client, area, limiter=SlidingWindowLimiter(20), **options)


def now():
    return datetime.now(timezone.utc)


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
