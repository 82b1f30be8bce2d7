"""The sandbox's EdgeOne (teo 2022-09-01) emulation, driven through the official SDK over HTTP."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from tencentcloud.common import abstract_client, credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.teo.v20220901 import models, teo_client

from sandbox import SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY, Sandbox, SandboxStore, tc3
from tests.fakes import freeze_rate_window, wait_until

ZONE = "zone-2noz78a4w5ol"
BJ = timezone(timedelta(hours=8))
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def client(sb: Sandbox, secret_id: str = SANDBOX_SECRET_ID, secret_key: str = SANDBOX_SECRET_KEY,
           method: str = "POST", sign_method: str = "TC3-HMAC-SHA256") -> teo_client.TeoClient:
    http = HttpProfile(protocol="http", endpoint=sb.endpoint, reqMethod=method, reqTimeout=10)
    return teo_client.TeoClient(credential.Credential(secret_id, secret_key), "",
                                ClientProfile(httpProfile=http, signMethod=sign_method))


def call(cli: teo_client.TeoClient, action: str, **params: Any) -> Any:
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return getattr(cli, action)(request)


def error_code(fn: Callable[[], Any]) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        fn()
    assert info.value.get_request_id(), "errors must carry a RequestId"
    return str(info.value.get_code())


def window(hours: float = 1) -> dict[str, str]:
    now = datetime.now(BJ)
    return {"StartTime": (now - timedelta(hours=hours)).isoformat(timespec="seconds"),
            "EndTime": (now + timedelta(hours=hours)).isoformat(timespec="seconds")}


def by_job(cli: teo_client.TeoClient, job_id: str) -> dict[str, Any]:
    resp = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, Limit=1000,
                Filters=[{"Name": "job-id", "Values": [job_id]}])
    return {t.Target: t for t in resp.Tasks}


def wait_until_done(cli: teo_client.TeoClient, job_id: str, timeout: float = 5.0) -> dict[str, Any]:
    return wait_until(lambda: by_job(cli, job_id), lambda tasks: all(t.Status != "processing" for t in tasks.values()),
                      timeout=timeout, what="still processing", every=0.1)


def quota_available(cli: teo_client.TeoClient) -> int:
    (prefetch,) = call(cli, "DescribeContentQuota", ZoneId=ZONE).PrefetchQuota
    assert prefetch.Type == "prefetch_url"
    return int(prefetch.DailyAvailable)


# ----- happy path ----------------------------------------------------------------------------------


@pytest.mark.sandbox(progress_seconds=2.0)  # the first read sees 'processing' even on a loaded machine
def test_create_then_describe_progresses_to_success(sb: Sandbox) -> None:
    cli = client(sb)
    targets = ["https://static.example.com/app.js", "http://static.example.com/hero.webp"]
    created = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=targets)
    assert re.fullmatch(r"[a-z0-9]{12}", created.JobId)
    assert created.FailedList == []

    first = by_job(cli, created.JobId)
    assert sorted(first) == sorted(targets)
    for task in first.values():
        assert (task.JobId, task.Type, task.Method, task.Status) == (created.JobId, "prefetch_url", "", "processing")
        assert (task.FailType, task.FailMessage) == ("", "")
        assert ISO_Z.fullmatch(task.CreateTime) and task.UpdateTime == task.CreateTime

    done = wait_until_done(cli, created.JobId)
    assert {t.Status for t in done.values()} == {"success"}
    assert all(t.UpdateTime >= t.CreateTime for t in done.values())

    # The same rows are found by time window, and not under another zone.
    listed = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window())
    assert listed.TotalCount == 2 and {t.Target for t in listed.Tasks} == set(targets)
    assert call(cli, "DescribePrefetchTasks", ZoneId="zone-other", **window()).TotalCount == 0


def test_get_requests_work_like_post(sb: Sandbox) -> None:
    job = call(client(sb), "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://a.example.com/x"]).JobId
    via_get = call(client(sb, method="GET"), "DescribePrefetchTasks", ZoneId=ZONE, Offset=0, Limit=10,
                   Filters=[{"Name": "job-id", "Values": [job]},
                            {"Name": "statuses", "Values": ["processing", "success"]}])
    assert via_get.TotalCount == 1 and via_get.Tasks[0].JobId == job
    assert sb.store.requests(action="DescribePrefetchTasks")[-1]["method"] == "GET"


# ----- rules ---------------------------------------------------------------------------------------


def test_rules_decide_outcomes_and_latest_rule_wins(sb: Sandbox) -> None:
    store = sb.store
    store.add_rule("*/fail/*", "failed")
    store.add_rule("*/slow/*", "timeout")
    store.add_rule("*/stop/*", "canceled", fail_message="canceled by operator")
    store.add_rule("*/gone/*", "rejected", fail_message="domain not in zone")
    store.add_rule("*/fail/ok.js", "success")  # added later: overrides */fail/*
    store.add_rule("*/late/*", "failed", delay_seconds=60)
    cli = client(sb)
    base = "https://cdn.example.com"
    targets = [f"{base}/fail/a.js", f"{base}/slow/b.js", f"{base}/stop/c.js", f"{base}/gone/d.js",
               f"{base}/gone/e.js", f"{base}/fail/ok.js", f"{base}/late/f.js", f"{base}/plain.js"]
    created = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=targets)
    assert [(f.Reason, f.Targets) for f in created.FailedList] == [
        ("domain not in zone", [f"{base}/gone/d.js", f"{base}/gone/e.js"])]

    store.clear_rules()  # outcomes were fixed at creation: clearing rules changes nothing
    tasks = wait_until(lambda: by_job(cli, created.JobId),
                       lambda tasks: all(t.Status != "processing" for u, t in tasks.items() if "/late/" not in u))
    assert f"{base}/gone/d.js" not in tasks and len(tasks) == 6
    got = {u.removeprefix(base): (t.Status, t.FailType, t.FailMessage) for u, t in tasks.items()}
    assert got == {
        "/fail/a.js": ("failed", "originPullFailed", "origin returned HTTP 502"),
        "/slow/b.js": ("timeout", "taskFailed", "prefetch timed out"),
        "/stop/c.js": ("canceled", "taskFailed", "canceled by operator"),
        "/fail/ok.js": ("success", "", ""),
        "/late/f.js": ("processing", "", ""),  # its rule's delay, not progress_seconds
        "/plain.js": ("success", "", ""),
    }
    failed_only = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window(),
                       Filters=[{"Name": "statuses", "Values": ["failed", "timeout"]}])
    assert sorted(t.Target for t in failed_only.Tasks) == [f"{base}/fail/a.js", f"{base}/slow/b.js"]


def test_invalid_and_unknown_outcomes_are_reported_as_failed(sb: Sandbox) -> None:
    sb.store.add_rule("*/404", "invalid", delay_seconds=0)
    sb.store.add_rule("*/lost", "unknown", delay_seconds=0)
    sb.store.add_rule("*/ok", "success", delay_seconds=0)
    cli = client(sb)
    base = "https://v.example.com"
    job = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=[f"{base}/404", f"{base}/lost", f"{base}/ok"]).JobId
    got = {u.removeprefix(base): (t.Status, t.FailType, t.FailMessage) for u, t in by_job(cli, job).items()}
    assert got == {"/404": ("failed", "originPullFailed", "origin returned HTTP 404"),
                   "/lost": ("failed", "taskFailed", "prefetch status unknown"), "/ok": ("success", "", "")}

    def targets(*statuses: str) -> list[str]:
        resp = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window(),
                    Filters=[{"Name": "statuses", "Values": list(statuses)}])
        return sorted(t.Target.removeprefix(base) for t in resp.Tasks)

    assert targets("failed") == ["/404", "/lost"]
    assert targets("invalid") == ["/404"]  # the filter-only status: origin answered non-2xx
    assert targets("invalid", "success") == ["/404", "/ok"]


def test_all_targets_rejected_still_returns_a_job_and_uses_no_quota(sb: Sandbox) -> None:
    sb.store.add_rule("*", "rejected")
    cli = client(sb)
    before = quota_available(cli)
    created = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://a.example.com/1"])
    assert re.fullmatch(r"[a-z0-9]{12}", created.JobId)
    assert created.FailedList[0].Targets == ["https://a.example.com/1"]
    assert created.FailedList[0].Reason  # a default reason, never empty
    assert by_job(cli, created.JobId) == {}
    assert quota_available(cli) == before


# ----- authentication ------------------------------------------------------------------------------


def test_wrong_key_unknown_id_and_custom_credentials(tmp_path) -> None:
    with Sandbox(tmp_path / "sb.db", credentials={"test-id": "test-key"}) as box:
        ok = call(client(box, "test-id", "test-key"), "DescribeContentQuota", ZoneId=ZONE)
        assert ok.PrefetchQuota[0].Daily == 10000
        assert error_code(lambda: call(client(box, "test-id", "wrong-key"), "DescribeContentQuota",
                                       ZoneId=ZONE)) == "AuthFailure.SignatureFailure"
        assert error_code(lambda: call(client(box), "DescribeContentQuota",
                                       ZoneId=ZONE)) == "AuthFailure.SecretIdNotFound"
        logged = box.store.requests()
        assert [e["error_code"] for e in logged] == [None, "AuthFailure.SignatureFailure", "AuthFailure.SecretIdNotFound"]


def test_expired_timestamp_is_refused(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    skewed = time.time() - 301
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: skewed))
    assert error_code(lambda: call(client(sb), "DescribeContentQuota", ZoneId=ZONE)) == "AuthFailure.SignatureExpire"
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: skewed + 20))  # 4m41s off: fine
    assert quota_available(client(sb)) == 10000


def _raw_post(sb: Sandbox, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    req = urllib.request.Request(sb.url + "/", data=body, method="POST", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return resp.status, resp.headers["Content-Type"], json.loads(resp.read())


def _signed_headers(sb: Sandbox, body: bytes, action: str = "DescribeContentQuota") -> dict[str, str]:
    ts = int(time.time())
    auth = tc3.sign(secret_id=SANDBOX_SECRET_ID, secret_key=SANDBOX_SECRET_KEY, service="teo", timestamp=ts,
                    method="POST", host=sb.endpoint, content_type="application/json", payload=body)
    return {"Content-Type": "application/json", "Host": sb.endpoint, "X-TC-Action": action,
            "X-TC-Version": "2022-09-01", "X-TC-Timestamp": str(ts), "Authorization": auth}


def test_responses_are_http_200_with_exact_json_content_type(sb: Sandbox) -> None:
    body = json.dumps({"ZoneId": ZONE}).encode()
    status, ctype, data = _raw_post(sb, body, _signed_headers(sb, body))
    assert (status, ctype) == (200, "application/json")
    assert data["Response"]["PrefetchQuota"][0]["Type"] == "prefetch_url"
    assert re.fullmatch(r"[0-9a-f-]{36}", data["Response"]["RequestId"])

    for auth in ("", "Basic abc", "TC3-HMAC-SHA256 Credential=x, Signature=y"):
        status, ctype, data = _raw_post(sb, body, {"Content-Type": "application/json", "Authorization": auth,
                                                   "X-TC-Action": "DescribeContentQuota"})
        assert (status, ctype) == (200, "application/json")
        assert data["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
        assert data["Response"]["RequestId"]


def test_garbage_json_is_an_error_response_not_a_crash(sb: Sandbox) -> None:
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        status, ctype, data = _raw_post(sb, body, _signed_headers(sb, body))
        assert (status, ctype) == (200, "application/json")
        assert data["Response"]["Error"]["Code"] == "InvalidParameter"
    # A tampered body no longer matches its signature.
    signed = _signed_headers(sb, b'{"ZoneId": "zone-a"}')
    _, _, data = _raw_post(sb, b'{"ZoneId": "zone-b"}', signed)
    assert data["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


# ----- routing and parameter validation ------------------------------------------------------------


def test_unknown_action_wrong_version_and_parameter_errors(sb: Sandbox) -> None:
    cred = credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=sb.endpoint))
    common = CommonClient("teo", "2022-09-01", cred, "", profile)
    assert error_code(lambda: common.call_json("DescribeNothing", {})) == "InvalidAction"
    old = CommonClient("teo", "2022-01-06", cred, "", profile)
    assert error_code(lambda: old.call_json("DescribeContentQuota", {"ZoneId": ZONE})) == "NoSuchVersion"
    other = CommonClient("cvm", "2017-03-12", cred, "", profile)
    assert error_code(lambda: other.call_json("DescribeInstances", {})) == "InvalidAction"

    def create(**params: Any) -> Any:
        return common.call_json("CreatePrefetchTask", params)

    assert error_code(lambda: create(Targets=["https://a.example.com/"])) == "MissingParameter"
    assert error_code(lambda: create(ZoneId=ZONE)) == "MissingParameter"
    assert error_code(lambda: create(ZoneId=ZONE, Targets="https://a.example.com/")) == "InvalidParameter"
    assert error_code(lambda: create(ZoneId=ZONE, Target=["https://a.example.com/"])) == "UnknownParameter"
    assert error_code(lambda: create(ZoneId="bogus", Targets=["https://a.example.com/"])) == "InvalidParameter.ZoneNotFound"
    assert error_code(lambda: create(ZoneId=ZONE, Targets=["ftp://a.example.com/x"])) == "InvalidParameter.Target"
    assert error_code(lambda: create(ZoneId=ZONE, Targets=["a.example.com/x"])) == "InvalidParameter.Target"
    assert error_code(lambda: common.call_json("DescribePrefetchTasks", {**window(), "Limit": "10"})) == "MissingParameter"
    assert error_code(lambda: common.call_json("DescribePrefetchTasks",
                                               {"ZoneId": ZONE, **window(), "Limit": "10"})) == "InvalidParameter"
    assert sb.store.tasks() == []


def test_describe_limits_window_and_filters(sb: Sandbox) -> None:
    cli = client(sb)

    def describe(**params: Any) -> Any:
        return call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **params)

    def rejected(**params: Any) -> str:
        with pytest.raises(TencentCloudSDKException) as info:
            describe(**params)
        assert info.value.get_code() == "InvalidParameter.ParameterError"
        return str(info.value.get_message())

    assert "1000" in rejected(Limit=1001, **window())
    rejected(Limit=0, **window())
    assert describe(Limit=1000, **window()).TotalCount == 0

    start = datetime(2024, 1, 1, tzinfo=BJ)
    eight_days = {"StartTime": start.isoformat(), "EndTime": (start + timedelta(days=8)).isoformat()}
    assert rejected(**eight_days) == "EndTime not within the allowed range [StartTime, StartTime + 7 days]."
    rejected(StartTime=(start + timedelta(days=1)).isoformat(), EndTime=start.isoformat())
    assert describe(StartTime="2024-01-01T00:00:00+08:00", EndTime="2024-01-08T00:00:00+08:00").TotalCount == 0
    assert describe(StartTime="2023-12-31T16:00:00Z", EndTime="2024-01-07T16:00:00Z").TotalCount == 0
    rejected(StartTime="2024-01-01 00:00:00", EndTime="2024-01-02 00:00:00")  # no zone: ambiguous

    rejected()  # neither a time window nor a job-id filter
    rejected(Filters=[{"Name": "statuses", "Values": ["success"]}])
    rejected(Filters=[{"Name": "job-id", "Values": ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]}])
    rejected(**window(), Filters=[{"Name": "target", "Values": ["https://a/1", "https://a/2"]}])
    rejected(**window(), Filters=[{"Name": "statuses", "Values": ["done"]}])
    rejected(**window(), Filters=[{"Name": "color", "Values": ["red"]}])


def test_filters_and_across_or_within(sb: Sandbox) -> None:
    sb.store.set_setting("progress_seconds", 60.0)  # "ok" is still processing when the filters are read
    cli = client(sb)
    sb.store.add_rule("*/bad*", "failed", delay_seconds=0)
    a = call(cli, "CreatePrefetchTask", ZoneId=ZONE,
             Targets=["https://one.example.com/ok", "https://one.example.com/bad", "https://two.example.com/bad"]).JobId
    b = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://two.example.com/ok"]).JobId

    def targets(*filters: dict[str, Any]) -> list[str]:
        resp = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window(), Filters=list(filters))
        assert resp.TotalCount == len(resp.Tasks)
        return sorted(t.Target for t in resp.Tasks)

    assert targets({"Name": "domains", "Values": ["two.example.com"]}) == [
        "https://two.example.com/bad", "https://two.example.com/ok"]
    assert targets({"Name": "statuses", "Values": ["failed"]},
                   {"Name": "domains", "Values": ["one.example.com", "TWO.example.com"]}) == [
        "https://one.example.com/bad", "https://two.example.com/bad"]
    assert targets({"Name": "job-id", "Values": [a]}, {"Name": "statuses", "Values": ["processing"]}) == [
        "https://one.example.com/ok"]
    assert targets({"Name": "job-id", "Values": [b]}) == ["https://two.example.com/ok"]
    assert targets({"Name": "job-id", "Values": [a]}, {"Name": "job-id", "Values": [b]}) == []
    assert targets({"Name": "target", "Values": ["https://one.example.com/bad"]}) == ["https://one.example.com/bad"]


def test_paging_2500_tasks_newest_first_each_row_once(sb: Sandbox) -> None:
    cli = client(sb)
    batches = [[f"https://p.example.com/{b}/{i}" for i in range(n)] for b, n in enumerate((1000, 1000, 500))]
    for i, batch in enumerate(batches):
        if i:
            sb.store.age(60)  # earlier batches become a minute older each time
        call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=batch)

    pages, offset = [], 0
    while True:
        page = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window(), Offset=offset, Limit=1000)
        assert page.TotalCount == 2500
        if not page.Tasks:
            break
        pages.append(page.Tasks)
        offset += len(page.Tasks)
    assert [len(p) for p in pages] == [1000, 1000, 500]
    rows = [t.Target for p in pages for t in p]
    assert len(rows) == len(set(rows)) == 2500
    created = [t.CreateTime for p in pages for t in p]
    assert created == sorted(created, reverse=True)
    assert set(rows[:500]) == set(batches[2]) and set(rows[-1000:]) == set(batches[0])


# ----- quota and rate limit ------------------------------------------------------------------------


def test_batch_quota(sb: Sandbox) -> None:
    sb.store.set_setting("prefetch_batch", 3)
    cli = client(sb)
    assert call(cli, "DescribeContentQuota", ZoneId=ZONE).PrefetchQuota[0].Batch == 3
    urls = [f"https://q.example.com/{i}" for i in range(4)]
    assert error_code(lambda: call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=urls)) == "LimitExceeded.BatchQuota"
    assert call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=urls[:3]).JobId
    assert len(sb.store.tasks()) == 3


def test_daily_quota_counts_down_and_refuses_whole_submits(sb: Sandbox) -> None:
    sb.store.set_setting("prefetch_daily", 5)
    sb.store.add_rule("*/rejected", "rejected")
    cli = client(sb)
    assert quota_available(cli) == 5
    call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://d.example.com/1", "https://d.example.com/2"])
    assert quota_available(cli) == 3
    call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://d.example.com/3", "https://d.example.com/rejected"])
    assert quota_available(cli) == 2  # rejected targets are free

    too_many = [f"https://d.example.com/x{i}" for i in range(3)]
    assert error_code(lambda: call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=too_many)) == "LimitExceeded.DailyQuota"
    assert call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window()).TotalCount == 3  # nothing created
    assert quota_available(cli) == 2
    assert call(cli, "DescribeContentQuota", ZoneId="zone-elsewhere").PrefetchQuota[0].DailyAvailable == 5

    sb.store.age(86400)  # a day later the quota is back
    assert quota_available(cli) == 5
    assert call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=too_many).JobId


def test_servers_on_one_file_share_the_rate_limit_of_an_account(sb: Sandbox) -> None:
    """Several pipelines on one account are several provider processes, each with its own embedded
    server on one file: they share the limit per account and action, as behind a cloud's gateway."""
    with Sandbox(sb.store.path) as other:  # a second server on the same file (another process's)
        freeze_rate_window(sb, other)
        codes = []
        for index in range(21):
            try:
                call(client(sb if index % 2 else other), "DescribeContentQuota", ZoneId=ZONE)
                codes.append(None)
            except TencentCloudSDKException as exc:
                codes.append(exc.get_code())
    assert codes == [None] * 20 + ["RequestLimitExceeded"]


