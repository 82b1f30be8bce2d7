"""Fault injection: each kind, seen through the official SDKs exactly as the real failure would be.

What each SDK raises (asserted below):

| fault                      | Tencent SDK (teo, cdn): get_code()      | UCloud SDK                               |
|----------------------------|-----------------------------------------|------------------------------------------|
| throttle                   | RequestLimitExceeded (with RequestId)   | RetCodeException, code 153               |
| http_5xx                   | ServerNetworkError (message: the HTML)  | HTTPStatusException(status_code)         |
| reset                      | ClientNetworkError (connection reset)   | requests.exceptions.ConnectionError      |
| slow (past the timeout)    | ClientNetworkError (read timed out)     | requests.exceptions.ReadTimeout          |
| malformed_json             | JSONDecodeError                         | InvalidResponseException                 |
| missing_field / null_field | no error: the model attribute is None   | no error: the key is absent from the dict|
| wrong_content_type, error  | no error: an empty model (!)            | RetCodeException as usual                |
| clock_skew                 | AuthFailure.SignatureExpire (> 300 s)   | no error: every time shifted by the skew |
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
from tencentcloud.cdn.v20180606 import cdn_client
from tencentcloud.cdn.v20180606 import models as cdn_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.teo.v20220901 import models as teo_models
from tencentcloud.teo.v20220901 import teo_client
from ucloud.core import exc as uexc
from ucloud.services.ucdn.client import UCDNClient

from sandbox import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
    SandboxStore,
    faults,
    server,
    ucloud_wire,
)
from sandbox import ucloud as ucdn_actions
from tests.fakes import wait_until

ZONE = "zone-faults"
URL = "https://static.example.com/app.js"
QUIET = logging.getLogger("tests.sandbox_faults.ucloud")
QUIET.setLevel(logging.CRITICAL)  # the SDK logs every request, and every exception, by default
CLIENT_TIMEOUT = 2  # seconds; `slow` faults below sleep 3
SLOW = 3.0

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / "venv" / "bin" / "python") if (REPO / "venv" / "bin" / "python").exists() else sys.executable


pytestmark = pytest.mark.sandbox(ucloud_prefetch_interval=0)  # submits back to back


def _profile(sb: Sandbox, timeout: float) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=sb.endpoint, reqTimeout=timeout))


def teo(sb: Sandbox, timeout: float = CLIENT_TIMEOUT) -> teo_client.TeoClient:
    return teo_client.TeoClient(credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY), "", _profile(sb, timeout))


def cdn(sb: Sandbox) -> cdn_client.CdnClient:
    return cdn_client.CdnClient(credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY), "",
                                _profile(sb, CLIENT_TIMEOUT))


def ucdn(sb: Sandbox) -> UCDNClient:
    return UCDNClient({"base_url": sb.url, "public_key": SANDBOX_UCLOUD_PUBLIC_KEY,
                       "private_key": SANDBOX_UCLOUD_PRIVATE_KEY, "max_retries": 0, "timeout": CLIENT_TIMEOUT},
                      logger=QUIET)


def call(client: Any, models: Any, action: str, **params: Any) -> Any:
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return getattr(client, action)(request)


def teo_create(sb: Sandbox, *targets: str) -> Any:
    return call(teo(sb), teo_models, "CreatePrefetchTask", ZoneId=ZONE, Targets=list(targets or [URL]))


def teo_quota(sb: Sandbox) -> Any:
    return call(teo(sb), teo_models, "DescribeContentQuota", ZoneId=ZONE)


def teo_tasks(sb: Sandbox) -> Any:
    now = datetime.now(timezone.utc)
    return call(teo(sb), teo_models, "DescribePrefetchTasks", ZoneId=ZONE, Limit=100,
                StartTime=(now - timedelta(hours=1)).isoformat(timespec="seconds"),
                EndTime=(now + timedelta(hours=1)).isoformat(timespec="seconds"))


def cdn_push(sb: Sandbox, url: str = URL) -> Any:
    return call(cdn(sb), cdn_models, "PushUrlsCache", Urls=[url])


def ucloud_prefetch(sb: Sandbox, url: str = URL) -> dict[str, Any]:
    return ucdn(sb).prefetch_new_ucdn_domain_cache({"UrlList": [url]})


def tencent_code(fn: Callable[[], Any]) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        fn()
    return info.value


# ----- throttle ------------------------------------------------------------------------------------


def test_throttle_is_the_clouds_own_throttling_answer_and_never_executes(sb: Sandbox) -> None:
    fault_id = sb.store.add_fault("throttle", count=3)

    error = tencent_code(lambda: teo_create(sb))
    assert error.get_code() == "RequestLimitExceeded" and error.get_request_id()
    assert tencent_code(lambda: cdn_push(sb)).get_code() == "RequestLimitExceeded"
    with pytest.raises(uexc.RetCodeException) as info:
        ucloud_prefetch(sb)
    assert info.value.code == 153 and info.value.request_uuid and not info.value.retryable
    assert sb.store.tasks() == []

    assert teo_create(sb).JobId  # count=3 is used up: normal service again
    log = sb.store.requests()
    assert [(r["service"], r["fault"], r["fault_id"], r["error_code"]) for r in log] == [
        ("teo", "throttle", fault_id, "RequestLimitExceeded"),
        ("cdn", "throttle", fault_id, "RequestLimitExceeded"),
        ("ucloud", "throttle", fault_id, "153"),
        ("teo", None, None, None),
    ]
    assert log[0]["request_id"] == error.get_request_id() and all(r["handled"] for r in log)
    assert [(f["evaluated"], f["fired"]) for f in sb.store.faults()] == [(3, 3)]


def test_throttle_comes_after_authentication_like_the_gateway(sb: Sandbox) -> None:
    sb.store.add_fault("throttle")
    bad = teo_client.TeoClient(credential.Credential(SANDBOX_SECRET_ID, "wrong-key"), "", _profile(sb, 2))
    code = tencent_code(lambda: call(bad, teo_models, "DescribeContentQuota", ZoneId=ZONE)).get_code()
    assert code == "AuthFailure.SignatureFailure"


# ----- http_5xx: executed or not -------------------------------------------------------------------


def test_http_5xx_not_executed_never_reaches_the_api(sb: Sandbox) -> None:
    fault_id = sb.store.add_fault("http_5xx", service="teo", action="CreatePrefetchTask")
    error = tencent_code(lambda: teo_create(sb))
    assert error.get_code() == "ServerNetworkError" and not error.get_request_id()
    assert b"502 Bad Gateway" in error.get_message()  # the raw body; the SDK parses nothing
    assert sb.store.tasks() == [] and teo_tasks(sb).TotalCount == 0
    assert teo_quota(sb).PrefetchQuota[0].DailyAvailable == 10000

    (cut_off, *_) = sb.store.requests()
    assert (cut_off["service"], cut_off["action"], cut_off["fault"], cut_off["fault_id"]) == \
        ("teo", "CreatePrefetchTask", "http_5xx", fault_id)
    assert cut_off["handled"] is False and cut_off["error_code"] is None
    assert cut_off["params"] == {"ZoneId": ZONE, "Targets": [URL]}  # logged although no handler ran


def test_http_5xx_executed_performs_the_action_first(sb: Sandbox) -> None:
    """The ambiguous failure: the client saw 502, yet the task exists and quota is spent."""
    sb.store.add_fault("http_5xx", service="cdn", action="PushUrlsCache", executed=True, count=1)
    assert tencent_code(lambda: cdn_push(sb)).get_code() == "ServerNetworkError"
    history = call(cdn(sb), cdn_models, "DescribePushTasks", Keyword=URL, StartTime="2000-01-01 00:00:00")
    assert [log.Url for log in history.PushLogs] == [URL]
    quota = {q.Area: q.Available for q in call(cdn(sb), cdn_models, "DescribePushQuota").UrlPush}
    assert quota["mainland"] == 999
    (push, *_) = sb.store.requests(action="PushUrlsCache")
    assert push["fault"] == "http_5xx" and push["handled"] is True and push["error_code"] is None


def test_http_5xx_status_and_ucloud_sees_http_status_exception(sb: Sandbox) -> None:
    sb.store.add_fault("http_5xx", service="ucloud", status=503, executed=True, count=1)
    sb.store.add_fault("http_5xx", service="ucloud", status=500, count=1)
    with pytest.raises(uexc.HTTPStatusException) as info:
        ucloud_prefetch(sb)
    assert info.value.status_code == 503
    with pytest.raises(uexc.HTTPStatusException) as info:
        ucloud_prefetch(sb, "https://static.example.com/other.js")
    assert info.value.status_code == 500
    # The executed 503 created its task (visible in history), the 500 did not.
    listed = ucdn(sb).describe_new_ucdn_prefetch_cache_task({})["TaskList"]
    assert [u["Url"] for t in listed for u in t["UrlLists"]] == [URL]
    assert [(r["fault"], r["handled"]) for r in sb.store.requests(action="PrefetchNewUcdnDomainCache")] == [
        ("http_5xx", True), ("http_5xx", False)]


# ----- reset ---------------------------------------------------------------------------------------


def test_reset_closes_the_connection_with_an_rst(sb: Sandbox) -> None:
    sb.store.add_fault("reset", service="teo", count=1)
    sb.store.add_fault("reset", service="ucloud", executed=True, count=1)

    error = tencent_code(lambda: teo_create(sb))
    assert error.get_code() == "ClientNetworkError" and "reset" in str(error.get_message()).lower()
    with pytest.raises(requests.exceptions.ConnectionError) as info:  # not a UCloudException at all
        ucloud_prefetch(sb)
    assert "reset" in str(info.value).lower()

    assert [(t.service, t.target) for t in sb.store.tasks()] == [("ucloud", URL)]  # only the executed one
    assert [(r["service"], r["fault"], r["handled"]) for r in sb.store.requests()] == [
        ("teo", "reset", False), ("ucloud", "reset", True)]
    assert teo_create(sb).JobId  # the next request gets a fresh connection and works


# ----- slow ----------------------------------------------------------------------------------------


def test_slow_executed_times_out_after_the_task_exists(sb: Sandbox) -> None:
    sb.store.add_fault("slow", service="ucloud", delay_seconds=SLOW, executed=True, count=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):  # a Timeout, not a ConnectionError
        ucloud_prefetch(sb)
    assert CLIENT_TIMEOUT <= time.monotonic() - started < SLOW
    assert [t.service for t in sb.store.tasks()] == ["ucloud"]  # performed before the sleep


def test_slow_not_executed_performs_the_action_after_the_client_gave_up(sb: Sandbox) -> None:
    sb.store.add_fault("slow", service="teo", delay_seconds=SLOW, count=1)
    error = tencent_code(lambda: teo_create(sb))
    assert error.get_code() == "ClientNetworkError" and "timed out" in str(error.get_message())
    assert sb.store.tasks() == []  # still asleep
    # …then it runs anyway: a late duplicate risk. The sandbox logs a request after its action has run,
    # so the log row (not the task, which is written first) is the sign that the request is complete.
    wait_until(lambda: len(sb.store.requests()) == 1, timeout=SLOW + 10)
    assert len(sb.store.tasks()) == 1
    (entry,) = sb.store.requests()
    assert (entry["fault"], entry["handled"], entry["error_code"]) == ("slow", True, None)


def test_stopping_the_sandbox_interrupts_a_slow_fault(tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "stop.db").start()
    box.store.add_fault("slow", delay_seconds=60)
    outcome: list[Any] = []

    def submit() -> None:
        try:
            outcome.append(teo_create_with(box, timeout=30))
        except TencentCloudSDKException as exc:
            outcome.append(exc.get_code())

    worker = threading.Thread(target=submit)
    worker.start()
    wait_until(lambda: box.store.faults()[0]["fired"] == 1)
    started = time.monotonic()
    box.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 3 and not worker.is_alive()
    assert outcome == ["ClientNetworkError"]
    wait_until(lambda: len(box.store.requests()) == 1)
    (entry,) = box.store.requests()
    assert (entry["fault"], entry["handled"]) == ("slow", False)  # dropped, never performed
    assert box.store.tasks() == []


def teo_create_with(sb: Sandbox, timeout: float) -> Any:
    return call(teo(sb, timeout=timeout), teo_models, "CreatePrefetchTask", ZoneId=ZONE, Targets=[URL])


# ----- answers that are wrong ----------------------------------------------------------------------


def test_malformed_json_after_the_action_ran(sb: Sandbox) -> None:
    sb.store.add_fault("malformed_json", action="CreatePrefetchTask", count=1)
    sb.store.add_fault("malformed_json", service="ucloud", count=1)
    assert tencent_code(lambda: teo_create(sb)).get_code() == "JSONDecodeError"
    with pytest.raises(uexc.InvalidResponseException):
        ucloud_prefetch(sb)
    assert sorted(t.service for t in sb.store.tasks()) == ["teo", "ucloud"]  # both performed
    assert teo_tasks(sb).TotalCount == 1


def test_missing_and_null_fields_default_and_dotted_paths(sb: Sandbox) -> None:
    store = sb.store
    store.add_fault("missing_field", action="CreatePrefetchTask", count=1)  # default: Response.JobId
    created = teo_create(sb, URL, "https://static.example.com/b.css")
    assert created.JobId is None and created.RequestId
    assert len(store.tasks()) == 2  # the action ran

    store.add_fault("missing_field", action="DescribePrefetchTasks", field="Response.Tasks[].CreateTime", count=1)
    listed = teo_tasks(sb)
    assert listed.TotalCount == 2 and [t.CreateTime for t in listed.Tasks] == [None, None]
    assert all(t.Target and t.Status for t in listed.Tasks)  # only that field went
    store.add_fault("null_field", action="DescribePrefetchTasks", field="Response.TotalCount", count=1)
    listed = teo_tasks(sb)
    assert listed.TotalCount is None and len(listed.Tasks) == 2
    store.add_fault("null_field", action="DescribeContentQuota", count=1)  # default: PrefetchQuota
    assert teo_quota(sb).PrefetchQuota is None

    store.add_fault("null_field", service="cdn", count=1)  # PushUrlsCache default: TaskId
    assert cdn_push(sb).TaskId is None

    # UCloud: the SDK's response schema drops absent and null keys alike.
    task_id = ucloud_prefetch(sb)["TaskId"]
    store.add_fault("missing_field", service="ucloud", field="TaskList[].UrlLists[].Status", count=1)
    (task,) = ucdn(sb).describe_new_ucdn_prefetch_cache_task({"TaskId": [task_id]})["TaskList"]
    assert task["TaskId"] == task_id and task["Status"]
    assert [sorted(u) for u in task["UrlLists"]] == [["CreateTime", "FinishTime", "Progress", "Url"]]
    store.add_fault("null_field", service="ucloud", count=1)  # PrefetchNewUcdnDomainCache default: TaskId
    assert "TaskId" not in ucloud_prefetch(sb, "https://static.example.com/c.js")
    assert len(store.tasks(service="ucloud")) == 2

    assert [f["fired"] for f in store.faults()] == [1, 1, 1, 1, 1, 1, 1]


def test_wrong_content_type_hides_errors_from_the_tencent_sdk(sb: Sandbox) -> None:
    """The SDK only checks for Response.Error under exactly `application/json` (cdn-apis.md §5.1)."""
    sb.store.add_rule("*/refused.js", "rejected", service="cdn")
    sb.store.add_fault("wrong_content_type", count=4)
    refused = "https://static.example.com/refused.js"

    response = cdn_push(sb, refused)  # an error answer, yet no exception:
    assert response.TaskId is None and response.RequestId
    (entry,) = sb.store.requests()
    assert entry["error_code"] == "InvalidParameter.CdnHostInvalidParam"  # what the sandbox answered
    assert entry["request_id"] == response.RequestId and entry["fault"] == "wrong_content_type"
    assert sb.store.tasks() == []

    assert cdn_push(sb).TaskId  # a success answer parses normally
    # UCloud's SDK ignores the Content-Type: errors still raise, successes still parse.
    sb.store.add_rule("*/refused.js", "rejected", service="ucloud")
    with pytest.raises(uexc.RetCodeException) as info:
        ucloud_prefetch(sb, refused)
    assert info.value.code == ucloud_wire.RET_BAD_PARAMS
    assert ucloud_prefetch(sb)["TaskId"]


def test_wrong_content_type_is_sent_on_the_wire(sb: Sandbox) -> None:
    sb.store.add_fault("wrong_content_type", count=1)
    answer = requests.post(sb.url, data={"Action": "X"}, timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json; charset=utf-8"
    answer = requests.post(sb.url, data={"Action": "X"}, timeout=5)
    assert answer.headers["Content-Type"] == "application/json"


def test_clock_skew_expires_tencent_signatures(sb: Sandbox) -> None:
    fault_id = sb.store.add_fault("clock_skew", service="teo", count=1)
    other_id = sb.store.add_fault("clock_skew", service="cdn", count=1)
    error = tencent_code(lambda: teo_create(sb))
    assert error.get_code() == "AuthFailure.SignatureExpire" and error.get_request_id()
    assert tencent_code(lambda: cdn_push(sb)).get_code() == "AuthFailure.SignatureExpire"
    assert teo_create(sb).JobId
    assert [t.service for t in sb.store.tasks()] == ["teo"]
    assert [r["fault_id"] for r in sb.store.requests()] == [fault_id, other_id, None]

    sb.store.add_fault("clock_skew", delay_seconds=-400, count=1)  # behind works the same
    assert tencent_code(lambda: teo_quota(sb)).get_code() == "AuthFailure.SignatureExpire"
    sb.store.add_fault("clock_skew", delay_seconds=120, count=1)  # inside the 5-minute window: accepted
    assert teo_quota(sb).PrefetchQuota


@pytest.mark.parametrize("skew", [1800, -1800])
def test_clock_skew_puts_every_ucloud_time_on_the_skewed_clock(sb: Sandbox, skew: int) -> None:
    """UCloud signs no time, so a wrong cloud clock refuses nothing: it shows in every time the API
    writes (CreateTime, FinishTime) and reads (BeginTime/EndTime, and their defaults: EndTime = its now)."""
    sb.store.set_setting("progress_seconds", 0)
    before = int(time.time())
    plain = ucloud_prefetch(sb, "https://static.example.com/plain.js")["TaskId"]
    fault_id = sb.store.add_fault("clock_skew", service="ucloud", delay_seconds=skew)  # every request from now on
    skewed = ucloud_prefetch(sb, "https://static.example.com/skewed.js")["TaskId"]  # nothing refused
    after = int(time.time())
    assert [r["fault_id"] for r in sb.store.requests()] == [None, fault_id]
    stored = {t.target.rsplit("/", 1)[1]: t.created for t in sb.store.tasks()}
    assert before <= stored["skewed.js"] <= after + 1  # tasks run in true time

    tasks = {t["TaskId"]: t for t in ucdn(sb).describe_new_ucdn_prefetch_cache_task({})["TaskList"]}
    assert set(tasks) == {plain, skewed}  # the default window (a day up to its now) holds both
    for task_id in (plain, skewed):
        [url] = tasks[task_id]["UrlLists"]
        assert before + skew <= tasks[task_id]["CreateTime"] == url["CreateTime"] <= after + skew + 1
        assert url["FinishTime"] == url["CreateTime"] and url["Status"] == "success"

    def window(begin: int, end: int) -> set[str]:
        answer = ucdn(sb).describe_new_ucdn_prefetch_cache_task({"BeginTime": begin, "EndTime": end})
        return {t["TaskId"] for t in answer["TaskList"]}

    assert window(before - 60, after + 60) == set()  # our clock's window: 30 minutes off the cloud's
    assert window(before + skew - 60, after + skew + 60) == {plain, skewed}  # the cloud's
    sb.store.clear_faults()
    assert window(before - 60, after + 60) == {plain, skewed}  # the clock is right again: nothing was stored skewed


def test_clock_skew_on_ucloud_is_a_fault_like_any_other(sb: Sandbox) -> None:
    sb.store.add_fault("clock_skew", service="ucloud", action="DescribeNewUcdnPrefetchCacheTask", count=1)
    task_id = ucloud_prefetch(sb)["TaskId"]  # another action: not skewed
    created = {t["TaskId"]: t["CreateTime"] for t in ucdn(sb).describe_new_ucdn_prefetch_cache_task({})["TaskList"]}
    assert created[task_id] - int(sb.store.tasks()[0].created) == 600  # the default skew, on the one answer
    again = {t["TaskId"]: t["CreateTime"] for t in ucdn(sb).describe_new_ucdn_prefetch_cache_task({})["TaskList"]}
    assert again[task_id] == int(sb.store.tasks()[0].created)  # count=1: used up


# ----- matching, order, probability, reproducibility -----------------------------------------------


def test_scoping_by_service_and_action(sb: Sandbox) -> None:
    sb.store.add_fault("throttle", service="cdn", action="PushUrlsCache")
    assert teo_create(sb).JobId
    assert call(cdn(sb), cdn_models, "DescribePushQuota").UrlPush
    assert tencent_code(lambda: cdn_push(sb)).get_code() == "RequestLimitExceeded"
    assert ucloud_prefetch(sb)["TaskId"]
    assert [r["fault"] for r in sb.store.requests()] == [None, None, "throttle", None]


def test_first_firing_fault_in_insertion_order_wins(sb: Sandbox) -> None:
    never = sb.store.add_fault("throttle", probability=0.0)
    once = sb.store.add_fault("http_5xx", count=1)
    always = sb.store.add_fault("throttle")
    assert tencent_code(lambda: teo_quota(sb)).get_code() == "ServerNetworkError"
    assert tencent_code(lambda: teo_quota(sb)).get_code() == "RequestLimitExceeded"
    counters = {f["id"]: (f["evaluated"], f["fired"]) for f in sb.store.faults()}
    assert counters == {never: (2, 0), once: (1, 1), always: (1, 1)}  # `once` is no longer drawn
    assert [r["fault_id"] for r in sb.store.requests()] == [once, always]


def test_same_seed_same_firing_sequence_through_the_server(tmp_path: Path) -> None:
    def run(name: str, seed: int) -> list[bool]:
        with Sandbox(tmp_path / f"{name}.db") as box:
            box.store.add_fault("throttle", probability=0.5, seed=seed)
            outcome = []
            for _ in range(16):
                try:
                    teo_quota(box)
                    outcome.append(False)
                except TencentCloudSDKException as exc:
                    assert exc.get_code() == "RequestLimitExceeded"
                    outcome.append(True)
            assert outcome == [r["fault"] == "throttle" for r in box.store.requests()]
            return outcome

    first = run("a", seed=7)
    assert run("b", seed=7) == first
    assert first == [faults.fires(7, n, 0.5) for n in range(16)]  # a pure function of (seed, draw)
    assert 0 < sum(first) < 16
    assert run("c", seed=8) != first


def test_probability_count_and_seed_in_the_store(tmp_path: Path) -> None:
    def sequence(path: Path, **kwargs: Any) -> list[int | None]:
        store = SandboxStore(path)
        store.add_fault("throttle", service="teo", probability=0.3, **kwargs)
        picks = []
        for i in range(120):
            fault = store.trigger_fault("teo" if i % 3 else "cdn", "DescribeContentQuota" if i % 3 else "PushUrlsCache")
            picks.append(None if fault is None else fault.id)
        return picks

    a = sequence(tmp_path / "a.db", seed=42)
    assert a == sequence(tmp_path / "b.db", seed=42)
    assert all(p is None for i, p in enumerate(a) if i % 3 == 0)  # cdn requests never match
    assert 20 < a.count(1) < 60  # about 0.3 of the 80 teo requests
    limited = sequence(tmp_path / "c.db", seed=42, count=5)
    assert [i for i, p in enumerate(limited) if p] == [i for i, p in enumerate(a) if p][:5]  # then never again
    assert SandboxStore(tmp_path / "c.db").faults()[0]["fired"] == 5

    # A fault added without a seed gets a random one, recorded so the run can be replayed.
    store = SandboxStore(tmp_path / "d.db")
    store.add_fault("throttle")
    store.add_fault("throttle")
    seeds = [f["seed"] for f in store.faults()]
    assert all(isinstance(s, int) for s in seeds) and seeds[0] != seeds[1]


def test_chaos_rates_are_shares_of_all_requests(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "chaos.db")
    ids = store.add_chaos(throttle=0.3, server_error=0.05, reset=0.02, executed_share=0.5, seed=3)
    listed = store.faults()
    assert [f["id"] for f in listed] == ids
    assert [(f["kind"], f["executed"], f["service"], f["action"]) for f in listed] == [
        ("throttle", False, None, None), ("http_5xx", True, None, None), ("http_5xx", False, None, None),
        ("reset", True, None, None), ("reset", False, None, None)]
    assert listed[1]["probability"] == pytest.approx(0.025 / 0.7)  # conditional on no throttle
    assert len({f["seed"] for f in listed}) == 5  # independent draws

    # The store's decisions are the pure in-order simulation; the simulation's long-run rates are the shares.
    def simulate(draws: int) -> list[int | None]:
        evaluated = Counter[int]()
        out: list[int | None] = []
        for _ in range(draws):
            for f in listed:
                n = evaluated[f["id"]]
                evaluated[f["id"]] += 1
                if faults.fires(f["seed"], n, f["probability"]):
                    out.append(f["id"])
                    break
            else:
                out.append(None)
        return out

    picked = [(f.id if (f := store.trigger_fault("teo", "CreatePrefetchTask")) else None) for _ in range(150)]
    assert picked == simulate(150)
    shares = Counter(simulate(20000))
    assert shares[ids[0]] / 20000 == pytest.approx(0.3, abs=0.015)
    assert (shares[ids[1]] + shares[ids[2]]) / 20000 == pytest.approx(0.05, abs=0.008)
    assert (shares[ids[3]] + shares[ids[4]]) / 20000 == pytest.approx(0.02, abs=0.005)
    assert shares[ids[1]] and shares[ids[2]] and shares[ids[3]] and shares[ids[4]]

    again = SandboxStore(tmp_path / "again.db")
    again.add_chaos(seed=3)
    assert [f["seed"] for f in again.faults()] == [f["seed"] for f in listed]
    only_clean = SandboxStore(tmp_path / "clean.db")
    only_clean.add_chaos(throttle=0, server_error=0.1, reset=0, executed_share=0)
    assert [(f["kind"], f["executed"], f["probability"]) for f in only_clean.faults()] == [("http_5xx", False, 0.1)]


def test_chaos_through_the_sdks(sb: Sandbox) -> None:
    """Under chaos a client sees a mix of clean answers and every failure, and the log accounts for all."""
    sb.store.add_chaos(throttle=0.3, server_error=0.2, reset=0.2, seed=11)
    seen = Counter[str]()
    for _ in range(30):
        try:
            teo_quota(sb)
            seen["ok"] += 1
        except TencentCloudSDKException as exc:
            seen[str(exc.get_code())] += 1
    assert set(seen) == {"ok", "RequestLimitExceeded", "ServerNetworkError", "ClientNetworkError"}
    log = Counter(r["fault"] for r in sb.store.requests())
    assert log == {None: seen["ok"], "throttle": seen["RequestLimitExceeded"],
                   "http_5xx": seen["ServerNetworkError"], "reset": seen["ClientNetworkError"]}


# ----- validation, persistence, CLI ----------------------------------------------------------------


@pytest.mark.parametrize("kind, kwargs", [
    ("explode", {}), ("throttle", {"service": "aws"}), ("throttle", {"action": "CreatePrefetchTaskz"}),
    ("throttle", {"service": "cdn", "action": "CreatePrefetchTask"}), ("throttle", {"probability": 1.5}),
    ("throttle", {"probability": float("nan")}), ("throttle", {"count": 0}), ("throttle", {"executed": True}),
    ("clock_skew", {"executed": True}), ("throttle", {"delay_seconds": 3}), ("slow", {"delay_seconds": -1}),
    ("http_5xx", {"status": 404}), ("reset", {"status": 502}), ("throttle", {"field": "Response.JobId"}),
    ("missing_field", {"field": "Response.Tasks[]"}), ("null_field", {"field": "a..b"}), ("throttle", {"seed": 2**64}),
])
def test_bad_faults_are_refused(tmp_path: Path, kind: str, kwargs: dict[str, Any]) -> None:
    store = SandboxStore(tmp_path / "bad.db")
    with pytest.raises(ValueError):
        store.add_fault(kind, **kwargs)
    assert store.faults() == []


def test_defaults_are_stored_and_reset_clears_faults(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "defaults.db")
    store.add_fault("slow")
    store.add_fault("clock_skew")
    store.add_fault("http_5xx")
    store.add_fault("malformed_json")  # always executes: the body is mangled after the action ran
    assert [(f["kind"], f["delay_seconds"], f["status"], f["executed"]) for f in store.faults()] == [
        ("slow", 35.0, None, False), ("clock_skew", 600.0, None, False), ("http_5xx", None, 502, False),
        ("malformed_json", None, None, True)]
    store.reset()
    assert store.faults() == []
    store.add_fault("throttle")
    store.clear_faults()
    assert store.faults() == []


def test_default_fields_cover_every_emulated_action() -> None:
    emulated = {(name, action) for name, svc in server.TENCENT_SERVICES.items() for action in svc.actions}
    emulated |= {("ucloud", action) for action in ucdn_actions.ACTIONS}
    assert set(faults.DEFAULT_FIELDS) == emulated


def test_strip_field_paths() -> None:
    body = {"TaskList": [{"UrlLists": [{"Status": "a", "Url": "u"}, {"Status": "b"}]}, {"UrlLists": []}], "X": 1}
    assert faults.strip_field(body, "TaskList[].UrlLists[].Status", null=False) == 2
    assert body == {"TaskList": [{"UrlLists": [{"Url": "u"}, {}]}, {"UrlLists": []}], "X": 1}
    assert faults.strip_field(body, "X", null=True) == 1 and body["X"] is None
    assert faults.strip_field(body, "Response.Missing", null=False) == 0  # absent: unchanged


def test_an_older_db_file_gains_the_fault_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, service TEXT,"
                   " action TEXT, method TEXT, secret_id TEXT, params TEXT, error_code TEXT, error_message TEXT,"
                   " request_id TEXT NOT NULL)")
        db.execute("INSERT INTO requests (at, request_id) VALUES (1, 'old')")
    store = SandboxStore(path)
    (old,) = store.requests()
    assert (old["request_id"], old["fault"], old["handled"]) == ("old", None, True)


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([PYTHON, "-m", "sandbox", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_fault_add_list_clear_steers_a_running_sandbox(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    with Sandbox(db) as box:  # the faults are added by another process, through the db file
        out = cli("fault", "add", "http_5xx", "--service", "teo", "--action", "CreatePrefetchTask",
                  "--executed", "--status", "503", "--count", "1", "--seed", "5", "--db", db).stdout
        assert out.strip() == ("fault #1 http_5xx service=teo action=CreatePrefetchTask p=1 count=1 executed "
                               "status=503 seed=5 fired=0/0")
        cli("fault", "add", "missing_field", "--field", "Response.Tasks[].CreateTime", "--probability", "0.5",
            "--db", db)
        cli("fault", "add", "slow", "--delay", "0", "--db", db)
        assert tencent_code(lambda: teo_create(box)).get_code() == "ServerNetworkError"
        assert [t.service for t in box.store.tasks()] == ["teo"]  # --executed
        listed = cli("fault", "list", "--db", db).stdout.splitlines()
        assert len(listed) == 3 and listed[0].endswith("fired=1/1")
        assert "field=Response.Tasks[].CreateTime" in listed[1] and "p=0.5" in listed[1]
        assert "delay_seconds=0 " in listed[2] and "not-executed" in listed[2]
        log = cli("log", "--db", db).stdout
        assert " teo CreatePrefetchTask OK fault=http_5xx#1 " in log
        assert cli("fault", "clear", "--db", db).stdout.strip() == "faults cleared"
        assert cli("fault", "list", "--db", db).stdout.startswith("no faults")
        assert teo_create(box).JobId


def test_cli_fault_chaos_and_mistakes(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    out = cli("fault", "chaos", "--throttle", "0.3", "--server-error", "0.05", "--reset", "0.02",
              "--seed", "9", "--db", db).stdout.splitlines()
    assert [line.split()[2] for line in out] == ["throttle", "http_5xx", "http_5xx", "reset", "reset"]
    assert "p=0.3 " in out[0] and " executed " in out[1] and "not-executed" in out[2]
    store = SandboxStore(db)
    python_side = SandboxStore(tmp_path / "py.db")
    python_side.add_chaos(throttle=0.3, server_error=0.05, reset=0.02, seed=9)
    assert [(f["kind"], f["executed"], f["probability"], f["seed"]) for f in store.faults()] == \
        [(f["kind"], f["executed"], f["probability"], f["seed"]) for f in python_side.faults()]
    cli("fault", "chaos", "--executed-share", "1", "--db", db)
    assert len(store.faults()) == 5 + 3  # no not-executed server error or reset
    out = cli("fault", "add", "clock_skew", "--service", "ucloud", "--delay", "-1800", "--db", db).stdout
    assert "clock_skew service=ucloud" in out and "delay_seconds=-1800" in out  # a UCloud 30 minutes behind

    for args in (["fault", "add", "explode"], ["fault", "add", "throttle", "--executed"],
                 ["fault", "add", "throttle", "--probability", "2"], ["fault", "add", "throttle", "--action", "Nope"],
                 ["fault", "add", "http_5xx", "--status", "404"],
                 ["fault", "chaos", "--throttle", "0.9", "--server-error", "0.2"],
                 ["fault", "list", "--db", str(tmp_path / "missing.db")]):
        proc = cli(*args, *(["--db", db] if "--db" not in args else []), check=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "error:" in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
