"""A declaration file's text as data plus where each value is: one libyaml parse gives both, and
JSON paths map to line numbers for every message (JSON is YAML too).

The parse does bounded work whatever the file holds. A file of more than ``MAX_FILE_BYTES`` is not
read; nesting deeper than ``MAX_DEPTH`` and more than ``MAX_VALUES`` values (an alias, or a merge
key ``<<``, counted as the values it repeats) are refused at the line where the limit is passed,
before anything is built from them. PyYAML's own composer recurses once per level (the C one
crashes the process near depth 30,000) and expands aliases wherever the data is walked: a file
under 1 KB of aliases of aliases stands for billions of values. So the node tree is composed here,
from libyaml's events, with an explicit stack.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import yaml
from yaml.composer import ComposerError
from yaml.constructor import BaseConstructor, ConstructorError, SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent, StreamEndEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..model.shown import cut, shown

PathPart = Union[str, int]

#: Largest declaration file read: 16 MiB, 120,000 targets of 140 characters.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Deepest nesting of lists and mappings; a set needs 5 (destinations[0].headers[0] is a mapping at depth 5).
MAX_DEPTH = 64
#: Most values (scalars, lists and mappings; an alias counted as what it repeats) in one file. A set of
#: 100,000 targets holds 100,000 and a few; the costliest file of this many values is read in about
#: 1 s of CPU, with room under issue 17's 2 s on a busy machine (bench/RESULTS.md).
MAX_VALUES = 120_000
#: Longest number (in characters): Python converts no more than 4,300 digits, and a sexagesimal
#: ``1:00:00:...`` costs the square of its length; no key of a declaration takes more than 6 digits.
MAX_NUMBER_CHARS = 40

_PATH_CHARS = 120  # a JSON path in a message: longer ones are cut (a long key, a deep path)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"

# libyaml when PyYAML was built with it (its wheels are): ~0.4 s for 100,000 targets, where the pure-
# Python loader takes ~5 s a pass (and this used to take two). For a valid document both build the same
# nodes and line marks. For a broken one libyaml words the problem differently but names the same line
# (tests/test_declarations.py), and it accepts a few things the pure loader refuses (a tab after `key:`).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LimitExceeded(yaml.MarkedYAMLError):
    """The file is past a limit of the parse: ``problem`` says which and what to do, ``problem_mark``
    (when known) where, ``path`` the JSON path there."""

    def __init__(self, problem: str, mark: Optional[yaml.Mark] = None, path: Sequence[PathPart] = ()):
        super().__init__(problem=problem, problem_mark=mark)
        self.path = tuple(path)

    @property
    def line(self) -> Optional[int]:
        return self.problem_mark.line + 1 if self.problem_mark is not None else None


def read_text(path: Path) -> str:
    """The file's text, read only if it is at most MAX_FILE_BYTES (UnicodeDecodeError if not UTF-8)."""
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise LimitExceeded(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB, the most a declaration may be; "
                            "split its targets over several sets (one file each), or let an origin list them")
    return data.decode("utf-8")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while one file is parsed and validated.

    The parse builds up to MAX_VALUES nodes and values and no cycle among them (an alias inside the
    value it names is refused), and every collection of the oldest generation, which allocations
    trigger, walks them all again: it doubles the time of a file of 70,000 keys. The little cyclic
    garbage made meanwhile (the validator's errors) is collected when the collector is back.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def parse_yaml(text: str, loader_class: type = _SAFE_LOADER) -> tuple[Any, Optional[yaml.Node]]:
    """The data and its node tree (for line numbers) from ONE parse: what ``yaml.safe_load`` returns,
    built from the node tree that ``yaml.compose`` returns, with the limits of this module (LimitExceeded)."""
    loader = loader_class(text)
    try:
        node = _compose(loader)
    finally:
        loader.dispose()
    return (_Constructor().construct_document(node) if node is not None else None), node


def _compose(loader: Any) -> Optional[yaml.Node]:
    """PyYAML's ``Composer.get_single_node``, with an explicit stack and the limits.

    A stack frame is [node, values, anchor]: ``values`` counts the values the node stands for, its
    own and its aliases', so that an alias of it adds them all. A mapping's items are kept flat
    (key, value, key, ...) until its end.
    """
    get, resolve = loader.get_event, loader.resolve
    get()  # stream start
    if loader.check_event(StreamEndEvent):
        get()
        return None
    get()  # document start
    anchors: dict[str, yaml.Node] = {}
    sizes: dict[str, int] = {}  # anchor -> the values its node stands for, once the node is complete
    stack: list[list[Any]] = []
    total = 0
    while True:
        event = get()
        kind = event.__class__
        if kind is ScalarEvent:
            tag = event.tag
            node = ScalarNode(resolve(ScalarNode, event.value, event.implicit) if tag is None or tag == "!" else tag,
                              event.value, event.start_mark, event.end_mark, style=event.style)
            size = 1
            total += 1
            if event.anchor is not None:
                _register(anchors, event, node)
                sizes[event.anchor] = 1
        elif kind is SequenceStartEvent or kind is MappingStartEvent:
            if len(stack) >= MAX_DEPTH:
                raise LimitExceeded(f"lists and mappings nest more than {MAX_DEPTH} deep here, the most a declaration "
                                    "may (a set needs 5: destinations[0].headers[0]); flatten this value",
                                    event.start_mark, _path(stack))
            node_class = SequenceNode if kind is SequenceStartEvent else MappingNode
            tag = event.tag
            node = node_class(resolve(node_class, None, event.implicit) if tag is None or tag == "!" else tag, [],
                              event.start_mark, None, flow_style=event.flow_style)
            total += 1
            if total > MAX_VALUES:
                raise _too_many(event, stack)
            if event.anchor is not None:
                _register(anchors, event, node)
            stack.append([node, 1, event.anchor])
            continue
        elif kind is AliasEvent:
            node, size = _alias(anchors, sizes, event, stack)
            total += size
        else:  # the end of the innermost list or mapping: its values were counted as they came
            node, size, anchor = stack.pop()
            node.end_mark = event.end_mark
            if node.__class__ is MappingNode:
                flat = node.value
                node.value = list(zip(flat[::2], flat[1::2]))
            if anchor is not None:
                sizes[anchor] = size
        if total > MAX_VALUES:
            raise _too_many(event, stack)
        if not stack:
            break
        frame = stack[-1]
        frame[0].value.append(node)
        frame[1] += size
    get()  # document end
    if not loader.check_event(StreamEndEvent):
        event = get()
        raise ComposerError("expected a single document in the stream", node.start_mark,
                            "but found another document", event.start_mark)
    get()
    return node


def _register(anchors: dict[str, yaml.Node], event: Any, node: yaml.Node) -> None:
    """Remember an anchored node (as PyYAML does: an anchor given twice is an error)."""
    anchor = event.anchor
    if anchor in anchors:
        raise ComposerError(f"found duplicate anchor {shown(anchor)}; first occurrence", anchors[anchor].start_mark,
                            "second occurrence", event.start_mark)
    anchors[anchor] = node


def _alias(anchors: dict[str, yaml.Node], sizes: dict[str, int], event: Any,
           stack: list[list[Any]]) -> tuple[yaml.Node, int]:
    """The node an alias names and the values it repeats; an alias inside the value it names is refused
    (PyYAML would build a list or mapping that contains itself, and every walk of it would never end)."""
    anchor = event.anchor
    if anchor not in anchors:
        raise ComposerError(None, None, f"found undefined alias {shown(anchor)}", event.start_mark)
    if anchor not in sizes:
        raise LimitExceeded(f"alias *{cut(anchor)} is inside the value it names, which would then contain itself; "
                            "write the value out instead", event.start_mark, _path(stack))
    return anchors[anchor], sizes[anchor]


def _too_many(event: Any, stack: list[list[Any]]) -> LimitExceeded:
    """The file passes MAX_VALUES at ``event``: an alias that repeats many values, or just many values."""
    if event.__class__ is AliasEvent:
        return LimitExceeded(f"alias *{cut(event.anchor)} brings the file past {MAX_VALUES:,} values, the most a "
                             "declaration may hold (an alias, or a merge key <<, counts as the values it repeats); "
                             "write the values out once instead of repeating them", event.start_mark, _path(stack))
    return LimitExceeded(f"the file holds more than {MAX_VALUES:,} values (targets, keys, list items), the most a "
                         "declaration may; split its targets over several sets (one file each), or let an origin "
                         "list them", event.start_mark, _path(stack))


def _path(stack: list[list[Any]]) -> tuple[PathPart, ...]:
    """The JSON path of the value being composed: each open list's next index, each open mapping's key."""
    parts: list[PathPart] = []
    for node, _, _ in stack:
        items = node.value
        if node.__class__ is SequenceNode:
            parts.append(len(items))
        elif len(items) % 2:  # a key is complete: its value is being composed
            key = items[-1]
            parts.append(key.value if key.__class__ is ScalarNode else "?")
        else:
            break  # a key is being composed
    return tuple(parts)


class _Constructor(SafeConstructor):
    """PyYAML's safe constructor, except that:

    - merge keys (``<<``) are merged without rewriting the node tree: its keys and lines stay as
      written, for the duplicate-key check and line numbers (an explicit key beside ``<<: *defaults``
      overrides it, it does not appear twice);
    - a number longer than MAX_NUMBER_CHARS is refused, and a value an explicit tag does not fit is a
      located error, not a Python exception (``_located``).
    """

    def __init__(self) -> None:
        super().__init__()
        self._merges: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, MappingNode) and any(key.tag in (_MERGE_TAG, _VALUE_TAG) for key, _ in node.value):
            node = MappingNode(node.tag, self._merged(node, 0), node.start_mark, node.end_mark, node.flow_style)
        return BaseConstructor.construct_mapping(self, node, deep=deep)

    def _merged(self, node: MappingNode, depth: int) -> list[tuple[yaml.Node, yaml.Node]]:
        """The pairs of ``node`` with its merges done as PyYAML's ``flatten_mapping`` does them (merged
        pairs first, the first mapping listed winning; then its own), as a new list."""
        if id(node) in self._merges:
            return self._merges[id(node)]
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"merge keys (<<) merge mappings that merge others more than {MAX_DEPTH} deep; "
                                "write the keys out", node.start_mark)
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in reversed(sources):
                    if not isinstance(source, MappingNode):
                        raise ConstructorError("while constructing a mapping", node.start_mark,
                                               f"expected a mapping or list of mappings for merging, but found "
                                               f"{source.id}", source.start_mark)
                    merged.extend(self._merged(source, depth + 1))
            elif key.tag == _VALUE_TAG:  # "=" as a key: text, as PyYAML makes it
                own.append((ScalarNode("tag:yaml.org,2002:str", key.value, key.start_mark, key.end_mark, key.style),
                            value))
            else:
                own.append((key, value))
        pairs = self._merges[id(node)] = merged + own
        return pairs