def test_rate_limit_per_action(sb: Sandbox) -> None:
    advance = freeze_rate_window(sb)
    cli = client(sb)
    codes = []
    for _ in range(21):
        try:
            call(cli, "DescribeContentQuota", ZoneId=ZONE)
            codes.append(None)
        except TencentCloudSDKException as exc:
            codes.append(exc.get_code())
    assert codes == [None] * 20 + ["RequestLimitExceeded"]
    # Other actions have their own budget; the refused request is in the log with its code.
    assert call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window()).TotalCount == 0
    assert [e["error_code"] for e in sb.store.requests(action="DescribeContentQuota")][-1] == "RequestLimitExceeded"

    sb.store.set_setting("rate_limit_per_second", 2)
    advance(1.05)  # a new second
    call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window())
    call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window())
    assert error_code(lambda: call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window())) == "RequestLimitExceeded"
    advance(1.05)  # the window slides
    assert call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window()).TotalCount == 0


# ----- state: persistence, ageing, request log -----------------------------------------------------


def test_state_survives_restart(tmp_path) -> None:
    db = tmp_path / "persist.db"
    with Sandbox(db, progress_seconds=0.2) as first:
        first.store.add_rule("*/broken", "failed")
        job = call(client(first), "CreatePrefetchTask", ZoneId=ZONE,
                   Targets=["https://r.example.com/ok", "https://r.example.com/broken"]).JobId
    time.sleep(0.25)
    with Sandbox(db) as second:
        tasks = by_job(client(second), job)
        assert {u: t.Status for u, t in tasks.items()} == {
            "https://r.example.com/ok": "success", "https://r.example.com/broken": "failed"}
        assert quota_available(client(second)) == 9998
        assert [r["pattern"] for r in second.store.rules()] == ["*/broken"]
        assert second.store.get_setting("progress_seconds") == 0.2


