"""The engine's RPC sequences over several resources at once, timed, against one provider host.

The engine steps resources in parallel: ``--parallel`` defaults to unbounded (`pulumi up`,
`refresh`, `preview`: "Allow P resource operations to run in parallel at once ... Defaults to
unbounded"), so every resource's RPC is sent at once, as here (``PARALLEL = None``); the Python host
serves 4 of them at a time (pulumi-dynamic.md §1.2) and queues the rest in arrival order. ``PARALLEL``
set to N is ``pulumi ... --parallel N``. Host CPU and peak RSS are read from /proc between the
stages (bench/host.py), so they are the host's alone.

``pulumi up`` of a new set: Check({}, inputs), then Create, per resource.
``pulumi preview --refresh`` (§1.3, §1.5): first every resource is refreshed (Read, then the refresh
Diff with the arguments reversed), then the program runs and each resource gets Check and Diff
against the refreshed state.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from bench.host import ProviderHost
from bench.layout import Resource

#: Resource operations in flight at once: None is the engine's default, unbounded; N is `--parallel N`.
PARALLEL: Optional[int] = None


@dataclass
class Usage:
    wall: float
    cpu: float
    peak_rss: int
    checks: float = 0.0  # a create: start -> the last Check answered (the host serves them first, 4 at a time)


@dataclass
class Refreshed:
    """One resource after a refresh: its new id, outputs and inputs, and the preview Diff's answer."""

    id: str
    outputs: dict[str, Any]
    inputs: dict[str, Any]
    changes: int = -1


@dataclass
class RefreshRun:
    read_wall: float         # first Read sent -> last Read answered: where the clouds are called
    refresh_wall: float      # first Read sent -> last refresh Diff answered
    wall: float              # the whole sequence, Check and Diff included
    cpu_refresh: float       # host CPU of the Reads and refresh Diffs (what `pulumi refresh` asks)
    cpu_preview: float       # host CPU of the Checks and Diffs
    peak_rss: int
    states: list[Refreshed]
    cpu_check: float = 0.0   # the Checks' part of cpu_preview (the SDK re-serialises every input there)

    @property
    def cpu(self) -> float:
        return self.cpu_refresh + self.cpu_preview


def _pool(items: Sequence[Any], work) -> list[Any]:
    workers = len(items) if PARALLEL is None else min(PARALLEL, len(items))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(work, items))


def create_all(host: ProviderHost, resources: Sequence[Resource]) -> Usage:
    """``pulumi up`` of new resources: Check then Create for each; fills their id, outputs and state inputs."""
    checked_at: list[float] = []

    def one(resource: Resource) -> None:
        checked = host.check(resource.urn, {}, resource.inputs)
        checked_at.append(time.monotonic())
        resource.id, resource.outputs = host.create(resource.urn, checked)
        resource.state_inputs = checked

    before = host.usage()
    start = time.monotonic()
    _pool(resources, one)
    wall = time.monotonic() - start
    after = host.usage()
    return Usage(wall, after.cpu - before.cpu, after.peak_rss, max(checked_at, default=start) - start)


def refresh_all(host: ProviderHost, resources: Sequence[Resource], *, preview: bool = True) -> RefreshRun:
    """``pulumi preview --refresh`` of ``resources`` (their state: id, outputs, state inputs)."""
    def refresh(resource: Resource) -> tuple[float, float, float, Refreshed]:
        old_inputs = resource.state_inputs or resource.inputs
        sent = time.monotonic()
        new_id, outputs, inputs = host.read(resource.id, resource.urn, resource.outputs, old_inputs)
        answered = time.monotonic()
        inputs = inputs or old_inputs
        host.diff(new_id, resource.urn, outputs, old_inputs, inputs)  # the refresh Diff, reversed (§1.5)
        return sent, answered, time.monotonic(), Refreshed(new_id, outputs, inputs)

    checked: dict[str, dict[str, Any]] = {}

    def check(pair: tuple[Resource, Refreshed]) -> None:
        resource, state = pair
        checked[resource.name] = host.check(resource.urn, state.inputs, resource.inputs)

    def diff(pair: tuple[Resource, Refreshed]) -> None:
        resource, state = pair
        state.changes = host.diff(state.id, resource.urn, state.outputs, checked[resource.name], state.inputs)

    before = host.usage()
    start = time.monotonic()
    done = _pool(resources, refresh)
    middle = host.usage()
    states = [state for *_, state in done]
    checks_done = middle
    if preview:
        # Every Check, then every Diff (the engine interleaves them per resource; the CPU is the same),
        # so that the host CPU of each is read on its own.
        _pool(list(zip(resources, states)), check)
        checks_done = host.usage()
        _pool(list(zip(resources, states)), diff)
    wall = time.monotonic() - start
    after = host.usage()
    first_sent = min(sent for sent, *_ in done)
    return RefreshRun(max(answered for _, answered, *_ in done) - first_sent,
                      max(finished for _, _, finished, _ in done) - first_sent, wall,
                      middle.cpu - before.cpu, after.cpu - middle.cpu, after.peak_rss, states,
                      checks_done.cpu - middle.cpu)


