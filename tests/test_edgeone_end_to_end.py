"""Issue #2 acceptance: an EdgeOne prefetch set reconciled end to end, through the real provider host.

Each test drives the project's own program and dynamic provider via tests/engine.py (the engine's
call order for preview, preview-with-refresh, up, refresh, destroy) against a sandbox started
here, through the official teo SDK. The sandbox's request log is the evidence of what was submitted.
"""

from __future__ import annotations

import base64
import json

import jsonschema
import pytest

from components.clouds.edgeone import EdgeOneAdapter, make_client
from components.model.connection import Endpoint, TencentCredentials
from sandbox import SandboxStore
from tests.engine import EngineError
from tests.stacks import DESTINATIONS, PROJECT, SECRET_ID, SECRET_KEY, ZONE, Stack, path_of, resource_name, target_diff

RESOURCE = resource_name("web", DESTINATIONS["edgeone"])
URLS = [f"https://static.example.com/assets/{i:02d}.js" for i in range(50)]
FAILED = URLS[3:6]
TIMED_OUT = URLS[10:12]


class EdgeOneStack(Stack):
    """The shared stack helper, with an EdgeOne-only declaration and outputs of the one resource."""

    def declare(self, urls, **kwargs):
        super().declare(urls, destinations=[DESTINATIONS["edgeone"]], **kwargs)

    def outputs(self, resource=RESOURCE):
        return super().outputs(resource)


@pytest.fixture
def stack(tmp_path, sandbox):
    return EdgeOneStack(tmp_path, sandbox)


def test_drift_shows_target_by_target_and_up_resubmits_exactly_those(stack, sandbox):
    for url in FAILED:
        sandbox.store.add_rule(url, "failed", fail_type="originPullFailed", fail_message="origin returned HTTP 502")
    for url in TIMED_OUT:
        sandbox.store.add_rule(url, "timeout")
    stack.declare(URLS)

    # pulumi preview of a new stack: one create, nothing submitted
    first_preview = stack.engine.preview()
    assert first_preview.step(RESOURCE).op == "create"
    assert stack.submits() == []

    # pulumi up: every target submitted once, outputs say what happened
    stack.engine.up()
    assert stack.submits() == [URLS]
    summary = stack.outputs()["summary"]
    assert (summary["counts"]["warm"], summary["counts"]["failed"], summary["counts"]["timed_out"]) == (45, 3, 2)
    assert summary["in_sync"] is False

    # pulumi preview (refresh: always): exactly the 5 drifted targets, each with its live status
    preview = stack.engine.preview()
    step = preview.step(RESOURCE)
    assert step.op == "update"
    drift = target_diff(step)
    assert set(drift) == {path_of(u) for u in FAILED + TIMED_OUT}
    assert set(step.diff) == set(drift)  # nothing but those targets
    for url in FAILED:
        entry = drift[path_of(url)]
        assert entry.kind == "update" and entry.new == "warm"
        assert entry.old.startswith("failed: originPullFailed: origin returned HTTP 502 (task ")
    for url in TIMED_OUT:
        assert drift[path_of(url)].old.startswith("timed out: ")
    assert set(target_diff(preview.refresh_step(RESOURCE))) == set(drift)
    assert stack.submits() == [URLS]  # a preview never submits

    # the rules are cleared; up submits exactly those 5 targets
    sandbox.store.clear_rules()
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits() == [sorted(FAILED + TIMED_OUT)]
    assert stack.outputs()["summary"]["in_sync"] is True

    # the next preview with refresh reports no changes
    clean = stack.engine.preview()
    assert clean.changed() == []
    assert all(s.op == "refresh" for s in clean.refresh_steps)


def test_stack_outputs_are_the_audit_record_and_match_their_schema(stack, sandbox):
    sandbox.store.add_rule(URLS[0], "failed")
    stack.declare(URLS[:5])
    result = stack.engine.up()
    schema = json.loads((PROJECT / "schemas" / "stack-outputs.schema.json").read_text())
    jsonschema.validate(result.outputs, schema)
    [destination] = result.outputs["prefetch"]["sets"]["web"]["destinations"]
    [task_id] = destination["task_ids"]
    assert destination["summary"]["counts"]["warm"] == 4
    assert destination["drifted"][0]["url"] == URLS[0] and destination["drifted"][0]["task_id"] == task_id
    assert destination["submitted"][0]["task_id"] == task_id and destination["submitted"][0]["count"] == 5
    # A preview whose step is Same copies the *refreshed* outputs (an update's would be unknown).
    sandbox.store.clear_rules()
    jsonschema.validate(stack.engine.up().outputs, schema)
    after_refresh = stack.engine.preview()
    assert after_refresh.changed() == []
    jsonschema.validate(after_refresh.outputs, schema)
    [live] = after_refresh.outputs["prefetch"]["sets"]["web"]["destinations"]
    assert live["summary"]["in_sync"] is True


