"""The sandbox's Tencent Cloud CDN (cdn 2018-06-06) emulation, driven through the official SDK over HTTP."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from tencentcloud.cdn.v20180606 import cdn_client, models
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from sandbox import SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY, Sandbox
from sandbox.store import NewTask
from tests.fakes import freeze_rate_window, wait_until

BJ = timezone(timedelta(hours=8))
BJ_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
DAY = 86400


def client(sb: Sandbox, secret_id: str = SANDBOX_SECRET_ID, secret_key: str = SANDBOX_SECRET_KEY,
           method: str = "POST") -> cdn_client.CdnClient:
    http = HttpProfile(protocol="http", endpoint=sb.endpoint, reqMethod=method, reqTimeout=10)
    return cdn_client.CdnClient(credential.Credential(secret_id, secret_key), "", ClientProfile(httpProfile=http))


def call(cli: cdn_client.CdnClient, action: str, **params: Any) -> Any:
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return getattr(cli, action)(request)


def error(fn: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(TencentCloudSDKException) as info:
        fn()
    assert info.value.get_request_id(), "errors must carry a RequestId"
    return str(info.value.get_code()), str(info.value.get_message())


def code(fn: Callable[[], Any]) -> str:
    return error(fn)[0]


def bj(ts: float) -> str:
    return datetime.fromtimestamp(ts, BJ).strftime("%Y-%m-%d %H:%M:%S")


def since(hours: float = 1) -> dict[str, str]:
    return {"StartTime": bj(time.time() - hours * 3600)}


def by_task(cli: cdn_client.CdnClient, task_id: str) -> dict[str, Any]:
    resp = call(cli, "DescribePushTasks", TaskId=task_id, Limit=1000)
    assert resp.TotalCount == len(resp.PushLogs)
    return {t.Url: t for t in resp.PushLogs}


def wait_until_done(cli: cdn_client.CdnClient, task_id: str, timeout: float = 5.0) -> dict[str, Any]:
    return wait_until(lambda: by_task(cli, task_id), lambda rows: all(t.Status != "process" for t in rows.values()),
                      timeout=timeout, what="still processing", every=0.1)


def available(cli: cdn_client.CdnClient) -> dict[str, int]:
    quota = call(cli, "DescribePushQuota").UrlPush
    return {q.Area: q.Available for q in quota}


# ----- happy path ----------------------------------------------------------------------------------


@pytest.mark.sandbox(progress_seconds=2.0)  # the first read sees 'processing' even on a loaded machine
def test_push_then_describe_progresses_to_done(sb: Sandbox) -> None:
    cli = client(sb)
    urls = ["https://static.example.com/app.js", "http://static.example.com/hero.webp"]
    pushed = call(cli, "PushUrlsCache", Urls=urls, UserAgent="warm/1.0", Layer="middle",
                  Headers=[{"Name": "X-Warm", "Value": "1"}], ParseM3U8=False, UrlEncode=True)
    assert re.fullmatch(r"\d{23}", pushed.TaskId) and pushed.RequestId

    first = by_task(cli, pushed.TaskId)
    assert sorted(first) == sorted(urls)
    for row in first.values():
        assert (row.TaskId, row.Status, row.Area) == (pushed.TaskId, "process", "mainland")
        assert isinstance(row.Percent, int) and 0 <= row.Percent < 100
        assert BJ_TIME.fullmatch(row.CreateTime) and row.UpdateTime == row.CreateTime

    done = wait_until_done(cli, pushed.TaskId)
    assert {(t.Status, t.Percent) for t in done.values()} == {("done", 100)}
    assert all(t.UpdateTime >= t.CreateTime for t in done.values())
    assert call(cli, "DescribePushTasks", **since()).TotalCount == 2
    assert available(cli) == {"mainland": 998, "overseas": 1000}


def test_percent_rises_while_processing(sb: Sandbox) -> None:
    sb.store.add_rule("*/big.bin", "success", delay_seconds=100)
    cli = client(sb)
    task_id = call(cli, "PushUrlsCache", Urls=["https://dl.example.com/big.bin"]).TaskId
    (row,) = by_task(cli, task_id).values()
    assert (row.Status, row.Percent) == ("process", 0)
    sb.store.age(50)
    (row,) = by_task(cli, task_id).values()
    assert row.Status == "process" and 49 <= row.Percent <= 51
    sb.store.age(50)
    (row,) = by_task(cli, task_id).values()
    assert (row.Status, row.Percent) == ("done", 100)


def test_get_requests_work_like_post(sb: Sandbox) -> None:
    task_id = call(client(sb), "PushUrlsCache", Urls=["https://a.example.com/x"]).TaskId
    via_get = call(client(sb, method="GET"), "DescribePushTasks", TaskId=task_id, Offset=0, Limit=10, Area="mainland")
    assert via_get.TotalCount == 1 and via_get.PushLogs[0].TaskId == task_id
    assert sb.store.requests(action="DescribePushTasks")[-1]["method"] == "GET"


# ----- rules ---------------------------------------------------------------------------------------


def test_rules_decide_outcomes_in_cdn_words(sb: Sandbox) -> None:
    store = sb.store
    for path, outcome in (("fail", "failed"), ("slow", "timeout"), ("stop", "canceled"), ("gone", "invalid"),
                          ("lost", "unknown")):
        store.add_rule(f"*/{path}/*", outcome, delay_seconds=0)
    store.add_rule("*/fail/ok.js", "success", delay_seconds=0)  # later rule wins
    store.add_rule("*/late/*", "failed", delay_seconds=60)
    cli = client(sb)
    base = "https://cdn.example.com"
    paths = ["/fail/a.js", "/slow/b.js", "/stop/c.js", "/gone/d.js", "/lost/e.js", "/fail/ok.js", "/late/f.js"]
    task_id = call(cli, "PushUrlsCache", Urls=[base + p for p in paths]).TaskId
    store.clear_rules()  # outcomes were fixed at creation
    got = {u.removeprefix(base): (t.Status, t.Percent) for u, t in by_task(cli, task_id).items()}
    assert got == {
        "/fail/a.js": ("fail", 100), "/slow/b.js": ("fail", 100), "/stop/c.js": ("fail", 100),
        "/gone/d.js": ("invalid", 100), "/lost/e.js": ("fail", 100), "/fail/ok.js": ("done", 100),
        "/late/f.js": ("process", 0),
    }

    def with_status(status: str) -> list[str]:
        resp = call(cli, "DescribePushTasks", TaskId=task_id, Status=status)
        return sorted(t.Url.removeprefix(base) for t in resp.PushLogs)

    assert with_status("fail") == ["/fail/a.js", "/lost/e.js", "/slow/b.js", "/stop/c.js"]
    assert with_status("invalid") == ["/gone/d.js"]
    assert with_status("done") == ["/fail/ok.js"]
    assert with_status("process") == ["/late/f.js"]


def test_rejected_url_fails_the_whole_push(sb: Sandbox) -> None:
    sb.store.add_rule("*/not-ours/*", "rejected", fail_message="domain is not on this account")
    cli = client(sb)
    bad = "https://other.example.com/not-ours/x.js"
    got_code, message = error(lambda: call(cli, "PushUrlsCache", Urls=["https://a.example.com/ok.js", bad]))
    assert got_code == "InvalidParameter.CdnHostInvalidParam"
    assert bad in message and "domain is not on this account" in message
    assert sb.store.tasks() == [] and available(cli)["mainland"] == 1000


# ----- errors --------------------------------------------------------------------------------------


def test_auth_version_action_and_parameter_errors(sb: Sandbox) -> None:
    assert code(lambda: call(client(sb, secret_key="wrong"), "DescribePushQuota")) == "AuthFailure.SignatureFailure"
    assert code(lambda: call(client(sb, secret_id="nobody"), "DescribePushQuota")) == "AuthFailure.SecretIdNotFound"
    cred = credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=sb.endpoint))
    assert code(lambda: CommonClient("cdn", "2017-01-01", cred, "", profile).call_json("DescribePushQuota", {})) \
        == "NoSuchVersion"
    common = CommonClient("cdn", "2018-06-06", cred, "", profile)
    assert code(lambda: common.call_json("PurgePathCache", {"Paths": ["https://a.example.com/"]})) == "InvalidAction"

    def push(**params: Any) -> str:
        return code(lambda: common.call_json("PushUrlsCache", params))

    ok = ["https://a.example.com/x"]
    assert push() == "MissingParameter"
    assert push(Url=ok) == "UnknownParameter"
    assert push(Urls="https://a.example.com/x") == "InvalidParameter"
    param_error = "InvalidParameter.CdnParamError"
    assert push(Urls=[]) == param_error
    assert push(Urls=["ftp://a.example.com/x"]) == param_error
    assert push(Urls=["a.example.com/x"]) == param_error
    assert push(Urls=ok, Area="europe") == param_error
    assert push(Urls=ok, Layer="edge") == param_error
    assert push(Urls=ok, Headers=[{"Name": f"X-{i}", "Value": "v"} for i in range(21)]) == param_error
    assert push(Urls=ok, Headers=[{"Name": "X" * 129, "Value": "v"}]) == param_error
    assert push(Urls=ok, Headers=[{"Name": "X-Big", "Value": "é" * 513}]) == param_error  # 1026 bytes
    assert push(Urls=ok, Headers=[{"Name": "X Warm", "Value": "1"}]) == param_error  # not an HTTP field name
    assert push(Urls=ok, Headers=[{"Name": "X-Warm", "Value": "1\nHost: evil"}]) == param_error
    assert common.call_json("PushUrlsCache", {"Urls": ok, "Headers": [
        {"Name": f"X-{i}" + "n" * 120, "Value": "v" * 1024} for i in range(20)]})["Response"]["TaskId"]

    def describe(**params: Any) -> str:
        return code(lambda: common.call_json("DescribePushTasks", params))

    assert describe() == param_error  # neither TaskId nor StartTime
    assert describe(EndTime=bj(time.time())) == param_error
    assert describe(**since(), Limit=1001) == param_error
    assert describe(**since(), Limit=0) == param_error
    assert describe(**since(), Offset=-1) == param_error
    assert describe(**since(), Status="Done") == param_error
    assert describe(**since(), Area="europe") == param_error
    assert describe(StartTime="2024-01-01T00:00:00+08:00") == "InvalidParameter.CdnStatInvalidDate"
    assert describe(StartTime="2024-01-02 00:00:00", EndTime="2024-01-01 00:00:00") \
        == "InvalidParameter.CdnStatInvalidDate"
    assert common.call_json("DescribePushTasks", {**since(), "Limit": 1000})["Response"]["TotalCount"] == 1


def test_rate_limit_per_action(sb: Sandbox) -> None:
    freeze_rate_window(sb)
    cli = client(sb)
    codes = []
    for _ in range(21):
        try:
            call(cli, "DescribePushQuota")
            codes.append(None)
        except TencentCloudSDKException as exc:
            codes.append(exc.get_code())
    assert codes == [None] * 20 + ["RequestLimitExceeded"]
    assert call(cli, "DescribePushTasks", **since()).TotalCount == 0  # its own budget


# ----- quota ---------------------------------------------------------------------------------------


def test_batch_limit(sb: Sandbox) -> None:
    sb.store.set_setting("cdn_push_batch", 3)
    cli = client(sb)
    assert {q.Batch for q in call(cli, "DescribePushQuota").UrlPush} == {3}
    urls = [f"https://q.example.com/{i}" for i in range(4)]
    for area in ("mainland", "overseas", "global"):
        assert code(lambda: call(cli, "PushUrlsCache", Urls=urls, Area=area)) == "LimitExceeded.CdnPushExceedBatchLimit"
    assert call(cli, "PushUrlsCache", Urls=urls[:3]).TaskId
    assert len(sb.store.tasks("cdn")) == 3


def test_daily_limits_per_area_and_global_spends_both(sb: Sandbox) -> None:
    sb.store.set_setting("cdn_push_daily_mainland", 5)
    sb.store.set_setting("cdn_push_daily_overseas", 3)
    cli = client(sb)
    quota = call(cli, "DescribePushQuota").UrlPush
    assert [(q.Area, q.Batch, q.Total, q.Available) for q in quota] == [
        ("mainland", 500, 5, 5), ("overseas", 500, 3, 3)]

    def urls(n: int, tag: str) -> list[str]:
        return [f"https://d.example.com/{tag}/{i}" for i in range(n)]

    g = call(cli, "PushUrlsCache", Urls=urls(2, "g"), Area="global").TaskId
    assert available(cli) == {"mainland": 3, "overseas": 1}
    assert {t.Area for t in by_task(cli, g).values()} == {"global"}
    day_limit = "LimitExceeded.CdnPushExceedDayLimit"
    assert code(lambda: call(cli, "PushUrlsCache", Urls=urls(2, "o"), Area="overseas")) == day_limit
    call(cli, "PushUrlsCache", Urls=urls(1, "o"), Area="overseas")
    # Mainland has room, overseas has none: a global push is refused whole, nothing is charged.
    got_code, message = error(lambda: call(cli, "PushUrlsCache", Urls=urls(1, "g2"), Area="global"))
    assert got_code == day_limit and "overseas" in message
    assert available(cli) == {"mainland": 3, "overseas": 0}
    assert call(cli, "PushUrlsCache", Urls=urls(3, "m")).TaskId  # Area defaults to mainland
    assert code(lambda: call(cli, "PushUrlsCache", Urls=urls(1, "m2"))) == day_limit
    assert available(cli) == {"mainland": 0, "overseas": 0}
    assert len(sb.store.tasks("cdn")) == 6

    sb.store.age(DAY)  # the next Beijing-time day
    assert available(cli) == {"mainland": 5, "overseas": 3}


# ----- history -------------------------------------------------------------------------------------


def test_paging_filters_and_newest_first(sb: Sandbox) -> None:
    cli = client(sb)
    t1 = call(cli, "PushUrlsCache", Urls=[f"https://one.example.com/{i}" for i in range(5)]).TaskId
    sb.store.age(60)
    t2 = call(cli, "PushUrlsCache", Urls=[f"https://two.example.com/{i}" for i in range(4)], Area="overseas").TaskId
    sb.store.age(60)
    t3 = call(cli, "PushUrlsCache", Urls=["https://one.example.com/new", "https://two.example.com/new"]).TaskId

    pages, offset = [], 0
    while True:
        page = call(cli, "DescribePushTasks", **since(), Offset=offset, Limit=4)
        assert page.TotalCount == 11
        if not page.PushLogs:
            break
        pages.append([t.TaskId for t in page.PushLogs])
        offset += len(page.PushLogs)
    assert [len(p) for p in pages] == [4, 4, 3]
    flat = [task for page in pages for task in page]
    assert flat == [t3] * 2 + [t2] * 4 + [t1] * 5  # newest first
    assert call(cli, "DescribePushTasks", **since()).TotalCount == 11  # default Limit 20
    assert len(call(cli, "DescribePushTasks", **since()).PushLogs) == 11

    def urls(**params: Any) -> list[str]:
        resp = call(cli, "DescribePushTasks", **params)
        assert resp.TotalCount == len(resp.PushLogs)
        return sorted(t.Url for t in resp.PushLogs)

    assert urls(TaskId=t2) == [f"https://two.example.com/{i}" for i in range(4)]
    assert urls(TaskId=t2, Keyword="one.example.com") == []
    assert urls(**since(), Keyword="two.example.com") == [
        "https://two.example.com/0", "https://two.example.com/1", "https://two.example.com/2",
        "https://two.example.com/3", "https://two.example.com/new"]
    assert urls(**since(), Keyword="https://one.example.com/new") == ["https://one.example.com/new"]
    assert urls(**since(), Keyword="https://one.example.com/ne") == []  # a URL matches exactly
    assert urls(**since(), Area="overseas") == urls(TaskId=t2)
    assert urls(TaskId="0000000000000000000000") == []
    # A window ending before the newest push leaves it out.
    older = call(cli, "DescribePushTasks", **since(), EndTime=bj(time.time() - 30))
    assert {t.TaskId for t in older.PushLogs} == {t1, t2}


@pytest.mark.parametrize("mode", ["refuse", "cap"])
@pytest.mark.parametrize("submit, describe, logs", [("PushUrlsCache", "DescribePushTasks", "PushLogs"),
                                                    ("PurgeUrlsCache", "DescribePurgeTasks", "PurgeLogs")])
def test_the_largest_limit_is_a_setting_refused_or_capped_above_it(sb: Sandbox, mode: str, submit: str,
                                                                    describe: str, logs: str) -> None:
    """Neither history action documents a largest Limit: the sandbox plays a cloud with one (issue 21)."""
    sb.store.set_setting("cdn_history_max_limit", 3)
    sb.store.set_setting("cdn_history_over_limit", mode)
    cli = client(sb)
    call(cli, submit, Urls=[f"https://a.example.com/{i}" for i in range(5)])
    assert len(getattr(call(cli, describe, **since(), Limit=3), logs)) == 3
    assert code(lambda: call(cli, describe, **since(), Limit=0)) == "InvalidParameter.CdnParamError"
    if mode == "refuse":
        assert code(lambda: call(cli, describe, **since(), Limit=4)) == "InvalidParameter.CdnParamError"
    else:
        page = call(cli, describe, **since(), Offset=1, Limit=1000)
        assert (len(getattr(page, logs)), page.TotalCount) == (3, 5)  # capped silently, the total still told


def test_times_are_beijing_time(sb: Sandbox) -> None:
    midnight_utc = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    at = midnight_utc.timestamp()
    sb.store.create_tasks("cdn", "overseas", "1234567890123456789012", [
        NewTask("https://tz.example.com/a", "tz.example.com", at + 90, "success")], now=at)
    cli = client(sb)
    (row,) = by_task(cli, "1234567890123456789012").values()
    day = midnight_utc.strftime("%Y-%m-%d")
    assert (row.CreateTime, row.UpdateTime, row.Area) == (f"{day} 08:00:00", f"{day} 08:01:30", "overseas")
    # StartTime/EndTime are read as Beijing time too, inclusive to the second.
    assert call(cli, "DescribePushTasks", StartTime=f"{day} 08:00:00", EndTime=f"{day} 08:00:00").TotalCount == 1
    assert call(cli, "DescribePushTasks", StartTime=f"{day} 08:00:01").TotalCount == 0
    assert call(cli, "DescribePushTasks", StartTime=f"{day} 00:00:00", EndTime=f"{day} 07:59:59").TotalCount == 0


def test_history_older_than_retention_is_not_returned(sb: Sandbox) -> None:
    cli = client(sb)
    task_id = call(cli, "PushUrlsCache", Urls=["https://old.example.com/a"]).TaskId
    sb.store.age(29 * DAY)
    assert len(by_task(cli, task_id)) == 1
    sb.store.age(2 * DAY)
    assert by_task(cli, task_id) == {}
    assert call(cli, "DescribePushTasks", StartTime="2000-01-01 00:00:00").TotalCount == 0
    sb.store.set_setting("cdn_history_days", 40)
    assert len(by_task(cli, task_id)) == 1


# ----- state ---------------------------------------------------------------------------------------


def test_request_log_and_restart(tmp_path) -> None:
    db = tmp_path / "persist.db"
    with Sandbox(db, progress_seconds=0.1) as first:
        first.store.add_rule("*/broken", "invalid")
        cli = client(first)
        pushed = call(cli, "PushUrlsCache", Urls=["https://r.example.com/ok", "https://r.example.com/broken"],
                      Area="overseas")
        code(lambda: call(cli, "PushUrlsCache", Urls=["ftp://r.example.com/x"]))
        log = first.store.requests(service="cdn")
        assert [(e["action"], e["error_code"]) for e in log] == [
            ("PushUrlsCache", None), ("PushUrlsCache", "InvalidParameter.CdnParamError")]
        assert log[0]["params"] == {"Urls": ["https://r.example.com/ok", "https://r.example.com/broken"],
                                    "Area": "overseas"}
        assert log[0]["request_id"] == pushed.RequestId and log[0]["secret_id"] == SANDBOX_SECRET_ID
        assert first.store.requests(service="teo") == []
    time.sleep(0.15)
    with Sandbox(db) as second:
        cli = client(second)
        assert {u: t.Status for u, t in by_task(cli, pushed.TaskId).items()} == {
            "https://r.example.com/ok": "done", "https://r.example.com/broken": "invalid"}
        assert available(cli) == {"mainland": 1000, "overseas": 998}


# ----- URL purge (PurgeUrlsCache, DescribePurgeTasks, DescribePurgeQuota) ------------------------------


def purges_by_task(cli: cdn_client.CdnClient, task_id: str, **params: Any) -> dict[str, Any]:
    resp = call(cli, "DescribePurgeTasks", TaskId=task_id, Limit=1000, **params)
    assert resp.TotalCount == len(resp.PurgeLogs)
    return {t.Url: t for t in resp.PurgeLogs}


def purge_available(cli: cdn_client.CdnClient) -> dict[str, int]:
    return {q.Area: q.Available for q in call(cli, "DescribePurgeQuota").UrlPurge}


@pytest.mark.sandbox(progress_seconds=2.0)  # the first read sees 'process' even on a loaded machine
def test_purge_then_describe_progresses_to_done_in_its_own_history(sb: Sandbox) -> None:
    cli = client(sb)
    urls = ["https://static.example.com/app.js", "http://static.example.com/hero.webp"]
    purged = call(cli, "PurgeUrlsCache", Urls=urls, Area="mainland", UrlEncode=True)
    assert re.fullmatch(r"\d{23}", purged.TaskId) and purged.RequestId
    first = purges_by_task(cli, purged.TaskId)
    assert sorted(first) == sorted(urls)
    for row in first.values():
        assert (row.TaskId, row.Status, row.PurgeType, row.FlushType) == (purged.TaskId, "process", "url", "delete")
        assert BJ_TIME.fullmatch(row.CreateTime)
    done = wait_until(lambda: purges_by_task(cli, purged.TaskId),
                      lambda rows: all(t.Status != "process" for t in rows.values()), what="still processing", every=0.1)
    assert {t.Status for t in done.values()} == {"done"}
    assert purges_by_task(cli, purged.TaskId, PurgeType="url", Status="done", Area="mainland").keys() == done.keys()
    assert purges_by_task(cli, purged.TaskId, PurgeType="path") == {}  # directory purge is not emulated
    assert code(lambda: call(cli, "DescribePurgeTasks", TaskId=purged.TaskId, PurgeType="dir")) \
        == "InvalidParameter.CdnParamError"

    pushed = call(cli, "PushUrlsCache", Urls=urls[:1]).TaskId
    # The histories never mix: not by time, and not by a TaskId of the other kind.
    assert {t.TaskId for t in call(cli, "DescribePurgeTasks", **since()).PurgeLogs} == {purged.TaskId}
    assert {t.TaskId for t in call(cli, "DescribePushTasks", **since()).PushLogs} == {pushed}
    assert by_task(cli, purged.TaskId) == {} and purges_by_task(cli, pushed) == {}
    assert available(cli) == {"mainland": 999, "overseas": 1000}  # the purge spent no push quota


def test_rules_of_kind_purge_steer_purges_in_cdn_words(sb: Sandbox) -> None:
    store = sb.store
    for path, outcome in (("fail", "failed"), ("slow", "timeout"), ("gone", "invalid"), ("lost", "unknown")):
        store.add_rule(f"*/{path}/*", outcome, delay_seconds=0, kind="purge")
    store.add_rule("*/push-only/*", "failed", delay_seconds=0)  # the default kind: prefetch
    store.add_rule("*/late/*", "failed", delay_seconds=60, kind="purge")
    cli = client(sb)
    base = "https://cdn.example.com"
    paths = ["/fail/a.js", "/slow/b.js", "/gone/c.js", "/lost/d.js", "/push-only/e.js", "/late/f.js"]
    task_id = call(cli, "PurgeUrlsCache", Urls=[base + p for p in paths]).TaskId
    pushed = call(cli, "PushUrlsCache", Urls=[base + p for p in paths[:5]]).TaskId
    store.age(1)
    got = {u.removeprefix(base): t.Status for u, t in purges_by_task(cli, task_id).items()}
    assert got == {"/fail/a.js": "fail", "/slow/b.js": "fail", "/gone/c.js": "fail",  # a purge is never `invalid`
                   "/lost/d.js": "fail", "/push-only/e.js": "done", "/late/f.js": "process"}
    assert {u.removeprefix(base): t.Status for u, t in by_task(cli, pushed).items()} == {
        "/fail/a.js": "done", "/slow/b.js": "done", "/gone/c.js": "done", "/lost/d.js": "done",
        "/push-only/e.js": "fail"}
    assert sorted(purges_by_task(cli, task_id, Status="fail")) == sorted(base + p for p in paths[:4])
    assert list(purges_by_task(cli, task_id, Status="process")) == [base + "/late/f.js"]
    assert code(lambda: call(cli, "DescribePurgeTasks", TaskId=task_id, Status="invalid")) \
        == "InvalidParameter.CdnParamError"

    store.add_rule("*/not-ours/*", "rejected", fail_message="domain is not on this account", kind="purge")
    bad = "https://other.example.com/not-ours/x.js"
    got_code, message = error(lambda: call(cli, "PurgeUrlsCache", Urls=["https://a.example.com/ok.js", bad]))
    assert got_code == "ResourceNotFound.CdnHostNotExists" and bad in message
    assert len(store.tasks("cdn", kind="purge")) == 6
    assert call(cli, "PushUrlsCache", Urls=[bad]).TaskId  # the rule is the purges'


@pytest.mark.sandbox(cdn_purge_batch=3, cdn_purge_daily_mainland=5, cdn_purge_daily_overseas=3)
def test_purge_batch_and_daily_quota_per_area(sb: Sandbox) -> None:
    store = sb.store
    cli = client(sb)
    quota = call(cli, "DescribePurgeQuota")
    assert [(q.Area, q.Batch, q.Total, q.Available) for q in quota.UrlPurge] == [
        ("mainland", 3, 5, 5), ("overseas", 3, 3, 3)]
    assert [(q.Area, q.Batch, q.Total, q.Available) for q in quota.PathPurge] == [
        ("mainland", 20, 100, 100), ("overseas", 20, 100, 100)]

    def urls(n: int, tag: str) -> list[str]:
        return [f"https://d.example.com/{tag}/{i}" for i in range(n)]

    assert code(lambda: call(cli, "PurgeUrlsCache", Urls=urls(4, "b"))) == "LimitExceeded.CdnPurgeUrlExceedBatchLimit"
    assert code(lambda: call(cli, "PurgeUrlsCache", Urls=urls(1, "g"), Area="global")) \
        == "InvalidParameter.CdnParamError"  # purges name one area, or none (every area)
    assert code(lambda: call(cli, "PurgeUrlsCache", Urls=["https://*.example.com/a"])) \
        == "InvalidParameter.CdnPurgeWildcardNotAllowed"
    call(cli, "PurgeUrlsCache", Urls=urls(2, "all"))  # no Area: both areas are spent
    assert purge_available(cli) == {"mainland": 3, "overseas": 1}
    day_limit = "LimitExceeded.CdnPurgeUrlExceedDayLimit"
    got_code, message = error(lambda: call(cli, "PurgeUrlsCache", Urls=urls(2, "o"), Area="overseas"))
    assert got_code == day_limit and "overseas" in message
    call(cli, "PurgeUrlsCache", Urls=urls(3, "m"), Area="mainland")
    assert code(lambda: call(cli, "PurgeUrlsCache", Urls=urls(1, "m2"), Area="mainland")) == day_limit
    assert purge_available(cli) == {"mainland": 0, "overseas": 1}
    assert available(cli) == {"mainland": 1000, "overseas": 1000}  # the push quota is another
    assert {t.scope for t in store.tasks("cdn", kind="purge")} == {"global", "mainland"}
    store.age(DAY)
    assert purge_available(cli) == {"mainland": 5, "overseas": 3}
