"""Issue 6: a large set split into shards, end to end through the real provider host (tests/engine.py).

The shard size is lowered in this test process (the program runs in-process; the provider host only
sees each resource's ``shard`` input), so 300 targets make 8 shards of about 40. The sandbox's
request log is the evidence of what was submitted; the engine's per-step input diff is what a
preview shows.

Speed: the engine stand-in runs steps one at a time (the real engine runs them in parallel), so
the sets here do not wait for their tasks (``wait: 0s``) and the sandbox finishes a task at once;
what a task came to shows in the next refresh (every preview and up refreshes first).
"""

from __future__ import annotations

from collections import Counter

import pytest

from components.plan import shards
from components.resource.inputs import targets_digest
from tests.stacks import DESTINATIONS, Stack, path_of, resource_name, target_diff

BASE = resource_name("web", DESTINATIONS["edgeone"])
PER_SHARD = 40
URLS = [f"https://static.example.com/assets/{i:03d}.js" for i in range(300)]  # 300 > 7 * 40: 8 shards
MORE = [f"https://static.example.com/more/{i:03d}.js" for i in range(100)]   # 400 > 8 * 40: 16 shards
ADDED = "https://static.example.com/assets/new.js"
pytestmark = pytest.mark.sandbox(progress_seconds=0.0)  # a task finishes at once


def names(count: int) -> list[str]:
    return [shards.shard_name(BASE, k, count) for k in range(count)]


def home(url: str, count: int = 8) -> str:
    """The resource that holds ``url`` when the set has ``count`` shards."""
    return shards.shard_name(BASE, shards.shard_of(url, count), count)


@pytest.fixture(autouse=True)
def small_shards(monkeypatch):
    monkeypatch.setattr(shards, "SHARD_TARGETS", PER_SHARD)


class ShardedStack(Stack):
    """The shared stack helper, declaring an EdgeOne set that does not wait for its tasks."""

    def declare(self, urls, **kwargs):
        super().declare(urls, destinations=[DESTINATIONS["edgeone"]], wait="0s", **kwargs)


@pytest.fixture
def stack(tmp_path, sandbox):
    return ShardedStack(tmp_path, sandbox)


def submitted(stack: Stack) -> Counter:
    """How many times each URL was submitted (accepted submits) since the log was last cleared."""
    return Counter(url for batch in stack.submits() for url in batch)


def destination_entry(result) -> dict:
    [entry] = result.outputs["prefetch"]["sets"]["web"]["destinations"]  # one entry per destination
    return entry


def test_up_creates_a_resource_per_shard_submits_each_target_once_and_reports_one_destination(stack):
    stack.declare(URLS)
    result = stack.engine.up()

    assert sorted((s.name, s.op) for s in result.steps) == sorted((name, "create") for name in names(8))
    for k, name in enumerate(names(8)):
        inputs = next(r.inputs for r in stack.engine.state.values() if r.urn.endswith("::" + name))
        assert inputs["shard"] == {"index": k, "count": 8}
        assert sorted(inputs["targets"]) == sorted(u for u in URLS if shards.shard_of(u, 8) == k)
    assert submitted(stack) == Counter(URLS)  # every target exactly once, over all shards

    entry = destination_entry(result)
    assert entry["summary"]["total"] == 300 and sum(entry["summary"]["counts"].values()) == 300
    assert entry["summary"]["digest"] == targets_digest(URLS)  # the whole set's digest, not a shard's
    assert sum(task["count"] for task in entry["submitted"]) == 300 and len(entry["task_ids"]) == 8
    assert result.outputs["prefetch"]["sets"]["web"]["targets"] == 300

    # The next (refreshing) preview: nothing to change, and every shard's finished tasks summed up.
    preview = stack.engine.preview()
    assert preview.changed() == [] and len(preview.refresh_steps) == 8
    summary = destination_entry(preview)["summary"]
    assert (summary["total"], summary["counts"]["warm"], summary["in_sync"]) == (300, 300, True)


def test_adding_or_removing_one_target_is_a_one_target_diff_in_its_shard(stack, sandbox):
    stack.declare(URLS)
    stack.engine.up()

    stack.declare(URLS + [ADDED])
    preview = stack.engine.preview()
    [step] = preview.changed()
    assert (step.name, step.op) == (home(ADDED), "update")
    assert {path: (e.kind, e.new) for path, e in step.diff.items()} == {path_of(ADDED): ("add", "warm")}
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits() == [[ADDED]]

    stack.declare(URLS[1:] + [ADDED])
    [step] = stack.engine.preview().changed()
    assert (step.name, step.op) == (home(URLS[0]), "update")
    assert {path: e.kind for path, e in step.diff.items()} == {path_of(URLS[0]): "delete"}


def test_drift_shows_only_in_its_shard_and_up_resubmits_only_it(stack, sandbox):
    broken = URLS[123]
    sandbox.store.add_rule(broken, "failed", fail_type="originPullFailed", fail_message="origin returned HTTP 502")
    stack.declare(URLS)
    stack.engine.up()

    preview = stack.engine.preview()  # refresh: always
    [refreshed] = [s for s in preview.refresh_steps if s.op != "refresh"]
    assert refreshed.name == home(broken) and set(refreshed.diff) == {path_of(broken)}
    [step] = preview.changed()
    assert step.name == home(broken) and set(step.diff) == {path_of(broken)}
    assert target_diff(step)[path_of(broken)].old.startswith("failed: originPullFailed: origin returned HTTP 502")

    sandbox.store.clear_rules()
    sandbox.store.clear_requests()
    result = stack.engine.up()
    assert stack.submits() == [[broken]]
    assert [s.name for s in result.changed()] == [home(broken)]
    clean = stack.engine.preview()
    assert clean.changed() == []
    entry = destination_entry(clean)
    assert entry["summary"]["in_sync"] is True and entry["drifted_total"] == 0
    assert entry["summary"]["counts"]["warm"] == 300


def test_growing_past_a_power_of_two_moves_targets_without_submitting_them_again(stack, sandbox):
    stack.declare(URLS)
    stack.engine.up()
    moved = [u for u in URLS if shards.shard_of(u, 16) != shards.shard_of(u, 8)]
    assert moved and all(shards.shard_of(u, 16) >= 8 for u in moved)  # only into the new shards

    sandbox.store.clear_requests()
    stack.declare(URLS + MORE)
    preview = stack.engine.preview()
    assert "will refuse" not in preview.host_log  # a moved target is not a dropped one
    ops = {s.name: s.op for s in preview.changed()}
    assert {name for name, op in ops.items() if op == "create"} == set(names(16)[8:])
    for url in moved[:5]:
        assert target_diff(preview.step(home(url, 8)))[path_of(url)].kind == "delete"
    result = stack.engine.up()

    assert submitted(stack) == Counter(MORE)  # the new targets once each; no moved target again
    assert {s.name for s in result.steps} == set(names(16))
    for url in moved:
        assert shards.shard_of(url, 16) == stack.outputs(home(url, 16))["shard"]["index"]
    clean = stack.engine.preview()
    assert clean.changed() == []  # moved targets are warm where they now are
    summary = destination_entry(clean)["summary"]
    assert (summary["total"], summary["counts"]["warm"]) == (400, 400)

    # Shrinking back: the extra shards are forgotten, their targets move home, nothing is submitted.
    sandbox.store.clear_requests()
    stack.declare(URLS)
    result = stack.engine.up()
    assert stack.submits() == []
    assert {s.name for s in result.steps if s.op == "delete"} == set(names(16)[8:])
    assert destination_entry(result)["summary"]["counts"]["warm"] == 300
