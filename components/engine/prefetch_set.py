"""The PrefetchSet component: one per prefetch set, one dynamic resource per destination and shard.

One component, two ways in:

* **the typed API**, from any Pulumi program (every argument but ``provider`` and ``label``
  accepts Pulumi Inputs, so a zone id can come straight from the resource that creates it)::

      zone = tencentcloud.teo.Zone("site", zone_name="example.com", ...)
      domain = tencentcloud.teo.AccelerationDomain("static", zone_id=zone.id, ...)
      PrefetchSet("site-assets", PrefetchSetArgs(
                      targets=["https://static.example.com/index.html"],
                      provider="edgeone", zone=zone.id, wait="2m"),
                  pulumi.ResourceOptions(depends_on=[domain]))

* **a YAML/JSON declaration** (components/program.py): ``PrefetchSet.from_declaration(decl)``.

Both register the same dynamic resources with the same inputs (``records.SetInputs.to_props()``:
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

import re
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, Mapping, Optional, Sequence, Union

import jsonschema
import pulumi
from pulumi.dynamic import Resource

from components.declare.declarations import PrefetchSetDeclaration, load_schema, or_list
from components.declare.references import TencentCloudLookup
from components.engine import preflight
from components.engine.args import PrefetchSetArgs, scope_args
from components.model.clouds import cloud_keys, clouds, find
from components.model.durations import parse_duration
from components.model.status import ContentVersion
from components.model.urls import InvalidUrl, normalize_url
from components.plan import shards
from components.provider import PrefetchProvider
from components.resource.audit import (
    DriftedTarget,
    SetSummary,
    audit_entry,
    drifted_targets,
    merge_shard_entries,
    set_summary,
    stack_record,
)
from components.resource.inputs import SetInputs, desired_value, targets_digest

COMPUTED_OUTPUTS = ("observed", "submitted", "summary", "drifted", "drifted_total")
#: ``source`` of a set made with the typed API, in the audit record (a declaration gives its file).
PROGRAM_SOURCE = "pulumi program"


class PrefetchSetError(pulumi.RunError):
    """Invalid PrefetchSet arguments. The message names the set and the argument; the CLI prints it
    without a traceback (RunError). Deliberately not a ValueError: the SDK rewraps a ValueError raised
    while a resource's inputs resolve into a plain ValueError, which the CLI prints with a traceback."""


# ----------------------------------------------------------------------------------------------
# Typed arguments
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# The dynamic resource
# ----------------------------------------------------------------------------------------------


class Destination(Resource, module="cdnprefetch", name="Destination"):
    """A prefetch set on one CDN destination, or one shard of it (``shard`` input). Type
    ``pulumi-python:dynamic/cdnprefetch:Destination``."""

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

    def __init__(self, name: str, inputs: Union[SetInputs, Mapping[str, Any]],
                 opts: Optional[pulumi.ResourceOptions] = None):
        # ``inputs``: SetInputs, or its to_props() shape with Pulumi Inputs as values.
        props = inputs.to_props() if isinstance(inputs, SetInputs) else dict(inputs)
        props.update({key: None for key in COMPUTED_OUTPUTS})
        super().__init__(PrefetchProvider(), name, props, opts)


# ----------------------------------------------------------------------------------------------
# Argument checks (plain values now, Outputs once they resolve)
# ----------------------------------------------------------------------------------------------


def _is_plain(value: Any) -> bool:
    """No Output or awaitable anywhere inside (so it can be checked right away)."""
    if isinstance(value, pulumi.Output) or isawaitable(value):
        return False
    if isinstance(value, Mapping):
        return all(_is_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):  # text first: a list of 100,000 URLs is checked several times
        return all(type(v) is str or _is_plain(v) for v in value)
    return True


def _checked(value: Any, check: Any) -> Any:
    """``check(value)`` now for a plain value; for an Input, an Output that checks it once known."""
    if _is_plain(value):
        return check(value)
    return pulumi.Output.from_input(value).apply(check)


def _known_or_none(value: Any) -> pulumi.Output[Any]:
    """``value`` as an Output that is always known: None while the value is unknown (a preview)."""
    if _is_plain(value):
        return pulumi.Output.from_input(value)
    output = pulumi.Output.from_input(value)

    async def resolve() -> Any:
        return await output.future()  # None when the value (or part of it) is unknown

    return pulumi.Output.from_input(resolve())


