"""The declaration reference cannot drift from the schema (issue #7)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
gen_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_reference)


def schema_keys(node, schema, seen=None):
    """Every property name anywhere in the schema, following $refs."""
    seen = set() if seen is None else seen
    node = gen_reference.resolve(schema, node)
    for key, child in node.get("properties", {}).items():
        seen.add(key)
        schema_keys(child, schema, seen)
    for key in ("items",):
        if isinstance(node.get(key), dict):
            schema_keys(node[key], schema, seen)
    for definition in node.get("$defs", {}).values():
        schema_keys(definition, schema, seen)
    return seen


def test_committed_reference_is_what_the_schema_generates():
    committed = (ROOT / "docs" / "declaration-reference.md").read_text(encoding="utf-8")
    assert committed == gen_reference.render(), \
        "docs/declaration-reference.md is out of date: run venv/bin/python scripts/gen_reference.py"


def test_every_schema_key_is_in_the_reference():
    schema = json.loads((ROOT / "schemas" / "prefetch-set.schema.json").read_text())
    reference = (ROOT / "docs" / "declaration-reference.md").read_text(encoding="utf-8")
    keys = schema_keys(schema, schema)
    assert {"zone", "targets", "freshness", "origin", "bucket", "headers"} <= keys  # the walk reaches nested keys
    missing = sorted(k for k in keys if f"`{k}`" not in reference and f".{k}`" not in reference)
    assert missing == []


def test_example_declarations_point_editors_at_the_schema():
    for path in sorted((ROOT / "prefetch-sets").glob("*.y*ml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/prefetch-set.schema.json", path
