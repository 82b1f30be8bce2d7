"""Load prefetch-set declarations (YAML/JSON), validate them against schemas/, normalise targets.

Every problem in every file is collected and reported at once, each with file, line, JSON path,
what is wrong and how to fix it, so a user fixes a broken declaration in one pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, Union

import yaml

if TYPE_CHECKING:
    import jsonschema

from components.model.clouds import all_scope_keys, cloud, cloud_keys, clouds, find
from components.model.durations import parse_duration
from components.model.policy import policy_entries
from components.model.status import ContentVersion
from components.model.urls import InvalidUrl, normalize_url

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "prefetch-set.schema.json"
DECLARATION_SUFFIXES = (".yaml", ".yml", ".json")
PathPart = Union[str, int]
# Keys that hold secret values: never accepted in a declaration file, wherever they are put.
_SECRET_WORDS = ("secret", "accesskey", "access_key", "password", "token", "privatekey", "private_key")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one declaration file."""

    file: str
    line: Optional[int]
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DeclarationError(Exception):
    """Declarations are invalid; str() lists every problem, one per line, for the preview to print."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in prefetch-set declarations:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


@dataclass(frozen=True)
class DestinationDeclaration:
    """One CDN destination of a set: provider plus its scope (zone, area or domain, and options)."""

    provider: str
    scope: Mapping[str, Any]
    # The set's allowPartial/safety, as the provider reads them (components/plan/safety.py); empty if not declared.
    policy: Mapping[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        spec = cloud(self.provider)
        key = spec.identity_key
        if key not in self.scope:  # not resolved yet: named by its reference (zoneName, domain)
            for ref in spec.references:
                if ref.fills == key and ref.key in self.scope:
                    return str(self.scope[ref.key])
        return str(self.scope[key])

    @property
    def unresolved(self) -> dict[str, str]:
        """Reference keys still to be looked up (``{"zoneName": "example.com"}``); empty once resolved."""
        return {ref.key: self.scope[ref.key] for ref in cloud(self.provider).references if ref.key in self.scope}

    @property
    def label(self) -> str:
        """Stable, unique within a set; names the dynamic resource: ``edgeone-zone-abc``."""
        return f"{self.provider}-{self.identity}"

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, **self.scope, **self.policy}


@dataclass(frozen=True)
class Reference:
    """A destination key that names a cloud object to look up (``zoneName``, ``domain``), and where it is."""

    destination: int  # index into PrefetchSetDeclaration.destinations
    key: str
    value: str
    line: Optional[int]
    path: str  # e.g. ``zoneName`` or ``destinations[1].domain``


@dataclass(frozen=True)
class OriginDeclaration:
    """An S3-compatible bucket whose objects become targets (listed by components/declare/origin.py)."""

    bucket: str
    public_base_url: str
    endpoint: Optional[str] = None
    region: Optional[str] = None
    prefix: str = ""
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    addressing_style: str = "auto"
    profile: Optional[str] = None
    credentials_config: Optional[str] = None
    must_not_be_empty: bool = False
    line: Optional[int] = field(default=None, compare=False)  # of the `origin:` key, for messages

    def describe(self) -> str:
        """Names the origin in every message: ``origin s3://assets/static/ at http://127.0.0.1:9000``."""
        where = f"at {self.endpoint}" if self.endpoint else "on AWS S3"
        if self.region:
            where += f" (region {self.region})"
        return f"origin s3://{self.bucket}/{self.prefix} {where}"


@dataclass(frozen=True)
class PrefetchSetDeclaration:
    """A validated, normalised prefetch set.

    ``content`` is filled once the origin is listed (components/declare/origin.py): the current version
    of every origin-derived target, which becomes part of its desired value.
    """

    name: str
    source: str
    destinations: tuple[DestinationDeclaration, ...]
    targets: tuple[str, ...]
    freshness: str = "24h"
    wait: str = "10m"
    description: str = ""
    duplicates: tuple[str, ...] = field(default=(), compare=False)
    origin: Optional[OriginDeclaration] = None
    content: Mapping[str, ContentVersion] = field(default_factory=dict, compare=False)
    # What the preview does when preflight finds a target's domain not ready (components/engine/preflight.py).
    preflight: str = "warn"
    # zoneName/domain keys to resolve (components/declare/references.py); empty once resolved.
    references: tuple[Reference, ...] = field(default=(), compare=False)
    allow_partial: bool = False
    safety: Mapping[str, float] = field(default_factory=dict)

    @property
    def freshness_delta(self) -> timedelta:
        return parse_duration(self.freshness)

    @property
    def wait_delta(self) -> timedelta:
        return parse_duration(self.wait)


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as fh:
        return json.load(fh)


