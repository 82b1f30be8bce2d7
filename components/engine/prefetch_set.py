"""The PrefetchSet component: one per prefetch set, one dynamic resource per destination and shard.

One component, two ways in:

* **the typed API**, from any Pulumi program (every argument but ``provider`` and ``label``
  accepts Pulumi Inputs, so a zone id can come straight from the resource that creates it)::

      domain = tencentcloud.teo.AccelerationDomain("static", zone_id=zone.id, ...)
      PrefetchSet("site-assets", PrefetchSetArgs(targets=[...], provider=..., zone=zone.id),
                  pulumi.ResourceOptions(depends_on=[domain]))

  (a whole program: ``examples/with-tencentcloud/__main__.py``).

* **a YAML/JSON declaration** (components/program.py): ``PrefetchSet.from_declaration(decl)``.

Both register the same dynamic resources with the same inputs (``resource/inputs.py``, ``ShardInputs.to_props()``:
``set``, ``destination``, ``targets`` as ``{url: desired}``, ``freshness``, ``wait``), so the
provider cannot tell them apart. Inputs are resolved with Output.apply, so a zone id that is
unknown during the preview of a new stack is sent as an unknown value (the engine plans a
create), never read. The component's ``depends_on`` is handed to every dynamic resource, so
``depends_on=[domain]`` orders the prefetch after the domain, not only after the component.

**Shards.** A destination whose target list is plain (every YAML set; a typed set given a plain
list) and longer than ``shards.SHARD_TARGETS`` is split into ``K`` shards (components/plan/shards.py),
one dynamic resource each, named ``<set>-<label>`` for shard 0 and ``<set>-<label>-shard-<k>``
for the others, each with the extra input ``shard: {index, count}``. A set of one shard registers
exactly what it did before sharding existed (same name, same inputs), so existing stacks show no
diff. Targets given as an Output are never sharded: their number is known only once the Output
resolves, but resources must be registered while the component is constructed (a resource
registered inside an ``apply`` is missing from previews and from the dependency graph). Such a set
keeps one resource per destination, and a warning says so once it resolves to more than
``SHARD_TARGETS`` targets. The audit record and the component's outputs stay one entry per
destination: its shards' outputs are merged (``merge_shard_entries``).
"""

from typing import Any, Mapping, Optional, Sequence, Union

import pulumi
from pulumi.dynamic import Resource

from ..declare.model import PrefetchSetDeclaration
from ..declare.references import TencentCloudLookup
from . import preflight
from .args import PrefetchSetArgs
from .spec import (
    DestinationSpec,
    SetSpec,
    checked,
    is_plain,
    known_or_none,
    preflight_mode,
    spec_from_args,
    spec_from_declaration,
)
from ..plan import shards
from ..provider import PrefetchProvider
from ..resource.audit import (
    DriftedTarget,
    SetSummary,
    audit_entry,
    drifted_targets,
    merge_shard_entries,
    set_summary,
    stack_record,
)
from ..resource.inputs import ShardInputs, desired_value, resource_inputs, targets_digest

COMPUTED_OUTPUTS = ("observed", "submitted", "summary", "drifted", "drifted_total")


# ----------------------------------------------------------------------------------------------
# Typed arguments
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# The dynamic resource
# ----------------------------------------------------------------------------------------------


class ShardResource(Resource, module="cdnprefetch", name="Destination"):
    """One shard of a prefetch set on one CDN destination (a set of up to ``SHARD_TARGETS`` targets has
    one shard per destination). Registered type ``pulumi-python:dynamic/cdnprefetch:Destination``:
    the name it had before shards existed, kept so that existing stacks keep their URNs."""

    observed: pulumi.Output[dict]
    """Per target with a task: [state, task id, time, reason] of its latest task, plus for an origin
    target the ETag that task was submitted for."""
    submitted: pulumi.Output[list]
    """Every task this resource submitted: task id, time, number of targets."""
    summary: pulumi.Output[dict]
    """Counts by status, warm ratio, in-sync flag, verification time, digest of the targets."""
    drifted: pulumi.Output[list]
    """The first 100 targets that are not warm, with status in plain words, reason, task id and time."""
    drifted_total: pulumi.Output[int]

    def __init__(self, name: str, inputs: Union[ShardInputs, Mapping[str, Any]],
                 opts: Optional[pulumi.ResourceOptions] = None):
        # ``inputs``: ShardInputs, or its to_props() shape with Pulumi Inputs as values.
        props = inputs.to_props() if isinstance(inputs, ShardInputs) else dict(inputs)
        props.update({key: None for key in COMPUTED_OUTPUTS})
        super().__init__(PrefetchProvider(), name, props, opts)


