"""Load prefetch-set declarations (YAML/JSON), validate them against schemas/, normalise targets.

Every problem in every file is collected and reported at once, each with file, line, JSON path,
what is wrong and how to fix it, so a user fixes a broken declaration in one pass.
"""

from __future__ import annotations

import os
import re
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

import yaml

from .model import (
    MAX_PROBLEMS,
    DeclarationError,
    DestinationDeclaration,
    OriginDeclaration,
    PrefetchSetDeclaration,
    Problem,
    Reference,
)
from .origin import endpoint_problem
from .sitemap import declared_sitemap
from .schema import error_message, load_schema, unknown_key_message, validation_errors
from .yaml_source import (LimitExceeded, LineFinder, PathPart, collector_paused, json_path,
                                            non_text_keys, parse_yaml, read_text)
from ..model.clouds import all_scope_keys, cloud, cloud_keys, clouds, find, or_list
from ..model.policy import policy_entries
from ..model.shown import cut, shown
from ..model.status import OnChange
from ..model.urls import InvalidUrl, cloud_problems, normalize_url

DECLARATION_SUFFIXES = (".yaml", ".yml", ".json")


def load_sets(sets_dir: Union[str, Path]) -> list[PrefetchSetDeclaration]:
    """Load every declaration file in ``sets_dir`` (sorted by name); raise DeclarationError listing all problems."""
    folder = Path(sets_dir)
    if not folder.is_dir():
        raise DeclarationError(
            [Problem(str(folder), None, "", "the prefetch-sets folder does not exist; create it, or point "
                     "stack config cdn-prefetch:setsDir at the folder that holds your sets")]
        )
    named = sorted(p for p in folder.iterdir() if p.suffix.lower() in DECLARATION_SUFFIXES)
    outside = {path: problem for path in named if (problem := _outside(path, folder)) is not None}
    problems = list(outside.values())
    files = [path for path in named if path not in outside and path.is_file()]
    if not files and not problems:
        raise DeclarationError(
            [Problem(str(folder), None, "", "no prefetch sets found (*.yaml, *.yml, *.json); add one, e.g. "
                     "copy the example in the README")]
        )
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


def _outside(link: Path, folder: Path) -> Optional[Problem]:
    """A symbolic link in the sets folder to a file outside it: refused (a link inside it is read)."""
    if not link.is_symlink():
        return None
    target = Path(os.path.realpath(link))
    if target.is_relative_to(Path(os.path.realpath(folder))):
        return None
    return Problem(str(link), None, "", f"a symbolic link to {cut(str(target), 200)}, outside the sets folder, which "
                   "is never followed; copy the file into the folder, or remove the link")


def parse_file(path: Path) -> tuple[Optional[PrefetchSetDeclaration], list[Problem]]:
    """Parse and validate one file; returns the declaration or the problems (never raises for bad content)."""
    with collector_paused():
        return _parse_file(path)