def load_sets(sets_dir: Union[str, Path]) -> list[PrefetchSetDeclaration]:
    """Load every declaration file in ``sets_dir`` (sorted by name); raise DeclarationError listing all problems."""
    folder = Path(sets_dir)
    if not folder.is_dir():
        raise DeclarationError(
            [Problem(str(folder), None, "", "the prefetch-sets folder does not exist; create it, or point "
                     "stack config cdn-prefetch:setsDir at the folder that holds your sets")]
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DECLARATION_SUFFIXES)
    if not files:
        raise DeclarationError(
            [Problem(str(folder), None, "", "no prefetch sets found (*.yaml, *.yml, *.json); add one, e.g. "
                     "copy the example in the README")]
        )
    problems: list[Problem] = []
    sets: list[PrefetchSetDeclaration] = []
    seen: dict[str, str] = {}
    for path in files:
        decl, file_problems = parse_file(path)
        problems.extend(file_problems)
        if decl is None:
            continue
        if decl.name in seen:
            problems.append(Problem(str(path), None, "name", f"set name {decl.name!r} is also used by "
                                    f"{seen[decl.name]}; give each set a unique name"))
            continue
        seen[decl.name] = str(path)
        sets.append(decl)
    if problems:
        raise DeclarationError(problems)
    return sets


def parse_file(path: Path) -> tuple[Optional[PrefetchSetDeclaration], list[Problem]]:
    """Parse and validate one file; returns the declaration or the problems (never raises for bad content)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, None, "", f"cannot read the file ({exc}); save it as UTF-8 text")]
    try:
        data, node = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(file, line, "", f"not valid YAML/JSON ({what}); fix the syntax at this line")]
    return parse_document(data, node, file=file, default_name=path.stem)


# libyaml when PyYAML was built with it (its wheels are): ~0.4 s for 100,000 targets, where the pure-
# Python loader takes ~5 s a pass (and this used to take two). For a valid document both build the same
# nodes and line marks. For a broken one libyaml words the problem differently but names the same line
# (tests/test_declarations.py), and it accepts a few things the pure loader refuses (a tab after `key:`).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, loader_class: type = _SAFE_LOADER) -> tuple[Any, Optional[yaml.Node]]:
    """The data and its node tree (for line numbers) from ONE parse: what ``yaml.safe_load`` returns,
    built from the node tree that ``yaml.compose`` returns."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


# The keywords of the schema's targets array and of its items that schema_view checks itself.
_TARGETS_ARRAY_KEYWORDS = {"type", "items", "description"}
_TARGET_ITEM_KEYWORDS = {"type", "pattern", "description"}


def schema_view(data: Any, schema: Mapping[str, Any]) -> Any:
    """``data`` to hand the schema validator: the same, except that a ``targets`` list whose every
    item already passes the schema's own item rule is cut to its first item.

    Why: jsonschema costs ~13 µs an item, 1.3 s for 100,000 targets that a string type and a regex
    decide. The cut is exact only while the array and item schemas use no keyword beyond these
    (``type: array``/``string``, ``items``, ``pattern``); a schema with any other keyword (say
    ``maxItems``) gets the whole list. A list with any failing item gets the whole list too, so the
    errors, their paths and their lines are the validator's own.
    """
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, list) or len(targets) < 2 or _looks_at_targets(schema):
        return data
    array = (schema.get("properties") or {}).get("targets")
    item = array.get("items") if isinstance(array, dict) else None
    if (not isinstance(item, dict) or set(array) - _TARGETS_ARRAY_KEYWORDS or array.get("type") != "array"
            or set(item) - _TARGET_ITEM_KEYWORDS or item.get("type") != "string"):
        return data
    search = _compiled(item["pattern"]).search if "pattern" in item else None
    for value in targets:
        if type(value) is not str or (search is not None and search(value) is None):
            return data
    return {**data, "targets": targets[:1]}


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> "re.Pattern[str]":
    return re.compile(pattern)


def _looks_at_targets(schema: Mapping[str, Any]) -> bool:
    """Whether a rule of the schema besides ``properties.targets`` (and ``required`` lists) names
    ``targets``: an ``if``, ``dependentSchemas`` or ``not`` over it would judge a cut list wrongly."""
    def walk(node: Any, path: tuple[str, ...]) -> bool:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if (path == ("properties",) and key == "targets") or (key == "required" and isinstance(value, list)):
                    continue  # the rule schema_view checks itself; presence only (the cut list is still there)
                if key == "targets" or walk(value, path + (key,)):
                    return True
            return False
        if isinstance(node, list):
            return any(walk(item, path + ("[]",)) for item in node)
        return node == "targets"

    return walk(schema, ())


