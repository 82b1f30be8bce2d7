"""The UCloud UCDN adapter through the official ucloud SDK against the sandbox."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from components.clouds import ucloud
from components.clouds.base import CloudError
from components.clouds.ratelimit import SlidingWindowLimiter
from components.clouds.quota_ledger import QuotaLedger
from components.clouds.ucloud import UCloudAdapter, make_client
from components.model.policy import Policy
from components.model.connection import Endpoint, UCloudCredentials
from components.model.status import TargetState
from sandbox import SANDBOX_UCLOUD_PRIVATE_KEY, SANDBOX_UCLOUD_PUBLIC_KEY
from tests.fakes import now

DOMAIN, HOST = "ucdn-test1", "static.example.com"
URL = f"https://{HOST}/{{}}.js"


pytestmark = pytest.mark.sandbox(progress_seconds=0.0, ucloud_prefetch_interval=0.2)


@pytest.fixture
def sb(sb):
    """The shared sandbox (tests/conftest.py), with the UCloud domain these tests prefetch on."""
    sb.store.add_ucloud_domain(DOMAIN, HOST)
    return sb


def adapter(sb, private=SANDBOX_UCLOUD_PRIVATE_KEY, interval=0.3):
    client = make_client(Endpoint("url", "http", sb.endpoint), UCloudCredentials(SANDBOX_UCLOUD_PUBLIC_KEY, private))
    return UCloudAdapter(client, DOMAIN, submit_limiter=SlidingWindowLimiter(1, interval, margin=0.05),
                         call_limiter=SlidingWindowLimiter(20))



def test_round_trip_with_nested_urls_and_odd_statuses(sb):
    sb.store.add_rule(URL.format("bad"), "failed")
    sb.store.add_rule(URL.format("odd"), "unknown")
    urls = [URL.format(n) for n in ("ok", "bad", "odd")]
    task = adapter(sb).submit(urls)
    rows = {o.url: o for o in adapter(sb).history(now() - timedelta(hours=1), now())}
    assert rows[urls[0]].state is TargetState.WARM and rows[urls[0]].task_id == task.task_id
    assert rows[urls[1]].state is TargetState.FAILED
    assert rows[urls[2]].state is TargetState.UNKNOWN and rows[urls[2]].raw_status == "unknow"


def skew_clock(sb, seconds: float) -> None:
    """UCloud's clock ``seconds`` off ours (sandbox/faults.py clock_skew): every time it reads and answers."""
    sb.store.add_fault("clock_skew", service="ucloud", delay_seconds=seconds)


def test_a_cloud_clock_half_an_hour_ahead_still_shows_our_newest_task(sb):
    skew_clock(sb, 1800)
    task = adapter(sb).submit([URL.format("ahead")])
    rows = list(adapter(sb).history(now() - timedelta(minutes=5), now()))  # up to our "now"
    assert [o.task_id for o in rows] == [task.task_id]
    assert rows[0].created > now() + timedelta(minutes=29)  # stamped on its clock, in our future


def test_our_tasks_read_by_id_show_wherever_the_clock_stands(sb):
    skew_clock(sb, -1800)
    a = adapter(sb)
    task = a.submit([URL.format("behind")])
    assert list(a.history(now() - timedelta(minutes=5), now())) == []  # stamped half an hour back
    [row] = a.task_rows([task.task_id])
    assert row.task_id == task.task_id and row.created < now() - timedelta(minutes=29)
    [call] = sb.store.requests(action="DescribeNewUcdnPrefetchCacheTask")[-1:]
    assert "BeginTime" not in call["params"] and "EndTime" not in call["params"]  # its own default window
    assert a.task_rows([]) == []


def test_quota_reports_what_is_left_for_the_domain(sb):
    sb.store.set_setting("ucloud_prefetch_daily", 10)
    a = adapter(sb)
    a.submit([URL.format("a"), URL.format("b")])
    quota = a.quota()
    assert (quota.batch, quota.daily, quota.available) == (1000, 10, 8)


def test_one_quota_call_serves_the_refresh_and_the_prefetch_decision(sb):
    """GetUcdnDomainPrefetchRefreshState answers both quotas: an up that purges then prefetches reads it once."""
    sb.store.set_setting("ucloud_prefetch_daily", 50)
    sb.store.set_setting("ucloud_refresh_daily", 300)
    a = adapter(sb)
    ledger = QuotaLedger()
    purge = ledger.reserve(a.purger(), "web", 10, Policy(max_quota_share=1.0), "set 'web'", noun="purge")
    prefetch = ledger.reserve(a, "web", 10, Policy(max_quota_share=1.0), "set 'web'")
    assert (purge.batch, purge.available, prefetch.batch, prefetch.available) == (30, 300, 1000, 50)
    assert len(sb.store.requests(action="GetUcdnDomainPrefetchRefreshState")) == 1
    assert ledger.available(a).available == 40 and ledger.available(a.purger()).available == 290


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