def _parse_file(path: Path) -> tuple[Optional[PrefetchSetDeclaration], list[Problem]]:
    file = str(path)
    try:
        text = read_text(path)
    except LimitExceeded as exc:
        return None, [Problem(file, None, "", exc.problem)]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, None, "", f"cannot read the file ({cut(str(exc), 200)}); save it as UTF-8 text")]
    try:
        data, node = parse_yaml(text)
    except LimitExceeded as exc:
        return None, [Problem(file, exc.line, json_path(exc.path), exc.problem)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if line is None and isinstance(getattr(exc, "position", None), int):  # the reader's errors: a position
            line = text.count("\n", 0, exc.position) + 1
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        return None, [Problem(file, line, "", f"not valid YAML/JSON ({cut(what, 200)}); fix the syntax at this line")]
    return parse_document(data, node, file=file, default_name=path.stem)


def parse_document(
    data: Any, node: Optional[yaml.Node], *, file: str, default_name: str
) -> tuple[Optional[PrefetchSetDeclaration], list[Problem]]:
    """Validate one parsed document; ``node`` (the YAML node tree) supplies line numbers. At most
    MAX_PROBLEMS problems are listed, and a last one says when there are more."""
    decl, problems = _validated(data, node, file=file, default_name=default_name)
    if len(problems) <= MAX_PROBLEMS:
        return decl, problems
    return decl, problems[:MAX_PROBLEMS] + [Problem(file, None, "", f"more problems than the {MAX_PROBLEMS} listed; "
                                                    "fix these, then look again")]


def _first(found: Iterable[Any]) -> list[Any]:
    """The first of ``found`` that a file's problems can list (and one more, to know there are more)."""
    return list(islice(found, MAX_PROBLEMS + 1))


def _validated(
    data: Any, node: Optional[yaml.Node], *, file: str, default_name: str
) -> tuple[Optional[PrefetchSetDeclaration], list[Problem]]:
    lines = LineFinder(node)
    problems = [Problem(file, line, path, msg) for path, line, msg in lines.duplicate_keys()]
    if data is None:
        return None, problems + [Problem(file, 1, "", "the file is empty; a set needs at least provider and targets "
                                    "(or an origin)")]
    if not isinstance(data, dict):
        return None, problems + [Problem(file, lines.line(()), "", "a set must be a mapping of keys "
                                         "(provider, targets, ...), not a list or a single value")]
    bad_keys = _first(non_text_keys(data, ()))
    if bad_keys:  # the schema validator itself cannot handle them
        return None, problems + [Problem(file, lines.line(where), json_path(where),
                                         f"key {shown(key)} is not text; write keys as names like provider or targets")
                                 for where, key in bad_keys]
    if data.get("preflight") is False:  # YAML 1.1 (PyYAML) reads a bare `off` as false; editors (YAML 1.2) do not
        data = {**data, "preflight": "off"}
    # Sub-errors are reported on their own; the checks below say the rest plainly.
    reported = (e for e in validation_errors(data) if e.validator not in ("allOf", "anyOf", "if", None, "false",
                                                                           "oneOf", "$ref"))
    for error in sorted(_first(reported), key=lambda e: [str(p) for p in e.absolute_path]):
        parts = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            known = (error.schema.get("properties") or {}) if isinstance(error.schema, dict) else {}
            allowed = ", ".join(sorted(k for k in known if k != "$schema"))
            for extra in sorted(set(error.instance) - set(known))[:MAX_PROBLEMS + 1]:
                key_path = parts + (extra,)
                problems.append(Problem(file, lines.line(key_path), json_path(key_path),
                                        unknown_key_message(extra, allowed)))
            continue
        problems.append(Problem(file, lines.line(parts), json_path(parts), error_message(error)))
    if "targets" not in data and "origin" not in data and "sitemap" not in data:
        problems.append(Problem(file, lines.line(()), "", "nothing to keep warm: add 'targets' (a list of URLs), "
                                "an 'origin' (a bucket whose objects become targets), a 'sitemap' (the site's "
                                "sitemaps, whose URLs become targets), or several of them"))
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
    targets, positions, duplicates = _targets(data.get("targets", []), file, lines, problems)
    origin = _origin(data["origin"], file, lines, problems) if "origin" in data else None
    sitemap = declared_sitemap(data["sitemap"], file, lines, problems) if "sitemap" in data else None
    if not problems:
        problems.extend(_cloud_url_problems(targets, positions, origin, destinations, file, lines))
    if problems:
        return None, problems
    defaults = load_schema()["properties"]
    allow_partial, safety = bool(data.get("allowPartial", False)), dict(data.get("safety") or {})
    on_change = data.get("onChange")
    if on_change == OnChange.PURGE_THEN_PREFETCH.value:
        for dest in destinations:
            if not cloud(dest.provider).supports_purge:
                problems.append(Problem(file, lines.line(("onChange",)), "onChange",
                                        f"destination {dest.label} ({dest.provider}) cannot purge; use 'onChange: "
                                        "prefetch' or remove onChange (its default there is prefetch)"))
        if problems:
            return None, problems
    policy = policy_entries(allow_partial, safety, on_change, data.get("pace"))
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
        sitemap=sitemap,
        preflight=data.get("preflight", load_schema()["$defs"]["preflight"]["default"]),
        references=tuple(references),
        allow_partial=allow_partial,
        safety=safety,
        revision=data.get("revision"),
    ), []