def parse_document(
    data: Any, node: Optional[yaml.Node], *, file: str, default_name: str
) -> tuple[Optional[PrefetchSetDeclaration], list[Problem]]:
    """Validate one parsed document; ``node`` (the YAML node tree) supplies line numbers."""
    lines = _LineFinder(node)
    problems = [Problem(file, line, path, msg) for path, line, msg in lines.duplicate_keys()]
    if data is None:
        return None, problems + [Problem(file, 1, "", "the file is empty; a set needs at least provider and targets "
                                    "(or an origin)")]
    if not isinstance(data, dict):
        return None, problems + [Problem(file, lines.line(()), "", "a set must be a mapping of keys "
                                         "(provider, targets, ...), not a list or a single value")]
    bad_keys = list(_non_text_keys(data, ()))
    if bad_keys:  # the schema validator itself cannot handle them
        return None, problems + [Problem(file, lines.line(where), json_path(where),
                                         f"key {key!r} is not text; write keys as names like provider or targets")
                                 for where, key in bad_keys]
    if data.get("preflight") is False:  # YAML 1.1 (PyYAML) reads a bare `off` as false; editors (YAML 1.2) do not
        data = {**data, "preflight": "off"}
    # Imported here: the provider host imports this module for names and types only, and every
    # engine command starts a new host (jsonschema costs ~50 ms of its CPU to import).
    import jsonschema

    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(schema_view(data, schema)), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator in ("allOf", "anyOf", "if", None, "false", "oneOf", "$ref"):
            continue  # sub-errors are reported on their own; the checks below say the rest plainly
        parts = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            known = (error.schema.get("properties") or {}) if isinstance(error.schema, dict) else {}
            allowed = ", ".join(sorted(k for k in known if k != "$schema"))
            for extra in sorted(set(error.instance) - set(known)):
                key_path = parts + (extra,)
                problems.append(Problem(file, lines.line(key_path), json_path(key_path),
                                        _unknown_key_message(extra, allowed)))
            continue
        problems.append(Problem(file, lines.line(parts), json_path(parts), _message(error)))
    if "targets" not in data and "origin" not in data:
        problems.append(Problem(file, lines.line(()), "", "nothing to keep warm: add 'targets' (a list of URLs), "
                                "an 'origin' (a bucket whose objects become targets), or both"))
    has_provider, has_destinations = "provider" in data, "destinations" in data
    if has_provider == has_destinations:
        problems.append(Problem(file, lines.line(("destinations",) if has_destinations else ()), "",
                                "give the CDN destination either with top-level 'provider' (and its zone, area "
                                "or domainId) or as a 'destinations' list, not both" if has_provider else
                                f"missing the CDN destination: add 'provider' ({or_list(cloud_keys())}) "
                                f"with its {or_list(dict.fromkeys(s.identity_key for s in clouds()))}, or a "
                                "'destinations' list"))
    elif has_provider:
        problems.extend(_foreign_scope_keys(data, (), file, lines))
        problems.extend(_reference_problems(data, (), file, lines))
    else:
        listed = data.get("destinations")
        for index, item in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(item, dict):
                problems.extend(_foreign_scope_keys(item, ("destinations", index), file, lines))
                problems.extend(_reference_problems(item, ("destinations", index), file, lines))
        problems.extend(Problem(file, lines.line(("destinations",)), "destinations",
                                f"key {key!r} belongs inside a destination, not beside 'destinations'; move it")
                        for key in sorted(all_scope_keys() & set(data)))
    if problems:
        return None, sorted(problems, key=lambda p: p.line or 0)

    raw_destinations = [data] if has_provider else data["destinations"]
    destinations: list[DestinationDeclaration] = []
    references: list[Reference] = []
    for index, raw in enumerate(raw_destinations):
        where: tuple[PathPart, ...] = () if has_provider else ("destinations", index)
        provider = raw["provider"]
        if find(provider) is None:
            problems.append(Problem(file, lines.line(where + ("provider",)), json_path(where + ("provider",)),
                                    f"provider {provider!r} is not available in this version yet "
                                    f"(available: {', '.join(cloud_keys())})"))
            continue
        destination = DestinationDeclaration(provider, _scope(provider, raw))
        if any(d.label == destination.label for d in destinations):
            problems.append(Problem(file, lines.line(where), json_path(where) or "provider",
                                    f"destination {destination.label} is listed twice; keep one"))
            continue
        references.extend(Reference(len(destinations), key, value, lines.line(where + (key,)),
                                    json_path(where + (key,))) for key, value in destination.unresolved.items())
        destinations.append(destination)
    if problems:
        return None, problems
    name = data.get("name", default_name)
    if "name" not in data and not _valid_name(name):
        problems.append(Problem(file, None, "name", f"the file name {default_name!r} is not a valid set name; "
                                "add a 'name:' key (lower-case letters, digits, dashes)"))
    targets: list[str] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("targets", [])):
        try:
            url = normalize_url(raw)
        except InvalidUrl as exc:
            problems.append(Problem(file, lines.line(("targets", index)), json_path(("targets", index)), str(exc)))
            continue
        if url in seen:
            duplicates.append(url)
            continue
        seen.add(url)
        targets.append(url)
    origin = _origin(data["origin"], file, lines, problems) if "origin" in data else None
    if problems:
        return None, problems
    defaults = load_schema()["properties"]
    allow_partial, safety = bool(data.get("allowPartial", False)), dict(data.get("safety") or {})
    policy = policy_entries(allow_partial, safety)
    if policy:
        destinations = [DestinationDeclaration(d.provider, d.scope, policy) for d in destinations]
    return PrefetchSetDeclaration(
        name=name,
        source=file,
        destinations=tuple(destinations),
        targets=tuple(targets),
        freshness=data.get("freshness", defaults["freshness"]["default"]),
        wait=data.get("wait", defaults["wait"]["default"]),
        description=data.get("description", ""),
        duplicates=tuple(duplicates),
        origin=origin,
        preflight=data.get("preflight", load_schema()["$defs"]["preflight"]["default"]),
        references=tuple(references),
        allow_partial=allow_partial,
        safety=safety,
    ), []