def test_the_default_spacing_is_uclouds_ten_seconds_per_account(sb):
    """By default every adapter takes the one shared submit limiter: one submit per 10 s, plus its margin."""
    limiter = ucloud.SUBMIT_LIMITER
    assert (limiter.limit, limiter.window, ucloud.SUBMIT_INTERVAL) == (1, 10.0, 10.0) and limiter.margin > 0
    assert UCloudAdapter(adapter(sb).client, DOMAIN).submit_limiter is limiter


def test_refreshes_are_not_held_to_the_prefetch_spacing(sb):
    """No interval is documented for RefreshNewUcdnDomainCache: a purge of 90 URLs (three batches of 30)
    goes out at the 20/s of the other calls, not one batch per 10 s."""
    purger = UCloudAdapter(adapter(sb).client, DOMAIN).purger()
    assert purger.submit_limiter is ucloud.CALL_LIMITER
    start = time.monotonic()
    for batch in range(3):
        purger.submit([URL.format(f"p{batch}-{i}") for i in range(30)])
    assert time.monotonic() - start < ucloud.SUBMIT_INTERVAL / 2
    assert [r["error_code"] for r in sb.store.requests(action="RefreshNewUcdnDomainCache")] == [None] * 3


def test_the_spacing_keeps_submits_the_interval_apart(sb):
    """The default limiter's rule (one submit per window, plus its margin) against a sandbox that enforces
    that interval, at a tenth of UCloud's 10 s so the test does not sleep 10 s: nothing is refused."""
    interval = ucloud.SUBMIT_INTERVAL / 10
    sb.store.set_setting("ucloud_prefetch_interval", interval)
    client = make_client(Endpoint("url", "http", sb.endpoint),
                         UCloudCredentials(SANDBOX_UCLOUD_PUBLIC_KEY, SANDBOX_UCLOUD_PRIVATE_KEY))
    a = UCloudAdapter(client, DOMAIN, submit_limiter=SlidingWindowLimiter(1, interval,
                                                                          margin=ucloud.SUBMIT_LIMITER.margin))
    start = time.monotonic()
    a.submit([URL.format("first")])
    a.submit([URL.format("second")])
    assert time.monotonic() - start >= interval
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


def test_another_accounts_domain_names_the_key_the_domain_and_the_fix_never_the_secret(sb):
    sb.store.grant("ucloud", DOMAIN, "someone-else")
    for call in (lambda a: a.quota(), lambda a: a.submit([URL.format("a")])):
        with pytest.raises(CloudError) as info:
            call(adapter(sb))
        message = str(info.value)
        assert info.value.kind == "auth" and "RetCode 299" in message
        assert f"the key pair whose PublicKey ends in …-key may not use ucloud domain {DOMAIN}" in message
        assert "are the key pair of the account that owns the domain" in message
        assert SANDBOX_UCLOUD_PRIVATE_KEY not in message and SANDBOX_UCLOUD_PUBLIC_KEY not in message
    assert sb.store.tasks() == []


def test_a_single_string_is_refused_not_sent_one_character_at_a_time(sb):
    with pytest.raises(TypeError):
        adapter(sb).submit(URL.format("a"))
    assert sb.store.requests(action="PrefetchNewUcdnDomainCache") == []


def test_sdk_request_logging_is_silenced(sb, caplog):
    caplog.set_level(logging.DEBUG)
    adapter(sb).quota()
    assert not [r for r in caplog.records if "PublicKey" in r.getMessage() or "DomainId" in r.getMessage()]


def test_more_than_a_thousand_targets_go_out_in_batches_the_sandbox_accepts(sb):
    import io

    from components.resource.converge import ShardSync
    from components.resource.inputs import ShardInputs

    sb.store.set_setting("ucloud_prefetch_daily", 5000)
    urls = tuple(sorted(URL.format(f"b{i:04d}") for i in range(1001)))
    inputs = ShardInputs("big", {"provider": "ucloud", "domainId": DOMAIN}, urls, "24h", "0s")
    ShardSync(adapter(sb), inputs, log=io.StringIO()).converge()
    log = sb.store.requests(action="PrefetchNewUcdnDomainCache")
    assert sorted(len(r["params"]["UrlList"]) for r in log) == [1, 1000]
    assert all(r["error_code"] is None for r in log)


