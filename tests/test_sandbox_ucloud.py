"""The sandbox's UCloud UCDN emulation, driven through the official ucloud-sdk-python3 client over HTTP."""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
import urllib.request
from typing import Any, Callable

import pytest
from tencentcloud.cdn.v20180606 import cdn_client
from tencentcloud.cdn.v20180606 import models as cdn_models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.teo.v20220901 import models as teo_models
from tencentcloud.teo.v20220901 import teo_client
from ucloud.core import exc as uexc
from ucloud.core.auth import Credential as UCloudCredential
from ucloud.core.typesystem import encoder
from ucloud.services.ucdn.client import UCDNClient

from sandbox import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
    SandboxStore,
)
from sandbox import ucloud_wire as ucloud_protocol

QUIET = logging.getLogger("tests.ucloud_sdk")
QUIET.setLevel(logging.ERROR)  # the SDK logs every request's parameters at INFO
DAY = 86400


pytestmark = pytest.mark.sandbox(ucloud_prefetch_interval=0)  # most tests submit back to back


def client(sb: Sandbox, public_key: str = SANDBOX_UCLOUD_PUBLIC_KEY,
           private_key: str = SANDBOX_UCLOUD_PRIVATE_KEY, **config: Any) -> UCDNClient:
    return UCDNClient({"base_url": sb.url, "public_key": public_key, "private_key": private_key,
                       "max_retries": 0, "timeout": 10, **config}, logger=QUIET)


def prefetch(cli: UCDNClient, *urls: str, **params: Any) -> str:
    task_id = cli.prefetch_new_ucdn_domain_cache({"UrlList": list(urls), **params})["TaskId"]
    assert isinstance(task_id, str) and len(task_id) == 8 and task_id.isalnum()
    return task_id


def describe(cli: UCDNClient, *, refreshes: bool = False, **params: Any) -> dict[str, Any]:
    """The prefetch history, or the refresh history with `refreshes`."""
    history = cli.describe_new_ucdn_refresh_cache_task if refreshes else cli.describe_new_ucdn_prefetch_cache_task
    resp = history(params)
    resp.setdefault("TaskList", [])
    return resp


def task(cli: UCDNClient, task_id: str, *, refreshes: bool = False) -> dict[str, Any]:
    (found,) = describe(cli, refreshes=refreshes, TaskId=[task_id])["TaskList"]
    return found


