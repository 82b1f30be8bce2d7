"""The declarations' JSON Schema (``schemas/prefetch-set.schema.json``): loading it, the view of a
document the validator needs to see, and its errors in the user's terms."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

from .model import MAX_PROBLEMS
from ..model.durations import DurationTooLong, parse_duration
from ..model.shown import shown


if TYPE_CHECKING:
    import jsonschema


SCHEMA_NAME = "prefetch-set.schema.json"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_NAME
"""In the repository; an installed package carries the schemas as package data (``schema_file``)."""


# Keys that hold secret values: never accepted in a declaration file, wherever they are put.
_SECRET_WORDS = ("secret", "accesskey", "access_key", "password", "token", "privatekey", "private_key")


def schema_file(name: str = SCHEMA_NAME) -> Any:
    """A schema file: the repository's ``schemas/`` when running from it, else the installed package's
    ``<package>.schemas`` (pyproject.toml maps the folder there), through importlib.resources, so that
    validation works from a wheel, a zip or any folder."""
    root = __name__.split(".")[0]
    if root == "components":
        return SCHEMA_PATH.with_name(name)
    from importlib.resources import files

    return files(f"{root}.schemas").joinpath(name)


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    with schema_file().open(encoding="utf-8") as fh:
        return json.load(fh)


# The keywords of the schema's targets array and of its items that schema_view checks itself.
_TARGETS_ARRAY_KEYWORDS = {"type", "items", "description"}


_TARGET_ITEM_KEYWORDS = {"type", "pattern", "description"}


def validation_errors(data: Any, schema: Optional[Mapping[str, Any]] = None) -> Iterator[jsonschema.ValidationError]:
    """The schema validator's errors for ``data``, as it finds them (lazily: a caller may stop early),
    each with its path in ``data``. Checks the schema's own keyword ``maxDuration`` too (validator)."""
    schema = load_schema() if schema is None else schema
    view, kept = schema_view(data, schema)
    for error in validator(schema).iter_errors(bounded_lists(view, schema)):
        path = error.relative_path  # a top-level error's path: the absolute one
        if kept is not None and len(path) > 1 and path[0] == "targets":
            path[1] = kept[path[1]]
        yield error


def schema_view(data: Any, schema: Mapping[str, Any]) -> tuple[Any, Optional[list[int]]]:
    """``data`` to hand the schema validator, and where the targets it hands over were in ``data``:
    the same, except that a ``targets`` list is cut to its first item and the items that fail the
    schema's own item rule (None: not cut).

    Why: jsonschema costs ~13 µs an item, 1.3 s for 100,000 targets that a string type and a regex
    decide. The cut is exact only while the array and item schemas use no keyword beyond these
    (``type: array``/``string``, ``items``, ``pattern``); a schema with any other keyword (say
    ``maxItems``) gets the whole list. The failing items are the validator's to judge, so their errors
    are its own; ``validation_errors`` puts back their index in the whole list.
    """
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, list) or len(targets) < 2 or _looks_at_targets(schema):
        return data, None
    array = (schema.get("properties") or {}).get("targets")
    item = array.get("items") if isinstance(array, dict) else None
    if (not isinstance(item, dict) or set(array) - _TARGETS_ARRAY_KEYWORDS or array.get("type") != "array"
            or set(item) - _TARGET_ITEM_KEYWORDS or item.get("type") != "string"):
        return data, None
    search = _compiled(item["pattern"]).search if "pattern" in item else None
    kept = [0] + [index for index, value in enumerate(targets) if index and (
        type(value) is not str or (search is not None and search(value) is None))]
    return {**data, "targets": [targets[index] for index in kept]}, kept


# Keywords that judge an array by all its items together: a list they apply to is never cut.
_WHOLE_LIST_KEYWORDS = {"contains", "minContains", "maxContains", "uniqueItems", "prefixItems", "unevaluatedItems"}


def bounded_lists(data: Any, schema: Mapping[str, Any], node: Optional[Mapping[str, Any]] = None) -> Any:
    """``data`` with each list longer than its schema's ``maxItems`` cut to ``maxItems`` + 1 items, and
    each mapping that allows no other keys than its own cut to its own and the first MAX_PROBLEMS + 1
    others: the validator still finds the list too long and the keys unknown, and judges the first
    items, and no more (13,000 destinations cost it 5 s; 70,000 unknown keys, a message that names
    each). Follows ``properties``, ``items`` and ``$ref``, which is where the schema puts its lists and
    mappings; returns ``data`` itself when nothing is cut."""
    node = _resolved(schema, schema if node is None else node)
    if isinstance(data, list):
        limit = node.get("maxItems")
        if isinstance(limit, int) and len(data) > limit + 1 and not _WHOLE_LIST_KEYWORDS & set(node):
            data = data[:limit + 1]
        items = node.get("items")
        if not isinstance(items, Mapping):
            return data
        cut_items = [bounded_lists(item, schema, items) if isinstance(item, (list, dict)) else item for item in data]
        return data if all(a is b for a, b in zip(cut_items, data)) else cut_items
    if isinstance(data, dict):
        properties = node.get("properties") or {}
        if node.get("additionalProperties") is False and len(data) > len(properties) + MAX_PROBLEMS + 1:
            others = set([key for key in data if key not in properties][:MAX_PROBLEMS + 1])
            data = {key: value for key, value in data.items() if key in properties or key in others}
        changed = {key: bounded_lists(value, schema, properties[key]) for key, value in data.items()
                   if isinstance(value, (list, dict)) and isinstance(properties.get(key), Mapping)}
        changed = {key: value for key, value in changed.items() if value is not data[key]}
        return {**data, **changed} if changed else data
    return data