def test_age_moves_times_back(sb: Sandbox) -> None:
    sb.store.set_setting("progress_seconds", 3600)
    cli = client(sb)
    job = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://g.example.com/a"]).JobId
    (before,) = by_job(cli, job).values()
    assert before.Status == "processing"
    sb.store.age(7200)
    (after,) = by_job(cli, job).values()

    def ts(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    assert ts(before.CreateTime) - ts(after.CreateTime) == 7200
    assert after.Status == "success" and ts(after.UpdateTime) - ts(after.CreateTime) == 3600
    # Aged out of a window that starts "now".
    now = datetime.now(BJ)
    recent = call(cli, "DescribePrefetchTasks", ZoneId=ZONE, StartTime=(now - timedelta(hours=1)).isoformat(),
                  EndTime=now.isoformat())
    assert recent.TotalCount == 0


def test_request_log_records_action_params_and_request_id(sb: Sandbox) -> None:
    cli = client(sb)
    created = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=["https://l.example.com/a"])
    error_code(lambda: call(cli, "CreatePrefetchTask", ZoneId="nope", Targets=["https://l.example.com/b"]))

    other_process_view = SandboxStore(sb.store.path)  # the same file, opened independently
    log = other_process_view.requests(action="CreatePrefetchTask")
    assert [(e["service"], e["action"], e["error_code"]) for e in log] == [
        ("teo", "CreatePrefetchTask", None), ("teo", "CreatePrefetchTask", "InvalidParameter.ZoneNotFound")]
    assert log[0]["params"] == {"ZoneId": ZONE, "Targets": ["https://l.example.com/a"]}
    assert log[0]["request_id"] == created.RequestId
    assert log[0]["secret_id"] == SANDBOX_SECRET_ID and log[0]["time"] <= time.time()
    assert other_process_view.requests(service="cdn") == []
    other_process_view.clear_requests()
    assert sb.store.requests() == []


