"""Sandbox accounts (sandbox/accounts.py): each key pair owns its zones and domains, through the official SDKs.

A resource nobody owns is claimed by the first key pair naming it; another key pair is then refused,
on reads and submits, with each cloud's documented code: EdgeOne ResourceUnavailable.ZoneNotFound,
Cloud CDN ResourceNotFound.CdnHostNotExists, UCloud RetCode 299.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import pytest
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
    OTHER_SECRET_ID,
    OTHER_SECRET_KEY,
    OTHER_UCLOUD_PRIVATE_KEY,
    OTHER_UCLOUD_PUBLIC_KEY,
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
    SandboxStore,
)
from sandbox.__main__ import main as sandbox_cli
from sandbox.accounts import Ownership

ZONE, OTHER_ZONE = "zone-mine", "zone-theirs"
HOST = "static.example.com"
URL = f"https://{HOST}/app.js"
QUIET = logging.getLogger("tests.sandbox_accounts.ucloud")
QUIET.setLevel(logging.CRITICAL)
ME, THEM = (SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY), (OTHER_SECRET_ID, OTHER_SECRET_KEY)
U_ME = (SANDBOX_UCLOUD_PUBLIC_KEY, SANDBOX_UCLOUD_PRIVATE_KEY)
U_THEM = (OTHER_UCLOUD_PUBLIC_KEY, OTHER_UCLOUD_PRIVATE_KEY)

pytestmark = pytest.mark.sandbox(ucloud_prefetch_interval=0)


def _profile(sb: Sandbox) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=sb.endpoint, reqTimeout=10))


def teo(sb: Sandbox, keys: tuple[str, str], action: str, **params: Any) -> Any:
    cli = teo_client.TeoClient(credential.Credential(*keys), "", _profile(sb))
    return _call(cli, teo_models, action, params)


def cdn(sb: Sandbox, keys: tuple[str, str], action: str, **params: Any) -> Any:
    cli = cdn_client.CdnClient(credential.Credential(*keys), "", _profile(sb))
    return _call(cli, cdn_models, action, params)


def _call(cli: Any, models: Any, action: str, params: dict[str, Any]) -> Any:
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return getattr(cli, action)(request)


def ucdn(sb: Sandbox, keys: tuple[str, str]) -> UCDNClient:
    return UCDNClient({"base_url": sb.url, "public_key": keys[0], "private_key": keys[1], "max_retries": 0,
                       "timeout": 10}, logger=QUIET)


def tencent_code(fn: Callable[[], Any]) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        fn()
    assert info.value.get_request_id()
    return str(info.value.get_code())


def ret_code(fn: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(uexc.RetCodeException) as info:
        fn()
    return info.value.code, info.value.message


def window() -> dict[str, str]:
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    return {"StartTime": iso(now - 3600), "EndTime": iso(now + 3600)}


def cdn_since() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8 * 3600 - 3600))


# ----- the store -----------------------------------------------------------------------------------


def test_the_first_account_naming_a_resource_claims_it_and_nothing_is_claimed_when_one_is_foreign(tmp_path):
    store = SandboxStore(tmp_path / "owners.db")
    assert store.claim("cdn", ["A.example.com", "b.example.com"], "me") == {}
    assert store.owner("cdn", "a.EXAMPLE.com") == "me"  # domains are case-insensitive
    assert store.claim("cdn", ["c.example.com", "a.example.com"], "them") == {"a.example.com": "me"}
    assert store.owner("cdn", "c.example.com") is None  # all or nothing
    assert store.claim("cdn", ["c.example.com"], "them") == {}
    assert store.claim("teo", [ZONE], "them") == {}  # every service has its own resources
    store.grant("cdn", "b.example.com", "them")
    assert store.release("teo", ZONE) and not store.release("teo", ZONE)
    store.reset()  # ownership is configuration
    assert store.owners() == [Ownership("cdn", "a.example.com", "me"), Ownership("cdn", "b.example.com", "them"),
                              Ownership("cdn", "c.example.com", "them")]
    assert store.owners("teo") == []
    for bad in (lambda: store.claim("aws", ["x"], "me"), lambda: store.grant("teo", " ", "me"),
                lambda: store.grant("teo", ZONE, "")):
        with pytest.raises(ValueError):
            bad()


# ----- EdgeOne: zones ------------------------------------------------------------------------------


def test_edgeone_refuses_every_read_and_submit_in_another_accounts_zone(sb: Sandbox) -> None:
    job = teo(sb, ME, "CreatePrefetchTask", ZoneId=ZONE, Targets=[URL]).JobId  # claims the zone
    refused = {
        "CreatePrefetchTask": {"Targets": [URL]},
        "CreatePurgeTask": {"Type": "purge_url", "Targets": [URL]},
        "DescribePrefetchTasks": window(),
        "DescribePurgeTasks": window(),
        "DescribeContentQuota": {},
    }
    for action, params in refused.items():
        assert tencent_code(lambda: teo(sb, THEM, action, ZoneId=ZONE, **params)) == \
            "ResourceUnavailable.ZoneNotFound", action
    assert [t.job_id for t in sb.store.tasks()] == [job]  # nothing submitted, nothing charged
    assert teo(sb, ME, "DescribeContentQuota", ZoneId=ZONE).PrefetchQuota[0].DailyAvailable == 10000 - 1

    assert teo(sb, THEM, "CreatePrefetchTask", ZoneId=OTHER_ZONE, Targets=[URL]).JobId  # its own zone
    assert tencent_code(lambda: teo(sb, ME, "DescribeContentQuota", ZoneId=OTHER_ZONE)) == \
        "ResourceUnavailable.ZoneNotFound"
    assert tencent_code(lambda: teo(sb, THEM, "DescribeContentQuota", ZoneId="bogus")) == \
        "InvalidParameter.ZoneNotFound"  # a malformed id is still its own error

    sb.store.grant("teo", ZONE, OTHER_SECRET_ID)  # the zone moves to the other account
    assert teo(sb, THEM, "DescribePrefetchTasks", ZoneId=ZONE, **window()).TotalCount == 1
    assert tencent_code(lambda: teo(sb, ME, "DescribePrefetchTasks", ZoneId=ZONE, **window())) == \
        "ResourceUnavailable.ZoneNotFound"
    assert [e["error_code"] for e in sb.store.requests()][-1] == "ResourceUnavailable.ZoneNotFound"


# ----- Cloud CDN: domains, per-account history and quota -------------------------------------------


def test_cdn_refuses_another_accounts_domain_and_keeps_histories_and_quotas_apart(sb: Sandbox) -> None:
    task_id = cdn(sb, ME, "PushUrlsCache", Urls=[URL]).TaskId  # claims static.example.com
    mine = "https://mine.example.com/a"
    assert tencent_code(lambda: cdn(sb, THEM, "PushUrlsCache", Urls=[mine, URL.upper().replace("HTTPS", "https")])) \
        == "ResourceNotFound.CdnHostNotExists"  # the whole call: hosts are case-insensitive
    assert sb.store.owner("cdn", "mine.example.com") is None  # nothing claimed by a refused call
    assert tencent_code(lambda: cdn(sb, THEM, "PurgeUrlsCache", Urls=[URL])) == "ResourceNotFound.CdnHostNotExists"
    for keyword in (HOST, URL):
        assert tencent_code(lambda: cdn(sb, THEM, "DescribePushTasks", StartTime=cdn_since(), Keyword=keyword)) == \
            "ResourceNotFound.CdnHostNotExists"
        assert tencent_code(lambda: cdn(sb, THEM, "DescribePurgeTasks", StartTime=cdn_since(), Keyword=keyword)) == \
            "ResourceNotFound.CdnHostNotExists"
    assert [t.job_id for t in sb.store.tasks()] == [task_id]

    # Its own domain works; histories are per account, whatever the filter.
    theirs = cdn(sb, THEM, "PushUrlsCache", Urls=[mine], Area="global").TaskId
    assert cdn(sb, THEM, "DescribePushTasks", TaskId=task_id).TotalCount == 0
    assert [r.TaskId for r in cdn(sb, THEM, "DescribePushTasks", StartTime=cdn_since()).PushLogs] == [theirs]
    assert [r.TaskId for r in cdn(sb, ME, "DescribePushTasks", StartTime=cdn_since()).PushLogs] == [task_id]
    # And so are the quotas: each account's pushes spend its own areas' quota.
    available = lambda keys: {q.Area: q.Available for q in cdn(sb, keys, "DescribePushQuota").UrlPush}  # noqa: E731
    assert available(ME) == {"mainland": 999, "overseas": 1000}
    assert available(THEM) == {"mainland": 999, "overseas": 999}
    sb.store.set_setting("cdn_push_daily_mainland", 2)  # one more each; a shared quota would have one left in all
    assert cdn(sb, ME, "PushUrlsCache", Urls=[URL]).TaskId and cdn(sb, THEM, "PushUrlsCache", Urls=[mine]).TaskId
    assert tencent_code(lambda: cdn(sb, THEM, "PushUrlsCache", Urls=[mine])) == "LimitExceeded.CdnPushExceedDayLimit"


# ----- UCloud: domains -----------------------------------------------------------------------------


def test_ucloud_refuses_another_accounts_domain_with_retcode_299(sb: Sandbox) -> None:
    sb.store.add_ucloud_domain("ucdn-mine", HOST)
    mine = ucdn(sb, U_ME)
    assert mine.get_ucdn_domain_prefetch_refresh_state({"DomainId": "ucdn-mine"})["PrefetchQuota"] == 500  # claims it
    theirs = ucdn(sb, U_THEM)
    for call in (lambda: theirs.get_ucdn_domain_prefetch_refresh_state({"DomainId": "ucdn-mine"}),
                 lambda: theirs.prefetch_new_ucdn_domain_cache({"UrlList": ["https://other.example.com/1", URL]}),
                 lambda: theirs.refresh_new_ucdn_domain_cache({"Type": "file", "UrlList": [URL]})):
        code, message = ret_code(call)
        assert code == 299 and "ucdn-mine" in message
    assert sb.store.tasks() == []  # nothing submitted
    assert theirs.prefetch_new_ucdn_domain_cache({"UrlList": ["https://undeclared.example.com/1"]})["TaskId"]
    task_id = mine.prefetch_new_ucdn_domain_cache({"UrlList": [URL]})["TaskId"]
    assert task_id not in {t["TaskId"] for t in theirs.describe_new_ucdn_prefetch_cache_task({})["TaskList"]}
    assert ret_code(lambda: theirs.get_ucdn_domain_prefetch_refresh_state({"DomainId": "ucdn-nope"}))[0] == 44003


# ----- friendly defaults, the CLI, older files -----------------------------------------------------


def test_a_fresh_sandbox_needs_no_setup_and_knows_both_built_in_accounts(tmp_path):
    with Sandbox(tmp_path / "fresh.db") as box:
        assert teo(box, ME, "CreatePrefetchTask", ZoneId="zone-a", Targets=[URL]).JobId
        assert teo(box, THEM, "CreatePrefetchTask", ZoneId="zone-b", Targets=[URL]).JobId
        assert cdn(box, THEM, "PushUrlsCache", Urls=[URL]).TaskId
        assert ucdn(box, U_THEM).prefetch_new_ucdn_domain_cache({"UrlList": [URL]})["TaskId"]
        assert box.store.owners() == [Ownership("cdn", HOST, OTHER_SECRET_ID),
                                      Ownership("teo", "zone-a", SANDBOX_SECRET_ID),
                                      Ownership("teo", "zone-b", OTHER_SECRET_ID)]


def test_cli_lists_grants_and_releases_ownership(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    SandboxStore(db).claim("teo", [ZONE], SANDBOX_SECRET_ID)
    assert sandbox_cli(["account", "grant", ZONE, "--key", "other", "--db", db]) == 0
    assert sandbox_cli(["account", "grant", "Static.Example.com", "--key", "someone", "--db", db]) == 0
    assert sandbox_cli(["ucloud-domain", "add", "ucdn-x", "x.example.com", "--key", "other", "--db", db]) == 0
    assert sandbox_cli(["account", "release", "ucdn-x", "--db", db]) == 0
    out = capsys.readouterr().out
    assert f"teo zone {ZONE} is owned by {OTHER_SECRET_ID}" in out
    assert "cdn domain static.example.com is owned by someone" in out
    assert f"owned by {OTHER_UCLOUD_PUBLIC_KEY}" in out and "ucloud domain ucdn-x is nobody's now" in out
    assert sandbox_cli(["account", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert f"{SANDBOX_SECRET_ID} (default)" in listed and f"{OTHER_UCLOUD_PUBLIC_KEY} (other)" in listed
    assert [line.split() for line in listed.splitlines() if line.startswith("  teo") or line.startswith("  cdn")] == [
        ["cdn", "domain", "static.example.com", "someone"], ["teo", "zone", ZONE, OTHER_SECRET_ID]]
    with pytest.raises(SystemExit) as info:
        sandbox_cli(["account", "grant", "not-a-resource", "--key", "x", "--db", db])
    assert info.value.code == 2 and "add --service" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sandbox_cli(["account", "list", "--db", str(tmp_path / "missing.db")])


def test_a_file_from_before_accounts_keeps_the_default_accounts_history_and_quota(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the two tables as they were, one CDN push and one UCloud task in them
        db.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, scope TEXT NOT "
                   "NULL, kind TEXT NOT NULL, job_id TEXT NOT NULL, target TEXT NOT NULL, host TEXT NOT NULL, created "
                   "REAL NOT NULL, finish REAL NOT NULL, outcome TEXT NOT NULL, fail_type TEXT NOT NULL, fail_message "
                   "TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}')")
        db.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, scope TEXT NOT "
                   "NULL, kind TEXT NOT NULL, at REAL NOT NULL, count INTEGER NOT NULL)")
        now = time.time()
        for service, scope, job in (("cdn", "mainland", "1" * 23), ("ucloud", SANDBOX_UCLOUD_PUBLIC_KEY, "OldTask1")):
            db.execute("INSERT INTO tasks (service, scope, kind, job_id, target, host, created, finish, outcome, "
                       "fail_type, fail_message) VALUES (?, ?, 'prefetch', ?, ?, ?, ?, ?, 'success', '', '')",
                       (service, scope, job, URL, HOST, now, now))
            db.execute("INSERT INTO usage (service, scope, kind, at, count) VALUES (?, ?, 'prefetch', ?, 1)",
                       (service, scope, now))
    with Sandbox(path) as box:
        assert [r.TaskId for r in cdn(box, ME, "DescribePushTasks", StartTime=cdn_since()).PushLogs] == ["1" * 23]
        assert {q.Area: q.Available for q in cdn(box, ME, "DescribePushQuota").UrlPush}["mainland"] == 999
        assert cdn(box, THEM, "DescribePushTasks", StartTime=cdn_since()).TotalCount == 0
        listed = ucdn(box, U_ME).describe_new_ucdn_prefetch_cache_task({})["TaskList"]
        assert [t["TaskId"] for t in listed] == ["OldTask1"]


def test_owners_are_per_file_and_survive_a_restart(tmp_path: Path):
    with Sandbox(tmp_path / "sb.db") as box:
        teo(box, THEM, "DescribeContentQuota", ZoneId=ZONE)  # a read claims too
    with Sandbox(tmp_path / "sb.db") as box:
        assert tencent_code(lambda: teo(box, ME, "DescribeContentQuota", ZoneId=ZONE)) == \
            "ResourceUnavailable.ZoneNotFound"
