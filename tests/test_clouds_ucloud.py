"""The UCloud UCDN adapter through the official ucloud SDK against the sandbox."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.clouds import ucloud
from components.clouds.base import CloudError, MalformedResponse
from components.clouds.ratelimit import SlidingWindowLimiter
from components.clouds.quota_ledger import QuotaLedger
from components.clouds.ucloud import UCloudAdapter, make_client, map_status
from components.model.policy import Policy
from components.model.connection import Endpoint, UCloudCredentials
from components.model.status import HistoryRow, TargetState
from sandbox import SANDBOX_UCLOUD_PRIVATE_KEY, SANDBOX_UCLOUD_PUBLIC_KEY
from tests.fakes import near_duplicates, now

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


@pytest.mark.parametrize("raw, state", [("wait", TargetState.QUEUED), ("process", TargetState.RUNNING),
                                        ("SUCCESS", TargetState.WARM), ("failure", TargetState.FAILED),
                                        ("unknow", TargetState.UNKNOWN), ("weird", TargetState.UNKNOWN)])
def test_status_mapping(raw, state):
    assert map_status(raw)[0] is state


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


# -- the URLs of one task: their shared fields are checked once, their own differences kept -----------------
C0 = 1795000000


def item(name, **fields):
    """One entry of a task's ``UrlLists``, as the API answers it (plain JSON), with ``fields`` replaced."""
    return {"Url": URL.format(name), "Status": "success", "CreateTime": C0, "FinishTime": C0 + 5, "Progress": 100,
            **fields}


def rows_of(items, **task_fields):
    """The observations of one task of history holding ``items``.

    Straight from the row parser: the SDK's response schema already refuses some wrong types
    (a string time) before the adapter sees them, and this is about what the adapter checks.
    """
    task = {"TaskId": "t1", "Status": "success", "CreateTime": C0, "UrlLists": items, **task_fields}
    return list(ucloud._task_observations(task))


def test_a_url_without_a_status_is_unknown_under_a_finished_task_not_the_tasks_status():
    """One failed URL fails the whole task: the task's status says nothing about a URL without its own."""
    rows = rows_of([item("bad", Status="failure"), item("a", Status=None), item("b", Status=None)], Status="failure")
    assert [(o.state, o.raw_status, o.reason) for o in rows] == [
        (TargetState.FAILED, "failure", None),
        (TargetState.UNKNOWN, None, "the cloud gave no status for this URL"),
        (TargetState.UNKNOWN, None, "the cloud gave no status for this URL")]
    for task_status in ("success", "unknow", None, "Paused"):
        assert {o.state for o in rows_of([item("a", Status=None)], Status=task_status)} == {TargetState.UNKNOWN}
    # Under a task still in flight, it is in flight with its task: polls wait for the task to end.
    assert rows_of([item("a", Status=None)], Status="PROCESS")[0].state is TargetState.RUNNING


def test_urls_of_one_task_keep_their_own_finish_time_status_and_progress():
    items = [item("a"), item("b", FinishTime=C0 + 9), item("c", Status="failure"), item("d", Status=None),
             item("e", Status="process", Progress=10, FinishTime=0),
             item("f", Status="process", Progress=60, FinishTime=0),
             item("g", CreateTime=C0 + 2), item("h")]
    got = [(o.url.rsplit("/", 1)[1], o.state, o.created.timestamp() - C0, o.updated and o.updated.timestamp() - C0,
            o.reason, o.raw_status) for o in rows_of(items, Status="wait")]
    assert got == [("a.js", TargetState.WARM, 0, 5, None, "success"), ("b.js", TargetState.WARM, 0, 9, None, "success"),
                   ("c.js", TargetState.FAILED, 0, 5, None, "failure"),
                   ("d.js", TargetState.QUEUED, 0, 5, None, "wait"),  # no status of its own: the task's
                   ("e.js", TargetState.RUNNING, 0, None, "10% done", "process"),
                   ("f.js", TargetState.RUNNING, 0, None, "60% done", "process"),
                   ("g.js", TargetState.WARM, 2, 5, None, "success"), ("h.js", TargetState.WARM, 0, 5, None, "success")]


@pytest.mark.parametrize("fields, name, detail", [
    ({"CreateTime": "yesterday"}, "TaskList[].UrlLists[].CreateTime", "expected Unix seconds, got 'yesterday'"),
    ({"FinishTime": [C0]}, "TaskList[].UrlLists[].FinishTime", "expected Unix seconds, got [1795000000]"),
    ({"FinishTime": 10**20}, "TaskList[].UrlLists[].FinishTime", "Unix seconds out of range: 100000000000000000000"),
    ({"Url": None}, "TaskList[].UrlLists[].Url",
     "expected a URL, got {'Url': None, 'Status': 'success', 'CreateTime': 1, 'FinishTime': 1, 'Progress': 100}"),
    # True == 1, but a time of True is malformed where 1 is a time: after a row whose times were 1.
    ({"CreateTime": 1, "FinishTime": True}, "TaskList[].UrlLists[].FinishTime", "expected Unix seconds, got True"),
    ({"CreateTime": True, "FinishTime": 1}, "TaskList[].UrlLists[].CreateTime", "expected Unix seconds, got True"),
])
def test_a_malformed_field_in_a_later_url_of_a_task_is_still_reported(fields, name, detail):
    earlier = item("b", CreateTime=1, FinishTime=1)
    with pytest.raises(MalformedResponse) as info:
        rows_of([item("a"), earlier, item("c", **{"CreateTime": 1, "FinishTime": 1, **fields})])
    assert info.value.field_name == name
    assert str(info.value) == \
        f"ucloud DescribeNewUcdnPrefetchCacheTask failed: MalformedResponse: field {name}: {detail}"


# Few values per field, so URLs repeat each other's fields; junk of every type, with 1 == True among it.
ITEM_VALUES = {
    "Url": [URL.format("a"), "HTTPS://Static.Example.com/b.js", "not a url"],
    "Status": ["success", "process", "failure", "wait", "unknow", "Paused", None],
    "Progress": [0, 1, 60, None],
    "CreateTime": [C0, C0 + 1, 0, None, 1, 1.0],
    "FinishTime": [C0 + 5, 0, None, 1, 1.0],
}
ITEM_JUNK = {
    "Url": [None, 5],
    "Status": [1, True, ["success"]],
    "Progress": [True, 1.0],
    "CreateTime": ["", True, False, "x", [C0], 10**20],
    "FinishTime": [True, False, "x", 10**20],
}


def outcomes(task):
    """What a task's URLs become, in order, up to the first refused one (its field and message)."""
    got = []
    try:
        got.extend(ucloud._task_observations(task))
    except MalformedResponse as error:
        got.append((error.field_name, str(error)))
    return got


@settings(max_examples=300, deadline=None)
@given(near_duplicates(ITEM_VALUES, ITEM_JUNK), st.sampled_from(["success", "process", None, 1]))
def test_a_url_parses_the_same_whatever_urls_of_its_task_came_before(items, task_status):
    task = {"TaskId": "t1", "Status": task_status, "CreateTime": C0}
    together = outcomes({**task, "UrlLists": items})
    alone = []
    for one in items:
        alone.extend(outcomes({**task, "UrlLists": [one]}))
        if not isinstance(alone[-1], HistoryRow):
            break  # a refused URL ends the task's rows
    assert together == alone