def ret_code(fn: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(uexc.RetCodeException) as info:
        fn()
    assert info.value.request_uuid, "errors must carry the request uuid header"
    return info.value.code, info.value.message


def raw(sb: Sandbox, params: dict[str, Any], *, method: str = "POST", as_json: bool = False,
        path: str = "/") -> tuple[int, dict[str, str], dict[str, Any]]:
    """A request the SDK would not send (missing fields, GET, JSON), straight over urllib."""
    if method == "GET":
        req = urllib.request.Request(f"{sb.url}{path}?{urllib.parse.urlencode(params)}", method="GET")
    elif as_json:
        req = urllib.request.Request(sb.url + path, data=json.dumps(params).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    else:
        req = urllib.request.Request(sb.url + path, data=urllib.parse.urlencode(params).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return resp.status, dict(resp.headers.items()), json.loads(resp.read())


def signed(params: dict[str, Any], private_key: str = SANDBOX_UCLOUD_PRIVATE_KEY) -> dict[str, str]:
    return ucloud_protocol.sign(params, SANDBOX_UCLOUD_PUBLIC_KEY, private_key)


# ----- happy path ----------------------------------------------------------------------------------


def test_defaults() -> None:
    assert SANDBOX_UCLOUD_PUBLIC_KEY == "sandbox-public-key" and SANDBOX_UCLOUD_PRIVATE_KEY == "sandbox-private-key"


def test_prefetch_progresses_wait_process_success(sb: Sandbox) -> None:
    sb.store.add_rule("*/big/*", "success", delay_seconds=100)
    cli = client(sb)
    urls = ["http://static.example.com/big/a.bin", "https://static.example.com/big/b.bin"]
    task_id = prefetch(cli, *urls)

    fresh = task(cli, task_id)
    assert fresh["Status"] == "wait" and abs(fresh["CreateTime"] - time.time()) < 5
    assert [u["Url"] for u in fresh["UrlLists"]] == urls  # in submit order
    for url in fresh["UrlLists"]:
        assert (url["Status"], url["FinishTime"], url["Progress"]) == ("wait", 0, 0)
        assert url["CreateTime"] == fresh["CreateTime"]

    sb.store.age(30)
    running = task(cli, task_id)
    assert running["Status"] == "process" and running["CreateTime"] == fresh["CreateTime"] - 30
    assert {(u["Status"], u["FinishTime"]) for u in running["UrlLists"]} == {("process", 0)}
    assert all(29 <= u["Progress"] <= 31 for u in running["UrlLists"])

    sb.store.age(70)
    done = task(cli, task_id)
    assert done["Status"] == "success"
    for url in done["UrlLists"]:
        assert (url["Status"], url["Progress"]) == ("success", 100)
        assert url["FinishTime"] == url["CreateTime"] + 100


def test_outcomes_and_task_aggregate(sb: Sandbox) -> None:
    store = sb.store
    for path, outcome in (("fail", "failed"), ("slow", "timeout"), ("stop", "canceled"), ("gone", "invalid"),
                          ("lost", "unknown")):
        store.add_rule(f"*/{path}/*", outcome, delay_seconds=0)
    cli = client(sb)
    base = "http://u.example.com"
    mixed = prefetch(cli, *(f"{base}/{p}/x" for p in ("fail", "slow", "stop", "gone", "lost")), f"{base}/ok")
    unknown = prefetch(cli, f"{base}/lost/y", f"{base}/ok2")
    good = prefetch(cli, f"{base}/ok3")
    store.add_rule("*/late/*", "failed", delay_seconds=60)
    running = prefetch(cli, f"{base}/late/z", f"{base}/ok4")
    time.sleep(0.25)

    got = task(cli, mixed)
    assert got["Status"] == "failure"  # a definite failure outranks unknow
    assert [(u["Url"].removeprefix(base), u["Status"], u["Progress"]) for u in got["UrlLists"]] == [
        ("/fail/x", "failure", 100), ("/slow/x", "failure", 100), ("/stop/x", "failure", 100),
        ("/gone/x", "failure", 100), ("/lost/x", "unknow", 100), ("/ok", "success", 100)]
    assert task(cli, unknown)["Status"] == "unknow"
    assert task(cli, good)["Status"] == "success"
    late = task(cli, running)
    assert late["Status"] == "wait"  # still in the first 10% of its 60 s
    assert [u["Status"] for u in late["UrlLists"]] == ["wait", "success"]

    def with_status(status: str) -> list[str]:
        resp = describe(cli, Status=status)
        assert resp["TotalCount"] == len(resp["TaskList"])
        return [t["TaskId"] for t in resp["TaskList"]]

    assert with_status("failure") == [mixed]
    assert with_status("unknow") == [unknown]
    assert with_status("success") == [good]
    assert with_status("wait") == [running]
    assert with_status("process") == []


def test_rejected_url_fails_the_whole_call(sb: Sandbox) -> None:
    sb.store.add_rule("*/not-ours/*", "rejected", fail_message="domain is not on this account")
    cli = client(sb)
    code, message = ret_code(lambda: prefetch(cli, "http://a.example.com/ok", "http://b.example.com/not-ours/x"))
    assert code == 230 and "http://b.example.com/not-ours/x" in message and "not on this account" in message
    assert sb.store.tasks() == []


# ----- signature and envelope ----------------------------------------------------------------------


def test_signature_matches_the_sdk_for_every_value_type() -> None:
    params = {"Action": "X", "UrlList": ["http://a.example.com/a b?x=1&y=é"], "IsDcdn": False, "Limit": 50,
              "Ratio": 2.0, "Share": 0.25, "Nested": {"K": True}, "Items": [{"Name": "n", "On": True}]}
    sdk = UCloudCredential("pub", "priv").verify_ac(encoder.encode(params))
    ours = ucloud_protocol.signature(ucloud_protocol.flatten({**params, "PublicKey": "pub"}), "priv")
    assert ours == sdk
    assert ucloud_protocol.flatten(params)["IsDcdn"] == "false" and ucloud_protocol.flatten(params)["Ratio"] == "2"
    # The documented example value (summary/signature.md).
    doc = {"Action": "DescribeUHostInstance", "Region": "cn-bj2", "Limit": 10,
           "PublicKey": "ucloudsomeone@example.com1296235120854146120"}
    assert ucloud_protocol.signature(doc, "46f09bb9fab4f12dfc160dae12273d5332b5debe").startswith("cba5cf5e")


def test_sdk_sends_every_parameter_type_and_passes(sb: Sandbox) -> None:
    sb.store.set_setting("progress_seconds", 60)  # the task must still be waiting when the query filters on it
    cli = client(sb, project_id="org-test", region="cn-bj2")
    task_id = prefetch(cli, "http://a.example.com/1")
    resp = describe(cli, TaskId=[task_id, "nope"], BeginTime=int(time.time()) - 60, EndTime=int(time.time()) + 60,
                    IsDcdn=False, Offset=0, Limit=50, Status="wait")
    assert resp["TotalCount"] == 1 and resp["TaskList"][0]["TaskId"] == task_id


def test_auth_failures_have_their_codes(sb: Sandbox) -> None:
    assert ret_code(lambda: describe(client(sb, private_key="wrong")))[0] == 171
    assert ret_code(lambda: describe(client(sb, public_key="someone-else")))[0] == 172
    with Sandbox(sb.store.path, ucloud_credentials={"pk-2": "sk-2"}) as other:
        assert describe(client(other, "pk-2", "sk-2"))["TotalCount"] == 0
        assert ret_code(lambda: describe(client(other)))[0] == 172  # the default pair is not accepted there

    def raw_code(params: dict[str, Any]) -> int:
        status, headers, body = raw(sb, params)
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert headers.get("X-UCloud-Request-Uuid") and "Message" in body
        return int(body["RetCode"])

    unsigned = {"Action": "DescribeNewUcdnPrefetchCacheTask", "PublicKey": SANDBOX_UCLOUD_PUBLIC_KEY}
    assert raw_code(unsigned) == 170
    assert raw_code({k: v for k, v in signed(unsigned).items() if k != "Action"}) == 160
    assert raw_code({**signed(unsigned), "Limit": "5"}) == 171  # a parameter added after signing
    assert raw_code(signed({"Action": "DeleteUcdnDomain", "DomainId": "ucdn-x"})) == 161
    status, _, body = raw(sb, signed({"Action": "GetUcdnDomainPrefetchRefreshState"}))
    assert (body["Action"], body["RetCode"]) == ("GetUcdnDomainPrefetchRefreshStateResponse", 230)
    assert "DomainId" in body["Message"]
    with pytest.raises(uexc.ValidationException):  # the SDK itself refuses a missing DomainId
        client(sb).get_ucdn_domain_prefetch_refresh_state({})


def test_get_json_and_base_url_paths_are_accepted(sb: Sandbox) -> None:
    task_id = prefetch(client(sb), "http://a.example.com/1")
    params = signed({"Action": "DescribeNewUcdnPrefetchCacheTask", "TaskId": [task_id]})
    for kwargs in ({"method": "GET"}, {"path": "/some/prefix"}):
        _, headers, body = raw(sb, params, **kwargs)
        assert (body["Action"], body["RetCode"], body["TotalCount"]) == (
            "DescribeNewUcdnPrefetchCacheTaskResponse", 0, 1)
    json_params = {"Action": "DescribeNewUcdnPrefetchCacheTask", "TaskId": [task_id], "IsDcdn": False, "Limit": 10}
    _, _, body = raw(sb, {**json_params, "PublicKey": SANDBOX_UCLOUD_PUBLIC_KEY,
                          "Signature": signed(json_params)["Signature"]}, as_json=True)
    assert (body["RetCode"], body["TaskList"][0]["TaskId"]) == (0, task_id)
    assert client(sb, base_url=sb.url + "/v1").describe_new_ucdn_prefetch_cache_task({})["TotalCount"] == 1
    assert [e["method"] for e in sb.store.requests(service="ucloud")][-4:] == ["GET", "POST", "POST", "POST"]


# ----- limits --------------------------------------------------------------------------------------


def test_one_submit_per_interval(sb: Sandbox) -> None:
    store = sb.store
    store.set_setting("ucloud_prefetch_interval", 0.5)
    cli = client(sb)
    first = prefetch(cli, "http://i.example.com/1")
    with pytest.raises(uexc.RetCodeException) as info:
        prefetch(cli, "http://i.example.com/2")
    assert info.value.code == 153 and not info.value.retryable
    assert describe(cli, Limit=0)["TotalCount"] == 1  # the throttled call created nothing
    assert describe(cli)["TotalCount"] == 1  # and other actions are not held up
    time.sleep(0.55)
    assert prefetch(cli, "http://i.example.com/2") != first

    # Per account: another key pair may submit at once.
    keys = {"pk-2": "sk-2", SANDBOX_UCLOUD_PUBLIC_KEY: SANDBOX_UCLOUD_PRIVATE_KEY}
    with Sandbox(store.path, ucloud_credentials=keys) as box:
        assert prefetch(client(box, "pk-2", "sk-2"), "http://i.example.com/3")
        assert ret_code(lambda: prefetch(client(box), "http://i.example.com/4"))[0] == 153
    # age() moves the last submit back too: no sleeping needed for a long interval.
    store.set_setting("ucloud_prefetch_interval", 300)
    assert ret_code(lambda: prefetch(cli, "http://i.example.com/5"))[0] == 153
    store.age(300)
    assert prefetch(cli, "http://i.example.com/5")


def test_default_interval_is_ten_seconds(tmp_path) -> None:
    with Sandbox(tmp_path / "fresh.db") as box:
        assert box.store.get_setting("ucloud_prefetch_interval") == 10.0
        cli = client(box)
        prefetch(cli, "http://i.example.com/1")
        box.store.age(9)
        code, message = ret_code(lambda: prefetch(cli, "http://i.example.com/2"))
        # 1 s of the 10 s interval is left, less whatever real time passed since the first submit.
        retry_after = float(re.search(r"retry in ([0-9.]+) s", message).group(1))
        assert code == 153 and 0.5 <= retry_after <= 1.0
        box.store.age(1)
        assert prefetch(cli, "http://i.example.com/2")


def test_batch_daily_quota_per_domain_and_quota_call(sb: Sandbox) -> None:
    store = sb.store
    store.set_setting("ucloud_prefetch_daily", 3)
    store.add_ucloud_domain("ucdn-a", "a.example.com")
    store.add_ucloud_domain("ucdn-b", "B.example.com")
    cli = client(sb)

    def state(domain_id: str) -> tuple[int, int]:
        resp = cli.get_ucdn_domain_prefetch_refresh_state({"DomainId": domain_id})
        return resp["PrefetchQuota"], resp["SubmitPrefetchCount"]

    assert state("ucdn-a") == (3, 0)
    prefetch(cli, "http://a.example.com/1", "https://a.example.com/2", "http://b.example.com/1")
    assert (state("ucdn-a"), state("ucdn-b")) == ((3, 2), (3, 1))
    code, message = ret_code(lambda: prefetch(cli, "http://b.example.com/2", "http://a.example.com/3",
                                              "http://a.example.com/4"))
    assert code == 44010 and "prefetch quota exceeded for domain a.example.com" in message
    assert (state("ucdn-a"), state("ucdn-b")) == ((3, 2), (3, 1))  # all or nothing
    prefetch(cli, "http://b.example.com/2", "http://b.example.com/3", "http://a.example.com/3")
    assert (state("ucdn-a"), state("ucdn-b")) == ((3, 3), (3, 3))
    code, message = ret_code(lambda: state("ucdn-unknown"))
    assert code == 44003 and "domain not found: ucdn-unknown" in message
    store.age(DAY)
    assert state("ucdn-a") == (3, 0)

    store.set_setting("ucloud_prefetch_batch", 2)
    assert ret_code(lambda: prefetch(cli, *(f"http://c.example.com/{i}" for i in range(3))))[0] == 230
    assert ret_code(lambda: prefetch(cli))[0] == 230
    code, message = ret_code(lambda: prefetch(cli, "http://c.example.com/1", "ftp://c.example.com/2"))
    assert code == 230 and "UrlList.1" in message
    assert ret_code(lambda: prefetch(cli, "c.example.com/1"))[0] == 230
    assert len(store.tasks("ucloud")) == 6


def test_max_batch_default_is_1000(sb: Sandbox) -> None:
    cli = client(sb)
    urls = [f"http://m.example.com/{i}" for i in range(1001)]
    assert ret_code(lambda: prefetch(cli, *urls))[0] == 230
    sb.store.set_setting("ucloud_prefetch_daily", 1000)
    task_id = prefetch(cli, *urls[:1000])
    assert len(task(cli, task_id)["UrlLists"]) == 1000


def test_rate_limit_for_other_actions(sb: Sandbox) -> None:
    sb.store.set_setting("rate_limit_per_second", 2)
    cli = client(sb)
    describe(cli)
    describe(cli)
    assert ret_code(lambda: describe(cli))[0] == 153
    sb.store.add_ucloud_domain("ucdn-a", "a.example.com")
    assert cli.get_ucdn_domain_prefetch_refresh_state({"DomainId": "ucdn-a"})["PrefetchQuota"] == 500


# ----- history -------------------------------------------------------------------------------------


def test_many_task_ids_windows_and_paging(sb: Sandbox) -> None:
    store = sb.store
    cli = client(sb)
    t1 = prefetch(cli, "http://h.example.com/1")
    store.age(25 * 3600)
    t2 = prefetch(cli, "http://h.example.com/2", "http://h.example.com/3")
    store.age(60)
    t3 = prefetch(cli, "http://h.example.com/4")
    now = int(time.time())

    def ids(**params: Any) -> tuple[int, list[str]]:
        resp = describe(cli, **params)
        return resp["TotalCount"], [t["TaskId"] for t in resp["TaskList"]]

    assert ids() == (2, [t3, t2])  # default window: the last 24 h, newest first
    assert ids(TaskId=[t1, t3]) == (1, [t3])  # the default window applies to TaskId queries too
    assert ids(TaskId=[t1, t2, t3], BeginTime=now - 2 * DAY) == (3, [t3, t2, t1])
    assert ids(TaskId=[t1, t3], BeginTime=now - 2 * DAY, EndTime=now) == (2, [t3, t1])
    # t1's own CreateTime (it is outside the default window): deriving it from t3's would assume no
    # second boundary passed between the submits.
    (first,) = describe(cli, TaskId=[t1], BeginTime=now - 2 * DAY)["TaskList"]
    created_t1 = first["CreateTime"]
    assert ids(BeginTime=created_t1, EndTime=created_t1) == (1, [t1])  # inclusive, to the second
    assert ids(BeginTime=created_t1 + 1, EndTime=created_t1 + 3600) == (0, [])
    assert ids(BeginTime=now - 2 * DAY, Offset=1, Limit=1) == (3, [t2])
    assert ids(BeginTime=now - 2 * DAY, Offset=2) == (3, [t1])
    assert ids(BeginTime=now - 2 * DAY, Limit=0) == (3, [t3, t2, t1])
    assert ret_code(lambda: describe(cli, EndTime=now))[0] == 230  # EndTime needs BeginTime
    assert ret_code(lambda: describe(cli, BeginTime=now, EndTime=now - 1))[0] == 230
    assert ret_code(lambda: describe(cli, Status="done"))[0] == 230
    assert ret_code(lambda: describe(cli, Offset=-1))[0] == 230


def test_is_dcdn_is_validated_but_does_not_partition(sb: Sandbox) -> None:
    # The SDK cannot send IsDcdn on submit (its schema lacks it), so the sandbox ignores it.
    _, _, body = raw(sb, signed({"Action": "PrefetchNewUcdnDomainCache", "UrlList": ["http://d.example.com/1"],
                                 "IsDcdn": True}))
    assert body["RetCode"] == 0
    cli = client(sb)
    plain = prefetch(cli, "http://d.example.com/2")
    expected = [plain, body["TaskId"]]
    assert [t["TaskId"] for t in describe(cli, IsDcdn=True)["TaskList"]] == expected
    assert [t["TaskId"] for t in describe(cli, IsDcdn=False)["TaskList"]] == expected
    _, _, bad = raw(sb, signed({"Action": "DescribeNewUcdnPrefetchCacheTask", "IsDcdn": "yes"}))
    assert bad["RetCode"] == 230 and "IsDcdn" in bad["Message"]


# ----- across clouds, state, log -------------------------------------------------------------------


def test_rule_service_scoping_across_clouds(sb: Sandbox) -> None:
    url = "https://shared.example.com/app.js"
    sb.store.add_rule("*/app.js", "failed", delay_seconds=0)  # global
    sb.store.add_rule("*/app.js", "success", delay_seconds=0, service="teo")
    sb.store.add_rule("*/app.js", "unknown", delay_seconds=0, service="ucloud")
    http = HttpProfile(protocol="http", endpoint=sb.endpoint, reqTimeout=10)
    cred = credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)

    teo = teo_client.TeoClient(cred, "", ClientProfile(httpProfile=http))
    req = teo_models.CreatePrefetchTaskRequest()
    req.from_json_string(json.dumps({"ZoneId": "zone-shared", "Targets": [url]}))
    teo.CreatePrefetchTask(req)
    cdn = cdn_client.CdnClient(cred, "", ClientProfile(httpProfile=http))
    push = cdn_models.PushUrlsCacheRequest()
    push.from_json_string(json.dumps({"Urls": [url]}))
    cdn_task = cdn.PushUrlsCache(push).TaskId
    ucloud_task = prefetch(client(sb), url)

    outcomes = {t.service: t.outcome for t in sb.store.tasks()}
    assert outcomes == {"teo": "success", "cdn": "failed", "ucloud": "unknown"}
    query = cdn_models.DescribePushTasksRequest()
    query.from_json_string(json.dumps({"TaskId": cdn_task}))
    assert cdn.DescribePushTasks(query).PushLogs[0].Status == "fail"
    assert task(client(sb), ucloud_task)["Status"] == "unknow"


def test_request_log_unflattens_lists_and_hides_the_signature(sb: Sandbox) -> None:
    cli = client(sb)
    task_id = prefetch(cli, "http://l.example.com/a", "http://l.example.com/b")
    describe(cli, TaskId=[task_id, "other"], Limit=10)
    ret_code(lambda: describe(client(sb, private_key="wrong")))

    log = SandboxStore(sb.store.path).requests(service="ucloud")
    assert [(e["service"], e["action"], e["error_code"]) for e in log] == [
        ("ucloud", "PrefetchNewUcdnDomainCache", None), ("ucloud", "DescribeNewUcdnPrefetchCacheTask", None),
        ("ucloud", "DescribeNewUcdnPrefetchCacheTask", "171")]
    assert log[0]["params"] == {"UrlList": ["http://l.example.com/a", "http://l.example.com/b"],
                                "PublicKey": SANDBOX_UCLOUD_PUBLIC_KEY}
    assert log[1]["params"]["TaskId"] == [task_id, "other"] and log[1]["params"]["Limit"] == "10"
    assert all(e["secret_id"] == SANDBOX_UCLOUD_PUBLIC_KEY and e["method"] == "POST" for e in log)
    assert log[2]["error_message"] == "Signature VerifyAC Error"
    dumped = json.dumps(sb.store.requests())
    assert "Signature\"" not in dumped and SANDBOX_UCLOUD_PRIVATE_KEY not in dumped and "wrong" not in dumped
    assert sb.store.requests(service="teo") == [] and sb.store.requests(service="cdn") == []


def test_state_survives_restart(tmp_path) -> None:
    db = tmp_path / "persist.db"
    with Sandbox(db, progress_seconds=0.1) as first:
        first.store.add_rule("*/broken", "invalid")
        first.store.add_ucloud_domain("ucdn-r", "r.example.com")
        task_id = prefetch(client(first), "http://r.example.com/ok", "http://r.example.com/broken")
    time.sleep(0.15)
    with Sandbox(db) as second:
        cli = client(second)
        got = task(cli, task_id)
        assert got["Status"] == "failure"
        assert [u["Status"] for u in got["UrlLists"]] == ["success", "failure"]
        assert cli.get_ucdn_domain_prefetch_refresh_state({"DomainId": "ucdn-r"})["SubmitPrefetchCount"] == 2
        # The interval is remembered across the restart too (default 10 s).
        assert ret_code(lambda: prefetch(cli, "http://r.example.com/again"))[0] == 153


# ----- refresh (RefreshNewUcdnDomainCache, DescribeNewUcdnRefreshCacheTask) ------------------------------


def refresh(cli: UCDNClient, *urls: str, type_: str = "file") -> str:
    task_id = cli.refresh_new_ucdn_domain_cache({"Type": type_, "UrlList": list(urls)})["TaskId"]
    assert isinstance(task_id, str) and len(task_id) == 8 and task_id.isalnum()
    return task_id


def test_refresh_progresses_in_its_own_history(sb: Sandbox) -> None:
    sb.store.add_rule("*/big/*", "success", delay_seconds=100, kind="purge")
    cli = client(sb)
    urls = ["http://static.example.com/big/a.bin", "https://static.example.com/big/b.bin"]
    files = refresh(cli, *urls)
    folder = refresh(cli, "http://static.example.com/big/", type_="dir")
    fresh = task(cli, files, refreshes=True)
    assert (fresh["Status"], fresh["Type"]) == ("wait", "file")
    assert [(u["Url"], u["Status"], u["Progress"]) for u in fresh["UrlLists"]] == [(u, "wait", 0) for u in urls]
    assert task(cli, folder, refreshes=True)["Type"] == "dir"
    sb.store.age(30)
    assert task(cli, files, refreshes=True)["Status"] == "process"
    sb.store.age(70)
    done = task(cli, files, refreshes=True)
    assert done["Status"] == "success"
    assert {(u["Status"], u["Progress"]) for u in done["UrlLists"]} == {("success", 100)}
    assert [t["TaskId"] for t in describe(cli, refreshes=True, Status="success")["TaskList"]] == [folder, files]

    warmed = prefetch(cli, urls[0])
    # The histories never mix: not in a listing, and not by a TaskId of the other kind.
    assert [t["TaskId"] for t in describe(cli)["TaskList"]] == [warmed]
    assert [t["TaskId"] for t in describe(cli, refreshes=True)["TaskList"]] == [folder, files]
    assert describe(cli, TaskId=[files])["TotalCount"] == 0
    assert describe(cli, refreshes=True, TaskId=[warmed])["TotalCount"] == 0
    assert "Type" not in task(cli, warmed)  # only refresh tasks name their Type


def test_refresh_type_urls_and_batch_are_checked(sb: Sandbox) -> None:
    cli = client(sb)
    assert ret_code(lambda: refresh(cli, "http://t.example.com/a", type_="m3u8"))[0] == 230
    code, message = ret_code(lambda: refresh(cli, "http://t.example.com/a", type_="dir"))
    assert code == 230 and "UrlList.0" in message and "end with /" in message
    _, _, body = raw(sb, signed({"Action": "RefreshNewUcdnDomainCache", "UrlList": ["http://t.example.com/a"]}))
    assert body["RetCode"] == 230 and "Type" in body["Message"]
    assert ret_code(lambda: refresh(cli))[0] == 230
    assert ret_code(lambda: refresh(cli, "t.example.com/a"))[0] == 230
    urls = [f"http://t.example.com/{i}" for i in range(31)]
    code, message = ret_code(lambda: refresh(cli, *urls))  # 30 per call: the API doc, not the SDK's 100
    assert code == 230 and "at most 30" in message
    assert len(task(cli, refresh(cli, *urls[:30]), refreshes=True)["UrlLists"]) == 30
    assert sb.store.tasks(kind="prefetch") == []


def test_refresh_quota_per_domain_file_and_dir(sb: Sandbox) -> None:
    store = sb.store
    store.set_setting("ucloud_refresh_daily", 3)
    store.set_setting("ucloud_refresh_dir_daily", 1)
    store.add_ucloud_domain("ucdn-a", "a.example.com")
    store.add_ucloud_domain("ucdn-b", "b.example.com")
    cli = client(sb)

    def state(domain_id: str) -> tuple[int, ...]:
        resp = cli.get_ucdn_domain_prefetch_refresh_state({"DomainId": domain_id})
        return tuple(resp[k] for k in ("RefreshFileQuota", "SubmitRefreshFile", "RefreshDirQuota", "SubmitRefreshDir",
                                       "PrefetchQuota", "SubmitPrefetchCount"))

    assert state("ucdn-a") == (3, 0, 1, 0, 500, 0)
    refresh(cli, "http://a.example.com/1", "https://a.example.com/2", "http://b.example.com/1")
    refresh(cli, "http://a.example.com/d/", type_="dir")
    assert (state("ucdn-a"), state("ucdn-b")) == ((3, 2, 1, 1, 500, 0), (3, 1, 1, 0, 500, 0))
    code, message = ret_code(lambda: refresh(cli, "http://a.example.com/e/", type_="dir"))
    assert code == 44010 and "refresh quota exceeded for domain a.example.com" in message
    code, _ = ret_code(lambda: refresh(cli, "http://b.example.com/2", "http://a.example.com/3",
                                       "http://a.example.com/4"))
    assert code == 44010 and state("ucdn-b") == (3, 1, 1, 0, 500, 0)  # all or nothing
    refresh(cli, "http://a.example.com/3")  # a file refresh still fits: the dir quota is another
    prefetch(cli, "http://a.example.com/3")
    assert state("ucdn-a") == (3, 3, 1, 1, 500, 1)
    store.age(DAY)
    assert state("ucdn-a") == (3, 0, 1, 0, 500, 0)


def test_refresh_has_its_own_interval(sb: Sandbox) -> None:
    store = sb.store
    store.set_setting("ucloud_prefetch_interval", 300)
    cli = client(sb)
    prefetch(cli, "http://i.example.com/1")
    refresh(cli, "http://i.example.com/1")  # no interval between refreshes by default, nor after a prefetch
    refresh(cli, "http://i.example.com/2")
    assert ret_code(lambda: prefetch(cli, "http://i.example.com/2"))[0] == 153
    store.set_setting("ucloud_prefetch_interval", 0)
    store.set_setting("ucloud_refresh_interval", 300)
    code, message = ret_code(lambda: refresh(cli, "http://i.example.com/3"))
    assert code == 153 and "one refresh submit per interval" in message
    assert prefetch(cli, "http://i.example.com/2")
    store.age(300)
    assert refresh(cli, "http://i.example.com/3")


def test_rules_of_kind_purge_steer_refreshes_only(sb: Sandbox) -> None:
    store = sb.store
    store.add_rule("*/ok/*", "success", delay_seconds=0, kind=None)  # finished at once (later rules win)
    store.add_rule("*/a.js", "failed", delay_seconds=0, kind="purge")
    store.add_rule("*/b.js", "unknown", delay_seconds=0)  # the default kind: prefetch
    store.add_rule("*/c.js", "timeout", delay_seconds=0, kind=None)
    cli = client(sb)
    base = "http://k.example.com/ok"
    refreshed = [refresh(cli, f"{base}/{name}") for name in ("a.js", "b.js", "c.js")]
    warmed = [prefetch(cli, f"{base}/{name}") for name in ("a.js", "b.js", "c.js")]
    assert [task(cli, t, refreshes=True)["Status"] for t in refreshed] == ["failure", "success", "failure"]
    assert [task(cli, t)["Status"] for t in warmed] == ["success", "unknow", "failure"]

    store.add_rule("*/not-ours/*", "rejected", fail_message="domain is not on this account", kind="purge")
    code, message = ret_code(lambda: refresh(cli, "http://x.example.com/not-ours/a"))
    assert code == 230 and "not on this account" in message
    assert prefetch(cli, "http://x.example.com/not-ours/a")
