"""The README's quick start: the example stack (Pulumi.dev.yaml) and the shipped prefetch-sets/ run on
the embedded sandbox with no account and no server, and the drift report works on it out of the box."""

from __future__ import annotations

import io
import shutil

import yaml

from components.report.cli import main as report_main
from tests.stacks import PROJECT, AuditedEngine


def test_example_stack_runs_on_the_embedded_sandbox_and_the_report_agrees(tmp_path):
    # A copy of the project's stack files, so the sandbox's SQLite file lands in tmp, not the repo.
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    shutil.copytree(PROJECT / "prefetch-sets", tmp_path / "prefetch-sets")
    config = yaml.safe_load((PROJECT / "Pulumi.dev.yaml").read_text())["config"]
    assert set(config["cdn-prefetch:endpoints"].values()) == {"sandbox"}
    config = {**config, "cdn-prefetch:setsDir": str(tmp_path / "prefetch-sets"),
              "cdn-prefetch:sandboxDb": str(tmp_path / ".sandbox" / "sandbox.db")}
    engine = AuditedEngine(PROJECT, config, env={"NO_PROXY": "127.0.0.1,localhost"})

    result = engine.up()
    [(name, audit)] = result.outputs["prefetch"]["sets"].items()
    assert name == "site-assets" and audit["targets"] == 5
    assert all(d["summary"]["in_sync"] for d in audit["destinations"])
    assert engine.preview().changed() == []

    out, err = io.StringIO(), io.StringIO()
    code = report_main(["--stack", "dev", "--cwd", str(tmp_path), "--format", "json"], env={}, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert '"in_sync": true' in out.getvalue()
