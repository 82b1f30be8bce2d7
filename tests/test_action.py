"""The composite GitHub Action (action.yml) and its example workflow: plan on pull requests with the
Markdown report as a comment, apply otherwise; inputs reach the scripts as variables only."""

from __future__ import annotations

import re

import yaml

from tests.stacks import PROJECT

ACTION = yaml.safe_load((PROJECT / "action.yml").read_text(encoding="utf-8"))
EXAMPLE = yaml.load((PROJECT / "examples" / "github-action" / "prefetch.yml").read_text(encoding="utf-8"),
                    Loader=yaml.BaseLoader)  # BaseLoader: `on` stays a key, not True


def test_the_action_plans_on_pull_requests_comments_the_report_and_applies_otherwise():
    assert ACTION["runs"]["using"] == "composite"
    steps = ACTION["runs"]["steps"]
    script = next(step["run"] for step in steps if step.get("id") == "run")
    assert 'if [ "$EVENT" = "pull_request" ]; then command=plan; else command=apply; fi' in script
    assert '"$bin" apply --yes --stack "$STACK" --output "$audit"' in script
    assert '"$bin" report --stack "$STACK" --format markdown --output "$report"' in script
    comment = next(step for step in steps if "gh pr comment" in step.get("run", ""))
    assert "pull_request" in comment["if"] and "--body-file" in comment["run"]


def test_inputs_never_reach_a_script_by_interpolation_and_every_one_used_is_declared():
    declared = set(ACTION["inputs"])
    used = set()
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")
        assert "shell" in step or "uses" in step
        used.update(re.findall(r"inputs\.([\w-]+)", yaml.safe_dump(step)))
    assert used <= declared and used


def test_the_example_workflow_uses_the_action_on_pull_requests_and_pushes():
    assert {"pull_request", "push"} <= set(EXAMPLE["on"])
    assert EXAMPLE["permissions"]["pull-requests"] == "write"
    [step] = [s for s in EXAMPLE["jobs"]["prefetch"]["steps"] if "cdn-prefetch@" in s.get("uses", "")]
    assert set(step.get("with", {})) <= set(ACTION["inputs"])
    assert set(step["env"]) == {"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"}
