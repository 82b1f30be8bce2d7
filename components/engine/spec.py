"""What a PrefetchSet is made of (``SetSpec``), from typed arguments or from a declaration, with every
argument checked: plain values at once, Outputs once they resolve (a PrefetchSetError names the set
and the argument; the CLI prints it without a traceback)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, Mapping, Optional, Sequence

import jsonschema
import pulumi

from ..declare.model import PrefetchSetDeclaration
from ..declare.schema import load_schema
from . import preflight
from .args import PrefetchSetArgs, scope_args
from ..model.clouds import cloud, cloud_keys, clouds, find, or_list
from ..model.durations import parse_duration
from ..model.status import ContentVersion, OnChange
from ..model.urls import InvalidUrl, cloud_problems, normalize_url, shown

#: ``source`` of a set made with the typed API, in the audit record (a declaration gives its file).
PROGRAM_SOURCE = "pulumi program"


class PrefetchSetError(pulumi.RunError):
    """Invalid PrefetchSet arguments. The message names the set and the argument; the CLI prints it
    without a traceback (RunError). Deliberately not a ValueError: the SDK rewraps a ValueError raised
    while a resource's inputs resolve into a plain ValueError, which the CLI prints with a traceback."""


def is_plain(value: Any) -> bool:
    """No Output or awaitable anywhere inside (so it can be checked right away)."""
    if isinstance(value, pulumi.Output) or isawaitable(value):
        return False
    if isinstance(value, Mapping):
        return all(is_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):  # text first: a list of 100,000 URLs is checked several times
        return all(type(v) is str or is_plain(v) for v in value)
    return True


def checked(value: Any, check: Any) -> Any:
    """``check(value)`` now for a plain value; for an Input, an Output that checks it once known."""
    if is_plain(value):
        return check(value)
    return pulumi.Output.from_input(value).apply(check)


def known_or_none(value: Any) -> pulumi.Output[Any]:
    """``value`` as an Output that is always known: None while the value is unknown (a preview)."""
    if is_plain(value):
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


def cloud_checked(set_name: str, targets: list[str], destinations: Sequence[DestinationSpec]) -> list[str]:
    """The normalised targets, if every destination's cloud takes them (length, hosts: components/model/urls.py
    ``cloud_problems``, as a declaration's are); PrefetchSetError naming each URL it would refuse."""
    def name(index: int) -> str:
        return shown(targets[index], 60)

    problems = [f"{name(index)}: destination {dest.label}: {message}" for dest in destinations
                for index, message in cloud_problems(targets, cloud(dest.provider), dest.scope, name)]
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PrefetchSetError(f"PrefetchSet {set_name!r}: {len(problems)} target{'s' if len(problems) != 1 else ''} "
                               f"a destination's cloud would refuse:\n{lines}")
    return targets


def _duration_check(set_name: str, arg: str) -> Any:
    """Checks a duration argument as the schema checks the declaration's key: its grammar and its
    ``maxDuration`` (wait: 24h, freshness: 365d)."""
    longest = parse_duration(load_schema()["properties"][arg]["maxDuration"])

    def check(value: Any) -> str:
        try:
            parse_duration(value, longest)
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
class DestinationSpec:
    provider: str
    scope: dict[str, Any]  # scope key -> plain value or Output
    label: str

    def props(self) -> dict[str, Any]:
        return {"provider": self.provider, **self.scope}


def _identity_args(typed: Mapping[str, str]) -> list[str]:
    """The typed argument naming each cloud's identity (``zone``, ``area``, ``domain_id``), once each."""
    keys = dict.fromkeys(spec.identity_key for spec in clouds())
    return [arg for key in keys for arg, scope_key in typed.items() if scope_key == key]


def _destinations_from_args(set_name: str, args: Mapping[str, Any]) -> list[DestinationSpec]:
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
    out: list[DestinationSpec] = []
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
            scope[key] = checked(raw[arg], _scope_check(set_name, prefix + arg, key))
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
        out.append(DestinationSpec(provider, scope, label))
    return out