def test_only_loopback_binds(tmp_path) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "example.com", "::"):
        with pytest.raises(ValueError, match="loopback"):
            Sandbox(tmp_path / "x.db", host=host)
    box = Sandbox(tmp_path / "x.db")
    with pytest.raises(RuntimeError):
        _ = box.port
    with box:
        assert box.endpoint == f"127.0.0.1:{box.port}" and box.url == f"http://127.0.0.1:{box.port}"


# ----- URL purge (CreatePurgeTask, DescribePurgeTasks) ---------------------------------------------


def purge(cli: teo_client.TeoClient, *targets: str, **params: Any) -> Any:
    return call(cli, "CreatePurgeTask", ZoneId=ZONE, Type="purge_url", Targets=list(targets), **params)


def purges_by_job(cli: teo_client.TeoClient, job_id: str) -> dict[str, Any]:
    resp = call(cli, "DescribePurgeTasks", ZoneId=ZONE, Limit=1000, Filters=[{"Name": "job-id", "Values": [job_id]}])
    return {t.Target: t for t in resp.Tasks}


def purge_quota(cli: teo_client.TeoClient) -> dict[str, tuple[int, int, int]]:
    quota = call(cli, "DescribeContentQuota", ZoneId=ZONE)
    return {q.Type: (q.Batch, q.Daily, q.DailyAvailable) for q in (*quota.PurgeQuota, *quota.PrefetchQuota)}


