"""A declaration file's text as data plus where each value is: one libyaml parse gives both, and
JSON paths map to line numbers for every message (JSON is YAML too)."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import yaml

PathPart = Union[str, int]


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


def non_text_keys(value: Any, where: tuple[PathPart, ...]) -> Iterable[tuple[tuple[PathPart, ...], Any]]:
    """Mapping keys that are not strings (YAML allows ``1: x`` or a bare ``?``), with where they are."""
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                yield where, key
            else:
                yield from non_text_keys(child, where + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from non_text_keys(child, where + (index,))


def json_path(parts: Iterable[PathPart]) -> str:
    """``("targets", 2)`` -> ``targets[2]``: the location format used in every message."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LineFinder:
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


