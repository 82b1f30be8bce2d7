"""A dynamic provider that does no work: the benchmark's "SDK floor".

Driven with the same RPCs, the same resources and the same shard layout as the real provider, its
host CPU is what the Pulumi SDK's own (de)serialisation of the properties costs before any provider
code runs. The host imports it by reference (``bench.null_provider.NullProvider``), which works
because the engine starts the host with the project root as its working directory.

Its state has the new output layout (issue 6, contract 3): the targets as one ``target_lines``
string, never as a map. ``read`` gets only the outputs (the host drops the state inputs). Like the
real provider, it returns no inputs when the outputs say the inputs in state are the desired values
(``inputs_show_drift`` false, as a create leaves them); otherwise it rebuilds the inputs' ``targets``
map from that string, which any provider with this layout must do.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider

_INPUT_KEYS = ("set", "destination", "freshness", "wait", "shard")


def _targets(lines: Any) -> dict[str, str]:
    targets = {}
    for line in filter(None, lines.split("\n") if isinstance(lines, str) else ()):
        url, _, desired = line.partition("\t")
        targets[url] = desired or "warm"
    return targets


class NullProvider(ResourceProvider):
    """Echoes what it is given: no cloud calls, no reconcile, no audit record."""

    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=None)  # the engine diffs the inputs itself, as for the real provider

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = {key: value for key, value in props.items() if key != "targets"}
        targets = props.get("targets") or {}
        outs["target_lines"] = "\n".join(url if targets[url] == "warm" else f"{url}\t{targets[url]}"
                                         for url in sorted(targets))
        return CreateResult(f"null/{props.get('set')}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if props.get("inputs_show_drift") is False:  # as the real provider: nothing drifted, the engine keeps its inputs
            return ReadResult(id_, props)
        inputs = {key: props[key] for key in _INPUT_KEYS if key in props}
        inputs["targets"] = _targets(props.get("target_lines"))
        return ReadResult(id_, props, inputs)