def _origin(raw: Mapping[str, Any], file: str, lines: "_LineFinder", problems: list[Problem]) -> OriginDeclaration:
    """The origin as declared (already schema-valid), with URLs checked and defaults filled in."""
    where = ("origin",)
    base = raw["publicBaseUrl"]
    try:
        parsed = normalize_url(base)
    except InvalidUrl as exc:
        problems.append(Problem(file, lines.line(where + ("publicBaseUrl",)), "origin.publicBaseUrl", str(exc)))
        parsed = base
    credentials = raw.get("credentials") or {}
    if "profile" in credentials and "config" in credentials:
        problems.append(Problem(file, lines.line(where + ("credentials",)), "origin.credentials",
                                "give either 'profile' (an AWS profile) or 'config' (an entry of the secret stack "
                                "config cdn-prefetch:originCredentials), not both"))
    defs = load_schema()["$defs"]["origin"]["properties"]
    endpoint = raw.get("endpoint")
    return OriginDeclaration(
        bucket=raw["bucket"],
        # normalize_url adds a "/" to a bare host; a key is joined with exactly one "/" later.
        public_base_url=parsed.rstrip("/"),
        endpoint=endpoint.rstrip("/") if endpoint else None,
        region=raw.get("region"),
        prefix=raw.get("prefix", defs["prefix"]["default"]),
        include=tuple(raw.get("include", defs["include"]["default"])),
        exclude=tuple(raw.get("exclude", defs["exclude"]["default"])),
        addressing_style=raw.get("addressingStyle", defs["addressingStyle"]["default"]),
        profile=credentials.get("profile"),
        credentials_config=credentials.get("config"),
        must_not_be_empty=raw.get("mustNotBeEmpty", defs["mustNotBeEmpty"]["default"]),
        line=lines.line(where),
    )


