"""The ``cdn-prefetch`` command (components/cli/), in process on the embedded sandbox: validate's located
errors, apply's consent (it asks on a terminal, refuses to guess without one), its audit record and
state file, the configuration's sources; and, through a subprocess, an apply interrupted mid-wait."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from components.cli.main import main
from sandbox import SandboxStore
from tests.stacks import PROJECT

TARGETS = 5  # prefetch-sets/site-assets.yaml


class Terminal(io.StringIO):
    """A stdin that is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


def cli(*argv: str, stdin: io.StringIO | None = None, env: dict | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env={} if env is None else env, stdin=stdin or io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def state_task_ids(project: Path) -> set[str]:
    state = json.loads((project / ".cdn-prefetch" / "dev.json").read_text())
    return {task["task_id"] for shard in state["shards"].values() for task in shard.get("submitted", [])}


def test_validate_names_file_and_line_of_every_problem_and_exits_1(example_project):
    broken = example_project / "prefetch-sets" / "broken.yaml"
    broken.write_text("provider: edgeone\nzone: zone-abc\nfreshness: soon\ntargets:\n  - ftp://x\n")
    code, _, err = cli("validate", str(broken))
    assert code == 1
    assert f"{broken}:3: freshness:" in err and f"{broken}:5: targets[0]:" in err and "2 problems" in err
    # No path: the sets folder of the stack config, loaded as a whole (the broken file is in it).
    assert cli("validate", "-C", str(example_project))[0] == 1
    broken.unlink()
    code, out, _ = cli("validate", "-C", str(example_project))
    assert code == 0 and "1 set valid" in out


def test_apply_asks_on_a_terminal_and_refuses_to_guess_without_one(example_project):
    code, out, err = cli("apply", "-C", str(example_project))
    assert code == 1 and out == ""
    assert "stdin is not a terminal" in err and "pass --yes" in err
    assert not (example_project / ".cdn-prefetch" / "dev.json").exists()  # nothing submitted, nothing recorded
    code, _, err = cli("apply", "-C", str(example_project), stdin=Terminal("n\n"))
    assert code == 1 and "Submit? [y/N]" in err and "nothing submitted" in err
    code, _, _ = cli("plan", "-C", str(example_project))
    assert code == 2  # still every target missing

    code, out, err = cli("apply", "-C", str(example_project), stdin=Terminal("y\n"))
    assert code == 0, err
    record = json.loads(out)
    schema = json.loads((PROJECT / "schemas" / "stack-outputs.schema.json").read_text())
    jsonschema.validate(record, schema)
    [destination] = record["prefetch"]["sets"]["site-assets"]["destinations"]
    assert destination["summary"]["in_sync"] is True and destination["summary"]["total"] == TARGETS
    assert set(destination["task_ids"]) == state_task_ids(example_project) != set()
    assert f"apply: {TARGETS} of {TARGETS} targets warm; 1 tasks submitted" in err

    # Converged: a second apply submits nothing and asks nothing; plan is clean.
    code, _, err = cli("apply", "-C", str(example_project))
    assert code == 0 and "Submit?" not in err
    code, out, _ = cli("plan", "-C", str(example_project))
    assert code == 0 and f"{TARGETS} targets, {TARGETS} warm\n" in out


def test_credentials_come_from_the_environment_or_a_file_and_never_reach_a_message(example_project, tmp_path):
    (example_project / "Pulumi.dev.yaml").write_text("config: {}\n")  # the real clouds: credentials needed
    code, _, err = cli("plan", "-C", str(example_project))
    assert code == 1 and "no Tencent Cloud credentials" in err
    secrets = tmp_path / "credentials.yaml"
    secrets.write_text("tencentcloud:secretId: AKIDexample\ntencentcloud:secretKey: s3cr3t-value\n"
                       "cdn-prefetch:setsDir: elsewhere\n")
    code, _, err = cli("plan", "-C", str(example_project), "--credentials", str(secrets))
    assert code == 1 and "'cdn-prefetch:setsDir' is not a credential key" in err and "s3cr3t" not in err
    code, _, err = cli("plan", "--secret-key", "x")
    assert code == 1 and "unrecognized arguments: --secret-key" in err


def test_a_credentials_file_is_read_as_a_pair_and_the_environment_names_it(example_project, tmp_path):
    from components.cli.context import load_context
    from components.cli.main import build_parser

    secrets = tmp_path / "credentials.yaml"
    secrets.write_text("tencentcloud:secretId: AKIDfile\ntencentcloud:secretKey: from-file\n")
    args = build_parser().parse_args(["plan", "-C", str(example_project)])
    env = {"CDN_PREFETCH_CREDENTIALS": str(secrets), "TENCENTCLOUD_SECRET_ID": "AKIDenv",
           "TENCENTCLOUD_SECRET_KEY": "from-env", "CDN_PREFETCH_ENDPOINTS": "edgeone=http://127.0.0.1:9"}
    context = load_context(args, env)
    credentials = context.settings.credentials_for("tencentcloud")
    assert (credentials.secret_id, credentials.secret_key) == ("AKIDfile", "from-file")
    assert "from-file" not in repr(credentials)
    assert context.settings.endpoint("edgeone").url == "http://127.0.0.1:9"  # the environment over the stack file
    assert context.state_path == example_project / ".cdn-prefetch" / "dev.json"


def test_an_apply_interrupted_mid_wait_loses_no_task_id(example_project):
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "NO_PROXY": "127.0.0.1,localhost"}
    store = SandboxStore(example_project / ".sandbox" / "sandbox.db")
    # Two targets stay running for a minute: the apply waits for them (wait: 2m) until interrupted. The others
    # finish at once, so the plan below finds exactly two running however soon it reads.
    store.set_setting("progress_seconds", 0.0)
    for pattern in ("*/app.js", "*/hero.webp"):
        store.add_rule(pattern, "success", delay_seconds=60)
    apply = subprocess.Popen([sys.executable, "-m", "components.cli", "apply", "--yes"], cwd=example_project,
                             env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = example_project / ".cdn-prefetch" / "dev.json"
    deadline = time.monotonic() + 30
    while not (state.exists() and state_task_ids(example_project)) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    apply.send_signal(signal.SIGINT)
    out, err = apply.communicate(timeout=30)
    assert apply.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and out == ""
    recorded = state_task_ids(example_project)
    assert recorded

    # The cloud's history finds them: the plan is not even given the state file.
    record = example_project / "plan.json"
    code, out, err = cli("plan", "-C", str(example_project), "--output", str(record), "--state", "elsewhere.json")
    assert code == 2, err  # two targets still running: not warm yet
    [destination] = json.loads(record.read_text())["prefetch"]["sets"]["site-assets"]["destinations"]
    assert recorded <= set(destination["task_ids"])
    running = [line for line in out.splitlines() if line.startswith("  ~ ")]
    assert len(running) == 2 and all("=> wait for the running task" in line for line in running)


def test_plan_with_an_unreadable_sitemap_fails_clearly_before_any_cloud_call(example_project, site):
    """Issue 20: `cdn-prefetch plan` reads sitemaps as the program does; one it cannot parse is a clear error."""
    url = site.put("/sitemap.xml", "<urlset><url>")
    sets = example_project / "prefetch-sets"
    (sets / "pages.yaml").write_text(f"provider: edgeone\nzone: zone-abc\nsitemap:\n  urls:\n  - {url}\n")
    code, out, err = cli("plan", "-C", str(example_project))
    assert (code, out) == (1, "")
    assert (f"1 problem reading sitemaps (nothing was submitted):\n  - {sets / 'pages.yaml'}:5: sitemap.urls[0]: set "
            f"'pages', sitemap {url}: is not well-formed XML (no element found: line 1, column 13)") in err
    assert "Traceback" not in err and not (example_project / ".sandbox").exists()  # the sandbox was never started
