"""`python -m sandbox`: the commands act on a db file, serve speaks to the SDK, mistakes are messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.teo.v20220901 import models, teo_client

from sandbox import __main__ as sandbox_cli
from sandbox import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
    SandboxStore,
)

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / "venv" / "bin" / "python") if (REPO / "venv" / "bin" / "python").exists() else sys.executable


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([PYTHON, "-m", "sandbox", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def teo(endpoint: str) -> teo_client.TeoClient:
    http = HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=10)
    return teo_client.TeoClient(credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY), "",
                                ClientProfile(httpProfile=http))


def create(client: teo_client.TeoClient, *targets: str) -> models.CreatePrefetchTaskResponse:
    req = models.CreatePrefetchTaskRequest()
    req.from_json_string(json.dumps({"ZoneId": "zone-cli", "Targets": list(targets)}))
    return client.CreatePrefetchTask(req)


def test_rule_add_steers_a_running_sandbox_and_log_shows_calls(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    out = cli("rule", "add", "*/broken/*", "rejected", "--message", "not in zone", "--db", db).stdout
    assert "*/broken/*" in out and "rejected" in out
    cli("rule", "add", "*/slow", "timeout", "--delay", "0", "--db", db)
    listed = cli("rule", "list", "--db", db).stdout.splitlines()
    assert listed[0].startswith("#1 */broken/* rejected") and "not in zone" in listed[0]
    assert listed[1].startswith("#2 */slow timeout")

    with Sandbox(db) as box:
        resp = create(teo(box.endpoint), "https://c.example.com/broken/a", "https://c.example.com/ok")
    assert [(f.Reason, f.Targets) for f in resp.FailedList] == [("not in zone", ["https://c.example.com/broken/a"])]

    lines = cli("log", "--db", db).stdout.splitlines()
    assert len(lines) == 1
    assert " teo CreatePrefetchTask OK " in lines[0] and resp.RequestId in lines[0]
    assert "https://c.example.com/ok" in lines[0]
    assert cli("log", "--action", "DescribePrefetchTasks", "--db", db).stdout == ""
    entry = json.loads(cli("log", "--json", "--db", db).stdout)
    assert entry["params"]["ZoneId"] == "zone-cli"

    cli("rule", "clear", "--db", db)
    assert SandboxStore(db).rules() == []


def test_set_age_reset_settings(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    assert cli("--db", db, "set", "prefetch_daily", "50").stdout.strip() == "prefetch_daily = 50"
    store = SandboxStore(db)
    assert store.get_setting("prefetch_daily") == 50
    assert "prefetch_daily = 50" in cli("settings", "--db", db).stdout
    store.add_rule("*", "failed")
    with Sandbox(db) as box:
        create(teo(box.endpoint), "https://c.example.com/a")
    (before,) = store.tasks()
    cli("age", "120", "--db", db)
    (after,) = store.tasks()
    assert before.created - after.created == pytest.approx(120)
    cli("reset", "--db", db)
    assert (store.tasks(), store.rules(), store.requests()) == ([], [], [])


def test_user_mistakes_are_messages_not_tracebacks(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    for args in (["rule", "add", "*", "exploded", "--db", db], ["set", "prefetch_batch", "many", "--db", db],
                 ["set", "colour", "1", "--db", db], ["age", "-5", "--db", db], ["age", "soon", "--db", db],
                 ["log", "--db", str(tmp_path / "missing.db")], ["serve", "--host", "0.0.0.0", "--db", db],
                 ["rule", "add", "*", "failed", "--service", "aws", "--db", db],
                 ["ucloud-domain", "add", "ucdn-x", "http://a.example.com/", "--db", db],
                 ["ucloud-domain", "list", "--db", str(tmp_path / "missing.db")]):
        proc = cli(*args, check=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "error:" in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_serve_prints_url_and_credentials_and_answers(tmp_path: Path) -> None:
    db = str(tmp_path / "served.db")
    proc = subprocess.Popen([PYTHON, "-m", "sandbox", "serve", "--port", "0", "--db", db, "--progress-seconds", "0",
                             "--cdn-max-limit", "100", "--cdn-over-limit", "cap"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert SANDBOX_SECRET_ID in line and SANDBOX_SECRET_KEY in line
        assert f"PublicKey={SANDBOX_UCLOUD_PUBLIC_KEY}" in line and f"PrivateKey={SANDBOX_UCLOUD_PRIVATE_KEY}" in line
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        resp = create(teo(url.removeprefix("http://")), "https://c.example.com/served")
        assert len(resp.JobId) == 12
        assert SandboxStore(db).get_setting("progress_seconds") == 0.0
        assert (SandboxStore(db).get_setting("cdn_history_max_limit"),
                SandboxStore(db).get_setting("cdn_history_over_limit")) == (100, "cap")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_service_scoped_rules_domains_and_log_filter(tmp_path: Path) -> None:
    import logging

    from tencentcloud.cdn.v20180606 import cdn_client
    from tencentcloud.cdn.v20180606 import models as cdn_models
    from ucloud.services.ucdn.client import UCDNClient

    db = str(tmp_path / "cli.db")
    cli("rule", "add", "*/x.js", "unknown", "--db", db)
    out = cli("rule", "add", "*/x.js", "invalid", "--service", "cdn", "--delay", "0", "--db", db).stdout
    assert "(on cdn only)" in out  # added later, so it wins over the global rule, on cdn only
    listed = cli("rule", "list", "--db", db).stdout.splitlines()
    assert "service" not in listed[0] and "service='cdn'" in listed[1]
    assert cli("ucloud-domain", "list", "--db", db).stdout.startswith("no ucloud domains")
    assert cli("ucloud-domain", "add", "ucdn-abc", "Static.Example.com", "--db", db).stdout.strip() == \
        "ucloud domain ucdn-abc -> static.example.com"
    assert cli("ucloud-domain", "list", "--db", db).stdout.strip() == "ucdn-abc static.example.com"

    quiet = logging.getLogger("tests.cli.ucloud")
    quiet.setLevel(logging.ERROR)
    with Sandbox(db) as box:
        http = HttpProfile(protocol="http", endpoint=box.endpoint, reqTimeout=10)
        cdn = cdn_client.CdnClient(credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY), "",
                                   ClientProfile(httpProfile=http))
        req = cdn_models.PushUrlsCacheRequest()
        req.from_json_string(json.dumps({"Urls": ["https://static.example.com/x.js"]}))
        cdn.PushUrlsCache(req)
        ucdn = UCDNClient({"base_url": box.url, "public_key": SANDBOX_UCLOUD_PUBLIC_KEY,
                           "private_key": SANDBOX_UCLOUD_PRIVATE_KEY, "max_retries": 0, "timeout": 10}, logger=quiet)
        ucdn.prefetch_new_ucdn_domain_cache({"UrlList": ["https://static.example.com/x.js"]})
        state = ucdn.get_ucdn_domain_prefetch_refresh_state({"DomainId": "ucdn-abc"})
        create(teo(box.endpoint), "https://static.example.com/x.js")
    assert state["SubmitPrefetchCount"] == 1
    assert {t.service: t.outcome for t in SandboxStore(db).tasks()} == {
        "cdn": "invalid", "ucloud": "unknown", "teo": "unknown"}

    ucloud_lines = cli("log", "--service", "ucloud", "--db", db).stdout.splitlines()
    assert [line.split()[1:4] for line in ucloud_lines] == [
        ["ucloud", "PrefetchNewUcdnDomainCache", "OK"], ["ucloud", "GetUcdnDomainPrefetchRefreshState", "OK"]]
    assert "https://static.example.com/x.js" in ucloud_lines[0] and "Signature" not in ucloud_lines[0]
    assert [line.split()[2] for line in cli("log", "--service", "cdn", "--db", db).stdout.splitlines()] == [
        "PushUrlsCache"]
    assert len(cli("log", "--service", "teo", "--db", db).stdout.splitlines()) == 1


def test_rule_kinds(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    assert cli("rule", "add", "*/a.js", "failed", "--kind", "purge", "--db", db).stdout.strip() == \
        "rule #1: */a.js -> failed [purge]"
    assert cli("rule", "add", "*/b.js", "timeout", "--kind", "any", "--service", "cdn", "--db", db).stdout.strip() == \
        "rule #2: */b.js -> timeout (on cdn only) [any]"
    assert cli("rule", "add", "*/c.js", "invalid", "--db", db).stdout.strip() == "rule #3: */c.js -> invalid"
    assert [line.rsplit(" ", 1)[-1] for line in cli("rule", "list", "--db", db).stdout.splitlines()] == [
        "[purge]", "[any]", "invalid"]
    assert [(r["pattern"], r["kind"]) for r in SandboxStore(db).rules()] == [
        ("*/a.js", "purge"), ("*/b.js", None), ("*/c.js", "prefetch")]
    proc = cli("rule", "add", "*", "failed", "--kind", "refresh", "--db", db, check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_edge_origin_and_ttl_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    url = "https://static.example.com/app.js"
    assert cli("origin", "set", url, "v2", "--db", db).stdout.strip() == f"origin {url} = v2 from now on"
    assert cli("ttl", "set", "Static.Example.com", "600", "--db", db).stdout.strip() == "ttl static.example.com = 600 s"
    assert cli("ttl", "list", "--db", db).stdout.splitlines() == [
        "static.example.com 600 s", "* 86400 s (edge_ttl_seconds: every other host)"]
    with Sandbox(db, progress_seconds=0) as box:
        job = create(teo(box.endpoint), url).JobId
    cli("origin", "set", url, "v3", "--db", db)
    shown = cli("origin", "show", url, "--db", db).stdout.splitlines()
    assert shown[0] == f"{url} v3 now" and [line.split()[-1] for line in shown[1:]] == ["v2", "v3"]

    teo_line, cdn_line, ucloud_line = cli("edge", url, "--db", db).stdout.splitlines()
    assert teo_line.startswith(f"{url} teo: serves v2 (cached by {job}, until ")
    assert "origin v3, STALE" in teo_line and f"last prefetch {job} success" in teo_line
    assert "last purge -" in teo_line
    assert cdn_line == f"{url} cdn: miss: serves v3 from the origin; origin v3, current; last prefetch -, last purge -"
    assert ucloud_line.startswith(f"{url} ucloud: miss")
    (line,) = cli("edge", url, "--service", "teo", "--json", "--db", db).stdout.splitlines()
    copy = json.loads(line)
    assert (copy["version"], copy["origin"], copy["serves"], copy["current"], copy["cached_by"]) == (
        "v2", "v3", "v2", False, job)
    assert copy["expires_at"] - copy["cached_at"] == pytest.approx(600)
    assert copy["last_prefetch"]["job_id"] == job and copy["last_purge"] is None

    cli("age", "600", "--db", db)  # the copy expires: the next request is a miss answered by the origin
    (line,) = cli("edge", url, "--service", "teo", "--db", db).stdout.splitlines()
    assert f"miss: serves v3 from the origin (the copy by {job} expired " in line and "current" in line
    cli("reset", "--db", db)
    assert cli("ttl", "list", "--db", db).stdout.splitlines()[0] == "static.example.com 600 s"  # configuration stays
    assert cli("origin", "show", url, "--db", db).stdout.strip() == f"{url} v1 now"

    missing = str(tmp_path / "missing.db")
    for args in (["edge", url, "--db", missing], ["edge", "static.example.com/app.js", "--db", db],
                 ["origin", "set", "ftp://x/y", "v2", "--db", db], ["origin", "set", url, " ", "--db", db],
                 ["origin", "s3", "https://s3.example.com/", "http://192.0.2.1:9000", "bucket", "--db", db],
                 ["ttl", "set", "https://static.example.com/", "60", "--db", db],
                 ["ttl", "set", "a.com", "-1", "--db", db],
                 ["ttl", "list", "--db", missing]):
        with pytest.raises(SystemExit) as exited:  # in-process, to save a start-up per mistake
            sandbox_cli.main(args)
        assert exited.value.code == 2, args
        assert "error:" in capsys.readouterr().err, args
    assert cli("origin", "s3", "https://s3.example.com/", "http://127.0.0.1:9000", "bucket", "--key-prefix", "site/",
               "--db", db).stdout.strip() == \
        "origin https://s3.example.com/* = ETags of s3://bucket/site/* at http://127.0.0.1:9000"
    assert [o.prefix for o in SandboxStore(db).s3_origins()] == ["https://s3.example.com/"]