def _located(construct: Any, longest: Optional[int] = None) -> Any:
    """A scalar constructor whose Python errors become a located ConstructorError: an explicit tag on a
    value it does not fit (``!!int abc``, ``!!bool maybe``, ``!!timestamp x``) raises ValueError,
    KeyError or AttributeError in PyYAML. ``longest``: the most characters it reads (LimitExceeded)."""
    def located(self: SafeConstructor, node: ScalarNode) -> Any:
        if longest is not None and len(node.value) > longest:
            raise LimitExceeded(f"a number of {len(node.value):,} characters; no key of a declaration takes one "
                                f"longer than {longest} (quote it if it is text)", node.start_mark)
        try:
            return construct(self, node)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError):
            raise ConstructorError(None, None, f"{shown(node.value)} cannot be read as {node.tag.rsplit(':', 1)[-1]}",
                                   node.start_mark) from None
    return located


_Constructor.add_constructor("tag:yaml.org,2002:int", _located(SafeConstructor.construct_yaml_int, MAX_NUMBER_CHARS))
for _kind, _construct in (("float", SafeConstructor.construct_yaml_float), ("bool", SafeConstructor.construct_yaml_bool),
                          ("timestamp", SafeConstructor.construct_yaml_timestamp)):
    _Constructor.add_constructor(f"tag:yaml.org,2002:{_kind}", _located(_construct))


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
    """``("targets", 2)`` -> ``targets[2]``: the location format used in every message (cut when long)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return cut(out, _PATH_CHARS)


class LineFinder:
    """Maps JSON paths to 1-based line numbers in the YAML node tree (JSON is YAML too)."""

    def __init__(self, root: Optional[yaml.Node]):
        self.root = root
        # id(mapping) -> its own keys, and the mappings its merge keys bring
        self._keys: dict[int, tuple[dict[str, tuple[yaml.Node, yaml.Node]], list[yaml.Node]]] = {}

    def line(self, parts: Sequence[PathPart]) -> Optional[int]:
        """Line of the deepest node on the path: a mapping entry's key, or a list item (a key a merge
        ``<<`` brings: where the merged mapping has it)."""
        node, found = self.root, self.root
        if node is None:
            return None
        for part in parts:
            child = None
            if isinstance(node, yaml.MappingNode):
                pair = self._entry(node, str(part), 0)
                if pair is not None:
                    found, child = pair
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                child = found = node.value[part]
            if child is None:
                break
            node = child
        return found.start_mark.line + 1

    def _entry(self, node: yaml.MappingNode, name: str, depth: int) -> Optional[tuple[yaml.Node, yaml.Node]]:
        """The (key, value) nodes of ``name`` in a mapping: its own key (the first, if given twice), else
        the one its merges bring (the first mapping listed first). Each mapping's keys are indexed once:
        a message per key of a mapping of 100,000 keys looks each up in one step."""
        indexed = self._keys.get(id(node))
        if indexed is None:
            keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
            merged: list[yaml.Node] = []
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
                elif isinstance(key, yaml.ScalarNode):
                    keys.setdefault(key.value, (key, value))
            indexed = self._keys[id(node)] = (keys, merged)
        keys, merged = indexed
        if name in keys:
            return keys[name]
        for source in merged if depth < MAX_DEPTH else ():
            pair = self._entry(source, name, depth + 1) if isinstance(source, yaml.MappingNode) else None
            if pair is not None:
                return pair
        return None

    def duplicate_keys(self) -> list[tuple[str, int, str]]:
        """YAML silently keeps the last of two equal keys; a declaration must not. Each node is looked at
        once (not again where an alias repeats it); a key beside a merge ``<<`` overrides the merged one."""
        out: list[tuple[str, int, str]] = []
        seen_nodes: set[int] = set()
        todo: list[tuple[yaml.Node, tuple[PathPart, ...]]] = [(self.root, ())] if self.root is not None else []
        while todo:
            node, parts = todo.pop()
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            children: list[tuple[yaml.Node, tuple[PathPart, ...]]] = []
            if isinstance(node, yaml.MappingNode):
                names: set[str] = set()
                for key, value in node.value:
                    name = getattr(key, "value", None)
                    if key.tag == _MERGE_TAG:
                        children.append((value, parts))
                    elif isinstance(name, str):
                        if name in names:
                            out.append((json_path(parts + (name,)), key.start_mark.line + 1,
                                        f"key {shown(name)} appears twice; keep one"))
                        names.add(name)
                        if value.__class__ is not ScalarNode:
                            children.append((value, parts + (name,)))
            elif isinstance(node, yaml.SequenceNode):
                children = [(item, parts + (index,)) for index, item in enumerate(node.value)
                            if item.__class__ is not ScalarNode]
            todo.extend(reversed(children))  # depth first in document order: a node is met where it is written
        return sorted(out, key=lambda found: found[1])