# ----------------------------------------------------------------------------------------------
# Argument checks (plain values now, Outputs once they resolve)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# The component
# ----------------------------------------------------------------------------------------------


class PrefetchSet(pulumi.ComponentResource):
    """A prefetch set kept warm on one or more CDN destinations (``cdnprefetch:index:PrefetchSet``).

    ``PrefetchSet(name, PrefetchSetArgs(...), opts)`` from any program, or
    ``PrefetchSet.from_declaration(decl)`` for a YAML/JSON set (``PrefetchSet(decl, opts)`` works too).
    """

    audit: pulumi.Output[dict]
    """The set's entry in the stack's audit record (schemas/stack-outputs.schema.json ``$defs.set``)."""
    summary: pulumi.Output[SetSummary]
    """Status over all destinations: counts, warm ratio, in sync, verification time."""
    drifted: pulumi.Output[list[DriftedTarget]]
    """Targets not warm, per destination (at most 100 per destination; see ``drifted_total``)."""
    drifted_total: pulumi.Output[int]
    """Number of (target, destination) pairs that are not warm."""
    in_sync: pulumi.Output[bool]
    """True when every target is warm on every destination."""
    destinations: list[ShardResource]
    """The dynamic resources: per destination (in order), its shards (shard 0 first). One per destination
    for a set of up to ``shards.SHARD_TARGETS`` targets, or whose targets are an Output."""

    def __init__(self, name: Union[str, PrefetchSetDeclaration],
                 args: Union[PrefetchSetArgs, pulumi.ResourceOptions, None] = None,
                 opts: Optional[pulumi.ResourceOptions] = None, *,
                 lookup: Optional[TencentCloudLookup] = None):
        if isinstance(name, PrefetchSetDeclaration):  # PrefetchSet(declaration, opts)
            if isinstance(args, pulumi.ResourceOptions):
                opts = args
            spec = spec_from_declaration(name)
        else:
            spec = spec_from_args(name, args)
        super().__init__("cdnprefetch:index:PrefetchSet", spec.name, None, opts)
        self._lookup = lookup or TencentCloudLookup()
        # The children get the component's depends_on: the engine orders each step by the resource's
        # own dependencies, so a parent's depends_on alone would not hold the prefetch back.
        child_opts = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        if not spec.from_declaration:
            pulumi.Output.from_input(spec.duplicates).apply(lambda dups: self._warn_duplicates(spec.name, dups))
        desired = checked(spec.targets, lambda urls: {url: desired_value(spec.content.get(url), spec.revision)
                                                      for url in urls})
        parts = shard_targets(spec.targets, desired)
        if len(parts) == 1 and not is_plain(spec.targets):
            pulumi.Output.from_input(spec.targets).apply(lambda urls: self._warn_unsharded(spec.name, urls))
        endpoints = preflight.endpoints_overridden()
        self.destinations = []
        by_destination: list[list[ShardResource]] = []
        for dest in spec.destinations:
            preflighted = self._preflight(spec, dest, endpoints)  # once per destination, whatever its shards
            resources = []
            for index, part in enumerate(parts):
                targets = part
                if preflighted is not None:  # every shard waits for preflight; an error fails its registration
                    targets = pulumi.Output.all(part, preflighted).apply(lambda both: both[0])
                inputs = resource_inputs(spec.name, dest.props(), targets, spec.freshness, spec.wait,
                                         (index, len(parts)) if len(parts) > 1 else None)
                name = shards.shard_name(f"{spec.name}-{dest.label}", index, len(parts))
                resources.append(ShardResource(name, inputs, child_opts))
            by_destination.append(resources)
            self.destinations.extend(resources)

        labels = [d.label for d in spec.destinations]
        # The digest covers the destination's whole target set; a shard's own digest covers its part only.
        digest = checked(spec.targets, targets_digest)
        per_destination = [
            pulumi.Output.all(digest, *[_shard_entry(resource) for resource in resources])
            .apply(lambda values: merge_shard_entries(values[1:], values[0]))
            for resources in by_destination
        ]
        entries = pulumi.Output.all(*per_destination)
        count = checked(spec.targets, len)
        self.audit = pulumi.Output.all(entries, spec.description, count).apply(lambda v: {
            "source": spec.source,
            "description": v[1],
            "targets": v[2],
            "destinations": list(v[0]),
        })
        self.summary = entries.apply(lambda merged: set_summary([e["summary"] for e in merged]))
        self.drifted = entries.apply(lambda merged: drifted_targets(labels, [e["drifted"] for e in merged]))
        self.drifted_total = entries.apply(lambda merged: sum(int(e["drifted_total"] or 0) for e in merged))
        self.in_sync = self.summary.apply(lambda s: s["in_sync"])
        self.register_outputs({"audit": self.audit, "summary": self.summary, "drifted": self.drifted,
                               "drifted_total": self.drifted_total, "in_sync": self.in_sync})

    @classmethod
    def from_declaration(cls, declaration: PrefetchSetDeclaration, opts: Optional[pulumi.ResourceOptions] = None, *,
                         lookup: Optional[TencentCloudLookup] = None) -> "PrefetchSet":
        """The component for a YAML/JSON set (references already resolved: components/declare/references.py)."""
        return cls(declaration, opts, lookup=lookup)

    def _warn_unsharded(self, name: str, urls: Sequence[str]) -> None:
        if len(urls) > shards.SHARD_TARGETS:
            pulumi.log.warn(f"PrefetchSet {name!r}: {len(urls)} targets given as an Output are kept in one resource "
                            f"per destination (a set is split into shards of about {shards.SHARD_TARGETS} targets "
                            "only when its targets are a plain list); pass a plain list to shard it", resource=self)

    def _warn_duplicates(self, name: str, duplicates: Sequence[str]) -> None:
        if duplicates:
            pulumi.log.warn(f"PrefetchSet {name!r}: {len(duplicates)} duplicate targets collapsed "
                            f"(e.g. {duplicates[0]})", resource=self)

    def _preflight(self, spec: SetSpec, dest: DestinationSpec, endpoints: set[str]) -> Optional[pulumi.Output[list]]:
        """An Output of the preflight findings (warned, or raised for ``error``); None when not checked."""
        if not preflight.applies_to(dest.provider, endpoints):
            return None
        if is_plain(spec.preflight) and (spec.preflight or preflight.DEFAULT_MODE) == "off":
            return None
        # A zone id still unknown (preview of a new stack) cannot be checked: preflight then passes.
        value = known_or_none(dest.scope.get(preflight.scope_key(dest.provider)))
        lookup = self._lookup

        def run(args: list) -> Any:
            mode, targets, scope_value = args
            mode = preflight_mode(mode, spec.name)
            if mode == "off" or scope_value is None or targets is None:
                return []
            return preflight.run(dest.provider, scope_value, targets, lookup, mode=mode, set_name=spec.name,
                                 source=spec.source if spec.from_declaration else None, label=dest.label,
                                 resource=self)

        return pulumi.Output.all(spec.preflight, spec.targets, value).apply(run)


