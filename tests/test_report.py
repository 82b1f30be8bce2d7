"""The drift report (python -m components.report): pure renderers, stack config, exit codes, and the
acceptance scenario against a sandbox after a real `up` through the engine harness."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from components.declare.model import DestinationDeclaration, PrefetchSetDeclaration
from components.engine.settings import settings_from_config
from components.model.connection import ConfigError
from components.model.status import TargetState, TargetStatus
from components.plan.reconcile import Plan
from components.report import cli as report_module
from components.report.cli import main
from components.report.model import DestinationReading, build_report
from components.report.renderers import render_json, render_markdown, render_table
from components.report.stack_config import config_getter, load_stack_config, parse_endpoint_overrides
from tests.stacks import (  # the credentials of the sandbox fixture (tests/conftest.py), which the audit looks for
    SECRET_ID,
    SECRET_KEY,
)
from tests.stacks import AuditedEngine as Engine  # every command audited for leaks and output shape

PROJECT = Path(__file__).resolve().parent.parent
ZONE = "zone-2o0i4xfimj9g"
URLS = [f"https://static.example.com/assets/{i:02d}.js" for i in range(50)]
FAILED = URLS[3:6]
TIMED_OUT = URLS[10:12]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
URL_RE = re.compile(r"https?://[^\s|<>\"'`)]+")


# -- a hand-built report --------------------------------------------------------------------------
def declaration(urls, name="web", zone=ZONE, description="Front-end bundle"):
    return PrefetchSetDeclaration(name=name, source=f"prefetch-sets/{name}.yaml",
                                  destinations=(DestinationDeclaration("edgeone", {"zone": zone, "mode": "default"}),),
                                  targets=tuple(urls), description=description)


def observed(statuses, urls=None, **kwargs):
    urls = urls or [s.url for s in statuses]
    decl = declaration(urls, **kwargs)
    plan = Plan({s.url: s for s in statuses})
    return DestinationReading(decl, decl.destinations[0], plan, NOW)


def scenario_statuses(urls=URLS):
    at = NOW - timedelta(minutes=5)
    out = []
    for url in urls:
        if url in FAILED:
            out.append(TargetStatus(url, TargetState.FAILED, "task-1", at, "originPullFailed: origin returned HTTP 502"))
        elif url in TIMED_OUT:
            out.append(TargetStatus(url, TargetState.TIMED_OUT, "task-1", at, "taskFailed: prefetch timed out"))
        else:
            out.append(TargetStatus(url, TargetState.WARM, "task-1", at))
    return out


def urls_in(text):
    return {u.rstrip(".,") for u in URL_RE.findall(text)}


@pytest.fixture
def drift_report():
    return build_report([observed(scenario_statuses())], stack="prod", generated_at=NOW)


def test_build_report_counts_and_lists_drift_in_declaration_order(drift_report):
    [dest] = drift_report.destinations
    assert (dest.total, dest.warm, dest.counts["failed"], dest.counts["timed_out"]) == (50, 45, 3, 2)
    assert [t.url for t in dest.drifted] == FAILED + TIMED_OUT
    assert dest.label == f"edgeone-{ZONE}" and dest.verified_at == "2026-11-23T12:00:00Z"
    assert drift_report.drifted == 5 and not drift_report.in_sync and drift_report.exit_code == 2


def test_table_has_a_header_per_destination_one_row_per_drifted_target_and_a_summary(drift_report):
    text = render_table(drift_report)
    lines = text.splitlines()
    assert lines[0].startswith(f"web / edgeone-{ZONE}: 45/50 warm, 3 failed, 2 timed out")
    assert urls_in(text) == set(FAILED + TIMED_OUT)
    row = next(line for line in lines if FAILED[0] in line)
    assert row.split()[0] == "failed" and "originPullFailed: origin returned HTTP 502" in row
    assert "task-1" in row and "2026-11-23T11:55:00Z" in row
    assert next(line for line in lines if TIMED_OUT[0] in line).lstrip().startswith("timed out")
    assert lines[-1] == "5 of 50 targets drifted across 1 destination"


def test_table_and_markdown_say_all_warm_on_a_clean_run():
    clean = build_report([observed([TargetStatus(u, TargetState.WARM, "t", NOW) for u in URLS[:7]])], generated_at=NOW)
    assert clean.exit_code == 0
    table = render_table(clean)
    assert table.splitlines()[-1].startswith("all 7 targets warm") and urls_in(table) == set()
    markdown = render_markdown(clean).strip().splitlines()
    assert markdown[0].startswith("### ") and len([line for line in markdown if line]) == 2
    assert "all 7 targets warm" in markdown[-1] and "<details>" not in "\n".join(markdown)


def test_markdown_has_a_summary_table_and_details_per_destination_with_drift(drift_report):
    text = render_markdown(drift_report)
    assert text.startswith("### cdn-prefetch drift report: stack `prod`")
    assert "| set | destination | warm | drifted | verified at |" in text
    assert f"| web | edgeone-{ZONE} | 45/50 | 5 (3 failed, 2 timed out) | 2026-11-23T12:00:00Z |" in text
    assert text.count("<details>") == 1 and text.count("</details>") == 1
    assert "| status | URL | reason | task | time |" in text
    assert f"| failed | {FAILED[0]} | originPullFailed: origin returned HTTP 502 | `task-1` | 2026-11-23T11:55:00Z |" in text
    assert urls_in(text) == set(FAILED + TIMED_OUT)


def test_markdown_caps_rows_per_destination_and_keeps_warm_destinations_out_of_details():
    many = [TargetStatus(f"https://a.example.com/{i}.js", TargetState.MISSING, reason="never submitted")
            for i in range(120)]
    warm = [TargetStatus("https://b.example.com/ok.js", TargetState.WARM, "t", NOW)]
    report = build_report([observed(many, name="big"), observed(warm, name="fine", zone="zone-b")])
    text = render_markdown(report)
    assert text.count("<details>") == 1
    assert len(urls_in(text)) == 50 and "…and 70 more" in text
    assert "| fine | edgeone-zone-b | 1/1 | 0 |" in text
    assert len(urls_in(render_markdown(report, max_rows=0))) == 120
    table = render_table(report, max_rows=10)
    assert len(urls_in(table)) == 10 and "…and 110 more" in table
    assert render_table(report).count("https://a.example.com/") == 120


def test_markdown_cells_cannot_break_the_table_or_inject_html():
    odd = TargetStatus("https://a.example.com/x.js", TargetState.FAILED, "t|1", NOW, "bad | <b>worse</b>\nnext")
    text = render_markdown(build_report([observed([odd])]))
    row = next(line for line in text.splitlines() if "a.example.com" in line)
    assert "bad \\| &lt;b&gt;worse&lt;/b&gt; next" in row and "<b>worse" not in text
    assert len(re.split(r"(?<!\\)\|", row)) == 7  # still exactly five cells between the outer pipes


def test_json_shape(drift_report):
    data = json.loads(render_json(drift_report))
    assert data["version"] == 1 and data["in_sync"] is False and data["stack"] == "prod"
    assert data["summary"] == {"destinations": 1, "total": 50, "warm": 45, "drifted": 5, "errors": 0,
                               "text": "5 of 50 targets drifted across 1 destination"}
    [dest] = data["sets"]["web"]["destinations"]
    assert data["sets"]["web"]["source"] == "prefetch-sets/web.yaml"
    assert dest["provider"] == "edgeone" and dest["scope"]["zone"] == ZONE and dest["label"] == f"edgeone-{ZONE}"
    assert dest["summary"]["counts"]["warm"] == 45 and set(dest["summary"]["counts"]) == {s.value for s in TargetState}
    assert dest["summary"]["in_sync"] is False and dest["error"] is None
    first = dest["drifted"][0]
    assert first == {"url": FAILED[0], "state": "failed", "reason": "originPullFailed: origin returned HTTP 502",
                     "status": "failed: originPullFailed: origin returned HTTP 502 (task task-1, 2026-11-23T11:55:00Z)",
                     "task_id": "task-1", "at": "2026-11-23T11:55:00Z"}
    assert [d["state"] for d in dest["drifted"]] == ["failed"] * 3 + ["timed_out"] * 2


def test_in_flight_and_unknown_count_as_drift_and_errors_win():
    statuses = [TargetStatus("https://a.example.com/1.js", TargetState.RUNNING, "t", NOW),
                TargetStatus("https://a.example.com/2.js", TargetState.UNKNOWN, "t", NOW, raw_status="weird")]
    report = build_report([observed(statuses)])
    assert report.exit_code == 2
    assert "cloud reported status 'weird'" in render_table(report)
    decl = declaration(URLS[:3], name="gone")
    broken = build_report([observed(statuses), DestinationReading(decl, decl.destinations[0], error="edgeone X failed: boom")])
    assert broken.exit_code == 1
    assert "ERROR: edgeone X failed: boom" in render_table(broken)
    assert "could not be read: edgeone X failed: boom" in render_markdown(broken)
    assert json.loads(render_json(broken))["sets"]["gone"]["destinations"][0]["error"] == "edgeone X failed: boom"


def test_purge_states_are_drift_with_the_purge_task_its_time_and_reason():
    at = NOW - timedelta(minutes=2)
    statuses = [TargetStatus(URLS[0], TargetState.PURGE_FAILED, "purge-7", at, "taskFailed: purge backend unavailable",
                             prefetch_task="task-1"),
                TargetStatus(URLS[1], TargetState.PURGED, "purge-7", at, prefetch_task="task-1"),
                TargetStatus(URLS[2], TargetState.PURGING, "purge-8", at, prefetch_task="task-1"),
                TargetStatus(URLS[3], TargetState.WARM, "task-2", at)]
    report = build_report([observed(statuses)], generated_at=NOW)
    assert report.exit_code == 2 and report.drifted == 3
    lines = render_table(report).splitlines()
    assert lines[0].startswith(f"web / edgeone-{ZONE}: 1/4 warm, 1 purging, 1 purged, prefetch due, 1 purge failed")
    failed = next(line for line in lines if URLS[0] in line)
    assert "purge failed" in failed and "purge backend unavailable" in failed and "purge-7" in failed
    assert "2026-11-23T11:58:00Z" in failed
    assert "purged, prefetch due" in next(line for line in lines if URLS[1] in line)
    [dest] = json.loads(render_json(report))["sets"]["web"]["destinations"]
    assert [(d["state"], d["task_id"]) for d in dest["drifted"]] == \
        [("purge_failed", "purge-7"), ("purged", "purge-7"), ("purging", "purge-8")]
    assert "purge failed" in render_markdown(report)


# -- stack config -------------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    """A project folder: the real Pulumi.yaml, a prefetch-sets folder, no stack file yet."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "prefetch-sets").mkdir()
    return root


