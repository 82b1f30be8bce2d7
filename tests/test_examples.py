"""The CI examples in examples/github/: valid workflows, only documented project commands, only real
pulumi/actions inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((PROJECT / "examples" / "github").glob("*.y*ml"))
README = PROJECT / "README.md"

# The inputs of pulumi/actions (action.yml), as listed in /work/shared/reference/pulumi-dynamic.md §5.4.
PULUMI_ACTIONS_INPUTS = frozenset({
    "command", "stack-name", "work-dir", "comment-on-pr", "comment-on-pr-number", "comment-on-summary",
    "github-token", "edit-pr-comment", "always-include-summary", "diff", "refresh", "expect-no-changes",
    "suppress-outputs", "suppress-progress", "plan", "target", "exclude", "config-map", "pulumi-version",
    "upsert", "color", "continue-on-error",
})
PULUMI_COMMANDS = frozenset({"up", "update", "preview", "refresh", "destroy", "output"})

# Project commands a workflow may run; each must be documented in README.md.
PROJECT_COMMAND_PATTERNS = (
    re.compile(r"\bpython -m [\w.]+"),
    re.compile(r"\bpip install -r [\w./-]+"),
    re.compile(r"\bpulumi [a-z][\w-]*"),
)


def load(path: Path) -> dict:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1); GitHub reads it as "on".
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps") or []:
            yield job_name, step


def normalise(command_text: str) -> str:
    """Spellings of the same command in docs and workflows: python3, venv/bin/python, venv/bin/pip."""
    text = re.sub(r"(?:\S*/)?venv/bin/(python|pip)\b", r"\1", command_text)
    return re.sub(r"\bpython3\b", "python", text)


def project_commands(script: str) -> set[str]:
    found = set()
    for line in script.splitlines():
        line = normalise(line.split(" #", 1)[0].strip())
        if line.startswith("#"):
            continue
        for pattern in PROJECT_COMMAND_PATTERNS:
            found.update(pattern.findall(line))
    return found


def test_there_are_the_three_examples_and_their_readme():
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy.yml", "nightly-drift.yml"}
    assert (PROJECT / "examples" / "README.md").is_file()
    examples_readme = (PROJECT / "examples" / "README.md").read_text(encoding="utf-8")
    for path in WORKFLOWS:
        assert path.name in examples_readme


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_each_example_is_a_workflow_with_triggers_and_jobs(path):
    workflow = load(path)
    assert isinstance(workflow, dict) and workflow.get("on") and workflow.get("jobs"), path.name
    for job_name, job in workflow["jobs"].items():
        assert job.get("runs-on") and job.get("steps"), f"{path.name}: job {job_name}"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{path.name}: job {job_name}: {step}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_pulumi_actions_steps_use_only_real_inputs(path):
    for job_name, step in steps(load(path)):
        if not str(step.get("uses", "")).startswith("pulumi/actions@"):
            continue
        assert step["uses"] == "pulumi/actions@v6", f"{path.name}: job {job_name}"
        inputs = step.get("with") or {}
        unknown = set(inputs) - PULUMI_ACTIONS_INPUTS
        assert not unknown, f"{path.name}: job {job_name}: not pulumi/actions inputs: {sorted(unknown)}"
        if "command" in inputs:
            assert inputs["command"] in PULUMI_COMMANDS and inputs.get("stack-name"), f"{path.name}: job {job_name}"


def test_every_project_command_the_examples_run_is_documented_in_the_readme():
    readme = normalise(README.read_text(encoding="utf-8"))
    used: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for _job, step in steps(load(path)):
            for command in project_commands(str(step.get("run", ""))):
                used.setdefault(command, set()).add(path.name)
    # The examples rely on at least these two.
    assert {"python -m components.report", "pip install -r requirements.txt"} <= set(used)
    missing = {command: sorted(files) for command, files in sorted(used.items()) if command not in readme}
    assert not missing, "README.md does not document these commands used by examples/github/: " + "; ".join(
        f"`{command}` (in {', '.join(files)})" for command, files in missing.items())


def test_the_examples_match_the_brief():
    pr = load(PROJECT / "examples" / "github" / "pull-request.yml")
    assert "pull_request" in pr["on"] and pr["permissions"]["pull-requests"] == "write"
    [(job, preview)] = [(j, s) for j, s in steps(pr) if str(s.get("uses", "")).startswith("pulumi/actions")]
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["refresh"] is True and preview["with"]["diff"] is True
    assert preview["with"]["comment-on-pr"] is True and preview["with"]["github-token"] == "${{ secrets.GITHUB_TOKEN }}"
    env = pr["jobs"][job]["env"]
    assert {"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "PULUMI_ACCESS_TOKEN"} <= set(env)
    assert all(value.startswith("${{ secrets.") for value in env.values())

    deploy = load(PROJECT / "examples" / "github" / "deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["concurrency"]["group"] and deploy["concurrency"]["cancel-in-progress"] is False
    [up] = [s for _j, s in steps(deploy) if str(s.get("uses", "")).startswith("pulumi/actions")]
    assert up["with"]["command"] == "up" and up["with"]["refresh"] is True

    nightly = load(PROJECT / "examples" / "github" / "nightly-drift.yml")
    assert nightly["on"]["schedule"][0]["cron"] and "workflow_dispatch" in nightly["on"]
    scripts = "\n".join(str(s.get("run", "")) for _j, s in steps(nightly))
    assert "python -m components.report --stack prod --format markdown --output drift.md" in scripts
    assert "$GITHUB_STEP_SUMMARY" in scripts and "2)" in scripts
    assert "pulumi preview --stack prod --refresh --expect-no-changes" in scripts