def shard_targets(targets: Any, desired: Any) -> list[Any]:
    """The desired map ``{url: desired}`` of each shard of one destination.

    ``targets``: the normalised URLs (plain list, or an Output of one); ``desired``: their map (plain,
    or an Output). Plain targets are split by ``shards.split`` into ``shards.shard_count`` shards
    (read at call time, so a test may lower ``shards.SHARD_TARGETS``); each shard keeps the targets'
    order. An Output cannot be split: the number of resources must be known when they are
    registered, before it resolves. It stays one shard, ``[desired]``, as does any set of up to
    ``SHARD_TARGETS`` targets (its map is passed on as it is, so its inputs are unchanged).
    """
    if not is_plain(targets):
        return [desired]
    count = shards.shard_count(len(targets), shards.SHARD_TARGETS)
    if count == 1:
        return [desired]
    return [{url: desired[url] for url in part} for part in shards.split(targets, count)]


def _shard_entry(resource: ShardResource) -> pulumi.Output[dict]:
    """One shard's audit entry (resource/audit.py ``audit_entry`` of its outputs)."""
    return pulumi.Output.all(**{key: getattr(resource, key) for key in ("destination", *COMPUTED_OUTPUTS)}) \
        .apply(audit_entry)


def stack_output(sets: Mapping[str, pulumi.Output[dict]]) -> pulumi.Output[dict]:
    """The ``prefetch`` stack output from each set's ``audit`` Output (resource/audit.py ``stack_record``)."""
    return pulumi.Output.all(**sets).apply(stack_record)
