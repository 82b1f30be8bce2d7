"""Tests of tests/engine.py (the test-only Pulumi engine stand-in) against a toy project.

The toy provider (tests/fixtures/toy_project/toycomponents/toy.py) appends one JSON line per
provider method call to <sideDir>/calls.jsonl, from inside the real host process, so these
tests prove which provider methods really ran — independently of the harness's own bookkeeping.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from tests.engine import COMPUTED, DiffEntry, Engine, EngineError, display_diff, input_diff

TOY = Path(__file__).parent / "fixtures" / "toy_project"
SECRET = "s3cr3t-Value-0xC0FFEE"
URL = "https://a.example/x.js"
ITEMS = {URL: "v1", "b": "v2"}
THING = "group-thing"


class Toy:
    def __init__(self, tmp_path: Path, items: dict | None = None) -> None:
        self.dir = tmp_path
        self.cloud = tmp_path / "cloud.json"
        self.state_file = tmp_path / "state.json"
        self.engine = Engine(
            TOY,
            {
                "toy:sideDir": str(tmp_path),
                "toy:cloudFile": str(self.cloud),
                "toy:items": dict(ITEMS if items is None else items),
                "toycloud:secretKey": SECRET,
            },
            secret_keys=["toycloud:secretKey"],
            state_file=self.state_file,
        )

    def calls(self, op: str | None = None) -> list:
        path = self.dir / "calls.jsonl"
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        return [x for x in lines if op is None or x["op"] == op]

    def reset_calls(self) -> None:
        (self.dir / "calls.jsonl").unlink(missing_ok=True)

    def drift(self, items: dict) -> None:
        self.cloud.write_text(json.dumps({"items": items}))

    def thing(self):
        [rs] = [r for r in self.engine.state.values() if r.urn.endswith("::" + THING)]
        return rs


@pytest.fixture
def toy(tmp_path: Path) -> Toy:
    return Toy(tmp_path)


@pytest.fixture
def deployed(toy: Toy) -> Toy:
    toy.engine.up()
    toy.reset_calls()
    return toy


# ------------------------------------------------------------------------------------------
# Pure diff/path logic
# ------------------------------------------------------------------------------------------


def test_input_diff_paths_and_kinds():
    old = {
        "__provider": "abc",
        "name": "x",
        "summary": {"counts": {"ok": 1}},
        "targets": {URL: "a", "keep": "k", "gone": "g"},
        "items": [1, 2, 3],
    }
    new = {
        "__provider": "abd",
        "name": "x",
        "summary": {"counts": {"ok": 2}},
        "targets": {URL: "b", "keep": "k", "new key": "n"},
        "items": [1, 5],
        "later": rpc.UNKNOWN,
    }
    full = input_diff(old, new)
    assert full == {
        "__provider": DiffEntry("update", "abc", "abd"),
        "summary.counts.ok": DiffEntry("update", 1, 2),
        f'targets["{URL}"]': DiffEntry("update", "a", "b"),
        "targets.gone": DiffEntry("delete", "g", None),
        'targets["new key"]': DiffEntry("add", None, "n"),
        "items[1]": DiffEntry("update", 2, 5),
        "items[2]": DiffEntry("delete", 3, None),
        "later": DiffEntry("add", None, COMPUTED),
    }
    assert "__provider" not in display_diff(full) and len(display_diff(full)) == len(full) - 1
    assert input_diff({"a": "x"}, {"a": rpc.UNKNOWN}) == {"a": DiffEntry("update", "x", COMPUTED)}
    assert input_diff({"flag": 1}, {"flag": True}) == {"flag": DiffEntry("update", 1, True)}
    assert input_diff({"same": {"a": [1, {"b": 2}]}}, {"same": {"a": [1, {"b": 2}]}}) == {}


def test_input_diff_one_entry_in_a_10000_key_map():
    old = {"targets": {f"https://cdn.example/a/{i}.js": "ok" for i in range(10_000)}}
    new = copy.deepcopy(old)
    new["targets"]["https://cdn.example/a/5000.js"] = "fail"
    assert input_diff(old, new) == {
        'targets["https://cdn.example/a/5000.js"]': DiffEntry("update", "ok", "fail")
    }


# ------------------------------------------------------------------------------------------
# Lifecycle against the real provider host
# ------------------------------------------------------------------------------------------


def test_new_stack_preview_up_and_noop_preview(toy: Toy):
    eng = toy.engine
    pre = eng.preview()
    assert [(s.name, s.op) for s in pre.steps] == [(THING, "create")]
    assert pre.changed() == pre.steps
    # Create is never called during preview (§1.3) — proven by the host-side log.
    assert toy.calls("create") == [] and pre.calls("Create") == []
    assert [c["op"] for c in toy.calls()] == ["configure", "check"]
    assert eng.state == {}
    # In preview the program sees the inputs as outputs: computed outputs are unknown (§1.7).
    assert pre.outputs["items"] == ITEMS
    assert pre.outputs["computed"] == COMPUTED

    up = eng.up()
    assert [(s.name, s.op) for s in up.steps] == [(THING, "create")]
    assert [(s.name, s.op) for s in up.preview.steps] == [(THING, "create")]
    assert len(toy.calls("create")) == 1
    # One host per deployment: the preview pass and the update pass each configure a new host.
    assert len({c["pid"] for c in toy.calls("configure")}) == 3
    rs = toy.thing()
    assert rs.type == "pulumi-python:dynamic/toy:Thing"
    assert rs.id.startswith("toy-")
    assert rs.inputs["items"] == ITEMS and "__provider" in rs.inputs
    assert rs.outputs["computed"] == {"count": 2, "status": {URL: "ok", "b": "ok"}}
    assert up.outputs["computed"] == {"count": 2, "status": {URL: "ok", "b": "ok"}}
    assert up.outputs["items"] == ITEMS
    assert json.loads(toy.state_file.read_text()) == json.loads(eng.state_json())
    assert "toy provider configured" in up.host_log  # provider stdout reaches host_log

    toy.reset_calls()
    again = eng.preview()
    [step] = again.steps
    assert (step.op, step.provider_changes, step.diff) == ("same", "DIFF_UNKNOWN", {})
    assert again.changed() == []
    assert again.outputs["computed"]["count"] == 2  # a Same step hands back the state's outputs
    assert [c["op"] for c in toy.calls()] == ["configure", "check", "diff"]


def test_one_changed_entry_in_a_2000_key_map_is_one_diff_entry(tmp_path: Path):
    items = {f"https://cdn.example/a/{i}.js": "v" for i in range(2_000)}
    toy = Toy(tmp_path, items)
    toy.engine.up(skip_preview=True)
    before = copy.deepcopy(toy.engine.state)

    changed = dict(items)
    changed["https://cdn.example/a/1000.js"] = "w"
    changed["https://cdn.example/new.js"] = "n"
    del changed["https://cdn.example/a/7.js"]
    toy.engine.config["toy:items"] = changed
    toy.reset_calls()
    pre = toy.engine.preview()
    [step] = pre.changed()
    assert step.op == "update" and step.provider_changes == "DIFF_UNKNOWN"
    assert step.diff == {
        'items["https://cdn.example/a/1000.js"]': DiffEntry("update", "v", "w"),
        'items["https://cdn.example/a/7.js"]': DiffEntry("delete", "v", None),
        'items["https://cdn.example/new.js"]': DiffEntry("add", None, "n"),
    }
    assert toy.calls("update") == [] and toy.engine.state == before

    up = toy.engine.up()
    assert [s.op for s in up.steps] == ["update"]
    assert len(toy.calls("update")) == 1
    assert toy.thing().inputs["items"] == changed
    assert toy.thing().outputs["computed"]["count"] == 2_000


def test_preview_refresh_shows_drift_but_keeps_state(deployed: Toy):
    toy, eng = deployed, deployed.engine
    before = copy.deepcopy(eng.state)
    toy.drift({URL: "live"})
    res = eng.preview(refresh=True)

    [ref] = res.refresh_steps
    assert ref.name == THING and ref.op == "update" and ref.provider_changes == "DIFF_UNKNOWN"
    assert ref.diff == {f'items["{URL}"]': DiffEntry("update", "v1", "live")}
    [step] = res.steps
    assert step.op == "update"
    assert step.diff == {f'items["{URL}"]': DiffEntry("update", "live", "v1")}
    assert len(toy.calls("read")) == 1 and res.calls("Read") == [ref.urn]
    assert toy.calls("update") == [] and toy.calls("create") == []
    assert eng.state == before  # preview --refresh keeps the refreshed base in memory only (§1.5)
    assert json.loads(toy.state_file.read_text()) == json.loads(eng.state_json())


def test_preview_refresh_same_step_shows_refreshed_outputs(deployed: Toy):
    toy, eng = deployed, deployed.engine
    toy.drift({"b": "v2"})  # live value equals the declared one: inputs unchanged, status differs
    res = eng.preview(refresh=True)
    assert [s.op for s in res.refresh_steps] == ["refresh"]
    assert [s.op for s in res.steps] == ["same"]
    # A Same step copies the refreshed outputs (§1.5) ...
    assert res.outputs["computed"]["status"] == {URL: "ok", "b": "drifted"}
    # ... but the checkpoint is untouched.
    assert toy.thing().outputs["computed"]["status"] == {URL: "ok", "b": "ok"}


def test_up_refresh_reads_twice_and_updates_once(deployed: Toy):
    toy, eng = deployed, deployed.engine
    toy.drift({URL: "live"})
    res = eng.up(refresh=True)
    assert len(toy.calls("read")) == 2  # refresh in the preview pass and in the update pass (§1.3)
    assert len(toy.calls("update")) == 1
    assert [s.op for s in res.refresh_steps] == ["update"]
    assert [s.op for s in res.preview.refresh_steps] == ["update"]
    assert res.step(THING).op == "update"
    assert toy.thing().inputs["items"] == ITEMS  # the update restored the declared value
    assert toy.thing().outputs["computed"]["status"] == {URL: "ok", "b": "ok"}


def test_refresh_command_saves_refreshed_inputs(deployed: Toy):
    toy, eng = deployed, deployed.engine
    toy.drift({URL: "live"})
    res = eng.refresh()
    assert res.steps == []  # the program does not run
    [ref] = res.refresh_steps
    assert ref.op == "update" and ref.diff == {f'items["{URL}"]': DiffEntry("update", "v1", "live")}
    assert len(toy.calls("read")) == 2  # preview pass + refresh pass
    assert toy.calls("check") == [] and toy.calls("update") == []
    assert toy.thing().inputs["items"] == {URL: "live", "b": "v2"}
    assert toy.thing().outputs["computed"]["status"] == {URL: "drifted", "b": "ok"}
    # The next plain preview wants to put the declared value back.
    [step] = eng.preview().steps
    assert step.op == "update" and step.diff == {f'items["{URL}"]': DiffEntry("update", "live", "v1")}


def test_refresh_of_a_vanished_resource_drops_it(deployed: Toy):
    toy, eng = deployed, deployed.engine
    toy.drift({"__gone__": True})
    res = eng.refresh()
    assert [s.op for s in res.refresh_steps] == ["delete"]
    assert eng.state == {}
    toy.cloud.unlink()
    assert [s.op for s in eng.preview().steps] == ["create"]


def test_removed_resource_is_deleted(deployed: Toy):
    toy, eng = deployed, deployed.engine
    eng.config["toy:enabled"] = False
    pre = eng.preview()
    assert [(s.name, s.op) for s in pre.steps] == [(THING, "delete")]
    assert toy.calls("delete") == []
    up = eng.up()
    assert [(s.name, s.op) for s in up.steps] == [(THING, "delete")]
    assert len(toy.calls("delete")) == 1
    assert eng.state == {}
    assert "computed" not in up.outputs


def test_destroy_deletes_everything(deployed: Toy):
    toy, eng = deployed, deployed.engine
    res = eng.destroy()
    assert [(s.name, s.op) for s in res.steps] == [(THING, "delete")]
    [delete] = toy.calls("delete")
    assert delete["id"].startswith("toy-")
    assert toy.calls("check") == [] and toy.calls("read") == []
    assert eng.state == {} and eng.stack_outputs == {}


def test_replace_creates_before_deleting(deployed: Toy):
    toy, eng = deployed, deployed.engine
    old_id = toy.thing().id
    eng.config["toy:replaceOnChange"] = True
    eng.config["toy:items"] = {**ITEMS, "b": "v3"}
    pre = eng.preview()
    [step] = pre.steps
    assert (step.op, step.provider_changes) == ("replace", "DIFF_SOME")
    assert step.diff == {"items.b": DiffEntry("update", "v2", "v3")}
    toy.reset_calls()
    eng.up()
    ops = [c["op"] for c in toy.calls() if c["op"] in ("create", "delete")]
    assert ops == ["create", "delete"]
    assert toy.calls("delete")[0]["id"] == old_id
    assert toy.thing().id != old_id and toy.thing().inputs["items"]["b"] == "v3"


def test_pulumi_yaml_refresh_always_and_config_defaults(tmp_path: Path):
    import shutil

    project = tmp_path / "project"
    shutil.copytree(TOY, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "Pulumi.yaml").write_text(
        "name: toy\nruntime: python\noptions:\n  refresh: always\n"
        "config:\n  toy:items:\n    default:\n      fromDefault: d1\n"
    )
    side = tmp_path / "side"
    side.mkdir()
    eng = Engine(project, {"toy:sideDir": str(side), "toycloud:secretKey": SECRET}, secret_keys=["toycloud:secretKey"])
    assert eng.refresh_always
    calls = side / "calls.jsonl"
    reads = lambda: sum(json.loads(line)["op"] == "read" for line in calls.read_text().splitlines())  # noqa: E731

    eng.up()
    [thing] = eng.state.values()
    assert thing.inputs["items"] == {"fromDefault": "d1"}  # the project default reached the program
    assert reads() == 0  # nothing in state yet
    res = eng.preview()  # `pulumi preview` refreshes because of `refresh: always` (§1.6)
    assert reads() == 1 and [s.op for s in res.refresh_steps] == ["refresh"]
    res = eng.preview(refresh=False)  # an explicit --refresh=false wins
    assert reads() == 1 and res.refresh_steps == []
    eng.destroy()  # destroy refreshes too (preview pass + update pass)
    assert reads() == 3 and eng.state == {}


def test_provider_error_on_create_records_nothing(toy: Toy):
    toy.engine.config["toy:items"] = {URL: "FAIL"}
    with pytest.raises(EngineError) as err:
        toy.engine.up()
    assert "toy provider refused item" in str(err.value)
    assert err.value.method == "Create"
    assert toy.engine.state == {}


def test_provider_error_on_update_keeps_old_state(deployed: Toy):
    eng = deployed.engine
    before = copy.deepcopy(eng.state)
    eng.config["toy:items"] = {**ITEMS, "b": "FAIL"}
    with pytest.raises(EngineError) as err:
        eng.up()
    assert "toy provider refused item 'b'" in str(err.value)
    assert err.value.method == "Update"
    assert eng.state == before


def test_check_failure_fails_the_command(toy: Toy):
    toy.engine.config["toy:items"] = {}
    with pytest.raises(EngineError) as err:
        toy.engine.preview()
    assert "items: at least one item is required" in str(err.value)


def test_program_error_is_reported_without_traceback(toy: Toy):
    toy.engine.config["toy:explode"] = "setsDir does not exist: /nowhere"
    with pytest.raises(EngineError) as err:
        toy.engine.preview()
    assert str(err.value) == "setsDir does not exist: /nowhere"
    assert isinstance(err.value.program_error, ValueError)
    assert "Traceback" not in str(err.value)


def test_program_warnings_are_diagnostics(toy: Toy):
    toy.engine.config["toy:warn"] = "2 duplicate targets collapsed"
    res = toy.engine.preview()
    assert ("warning", "2 duplicate targets collapsed") in res.diagnostics


def test_secret_config_reaches_configure_but_never_leaks(toy: Toy):
    import hashlib

    eng = toy.engine
    up = eng.up()
    # configure() received the secret (from another namespace, §2.4): the provider used it.
    assert toy.thing().outputs["tokenDigest"] == hashlib.sha256(SECRET.encode()).hexdigest()[:12]
    assert SECRET not in eng.state_json()
    assert SECRET not in toy.state_file.read_text()
    assert SECRET not in up.host_log
    # Exported only as a secret (shown with --show-secrets), nowhere else.
    assert up.outputs["secretEcho"] == SECRET and up.secret_outputs == {"secretEcho"}
    assert SECRET not in json.dumps({k: v for k, v in up.outputs.items() if k != "secretEcho"})
    # __provider is a secret in the checkpoint (§2.1).
    state = json.loads(eng.state_json())["checkpoint"]["latest"]["resources"]
    thing = next(r for r in state if r["urn"].endswith(THING))
    assert rpc.is_rpc_secret(thing["inputs"]["__provider"]) and "ciphertext" in thing["inputs"]["__provider"]