@pytest.mark.sandbox(progress_seconds=2.0)  # the first read sees 'processing' even on a loaded machine
def test_purge_progresses_to_success_in_its_own_history(sb: Sandbox) -> None:
    cli = client(sb)
    targets = ["https://static.example.com/app.js", "http://static.example.com/hero.webp"]
    created = purge(cli, *targets, Method="invalidate", EncodeUrl=False)
    assert re.fullmatch(r"[a-z0-9]{12}", created.JobId) and created.FailedList == []
    first = purges_by_job(cli, created.JobId)
    assert sorted(first) == sorted(targets)
    for task in first.values():  # URL purges report `delete` whatever Method was sent (edgeone.py)
        assert (task.JobId, task.Type, task.Method, task.Status) == (created.JobId, "purge_url", "delete", "processing")
        assert ISO_Z.fullmatch(task.CreateTime) and (task.FailType, task.FailMessage) == ("", "")
    done = wait_until(lambda: purges_by_job(cli, created.JobId),
                      lambda tasks: all(t.Status != "processing" for t in tasks.values()), what="still processing",
                      every=0.1)
    assert {t.Status for t in done.values()} == {"success"}

    warmed = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=targets[:1]).JobId
    # The histories never mix: not by time window, and not by a job-id of the other kind.
    assert {t.JobId for t in call(cli, "DescribePurgeTasks", ZoneId=ZONE, **window()).Tasks} == {created.JobId}
    assert {t.JobId for t in call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window()).Tasks} == {warmed}
    assert by_job(cli, created.JobId) == {} and purges_by_job(cli, warmed) == {}
    assert call(cli, "DescribePurgeTasks", ZoneId="zone-other", **window()).TotalCount == 0