def normalize_targets(set_name: str, raw: Any) -> tuple[list[str], list[str]]:
    """Normalised, de-duplicated targets and the duplicates dropped; PrefetchSetError names every bad URL."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        raise PrefetchSetError(f"PrefetchSet {set_name!r}: targets must be a list of URLs, got {type(raw).__name__}")
    targets: list[str] = []
    duplicates: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()  # not `in targets`: that made 100,000 targets take a minute
    for index, url in enumerate(raw):
        try:
            normal = normalize_url(url)
        except InvalidUrl as exc:
            problems.append(f"targets[{index}]: {exc}")
            continue
        if normal in seen:
            duplicates.append(normal)
        else:
            seen.add(normal)
            targets.append(normal)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PrefetchSetError(f"PrefetchSet {set_name!r}: {len(problems)} invalid target"
                               f"{'s' if len(problems) != 1 else ''}:\n{lines}")
    return targets, duplicates


def _duration_check(set_name: str, arg: str) -> Any:
    def check(value: Any) -> str:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {arg}: {exc}") from None
        return value
    return check


def _scope_definition(key: str) -> Mapping[str, Any]:
    """A scope key's JSON Schema: schemas/prefetch-set.schema.json's, else its cloud entry's ``scope_schema``."""
    defs = load_schema()["$defs"]
    if key in defs:
        return defs[key]
    return next((spec.scope_schema[key] for spec in clouds() if key in spec.scope_schema), {"description": ""})


def _scope_check(set_name: str, where: str, key: str) -> Any:
    """Checks one scope value against its definition (``_scope_definition``)."""
    definition = _scope_definition(key)
    validator = jsonschema.Draft202012Validator(definition)

    def check(value: Any) -> Any:
        if not validator.is_valid(value):
            if "enum" in definition:
                hint = "use one of: " + ", ".join(str(v) for v in definition["enum"])
            else:
                hint = definition.get("description", "")
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {where} = {value!r} is not valid; {hint}")
        return value
    return check


@dataclass
class _Destination:
    provider: str
    scope: dict[str, Any]  # scope key -> plain value or Output
    label: str

    def props(self) -> dict[str, Any]:
        return {"provider": self.provider, **self.scope}


def _identity_args(typed: Mapping[str, str]) -> list[str]:
    """The typed argument naming each cloud's identity (``zone``, ``area``, ``domain_id``), once each."""
    keys = dict.fromkeys(spec.identity_key for spec in clouds())
    return [arg for key in keys for arg, scope_key in typed.items() if scope_key == key]


def _destinations_from_args(set_name: str, args: Mapping[str, Any]) -> list[_Destination]:
    typed = scope_args()
    shorthand = [key for key in ("provider", "label", *typed) if args.get(key) is not None]
    listed = args.get("destinations")
    if listed is not None and shorthand:
        raise PrefetchSetError(f"PrefetchSet {set_name!r}: give the destination either with provider (and its "
                               f"zone, area or domain_id) or as destinations, not both (also given: "
                               f"{', '.join(shorthand)})")
    if listed is None:
        if "provider" not in shorthand:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: missing the CDN destination: give provider "
                                   f"({or_list(cloud_keys())}) with its {or_list(_identity_args(typed))}, or destinations")
        raw_list, prefixes = [{k: args[k] for k in shorthand}], [""]
    else:
        if isinstance(listed, (str, Mapping)) or not isinstance(listed, Sequence) or not listed:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: destinations must be a non-empty list of "
                                   "DestinationArgs")
        raw_list, prefixes = list(listed), [f"destinations[{i}]." for i in range(len(listed))]
    allowed = {"provider", "label", *typed}
    out: list[_Destination] = []
    defs = load_schema()["$defs"]
    for raw, prefix in zip(raw_list, prefixes):
        if not isinstance(raw, Mapping):
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {prefix.rstrip('.')} must be a DestinationArgs mapping")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {prefix}{unknown[0]}: unknown argument; a destination "
                                   f"takes {', '.join(sorted(allowed))}")
        provider = raw.get("provider")
        spec = find(provider)
        if spec is None:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {prefix}provider = {provider!r} is not valid; use one "
                                   f"of: {', '.join(cloud_keys())} (a plain string)")
        scope: dict[str, Any] = {}
        for arg, key in typed.items():
            if raw.get(arg) is None:
                continue
            if key not in spec.scope_keys:
                raise PrefetchSetError(f"PrefetchSet {set_name!r}: {prefix}{arg} does not apply to provider "
                                       f"{provider}; remove it")
            scope[key] = _checked(raw[arg], _scope_check(set_name, prefix + arg, key))
        required = spec.required_key
        if required and required not in scope:
            arg = next(a for a, k in typed.items() if k == required)
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {prefix}{arg} is required for provider {provider}: "
                                   f"{_scope_definition(required)['description']}")
        for key in spec.scope_keys:  # the schema's defaults, as a YAML set gets them
            if key not in scope and key in defs and "default" in defs[key]:
                scope[key] = defs[key]["default"]
        label = raw.get("label")
        if label is None:
            identity = scope.get(spec.identity_key)
            label = f"{provider}-{identity}" if isinstance(identity, str) else provider
        elif not isinstance(label, str) or not label:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: {prefix}label must be a non-empty plain string")
        if any(d.label == label for d in out):
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: two destinations are both named {label!r}; give "
                                   "each a distinct label")
        out.append(_Destination(provider, scope, label))
    return out