def set_yaml(urls, name="web"):
    return "\n".join([f"name: {name}", "provider: edgeone", f"zone: {ZONE}", "freshness: 24h", "wait: 30s",
                      "targets:", *(f"  - {u}" for u in urls)]) + "\n"


def test_stack_config_applies_defaults_and_treats_secure_values_as_absent(project):
    (project / "Pulumi.prod.yaml").write_text(
        "secretsprovider: passphrase\nencryptionsalt: v1:abc\nconfig:\n"
        "  cdn-prefetch:endpoints:\n    edgeone: http://127.0.0.1:9\n"
        "  tencentcloud:secretId: AKIDplain\n"
        "  tencentcloud:secretKey:\n    secure: v1:ciphertext==\n"
        "  cdn-prefetch:extra:\n    inner:\n      secure: v1:x\n    keep: 1\n")
    config = load_stack_config(project, "prod")
    assert config.stack_file == project / "Pulumi.prod.yaml"
    assert config.get("cdn-prefetch:setsDir") == "prefetch-sets" and config.get("cdn-prefetch:sandboxDb")
    assert config.encrypted == ("tencentcloud:secretKey", "cdn-prefetch:extra.inner")
    # One source per credential pair: the plain secretId goes too, so the environment's pair is used.
    assert config.get("tencentcloud:secretId") is None and config.get("tencentcloud:secretKey") is None
    assert config.get("cdn-prefetch:extra") == {"keep": 1}
    settings = settings_from_config(config_getter(config, {}), {"TENCENTCLOUD_SECRET_ID": "env-id",
                                                                "TENCENTCLOUD_SECRET_KEY": "env-key"})
    assert settings.credentials_for("tencentcloud").secret_id == "env-id" and settings.credentials_for("tencentcloud").source == "environment"
    assert settings.endpoint("edgeone").url == "http://127.0.0.1:9"
    assert settings.sandbox_db == str(project / ".sandbox/sandbox.db")  # relative to the project