def test_purge_types_methods_and_parameter_errors(sb: Sandbox) -> None:
    cli = client(sb)
    target = ["https://p.example.com/a.js"]

    def rejected(**params: Any) -> tuple[str, str]:
        with pytest.raises(TencentCloudSDKException) as info:
            call(cli, "CreatePurgeTask", **{"ZoneId": ZONE, "Type": "purge_url", "Targets": target, **params})
        return str(info.value.get_code()), str(info.value.get_message())

    for other in ("purge_prefix", "purge_host", "purge_all", "purge_cache_tag"):
        assert rejected(Type=other) == (
            "InvalidParameter.ParameterError", f"Type `{other}` is not emulated by this sandbox (only purge_url is).")
    assert rejected(Type="purge_everything")[0] == "InvalidParameter.ParameterError"
    assert rejected(Type=None)[0] == "MissingParameter"
    assert rejected(Method="soft")[0] == "InvalidParameter.ParameterError"
    assert rejected(CacheTag={"Domains": ["p.example.com"]})[0] == "InvalidParameter.ParameterError"
    assert rejected(Targets=[])[0] == "MissingParameter"
    assert rejected(Targets=["p.example.com/a.js"])[0] == "InvalidParameter.Target"
    assert rejected(ZoneId="bogus")[0] == "InvalidParameter.ZoneNotFound"
    assert sb.store.tasks() == []
    assert purge(cli, *target, Method="delete").JobId and purge(cli, *target, Method="invalidate").JobId