# ----------------------------------------------------------------------------------------------
# The component
# ----------------------------------------------------------------------------------------------


@dataclass
class _Spec:
    """What a PrefetchSet is made of, from typed args or from a declaration."""

    name: str
    source: str
    description: Any
    targets: Any              # plain list of normalised URLs, or Output of one
    duplicates: Any           # plain list, or Output of one
    destinations: list[_Destination]
    freshness: Any
    wait: Any
    preflight: Any
    content: Mapping[str, ContentVersion]
    from_declaration: bool = False


def _spec_from_args(name: Any, args: Any) -> _Spec:
    if not isinstance(name, str) or not re.match(load_schema()["properties"]["name"]["pattern"], name):
        raise PrefetchSetError(f"PrefetchSet name {name!r} is not valid: use lower-case letters, digits and dashes "
                               "(at most 63 characters); it names the set in state and outputs")
    if not isinstance(args, Mapping):
        raise PrefetchSetError(f"PrefetchSet {name!r}: args must be PrefetchSetArgs (a mapping), got "
                               f"{type(args).__name__}")
    known = set(PrefetchSetArgs.__annotations__) | set(scope_args())  # a registered cloud's own scope arguments too
    unknown = sorted(set(args) - known)
    if unknown:
        raise PrefetchSetError(f"PrefetchSet {name!r}: unknown argument {unknown[0]!r}; PrefetchSetArgs takes "
                               f"{', '.join(sorted(known))}")
    if args.get("targets") is None:
        raise PrefetchSetError(f"PrefetchSet {name!r}: targets is required (a list of URLs to keep warm)")
    defaults = load_schema()["properties"]
    raw_targets = args["targets"]
    if _is_plain(raw_targets):
        targets, duplicates = normalize_targets(name, raw_targets)
    else:
        normalised = pulumi.Output.from_input(raw_targets).apply(lambda raw: normalize_targets(name, raw))
        targets, duplicates = normalised.apply(lambda r: r[0]), normalised.apply(lambda r: r[1])
    mode = args.get("preflight")
    return _Spec(
        name=name,
        source=PROGRAM_SOURCE,
        description="" if args.get("description") is None else args["description"],
        targets=targets,
        duplicates=duplicates,
        destinations=_destinations_from_args(name, args),
        freshness=_checked(_given(args, "freshness", defaults["freshness"]["default"]),
                           _duration_check(name, "freshness")),
        wait=_checked(_given(args, "wait", defaults["wait"]["default"]), _duration_check(name, "wait")),
        preflight=_checked(mode, lambda m: _preflight_mode(m, name)),
        content={},
    )


def _given(args: Mapping[str, Any], key: str, default: Any) -> Any:
    return default if args.get(key) is None else args[key]


def _preflight_mode(value: Any, set_name: str) -> str:
    try:
        return preflight.check_mode(value, set_name)
    except ValueError as exc:
        raise PrefetchSetError(str(exc)) from None