def test_stack_config_without_a_stack_file_uses_the_defaults_and_qualified_names(project):
    config = load_stack_config(project, "acme/cdn-prefetch/staging")
    assert config.stack_file is None and config.get("cdn-prefetch:setsDir") == "prefetch-sets"
    (project / "Pulumi.staging.yaml").write_text("config:\n  cdn-prefetch:setsDir: elsewhere\n")
    assert load_stack_config(project, "acme/cdn-prefetch/staging").get("cdn-prefetch:setsDir") == "elsewhere"


def test_endpoint_flags_override_the_stack_config(project):
    (project / "Pulumi.dev.yaml").write_text("config:\n  cdn-prefetch:endpoints:\n    edgeone: sandbox\n"
                                             "    ucloud: sandbox\n")
    overrides = parse_endpoint_overrides(["edgeone=http://127.0.0.1:8787"])
    settings = settings_from_config(config_getter(load_stack_config(project, "dev"), overrides), {})
    assert settings.endpoint("edgeone").url == "http://127.0.0.1:8787"
    assert settings.endpoint("ucloud").kind == "sandbox" and settings.endpoint("tencent-cdn").kind == "default"
    for bad in ("edgeone", "aws=http://x", "edgeone=ftp://x"):
        with pytest.raises(ConfigError, match="--endpoint"):
            parse_endpoint_overrides([bad])