def test_describe_purge_limits_window_and_filters(sb: Sandbox) -> None:
    sb.store.set_setting("progress_seconds", 60)
    sb.store.add_rule("*/bad*", "failed", delay_seconds=0, kind="purge")
    cli = client(sb)
    job = purge(cli, "https://f.example.com/ok", "https://f.example.com/bad", "https://g.example.com/bad").JobId

    def targets(*filters: dict[str, Any], **params: Any) -> list[str]:
        resp = call(cli, "DescribePurgeTasks", ZoneId=ZONE, **(params or window()), Filters=list(filters))
        assert resp.TotalCount == len(resp.Tasks)
        return sorted(t.Target for t in resp.Tasks)

    def rejected(*filters: dict[str, Any], **params: Any) -> None:
        with pytest.raises(TencentCloudSDKException) as info:
            targets(*filters, **params)
        assert info.value.get_code() == "InvalidParameter.ParameterError"

    assert targets({"Name": "type", "Values": ["purge_url"]}) == [
        "https://f.example.com/bad", "https://f.example.com/ok", "https://g.example.com/bad"]
    assert targets({"Name": "type", "Values": ["purge_prefix"]}) == []  # only URL purges exist here
    assert targets({"Name": "target", "Values": ["/bad"], "Fuzzy": True}) == [
        "https://f.example.com/bad", "https://g.example.com/bad"]  # a purge's target filter may be fuzzy
    assert targets({"Name": "statuses", "Values": ["failed"]}, {"Name": "domains", "Values": ["F.example.com"]}) == [
        "https://f.example.com/bad"]
    assert targets({"Name": "job-id", "Values": [job]}, {"Name": "statuses", "Values": ["processing"]}) == [
        "https://f.example.com/ok"]
    rejected({"Name": "type", "Values": ["purge_everything"]})
    rejected({"Name": "statuses", "Values": ["invalid"]})  # a prefetch-only filter value
    rejected({"Name": "job-id", "Values": [job], "Fuzzy": True})
    rejected(Limit=1001, **window())
    start = datetime(2024, 1, 1, tzinfo=BJ)
    rejected(StartTime=start.isoformat(), EndTime=(start + timedelta(days=7, seconds=1)).isoformat())
    assert targets(StartTime=start.isoformat(), EndTime=(start + timedelta(days=7)).isoformat()) == []
    rejected(Limit=10)  # neither a window nor a job-id
    with pytest.raises(TencentCloudSDKException):  # target is never fuzzy for prefetch
        call(cli, "DescribePrefetchTasks", ZoneId=ZONE, **window(),
             Filters=[{"Name": "target", "Values": ["/bad"], "Fuzzy": True}])


@pytest.mark.sandbox(purge_batch=3, purge_daily=5, prefetch_batch=1)
def test_purge_batch_and_daily_quota_are_their_own(sb: Sandbox) -> None:
    store = sb.store
    cli = client(sb)
    assert purge_quota(cli) == {"purge_url": (3, 5, 5), "purge_prefix": (3, 5, 5), "purge_host": (3, 5, 5),
                                "purge_all": (3, 5, 5), "prefetch_url": (1, 10000, 10000)}
    urls = [f"https://q.example.com/{i}" for i in range(4)]
    assert error_code(lambda: purge(cli, *urls)) == "LimitExceeded.BatchQuota"
    assert purge(cli, *urls[:3]).JobId  # 3 > prefetch_batch: purges are held to purge_batch only
    quota = purge_quota(cli)
    assert (quota["purge_url"], quota["purge_prefix"], quota["prefetch_url"]) == (
        (3, 5, 2), (3, 5, 5), (1, 10000, 10000))

    store.add_rule("*/gone", "rejected", kind="purge")
    created = purge(cli, "https://q.example.com/4", "https://q.example.com/gone")
    assert [f.Targets for f in created.FailedList] == [["https://q.example.com/gone"]]
    assert purge_quota(cli)["purge_url"] == (3, 5, 1)  # rejected targets are free
    got_code = error_code(lambda: purge(cli, "https://q.example.com/5", "https://q.example.com/6"))
    assert got_code == "LimitExceeded.DailyQuota"
    assert len(store.tasks(kind="purge")) == 4 and store.tasks(kind="prefetch") == []
    assert call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=urls[:1]).JobId  # the prefetch quota is untouched
    assert purge_quota(cli)["purge_url"] == (3, 5, 1) and quota_available(cli) == 9999
    store.age(86400)
    assert purge_quota(cli)["purge_url"] == (3, 5, 5)