def preview_all(host: ProviderHost, resources: Sequence[Resource],
                states: Mapping[str, Refreshed]) -> dict[str, tuple[int, dict[str, Any]]]:
    """``pulumi preview`` of the program's resources against ``states`` (by name): name -> (Diff's changes,
    checked inputs). A resource without a state is a create: only Check, changes -1."""
    def one(resource: Resource) -> tuple[str, tuple[int, dict[str, Any]]]:
        state: Optional[Refreshed] = states.get(resource.name)
        checked = host.check(resource.urn, state.inputs if state else {}, resource.inputs)
        if state is None:
            return resource.name, (-1, checked)
        return resource.name, (host.diff(state.id, resource.urn, state.outputs, checked, state.inputs), checked)

    return dict(_pool(resources, one))


@dataclass
class UpdateRun:
    """``pulumi up`` of changed resources: Check, Diff, then Update where the inputs changed."""

    wall: float                       # first Check sent -> last Update answered
    update_wall: float                # first Update sent -> last Update answered (where the clouds are called)
    cpu: float
    peak_rss: int
    changes: dict[str, int]           # resource name -> the Diff's answer
    updated: list[str]                # resources the engine updated (their inputs differ)


def update_all(host: ProviderHost, resources: Sequence[Resource], states: Mapping[str, Resource], *,
               timeout: Optional[float] = None) -> UpdateRun:
    """``pulumi up`` of the program's ``resources`` against their state (``states`` by name: id, outputs,
    state inputs): Check(old inputs, new inputs), Diff, and Update when the Diff says DIFF_SOME, or says
    DIFF_UNKNOWN and the engine's own input diff (tests/engine.py ``input_diff``) finds a change.
    Fills each updated resource's id, outputs and state inputs."""
    from pulumi.runtime.proto import provider_pb2

    from tests.engine import input_diff

    sent: list[float] = []
    answered: list[float] = []
    changes: dict[str, int] = {}
    updated: list[str] = []

    def one(resource: Resource) -> None:
        state = states[resource.name]
        old_inputs = state.state_inputs or state.inputs
        checked = host.check(resource.urn, old_inputs, resource.inputs)
        answer = host.diff(state.id, resource.urn, state.outputs, checked, old_inputs)
        changes[resource.name] = answer
        resource.id, resource.outputs, resource.state_inputs = state.id, state.outputs, old_inputs
        if answer == provider_pb2.DiffResponse.DIFF_NONE:
            return
        if answer == provider_pb2.DiffResponse.DIFF_UNKNOWN and not input_diff(old_inputs, checked):
            return
        updated.append(resource.name)
        sent.append(time.monotonic())
        kwargs = {} if timeout is None else {"timeout": timeout}
        resource.outputs = host.update(state.id, resource.urn, state.outputs, checked, old_inputs, **kwargs)
        resource.state_inputs = checked
        answered.append(time.monotonic())

    before = host.usage()
    start = time.monotonic()
    _pool(resources, one)
    wall = time.monotonic() - start
    after = host.usage()
    update_wall = (max(answered) - min(sent)) if sent else 0.0
    return UpdateRun(wall, update_wall, after.cpu - before.cpu, after.peak_rss, changes, updated)