def _resolved(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """``node`` with a local ``$ref`` ("#/$defs/name") followed: the target's keywords, then its own."""
    for _ in range(8):
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = {**(target if isinstance(target, Mapping) else {}), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def validator(schema: Mapping[str, Any]) -> jsonschema.Validator:
    """A Draft 2020-12 validator of ``schema`` that also checks ``maxDuration`` (the longest a duration
    may be, e.g. "24h"): the schema's own keyword, which editors ignore and the reference shows."""
    return _validator_class()(schema)


@lru_cache(maxsize=1)
def _validator_class() -> type:
    # Imported here: the provider host imports the declarations for names and types only, and every
    # engine command starts a new host (jsonschema costs ~50 ms of its CPU to import).
    import jsonschema

    def max_duration(validator: Any, longest: str, instance: Any, schema: Any) -> Iterator[Any]:
        try:
            parse_duration(instance, parse_duration(longest))
        except DurationTooLong:
            yield jsonschema.ValidationError(f"{shown(instance)} is longer than {longest}")
        except ValueError:
            return  # not a duration: the pattern says so

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"maxDuration": max_duration})


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


def unknown_key_message(key: str, allowed: str) -> str:
    folded = key.lower().replace("-", "")
    if any(word in folded for word in _SECRET_WORDS):
        return (f"key {shown(key)} would put a secret in the declaration, which is never accepted: remove it, and "
                "give the origin's credentials with origin.credentials.config (an entry of the secret stack config "
                "cdn-prefetch:originCredentials) or origin.credentials.profile, or use the AWS environment variables")
    return f"unknown key {shown(key)}; allowed keys are: {allowed}"


_BOUNDS = {  # keyword -> how a value past it is worded
    "maxLength": "is too long: at most {limit:,} characters",
    "minLength": "is too short: at least {limit:,} character(s)",
    "maxItems": "too many items: at most {limit:,}",
    "minItems": "too few items: at least {limit:,}",
    "maximum": "is too large: at most {limit}",
    "exclusiveMaximum": "is too large: less than {limit}",
    "minimum": "is too small: at least {limit}",
    "exclusiveMinimum": "is too small: more than {limit}",
    "maxDuration": "is too long: at most {limit}",
}


def error_message(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into what is wrong + how to fix it, in the user's terms. The value is
    quoted as ``shown`` quotes it (never jsonschema's message, which quotes it whole)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("description", "")
    kind = error.validator
    value = shown(error.instance)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message  # a key of the schema
        root = load_schema()
        described = (schema.get("properties") or {}).get(missing) or {}
        if "$ref" in described or not described:
            described = root["properties"].get(missing) or root["$defs"].get(missing) or described
        return f"missing required key {missing!r}: {described.get('description', '')}".rstrip(": ")
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{value} is not allowed; use one of: {choices}"
    if kind == "type":
        return f"expected {error.validator_value}, got {_type_name(error.instance)}" + (f" ({hint})" if hint else "")
    if kind == "pattern":
        expected = _expected_form(hint) if hint else f"text matching {error.validator_value}"
        return f"{value} is not valid; expected {expected}"
    if kind in _BOUNDS:
        shape = "" if "Items" in kind else f"{value} "  # a list is cut for the validator (bounded_lists)
        return f"{shape}{_BOUNDS[kind].format(limit=error.validator_value)}" + (f" ({hint})" if hint else "")
    if kind == "const":
        return f"{value} is not allowed here; expected {shown(error.validator_value)}"
    return f"{value} is not valid here ({kind}: {shown(error.validator_value)})" + (f" ({hint})" if hint else "")
def _expected_form(description: str) -> str:
    """A key's description as what its value should be: ``EdgeOne only: the site's zone id, e.g. zone-x.`` ->
    ``the site's zone id, e.g. zone-x`` (which cloud takes the key says nothing about the value's form); a first
    word that is a name (``EdgeOne``, ``URLs``) keeps its capitals."""
    text = re.sub(r"^[^:.]{1,40} only: ", "", description).rstrip(".")
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first[1:] == first[1:].lower() else text


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