def _spec_from_declaration(decl: PrefetchSetDeclaration) -> _Spec:
    if decl.references:
        unresolved = ", ".join(f"{r.path}: {r.value}" for r in decl.references)
        raise PrefetchSetError(f"{decl.source}: set {decl.name!r} still has references to resolve ({unresolved}); "
                               "pass it through components.declare.references.resolve_references first")
    return _Spec(
        name=decl.name,
        source=decl.source,
        description=decl.description,
        targets=list(decl.targets),
        duplicates=[],  # the program reports a declaration's duplicates itself
        destinations=[_Destination(d.provider, {k: v for k, v in d.as_dict().items() if k != "provider"}, d.label)
                      for d in decl.destinations],
        freshness=decl.freshness,
        wait=decl.wait,
        preflight=decl.preflight,
        content=dict(decl.content),
        from_declaration=True,
    )


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
    destinations: list[Destination]
    """The dynamic resources: per destination (in order), its shards (shard 0 first). One per destination
    for a set of up to ``shards.SHARD_TARGETS`` targets, or whose targets are an Output."""

    def __init__(self, name: Union[str, PrefetchSetDeclaration],
                 args: Union[PrefetchSetArgs, pulumi.ResourceOptions, None] = None,
                 opts: Optional[pulumi.ResourceOptions] = None, *,
                 lookup: Optional[TencentCloudLookup] = None):
        if isinstance(name, PrefetchSetDeclaration):  # PrefetchSet(declaration, opts)
            if isinstance(args, pulumi.ResourceOptions):
                opts = args
            spec = _spec_from_declaration(name)
        else:
            spec = _spec_from_args(name, args)
        super().__init__("cdnprefetch:index:PrefetchSet", spec.name, None, opts)
        self._lookup = lookup or TencentCloudLookup()
        # The children get the component's depends_on: the engine orders each step by the resource's
        # own dependencies, so a parent's depends_on alone would not hold the prefetch back.
        child_opts = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        if not spec.from_declaration:
            pulumi.Output.from_input(spec.duplicates).apply(lambda dups: self._warn_duplicates(spec.name, dups))
        desired = _checked(spec.targets, lambda urls: {url: desired_value(spec.content.get(url)) for url in urls})
        parts = shard_targets(spec.targets, desired)
        if len(parts) == 1 and not _is_plain(spec.targets):
            pulumi.Output.from_input(spec.targets).apply(lambda urls: self._warn_unsharded(spec.name, urls))
        endpoints = preflight.endpoints_overridden()
        self.destinations = []
        by_destination: list[list[Destination]] = []
        for dest in spec.destinations:
            checked = self._preflight(spec, dest, endpoints)  # once per destination, whatever its shards
            resources = []
            for index, part in enumerate(parts):
                targets = part
                if checked is not None:  # every shard waits for preflight; an error fails its registration
                    targets = pulumi.Output.all(part, checked).apply(lambda both: both[0])
                inputs = {"set": spec.name, "destination": dest.props(), "targets": targets,
                          "freshness": spec.freshness, "wait": spec.wait}
                if len(parts) > 1:  # an unsharded set's inputs stay exactly what they were
                    inputs["shard"] = shards.shard_input(index, len(parts))
                name = shards.shard_name(f"{spec.name}-{dest.label}", index, len(parts))
                resources.append(Destination(name, inputs, child_opts))
            by_destination.append(resources)
            self.destinations.extend(resources)

        labels = [d.label for d in spec.destinations]
        # The digest covers the destination's whole target set; a shard's own digest covers its part only.
        digest = _checked(spec.targets, targets_digest)
        per_destination = [
            pulumi.Output.all(digest, *[_shard_entry(resource) for resource in resources])
            .apply(lambda values: merge_shard_entries(values[1:], values[0]))
            for resources in by_destination
        ]
        entries = pulumi.Output.all(*per_destination)
        count = _checked(spec.targets, len)
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

    def _preflight(self, spec: _Spec, dest: _Destination, endpoints: set[str]) -> Optional[pulumi.Output[list]]:
        """An Output of the preflight findings (warned, or raised for ``error``); None when not checked."""
        if not preflight.applies_to(dest.provider, endpoints):
            return None
        if _is_plain(spec.preflight) and (spec.preflight or preflight.DEFAULT_MODE) == "off":
            return None
        # A zone id still unknown (preview of a new stack) cannot be checked: preflight then passes.
        value = _known_or_none(dest.scope.get(preflight.scope_key(dest.provider)))
        lookup = self._lookup

        def run(args: list) -> Any:
            mode, targets, scope_value = args
            mode = _preflight_mode(mode, spec.name)
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
    if not _is_plain(targets):
        return [desired]
    count = shards.shard_count(len(targets), shards.SHARD_TARGETS)
    if count == 1:
        return [desired]
    return [{url: desired[url] for url in part} for part in shards.split(targets, count)]


def _shard_entry(resource: Destination) -> pulumi.Output[dict]:
    """One shard's audit entry (records.audit_entry of its outputs)."""
    return pulumi.Output.all(**{key: getattr(resource, key) for key in ("destination", *COMPUTED_OUTPUTS)}) \
        .apply(audit_entry)


def stack_output(sets: Mapping[str, pulumi.Output[dict]]) -> pulumi.Output[dict]:
    """The ``prefetch`` stack output from each set's ``audit`` Output (resource/audit.py ``stack_record``)."""
    return pulumi.Output.all(**sets).apply(stack_record)