def test_success_older_than_freshness_shows_as_expired(stack, sandbox):
    stack.declare(URLS[:3], freshness="1h")
    stack.engine.up()
    sandbox.store.age(2 * 3600)
    drift = target_diff(stack.engine.preview().step(RESOURCE))
    assert set(drift) == {path_of(u) for u in URLS[:3]}
    assert all(e.old.startswith("expired: last warmed more than 1h ago (task ") for e in drift.values())
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits() == [sorted(URLS[:3])]


def test_adding_and_removing_targets_shows_only_those(stack, sandbox):
    stack.declare(URLS[:10])
    stack.engine.up()
    new = ["https://static.example.com/assets/new-1.js", "https://static.example.com/assets/new-2.js"]
    stack.declare(URLS[:10] + new)
    step = stack.engine.preview().step(RESOURCE)
    assert {p: e.kind for p, e in step.diff.items()} == {path_of(u): "add" for u in new}
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits() == [sorted(new)]

    stack.declare(URLS[1:10] + new)
    step = stack.engine.preview().step(RESOURCE)
    assert {p: e.kind for p, e in step.diff.items()} == {path_of(URLS[0]): "delete"}
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits() == []


def test_a_running_task_is_not_submitted_twice_across_two_ups(stack, sandbox):
    slow = URLS[0]
    sandbox.store.add_rule(slow, "success", delay_seconds=600)
    stack.declare(URLS[:3], wait="2s")
    stack.engine.up()
    assert stack.outputs()["observed"][slow][0] in ("running", "queued")
    drift = target_diff(stack.engine.preview().step(RESOURCE))
    assert set(drift) == {path_of(slow)} and drift[path_of(slow)].old.startswith("running")
    stack.engine.up()
    assert [u for batch in stack.submits() for u in batch].count(slow) == 1


def test_tasks_submitted_without_saved_state_are_found_and_not_resubmitted(stack, sandbox):
    # An earlier `up` submitted, then died before Pulumi saved any state.
    orphan = EdgeOneAdapter(make_client(Endpoint("url", "http", sandbox.endpoint),
                                        TencentCredentials(SECRET_ID, SECRET_KEY)), ZONE).submit(URLS[:4])
    stack.declare(URLS[:4])
    stack.engine.up()
    assert stack.submits() == [URLS[:4]]  # only the orphaned submit: nothing new
    assert {record[1] for record in stack.outputs()["observed"].values()} == {orphan.task_id}

    # Later an update submits for an existing resource and dies before saving: refresh finds it.
    sandbox.store.age(2 * 86400)
    again = EdgeOneAdapter(make_client(Endpoint("url", "http", sandbox.endpoint),
                                       TencentCredentials(SECRET_ID, SECRET_KEY)), ZONE).submit(URLS[:4])
    stack.engine.refresh()
    assert {record[1] for record in stack.outputs()["observed"].values()} == {again.task_id}
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits() == []


def test_three_declaration_mistakes_fail_the_preview_with_three_clear_messages(stack):
    (stack.sets / "web.yaml").write_text(
        f"provider: edgeone\nzone: {ZONE}\ntargets:\n  - ftp://static.example.com/a.js\n"
        "freshness: 24 hours\ncolour: blue\n")
    with pytest.raises(EngineError) as info:
        stack.engine.preview()
    message = str(info.value.program_error)
    assert message.startswith("3 problems in prefetch-set declarations:")
    path = stack.sets / "web.yaml"
    for line, where in ((4, "targets[0]"), (5, "freshness"), (6, "colour")):
        assert f"{path}:{line}: {where}:" in message
    assert "Traceback" not in message
    assert stack.submits() == []