# -- command line: errors -------------------------------------------------------------------------------
def run(argv, capsys, **kwargs):
    code = main([str(a) for a in argv], **kwargs)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_declaration_errors_exit_1_with_file_line_messages_and_no_traceback(project, capsys):
    path = project / "prefetch-sets" / "web.yaml"
    path.write_text("provider: edgeone\nzone: zone-2o0i4xfimj9g\ntargets:\n  - ftp://static.example.com/a.js\n"
                    "freshness: 24 hours\n")
    code, out, err = run(["--cwd", project], capsys, env={})
    assert code == 1 and out == ""
    assert "2 problems in prefetch-set declarations:" in err
    assert f"{path}:4: targets[0]:" in err and f"{path}:5: freshness:" in err
    assert "Traceback" not in err


def test_missing_credentials_exit_1_and_say_where_the_report_reads_them(project, capsys, monkeypatch):
    (project / "prefetch-sets" / "web.yaml").write_text(set_yaml(URLS[:2]))
    (project / "Pulumi.prod.yaml").write_text("config:\n  tencentcloud:secretId:\n    secure: v1:AAAA\n"
                                              "  tencentcloud:secretKey:\n    secure: v1:BBBB\n")
    monkeypatch.setattr(report_module, "adapter_for", lambda *a: pytest.fail("no cloud call without credentials"))
    code, out, err = run(["--cwd", project, "--stack", "prod"], capsys, env={})
    assert code == 1 and out == ""
    assert "stack config from" in err and "Pulumi.prod.yaml" in err
    assert "TENCENTCLOUD_SECRET_ID" in err and "TENCENTCLOUD_SECRET_KEY" in err and "UCLOUD_PUBLIC_KEY" in err
    assert "{secure: ...}" in err and "v1:AAAA" not in err and "v1:BBBB" not in err


def test_usage_errors_and_unknown_sets_exit_1_not_2(project, capsys):
    (project / "prefetch-sets" / "web.yaml").write_text(set_yaml(URLS[:2]))
    assert run(["--format", "html"], capsys)[0] == 1
    assert run(["--cwd", project, "--endpoint", "nope"], capsys)[0] == 1
    code, _, err = run(["--cwd", project, "--set", "other", "--endpoint", "edgeone=sandbox"], capsys, env={})
    assert code == 1 and "no set named 'other'" in err and "web" in err
    code, _, err = run(["--cwd", project.parent], capsys)
    assert code == 1 and "no Pulumi.yaml" in err


def test_unexpected_errors_are_one_line_unless_debug(project, capsys, monkeypatch):
    (project / "prefetch-sets" / "web.yaml").write_text(set_yaml(URLS[:2]))

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(report_module, "observe", explode)
    argv = ["--cwd", project, "--endpoint", "edgeone=sandbox"]
    code, _, err = run(argv, capsys, env={})
    assert code == 1 and "unexpected error: RuntimeError: boom" in err
    assert "run with --debug for the traceback" in err and "Traceback" not in err
    code, _, err = run(argv + ["--debug"], capsys, env={})
    assert code == 1 and "Traceback" in err and "RuntimeError: boom" in err


# -- acceptance: a real deploy against a sandbox, then the report ------------------------------------------
def submits(sandbox):
    return [sorted(r["params"]["Targets"]) for r in sandbox.store.requests(action="CreatePrefetchTask")
            if r["error_code"] is None]


