"""The UCloud UCDN adapter through the official ucloud SDK against the sandbox."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from components.clouds.base import CloudError
from components.clouds.ucloud import UCloudAdapter, make_client, map_status
from components.ratelimit import SlidingWindowLimiter
from components.settings import Endpoint, UCloudCredentials
from components.status import TargetState
from sandbox import SANDBOX_UCLOUD_PRIVATE_KEY, SANDBOX_UCLOUD_PUBLIC_KEY, Sandbox

DOMAIN, HOST = "ucdn-test1", "static.example.com"
URL = f"https://{HOST}/{{}}.js"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def sb(tmp_path):
    with Sandbox(tmp_path / "sandbox.db", progress_seconds=0.0) as box:
        box.store.add_ucloud_domain(DOMAIN, HOST)
        box.store.set_setting("ucloud_prefetch_interval", 0.2)
        yield box


def adapter(sb, private=SANDBOX_UCLOUD_PRIVATE_KEY, interval=0.3):
    client = make_client(Endpoint("url", "http", sb.endpoint), UCloudCredentials(SANDBOX_UCLOUD_PUBLIC_KEY, private))
    return UCloudAdapter(client, DOMAIN, submit_limiter=SlidingWindowLimiter(1, interval, margin=0.05),
                         call_limiter=SlidingWindowLimiter(20))


def now():
    return datetime.now(timezone.utc)


def test_round_trip_with_nested_urls_and_odd_statuses(sb):
    sb.store.add_rule(URL.format("bad"), "failed")
    sb.store.add_rule(URL.format("odd"), "unknown")
    urls = [URL.format(n) for n in ("ok", "bad", "odd")]
    task = adapter(sb).submit(urls)
    rows = {o.url: o for o in adapter(sb).history(now() - timedelta(hours=1), now())}
    assert rows[urls[0]].state is TargetState.WARM and rows[urls[0]].task_id == task.task_id
    assert rows[urls[1]].state is TargetState.FAILED
    assert rows[urls[2]].state is TargetState.UNKNOWN and rows[urls[2]].raw_status == "unknow"


def test_quota_reports_what_is_left_for_the_domain(sb):
    sb.store.set_setting("ucloud_prefetch_daily", 10)
    a = adapter(sb)
    a.submit([URL.format("a"), URL.format("b")])
    quota = a.quota()
    assert (quota.batch, quota.daily, quota.available) == (1000, 10, 8)


def test_history_pages_through_many_tasks(sb):
    a = adapter(sb, interval=0.25)
    tasks = [a.submit([URL.format(f"t{i}")]).task_id for i in range(3)]
    import components.clouds.ucloud as module
    original, module.TASK_PAGE = module.TASK_PAGE, 2
    try:
        rows = list(a.history(now() - timedelta(hours=1), now()))
    finally:
        module.TASK_PAGE = original
    assert sorted(o.task_id for o in rows) == sorted(tasks)
    offsets = [int(r["params"]["Offset"]) for r in sb.store.requests(action="DescribeNewUcdnPrefetchCacheTask")]
    assert offsets == [0, 2]  # form-encoded: the log keeps them as text


def test_history_is_one_call_whatever_the_number_of_tasks(sb):
    a = adapter(sb, interval=0.25)
    tasks = [a.submit([URL.format(f"t{i}")]).task_id for i in range(3)]
    sb.store.clear_requests()
    assert sorted(o.task_id for o in a.history(now() - timedelta(hours=1), now())) == sorted(tasks)
    [call] = sb.store.requests(action="DescribeNewUcdnPrefetchCacheTask")
    assert "Limit" not in call["params"]  # no Limit: the API answers every task


def test_history_key_is_the_account_not_the_domain(sb):
    key = adapter(sb).history_key()
    assert key == ("ucloud", f"http://{sb.endpoint}", SANDBOX_UCLOUD_PUBLIC_KEY, "")
    assert SANDBOX_UCLOUD_PRIVATE_KEY not in repr(key)
    other_domain = UCloudAdapter(adapter(sb).client, "ucdn-other")
    assert other_domain.history_key() == key  # the history API takes no domain: one read serves both
    assert UCloudAdapter(adapter(sb).client, DOMAIN, project_id="org-2").history_key() != key


def test_default_spacing_keeps_submits_ten_seconds_apart(sb):
    sb.store.set_setting("ucloud_prefetch_interval", 10.0)
    client = make_client(Endpoint("url", "http", sb.endpoint),
                         UCloudCredentials(SANDBOX_UCLOUD_PUBLIC_KEY, SANDBOX_UCLOUD_PRIVATE_KEY))
    a = UCloudAdapter(client, DOMAIN, submit_limiter=SlidingWindowLimiter(1, 10.0, margin=0.2))
    start = time.monotonic()
    a.submit([URL.format("first")])
    a.submit([URL.format("second")])
    assert time.monotonic() - start >= 10.0
    log = sb.store.requests(action="PrefetchNewUcdnDomainCache")
    assert [r["error_code"] for r in log] == [None, None]  # the sandbox refused nothing


def test_a_throttled_submit_waits_and_is_sent_again_safely(sb):
    sb.store.set_setting("ucloud_prefetch_interval", 1.0)
    first, second = adapter(sb, interval=0.01), adapter(sb, interval=0.01)  # two processes' worth of limiters
    first.submit([URL.format("one")])
    second.submit([URL.format("two")])  # throttled (RetCode 153), retried after the interval
    codes = [r["error_code"] for r in sb.store.requests(action="PrefetchNewUcdnDomainCache")]
    assert codes[0] is None and codes[-1] is None and len(codes) >= 3
    assert {str(c) for c in codes[1:-1]} == {"153"}  # refused (so never accepted), then sent again
    assert len(sb.store.tasks(service="ucloud")) == 2  # exactly two tasks: no duplicate


def test_bad_key_is_an_auth_error_without_the_key(sb):
    with pytest.raises(CloudError) as info:
        adapter(sb, private="wrong-private-key-xyz").quota()
    assert info.value.kind == "auth" and "RetCode 171" in str(info.value)
    assert "wrong-private-key-xyz" not in str(info.value)


def test_a_single_string_is_refused_not_sent_one_character_at_a_time(sb):
    with pytest.raises(TypeError):
        adapter(sb).submit(URL.format("a"))
    assert sb.store.requests(action="PrefetchNewUcdnDomainCache") == []


def test_sdk_request_logging_is_silenced(sb, caplog):
    caplog.set_level(logging.DEBUG)
    adapter(sb).quota()
    assert not [r for r in caplog.records if "PublicKey" in r.getMessage() or "DomainId" in r.getMessage()]


@pytest.mark.parametrize("raw, state", [("wait", TargetState.QUEUED), ("process", TargetState.RUNNING),
                                        ("SUCCESS", TargetState.WARM), ("failure", TargetState.FAILED),
                                        ("unknow", TargetState.UNKNOWN), ("weird", TargetState.UNKNOWN)])
def test_status_mapping(raw, state):
    assert map_status(raw)[0] is state


def test_more_than_a_thousand_targets_go_out_in_batches_the_sandbox_accepts(sb):
    import io

    from components.records import SetInputs
    from components.sync import DestinationSync

    sb.store.set_setting("ucloud_prefetch_daily", 5000)
    urls = tuple(sorted(URL.format(f"b{i:04d}") for i in range(1001)))
    inputs = SetInputs("big", {"provider": "ucloud", "domainId": DOMAIN}, urls, "24h", "0s")
    DestinationSync(adapter(sb), inputs, log=io.StringIO()).converge()
    log = sb.store.requests(action="PrefetchNewUcdnDomainCache")
    assert sorted(len(r["params"]["UrlList"]) for r in log) == [1, 1000]
    assert all(r["error_code"] is None for r in log)
