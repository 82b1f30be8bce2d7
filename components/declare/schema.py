"""The declarations' JSON Schema (``schemas/prefetch-set.schema.json``): loading it, the view of a
document the validator needs to see, and its errors in the user's terms."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..model.urls import shown

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


def unknown_key_message(key: str, allowed: str) -> str:
    folded = key.lower().replace("-", "")
    if any(word in folded for word in _SECRET_WORDS):
        return (f"key {key!r} would put a secret in the declaration, which is never accepted: remove it, and "
                "give the origin's credentials with origin.credentials.config (an entry of the secret stack config "
                "cdn-prefetch:originCredentials) or origin.credentials.profile, or use the AWS environment variables")
    return f"unknown key {key!r}; allowed keys are: {allowed}"


def error_message(error: jsonschema.ValidationError) -> str:
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
        return f"{shown(error.instance)} is not valid; expected {expected.rstrip('.')}"  # a URL's userinfo redacted
    return f"{error.message}" + (f" ({hint})" if hint else "")


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