def test_rules_of_kind_purge_steer_purges_only(sb: Sandbox) -> None:
    store = sb.store
    store.add_rule("*/a.js", "failed", delay_seconds=0, kind="purge")
    store.add_rule("*/b.js", "failed", delay_seconds=0)  # the default kind: prefetch
    store.add_rule("*/c.js", "timeout", delay_seconds=0, kind=None)  # both
    store.add_rule("*/d.js", "invalid", delay_seconds=0, kind="purge")
    store.add_rule("*/e.js", "rejected", fail_message="not in zone", kind="purge")
    with pytest.raises(ValueError):
        store.add_rule("*", "failed", kind="refresh")
    cli = client(sb)
    base = "https://k.example.com"
    paths = ["/a.js", "/b.js", "/c.js", "/d.js", "/e.js"]
    purged = purge(cli, *(base + p for p in paths))
    warmed = call(cli, "CreatePrefetchTask", ZoneId=ZONE, Targets=[base + p for p in paths])
    assert [(f.Reason, f.Targets) for f in purged.FailedList] == [("not in zone", [f"{base}/e.js"])]
    assert warmed.FailedList == []
    store.age(1)

    def outcomes(tasks: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
        return {u.removeprefix(base): (t.Status, t.FailType, t.FailMessage) for u, t in tasks.items()}

    assert outcomes(purges_by_job(cli, purged.JobId)) == {
        "/a.js": ("failed", "originPullFailed", "origin returned HTTP 502"), "/b.js": ("success", "", ""),
        "/c.js": ("timeout", "taskFailed", "purge timed out"),
        "/d.js": ("failed", "originPullFailed", "origin returned HTTP 404"),  # EdgeOne has no word for invalid
    }
    assert outcomes(by_job(cli, warmed.JobId)) == {
        "/a.js": ("success", "", ""), "/b.js": ("failed", "originPullFailed", "origin returned HTTP 502"),
        "/c.js": ("timeout", "taskFailed", "prefetch timed out"), "/d.js": ("success", "", ""),
        "/e.js": ("success", "", ""),
    }


@pytest.mark.parametrize("sign_method, method", [("HmacSHA256", "POST"), ("HmacSHA1", "GET")])
def test_a_request_signed_the_old_way_is_answered_as_tencent_answers_it(sb, sign_method, method):
    """API 3.0 still takes the signature before TC3 (a form with SignatureMethod, SecretId and Signature); the
    sandbox once took such a request for UCloud's and the SDK failed with KeyError 'Response'."""
    targets = ["https://static.example.com/old-way.js"]
    job = call(client(sb, sign_method=sign_method, method=method), "CreatePrefetchTask", ZoneId=ZONE,
               Targets=targets).JobId
    [logged] = sb.store.requests(action="CreatePrefetchTask")
    assert (logged["service"], logged["error_code"], logged["params"]) == ("teo", None,
                                                                            {"ZoneId": ZONE, "Targets": targets})
    assert call(client(sb, sign_method=sign_method, method=method), "DescribeContentQuota",
                ZoneId=ZONE).PrefetchQuota[0].DailyAvailable == 10000 - 1 and job
    wrong = client(sb, secret_key="not-the-key", sign_method=sign_method, method=method)
    assert error_code(lambda: call(wrong, "DescribeContentQuota", ZoneId=ZONE)) == "AuthFailure.SignatureFailure"
def test_prefetch_options_are_checked_as_the_cloud_does(sb: Sandbox) -> None:
    """Issue 20: CreatePrefetchTask's Headers, EncodeUrl and PrefetchMediaSegments, as the wire carries them."""
    common = CommonClient("teo", "2022-09-01", credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY), "",
                          ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=sb.endpoint)))

    def create(**params: Any) -> str:
        return error_code(lambda: common.call_json("CreatePrefetchTask", {
            "ZoneId": ZONE, "Targets": ["https://a.example.com/live.m3u8"], **params}))

    assert create(Headers=[{"Name": "Accept Encoding", "Value": "br"}]) == "InvalidParameter.ParameterError"
    assert create(Headers=[{"Name": "", "Value": "br"}]) == "InvalidParameter.ParameterError"
    assert create(Headers=[{"Name": "X-A", "Value": "a\r\nHost: evil"}]) == "InvalidParameter.ParameterError"
    assert create(Headers=[{"Name": "X-A", "Value": "1", "Colour": "red"}]) == "UnknownParameter"
    assert create(Headers=[{"Name": "X-A"}]) == "MissingParameter"
    assert create(PrefetchMediaSegments="yes") == "InvalidParameter.ParameterError"
    assert create(EncodeUrl="true") == "InvalidParameter"
    assert sb.store.tasks() == []
    accepted = common.call_json("CreatePrefetchTask", {
        "ZoneId": ZONE, "Targets": ["https://a.example.com/live.m3u8"], "EncodeUrl": False,
        "PrefetchMediaSegments": "on", "Headers": [{"Name": "Accept-Encoding", "Value": "gzip, br\t"}]})
    assert accepted["Response"]["JobId"]