def drifted_urls(fmt, out):
    if fmt == "json":
        data = json.loads(out)
        return [d["url"] for s in data["sets"].values() for dest in s["destinations"] for d in dest["drifted"]]
    return sorted(urls_in(out))


def test_acceptance_report_lists_exactly_the_drifted_targets_and_exits_2_then_0(
        project, sandbox, capsys, monkeypatch, tmp_path):
    for url in FAILED:
        sandbox.store.add_rule(url, "failed", fail_type="originPullFailed", fail_message="origin returned HTTP 502")
    for url in TIMED_OUT:
        sandbox.store.add_rule(url, "timeout")
    sets = project / "prefetch-sets"
    (sets / "web.yaml").write_text(set_yaml(URLS))
    engine = Engine(PROJECT, {"cdn-prefetch:setsDir": str(sets), "cdn-prefetch:endpoints": {"edgeone": sandbox.url},
                              "tencentcloud:secretId": SECRET_ID, "tencentcloud:secretKey": SECRET_KEY},
                    secret_keys=["tencentcloud:secretId", "tencentcloud:secretKey"],
                    env={"NO_PROXY": "127.0.0.1,localhost"})
    engine.up()
    assert submits(sandbox) == [URLS]

    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
    argv = ["--cwd", project, "--stack", "ci", "--endpoint", f"edgeone={sandbox.url}", "--sets-dir", sets]
    for fmt in ("table", "markdown", "json"):
        code, out, err = run([*argv, "--format", fmt], capsys)
        assert code == 2, err
        assert sorted(drifted_urls(fmt, out)) == sorted(FAILED + TIMED_OUT), fmt
        assert urls_in(out) == set(FAILED + TIMED_OUT), fmt  # and no other URL at all
        assert "no Pulumi.ci.yaml" in err and SECRET_KEY not in out + err
    assert json.loads(run([*argv, "--format", "json"], capsys)[1])["summary"]["warm"] == 45
    assert submits(sandbox) == [URLS]  # the report only reads

    # The module entry point, as CI runs it.
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    proc = subprocess.run([sys.executable, "-m", "components.report", *map(str, argv), "--format", "markdown",
                           "--output", str(tmp_path / "drift.md")],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    written = (tmp_path / "drift.md").read_text(encoding="utf-8")
    assert urls_in(written) == set(FAILED + TIMED_OUT) and "<details>" in written
    assert "5 of 50 targets drifted" in proc.stderr and SECRET_KEY not in proc.stdout + proc.stderr

    # The rules are cleared; the next up re-submits exactly those five; the report is clean.
    sandbox.store.clear_rules()
    engine.up()
    assert submits(sandbox)[-1] == sorted(FAILED + TIMED_OUT)
    for fmt in ("table", "markdown", "json"):
        code, out, err = run([*argv, "--format", fmt], capsys)
        assert code == 0, err
        assert urls_in(out) == set()
    assert "all 50 targets warm" in run([*argv, "--format", "table"], capsys)[1]


def test_a_failing_cloud_call_exits_1_keeps_reading_and_never_shows_the_secret(project, sandbox, capsys):
    (project / "prefetch-sets" / "web.yaml").write_text(set_yaml(URLS[:3]))
    (project / "prefetch-sets" / "two.yaml").write_text(set_yaml(URLS[3:5], name="two"))
    wrong = {"TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": "wrong-" + SECRET_KEY}
    code, out, err = run(["--cwd", project, "--endpoint", f"edgeone={sandbox.url}", "--format", "json"],
                         capsys, env=wrong)
    assert code == 1
    data = json.loads(out)
    errors = [d["error"] for s in data["sets"].values() for d in s["destinations"]]
    assert len(errors) == 2 and all(e and "AuthFailure" in e for e in errors)
    assert SECRET_KEY not in out + err


def test_a_destination_named_by_reference_is_reported_as_an_error_not_a_crash(tmp_path):
    import io

    from components.declare.declarations import load_sets
    from components.engine.settings import settings_from_config
    from components.report.cli import observe

    (tmp_path / "web.yaml").write_text("provider: edgeone\nzoneName: example.com\ntargets: [https://a.example.com/x]\n")
    log = io.StringIO()
    [observed] = observe(load_sets(tmp_path), settings_from_config(lambda key: None, {}), log)
    assert observed.plan is None and "zoneName: example.com" in observed.error and "cannot look names up" in observed.error