@dataclass
class SetSpec:
    """What a PrefetchSet is made of, from typed args or from a declaration."""

    name: str
    source: str
    description: Any
    targets: Any              # plain list of normalised URLs, or Output of one
    duplicates: Any           # plain list, or Output of one
    destinations: list[DestinationSpec]
    freshness: Any
    wait: Any
    preflight: Any
    content: Mapping[str, ContentVersion]
    from_declaration: bool = False
    revision: Optional[str] = None  # the set's release marker, in every target's desired value


def spec_from_args(name: Any, args: Any) -> SetSpec:
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
    if is_plain(raw_targets):
        targets, duplicates = normalize_targets(name, raw_targets)
    else:
        normalised = pulumi.Output.from_input(raw_targets).apply(lambda raw: normalize_targets(name, raw))
        targets, duplicates = normalised.apply(lambda r: r[0]), normalised.apply(lambda r: r[1])
    mode = args.get("preflight")
    destinations = _destinations_from_args(name, args)
    targets = checked(targets, lambda urls: cloud_checked(name, urls, destinations))
    _on_change(name, args, destinations)
    return SetSpec(
        name=name,
        source=PROGRAM_SOURCE,
        description="" if args.get("description") is None else args["description"],
        targets=targets,
        duplicates=duplicates,
        destinations=destinations,
        freshness=checked(_given(args, "freshness", defaults["freshness"]["default"]),
                           _duration_check(name, "freshness")),
        wait=checked(_given(args, "wait", defaults["wait"]["default"]), _duration_check(name, "wait")),
        preflight=checked(mode, lambda m: preflight_mode(m, name)),
        content={},
        revision=_revision(name, args.get("revision")),
    )


def _revision(set_name: str, value: Any) -> Optional[str]:
    """The typed ``revision``: a plain string as the schema's ``revision`` allows, or None."""
    if value is None:
        return None
    definition = load_schema()["properties"]["revision"]
    if not isinstance(value, str) or not jsonschema.Draft202012Validator(definition).is_valid(value):
        raise PrefetchSetError(f"PrefetchSet {set_name!r}: revision = {value!r:.80} is not valid; a plain string "
                               "of 1 to 128 characters without control characters, e.g. a build id or a git SHA")
    return value


def _on_change(set_name: str, args: Mapping[str, Any], destinations: list[DestinationSpec]) -> None:
    """The typed ``on_change``, checked and put into each destination's policy entries (as a YAML set's)."""
    value = args.get("on_change")
    if value is None:
        return
    if value not in [v.value for v in OnChange]:
        raise PrefetchSetError(f"PrefetchSet {set_name!r}: on_change = {value!r:.80} is not valid; use one of: "
                               f"{', '.join(v.value for v in OnChange)} (a plain string)")
    for dest in destinations:
        if value == OnChange.PURGE_THEN_PREFETCH.value and not cloud(dest.provider).supports_purge:
            raise PrefetchSetError(f"PrefetchSet {set_name!r}: on_change = {value!r}: destination {dest.label} "
                                   f"({dest.provider}) cannot purge; use 'prefetch' or leave on_change out")
        dest.scope["onChange"] = value


def _given(args: Mapping[str, Any], key: str, default: Any) -> Any:
    return default if args.get(key) is None else args[key]


def preflight_mode(value: Any, set_name: str) -> str:
    try:
        return preflight.check_mode(value, set_name)
    except ValueError as exc:
        raise PrefetchSetError(str(exc)) from None


def spec_from_declaration(decl: PrefetchSetDeclaration) -> SetSpec:
    if decl.references:
        unresolved = ", ".join(f"{r.path}: {r.value}" for r in decl.references)
        raise PrefetchSetError(f"{decl.source}: set {decl.name!r} still has references to resolve ({unresolved}); "
                               "pass it through components.declare.references.resolve_references first")
    return SetSpec(
        name=decl.name,
        source=decl.source,
        description=decl.description,
        targets=list(decl.targets),
        duplicates=[],  # the program reports a declaration's duplicates itself
        destinations=[DestinationSpec(d.provider, {k: v for k, v in d.as_dict().items() if k != "provider"}, d.label)
                      for d in decl.destinations],
        freshness=decl.freshness,
        wait=decl.wait,
        preflight=decl.preflight,
        content=dict(decl.content),
        from_declaration=True,
        revision=decl.revision,
    )