def _scope(provider: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's scope keys as declared, with the schema's defaults filled in (not for a key a
    declared reference fills in: ``domain`` supplies the area)."""
    defs = load_schema()["$defs"]
    spec = cloud(provider)
    filled_by_reference = {ref.fills for ref in spec.references if ref.key in raw}
    scope: dict[str, Any] = {}
    for key in spec.scope_keys:
        if key in raw:
            scope[key] = raw[key]
        elif "default" in defs[key] and key not in filled_by_reference:
            scope[key] = defs[key]["default"]
    return scope


def _reference_problems(mapping: Mapping[str, Any], where: tuple[PathPart, ...], file: str,
                        lines: "_LineFinder") -> list[Problem]:
    """A scope key given by id or by name (EdgeOne: ``zone`` or ``zoneName``): exactly one of them."""
    spec = find(mapping.get("provider"))
    problems: list[Problem] = []
    for ref in spec.references if spec else ():
        if not ref.exclusive:
            continue
        has_id, has_name = ref.fills in mapping, ref.key in mapping
        if has_id and has_name:
            problems.append(Problem(file, lines.line(where + (ref.key,)), json_path(where + (ref.key,)),
                                    f"give the {spec.title} {spec.identity_noun} either by id ({ref.fills}) or by "
                                    f"{ref.noun} ({ref.key}), not both; remove one"))
        elif not (has_id or has_name):
            problems.append(Problem(file, lines.line(where), json_path(where),
                                    f"missing required key '{ref.fills}': "
                                    f"{load_schema()['$defs'][ref.fills]['description']} Or name the {ref.thing} "
                                    f"instead, e.g. {ref.key}: {ref.example}"))
    return problems


def _foreign_scope_keys(mapping: Mapping[str, Any], where: tuple[PathPart, ...], file: str,
                        lines: "_LineFinder") -> list[Problem]:
    """Scope keys of another provider (e.g. an EdgeOne 'zone' on a UCloud destination)."""
    provider = mapping.get("provider")
    spec = find(provider)
    if spec is None:
        return []
    foreign = (all_scope_keys() - set(spec.scope_keys)) & set(mapping)
    return [Problem(file, lines.line(where + (key,)), json_path(where + (key,)),
                    f"key {key!r} does not apply to provider {provider}; remove it") for key in sorted(foreign)]


def _unknown_key_message(key: str, allowed: str) -> str:
    folded = key.lower().replace("-", "")
    if any(word in folded for word in _SECRET_WORDS):
        return (f"key {key!r} would put a secret in the declaration, which is never accepted: remove it, and "
                "give the origin's credentials with origin.credentials.config (an entry of the secret stack config "
                "cdn-prefetch:originCredentials) or origin.credentials.profile, or use the AWS environment variables")
    return f"unknown key {key!r}; allowed keys are: {allowed}"


def _non_text_keys(value: Any, where: tuple[PathPart, ...]) -> Iterable[tuple[tuple[PathPart, ...], Any]]:
    """Mapping keys that are not strings (YAML allows ``1: x`` or a bare ``?``), with where they are."""
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                yield where, key
            else:
                yield from _non_text_keys(child, where + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _non_text_keys(child, where + (index,))


def or_list(items: Iterable[str]) -> str:
    """``a, b or c``: how messages list the choices."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def json_path(parts: Iterable[PathPart]) -> str:
    """``("targets", 2)`` -> ``targets[2]``: the location format used in every message."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _valid_name(name: str) -> bool:
    return bool(re.match(load_schema()["properties"]["name"]["pattern"], name))


def _message(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into what is wrong + how to fix it, in the user's terms."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("description", "")
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        root = load_schema()
        described = (schema.get("properties") or {}).get(missing) or {}
        if "$ref" in described or not described:
            described = root["properties"].get(missing) or root["$defs"].get(missing) or described
        return f"missing required key {missing!r}: {described.get('description', '')}".rstrip(": ")
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{error.instance!r} is not allowed; use one of: {choices}"
    if kind == "type":
        return f"expected {error.validator_value}, got {_type_name(error.instance)}" + (f" ({hint})" if hint else "")
    if kind == "pattern":
        expected = hint[:1].lower() + hint[1:] if hint else f"text matching {error.validator_value}"
        return f"{error.instance!r} is not valid; expected {expected.rstrip('.')}"
    return f"{error.message}" + (f" ({hint})" if hint else "")


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


class _LineFinder:
    """Maps JSON paths to 1-based line numbers in the YAML node tree (JSON is YAML too)."""

    def __init__(self, root: Optional[yaml.Node]):
        self.root = root

    def line(self, parts: Sequence[PathPart]) -> Optional[int]:
        """Line of the deepest node on the path: a mapping entry's key, or a list item."""
        node, found = self.root, self.root
        if node is None:
            return None
        for part in parts:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        child, found = value, key
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = found = node.value[part]
            if child is None:
                break
            node = child
        return found.start_mark.line + 1

    def duplicate_keys(self) -> list[tuple[str, int, str]]:
        """YAML silently keeps the last of two equal keys; a declaration must not."""
        out: list[tuple[str, int, str]] = []

        def walk(node: yaml.Node, parts: tuple[PathPart, ...]) -> None:
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key, value in node.value:
                    name = getattr(key, "value", None)
                    if isinstance(name, str):
                        if name in seen:
                            out.append((json_path(parts + (name,)), key.start_mark.line + 1,
                                        f"key {name!r} appears twice; keep one"))
                        seen.add(name)
                        walk(value, parts + (name,))
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    walk(item, parts + (index,))

        if self.root is not None:
            walk(self.root, ())
        return out