def test_credentials_never_appear_in_state_outputs_or_logs(stack, sandbox):
    stack.declare(URLS[:3])
    logs = [stack.engine.up().host_log, stack.engine.preview().host_log, stack.engine.refresh().host_log]
    assert stack.submits()  # the secret was used: the sandbox verified its signatures
    for text in [stack.engine.state_json(), json.dumps(stack.engine.stack_outputs), *logs]:
        assert SECRET_KEY not in text
    for resource in stack.engine.state.values():
        assert SECRET_KEY not in json.dumps(resource.outputs) and SECRET_KEY not in json.dumps(resource.inputs)
        provider_blob = resource.inputs.get("__provider")
        if provider_blob:
            assert SECRET_KEY.encode() not in base64.b64decode(provider_blob)


def test_destroy_forgets_without_calling_the_cloud(stack, sandbox):
    stack.declare(URLS[:3])
    stack.engine.up()
    sandbox.store.clear_requests()
    result = stack.engine.destroy(refresh=False)
    assert result.calls("Delete") and stack.engine.state == {}
    assert sandbox.store.requests() == []


def test_a_submit_the_cloud_refuses_fails_up_and_loses_nothing(stack, sandbox):
    sandbox.store.set_setting("prefetch_daily", 2)
    stack.declare(URLS[:3])
    with pytest.raises(EngineError) as info:
        stack.engine.up()
    assert "3 targets need a prefetch but only 2" in str(info.value)
    assert stack.submits() == []


def test_the_embedded_sandbox_endpoint_needs_no_server_and_no_account(tmp_path):
    db = tmp_path / "embedded.db"
    stack = EdgeOneStack(tmp_path, sandbox=None, endpoints={"edgeone": "sandbox"},
                         extra_config={"cdn-prefetch:sandboxDb": str(db)}, credentials=False)
    stack.declare(URLS[:2], wait="10s")
    stack.engine.up()
    store = SandboxStore(db)
    [submit] = store.requests(action="CreatePrefetchTask")
    assert submit["params"]["Targets"] == URLS[:2] and submit["error_code"] is None
    assert stack.outputs()["summary"]["counts"]["warm"] == 2


def test_state_written_before_target_lines_keeps_working_and_is_rewritten(stack, sandbox):
    """Outputs used to repeat the ``targets`` map; they now carry ``target_lines``. Old state must read."""
    stack.declare(URLS[:20])
    stack.engine.up()
    [state] = [s for s in stack.engine.state.values() if s.urn.endswith("::" + RESOURCE)]
    assert "targets" not in state.outputs and state.outputs["target_lines"] == "\n".join(sorted(URLS[:20]))
    state.outputs.pop("target_lines")
    state.outputs["targets"] = dict.fromkeys(URLS[:20], "warm")  # as an older version wrote it
    sandbox.store.clear_requests()

    assert stack.engine.preview().changed() == []  # read and diff take the old outputs
    stack.declare(URLS[:2])  # the drop rail reads the old map too (no refresh: diff gets the old outputs)
    assert "warning: up will refuse this change: set 'web' on edgeone zone" in \
        stack.engine.preview(refresh=False).host_log
    stack.declare(URLS[:20])
    stack.engine.refresh()
    assert stack.submits() == []
    assert "targets" not in stack.outputs() and stack.outputs()["target_lines"] == "\n".join(sorted(URLS[:20]))


def test_a_refresh_that_saw_a_running_task_is_undone_by_the_next_once_it_finished(stack, sandbox):
    # pulumi refresh writes what it sees into state; a refresh without drift must write the desired values back.
    slow = URLS[0]
    sandbox.store.add_rule(slow, "success", delay_seconds=600)
    stack.declare(URLS[:3], wait="0s")
    stack.engine.up()

    def state_of_resource():
        return next(r for urn, r in stack.engine.state.items() if urn.endswith(RESOURCE))

    stack.engine.refresh()
    assert state_of_resource().inputs["targets"][slow].startswith(("running", "queued"))
    assert state_of_resource().outputs["inputs_show_drift"] is True

    sandbox.store.age(601)
    stack.engine.refresh()
    assert state_of_resource().inputs["targets"] == dict.fromkeys(URLS[:3], "warm")
    assert state_of_resource().outputs["inputs_show_drift"] is False
    stack.engine.refresh()  # nothing drifted and state already desired: read leaves the inputs as they are
    assert state_of_resource().inputs["targets"] == dict.fromkeys(URLS[:3], "warm")
    assert stack.engine.preview().changed() == []
    assert [u for batch in stack.submits() for u in batch].count(slow) == 1
