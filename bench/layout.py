"""The dynamic resources a prefetch set becomes, built the way the program builds them.

A set of N targets on one destination is ``shards.shard_count(N)`` resources (components/plan/shards.py):
each gets the targets ``shards.split`` gives it and, only when there is more than one, a ``shard``
input. The benchmark drives exactly these resources, so what it measures is what the engine would
send for a real stack.

The outputs may carry the targets in either form (issue 6, contract 3): the old ``targets`` map,
or one ``target_lines`` string. The helpers here read both, so the benchmark runs whichever is in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from components.plan.shards import shard_count, shard_name, split
from components.resource.inputs import desired_value, resource_inputs

#: The host of every benchmark URL (the sandbox's UCloud domain and EdgeOne rows use it too).
HOST = "static.example.com"


def target_urls(count: int) -> list[str]:
    """``count`` URLs of 60 characters, like a bundler's hashed assets: the sets both benchmarks measure."""
    return [f"https://{HOST}/assets/v2/{i // 1000:03d}/chunk-{hashlib.md5(str(i).encode()).hexdigest()[:10]}.js"
            for i in range(count)]

WARM = "warm"


@dataclass
class Resource:
    """One dynamic resource of the benchmark: its program inputs and, once it exists, its state."""

    name: str
    urn: str
    inputs: dict[str, Any]                    # what the program registers (``__provider`` included)
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    state_inputs: Optional[dict[str, Any]] = None  # inputs in state (refreshed ones after a refresh)

    @property
    def targets(self) -> int:
        return len(self.inputs["targets"])

    @property
    def shard(self) -> tuple[int, int]:
        shard = self.inputs.get("shard") or {"index": 0, "count": 1}
        return int(shard["index"]), int(shard["count"])


def set_resources(base: str, set_name: str, destination: Mapping[str, Any], urls: Sequence[str], *,
                  freshness: str, wait: str, provider: str, urn_of, shards: Optional[int] = None,
                  revision: Optional[str] = None) -> list[Resource]:
    """The resources of one set on one destination: ``shards`` of them, or as many as the program would make.

    ``revision``: the set's declared revision, in every target's desired value as the program writes
    it (components/engine/prefetch_set.py: ``desired_value(content, revision)``); None: plain ``warm``.
    """
    count = shard_count(len(urls)) if shards is None else shards
    desired = WARM if revision is None else desired_value(None, revision)
    resources = []
    for index, part in enumerate(split(urls, count)):
        props = resource_inputs(set_name, dict(destination), dict.fromkeys(part, desired), freshness, wait,
                                (index, count) if count > 1 else None)
        props["__provider"] = provider
        name = shard_name(base, index, count)
        resources.append(Resource(name, urn_of(name), props))
    return resources


def output_targets(outputs: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """The {url: desired} map of outputs in either form: the ``targets`` map or ``target_lines``."""
    targets = outputs.get("targets")
    if isinstance(targets, dict):
        return dict(targets)
    lines = outputs.get("target_lines")
    if not isinstance(lines, str):
        return None
    result = {}
    for line in filter(None, lines.split("\n")):
        url, _, desired = line.partition("\t")
        result[url] = desired or WARM
    return result


def target_lines(targets: Mapping[str, str]) -> str:
    """``target_lines`` as contract 3 writes it: sorted URLs, one a line, ``url<TAB>desired`` unless plain warm."""
    return "\n".join(url if targets[url] == WARM else f"{url}\t{targets[url]}" for url in sorted(targets))


def outputs_form(outputs: Mapping[str, Any]) -> str:
    """Which form of the targets the outputs carry (for the report)."""
    if isinstance(outputs.get("targets"), dict):
        return "targets map"
    return "target_lines" if isinstance(outputs.get("target_lines"), str) else "no targets"


def lean_outputs(outputs: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """The same outputs in the new form (``target_lines``, no ``targets`` map), for another ``__provider``."""
    lean = {key: value for key, value in outputs.items() if key != "targets"}
    if "target_lines" not in lean:
        lean["target_lines"] = target_lines(output_targets(outputs) or {})
    lean["__provider"] = provider
    return lean


def state_size(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> int:
    """Bytes of one resource's state: its inputs and outputs as compact JSON (``__provider`` included)."""
    return len(json.dumps(inputs, separators=(",", ":"), ensure_ascii=False).encode()) + \
        len(json.dumps(outputs, separators=(",", ":"), ensure_ascii=False).encode())