# -- the history query: one call for the window, every task of the account, read as plain JSON (issue 19) ----
def sync_of(sb, urls):
    """A ShardSync of ``urls`` on the sandbox (waiting up to a minute), with a history cache and quota ledger of
    its own."""
    import io

    from components.clouds.history import HistoryCache
    from components.resource.converge import ShardSync
    from components.resource.inputs import ShardInputs

    inputs = ShardInputs("web", {"provider": "ucloud", "domainId": DOMAIN}, tuple(sorted(urls)), "24h", "1m")
    return ShardSync(adapter(sb), inputs, log=io.StringIO(), history=HistoryCache(), quota=QuotaLedger())


def test_a_refresh_sees_tasks_our_state_has_no_id_for_and_urls_no_task_holds(sb):
    """The refresh's read is the account's whole window: a task submitted by someone else (another stack, the
    console) decides as much as ours. Read by our task ids instead, ``again`` would show warm and ``theirs``
    missing."""
    from components.resource.outputs import build_outputs

    ours, again, theirs, never = (URL.format(n) for n in ("ours", "again", "theirs", "never"))
    first = sync_of(sb, [ours, again])
    result = first.converge()
    state = build_outputs(first.inputs, result.plan, verified_at=result.verified_at, submitted=result.submitted)
    assert {s.state for s in result.plan.statuses.values()} == {TargetState.WARM}
    sb.store.add_rule(again, "failed")
    other = adapter(sb)  # the same account, a client that is not the provider's: its tasks are in no state
    other.submit([again])
    other.submit([theirs])
    sb.store.clear_requests()

    refresh = sync_of(sb, [ours, again, theirs, never])
    statuses = refresh.observe(state).plan.statuses
    assert {url: s.state for url, s in statuses.items()} == {
        ours: TargetState.WARM, again: TargetState.FAILED, theirs: TargetState.WARM, never: TargetState.MISSING}
    [call] = sb.store.requests(action="DescribeNewUcdnPrefetchCacheTask")
    assert {"BeginTime", "EndTime"} <= set(call["params"]) and "Limit" not in call["params"]
    assert not any(name.startswith("TaskId") for name in call["params"])


@pytest.mark.parametrize("purge", [False, True])
def test_history_answers_are_read_as_json_without_the_sdks_response_schema(sb, monkeypatch, purge):
    """The SDK's history methods would run their response schema over every URL (0.2 s per 100,000): the
    adapter calls ``invoke`` and checks the fields itself (clouds/ucloud_rows.py)."""
    from ucloud.services.ucdn.client import UCDNClient

    def refused(self, *args, **kwargs):
        raise AssertionError("the SDK's history method was called")

    for method in ("describe_new_ucdn_prefetch_cache_task", "describe_new_ucdn_refresh_cache_task"):
        monkeypatch.setattr(UCDNClient, method, refused)
    a = adapter(sb).purger() if purge else adapter(sb)
    task = a.submit([URL.format("plain")])
    rows = list(a.history(now() - timedelta(hours=1), now())) + a.task_rows([task.task_id])
    assert [(o.url, o.task_id) for o in rows] == [(URL.format("plain"), task.task_id)] * 2


def test_a_cloud_that_caps_its_answer_is_read_to_the_end_by_offset():
    """``Limit`` is optional and documented to default to every task, yet a cloud may answer fewer than its
    TotalCount anyway: the adapter follows with the next offsets, each task read once."""
    tasks = [{"TaskId": f"t{i}", "Status": "success", "CreateTime": 1795000000 + i,
              "UrlLists": [{"Url": URL.format(f"u{i}"), "Status": "success", "CreateTime": 1795000000 + i}]}
             for i in range(5)]
    asked = []

    def capped(action, args=None, **options):  # the SDK client's invoke: at most two tasks an answer
        asked.append(dict(args))
        offset = int(args.get("Offset", 0))
        return {"RetCode": 0, "TotalCount": len(tasks), "TaskList": tasks[offset:offset + 2]}

    client = make_client(Endpoint("url", "http", "127.0.0.1:9"), UCloudCredentials("p", "k"))
    client.invoke = capped
    a = UCloudAdapter(client, DOMAIN, call_limiter=SlidingWindowLimiter(10**6))
    rows = list(a.history(now() - timedelta(hours=1), now()))
    assert sorted(o.task_id for o in rows) == [f"t{i}" for i in range(5)]
    assert sorted(int(p["Offset"]) for p in asked) == [0, 2, 4] and not any("Limit" in p for p in asked)