def _targets(raw_targets: list[Any], file: str, lines: "LineFinder",
             problems: list[Problem]) -> tuple[list[str], list[int], list[Problem]]:
    """The targets normalised (components/model/urls.py), each once, with where each was declared (its index
    under targets), and a located note for each one dropped as a repeat: two spellings of one URL (RFC 3986
    equivalence) are one target. Past MAX_PROBLEMS notes, a repeat gets a short one (its index): 100,000
    repeats cost 0.1 s instead of 2-3 s, and the warning names the first few anyway."""
    targets: list[str] = []
    positions: list[int] = []
    duplicates: list[Problem] = []
    first: dict[str, int] = {}  # normalised URL -> index of its first spelling
    for index, raw in enumerate(raw_targets):
        try:
            url = normalize_url(raw)
        except InvalidUrl as exc:
            problems.append(Problem(file, lines.line(("targets", index)), f"targets[{index}]", str(exc)))
            if len(problems) > MAX_PROBLEMS:
                break
            continue
        if url not in first:
            first[url] = index
            targets.append(url)
            positions.append(index)
            continue
        if len(duplicates) >= MAX_PROBLEMS:  # counted, not described: the warning names the first few
            duplicates.append(Problem(file, None, f"targets[{index}]", f"repeats targets[{first[url]}]"))
            continue
        where = ("targets", index)
        earlier = f"targets[{first[url]}] (line {lines.line(('targets', first[url]))})"
        same = (f"repeats {earlier}" if raw == raw_targets[first[url]] else
                f"{shown(raw)} is the same URL as {earlier} once normalised (RFC 3986)")
        duplicates.append(Problem(file, lines.line(where), json_path(where),
                                  f"{same}: {cut(url)} counts once; remove one of them"))
    return targets, positions, duplicates


def _cloud_url_problems(targets: list[str], positions: list[int], origin: Optional[OriginDeclaration],
                        destinations: list[DestinationDeclaration], file: str, lines: "LineFinder") -> list[Problem]:
    """What each destination's cloud would refuse among the targets and the origin's base URL (length, hosts),
    located at the URL (components/model/urls.py ``cloud_problems``)."""
    parts: list[tuple[PathPart, ...]] = [("targets", index) for index in positions]
    urls = list(targets)
    if origin is not None:  # every listed object's URL starts with it: its host is theirs
        urls.append(origin.public_base_url + "/")
        parts.append(("origin", "publicBaseUrl"))
    problems: list[Problem] = []
    for dest in destinations:
        for index, message in cloud_problems(urls, cloud(dest.provider), dest.scope, lambda i: json_path(parts[i])):
            problems.append(Problem(file, lines.line(parts[index]), json_path(parts[index]),
                                    f"destination {dest.label}: {message}"))
    return problems


def _origin(raw: Mapping[str, Any], file: str, lines: "LineFinder", problems: list[Problem]) -> OriginDeclaration:
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
    allow_link_local = raw.get("allowLinkLocal", defs["allowLinkLocal"]["default"])
    wrong = endpoint_problem(endpoint, allow_link_local) if endpoint else None
    if wrong is not None:
        problems.append(Problem(file, lines.line(where + ("endpoint",)), "origin.endpoint", wrong))
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
        allow_link_local=allow_link_local,
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
                        lines: "LineFinder") -> list[Problem]:
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
                        lines: "LineFinder") -> list[Problem]:
    """Scope keys of another provider (e.g. an EdgeOne 'zone' on a UCloud destination)."""
    provider = mapping.get("provider")
    spec = find(provider)
    if spec is None:
        return []
    foreign = (all_scope_keys() - set(spec.scope_keys)) & set(mapping)
    return [Problem(file, lines.line(where + (key,)), json_path(where + (key,)),
                    f"key {key!r} does not apply to provider {provider}; remove it") for key in sorted(foreign)]


def _valid_name(name: str) -> bool:
    return bool(re.match(load_schema()["properties"]["name"]["pattern"], name))


