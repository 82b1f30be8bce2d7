"""The one definition of the dynamic resource's inputs (one shard of a set on one destination).

Input keys: ``set``, ``destination`` (provider, scope and policy), ``targets`` (``{url: desired}``),
``freshness``, ``wait``, and ``shard`` only when the set is split. The outputs repeat them so
``read``/``delete`` (which get outputs) see them, except ``targets``, which outputs carry as
``target_lines`` (see ``TARGET_LINES``). ``desired`` is ``warm``, or ``warm (etag …, N bytes)`` for
an origin object.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping, Optional

from ..declare.model import DestinationDeclaration, PrefetchSetDeclaration
from ..model.clouds import find
from ..model.status import ContentVersion, TargetState, options_token, version_token

# Input keys of the dynamic resource (``shard`` only when the set is split). Outputs repeat them so
# read/delete (which get outputs) see them, except ``targets``: outputs carry it as ``target_lines``.
INPUT_KEYS = ("set", "destination", "targets", "freshness", "wait", "shard")


# The outputs' form of the targets: one string, the sorted URLs one a line; a target whose desired
# value is not plain ``warm`` is written ``url<TAB>desired``. Why not the map: the SDK (de)serialises
# every map value on each RPC (~4-9 us each), and 100,000 targets cross read, refresh-diff and diff
# in the outputs; one string crosses in one piece. Old state (the map under ``targets``) still reads.
TARGET_LINES = "target_lines"


# The desired value of a target with a version: warm, with the content the origin has now (or the lastmod
# a sitemap gives) and/or the set's revision (which may hold any character but a line break, hence the
# greedy last group). A lastmod is normalised (declare/sitemap.py): digits, "-", ":", "T", "." and "Z".
_DESIRED_WITH_VERSION = re.compile(r"^warm \((?:etag (\S+), (\d+) bytes|lastmod ([0-9T:.Z-]+))?"
                                   r"(?:(?:(?<=bytes)|(?<=[0-9Z])); )?(?:revision (.+))?\)$")


def desired_value(content: Optional[ContentVersion], revision: Optional[str] = None) -> str:
    """``warm`` for a URL target; ``warm (etag 9b2cf535d3e1, 2048 bytes)`` for an origin object, ``warm (lastmod
    2026-05-01T10:00:00Z)`` for a sitemap URL; ``warm (revision r42)`` or ``warm (etag 9b2cf535d3e1, 2048 bytes;
    revision r42)`` with a revision."""
    if revision is None:
        return WARM if content is None else f"{WARM} ({content.marker})"
    marker = f"revision {revision}" if content is None else f"{content.marker}; revision {revision}"
    return f"{WARM} ({marker})"


def parse_desired(value: Any) -> tuple[Optional[ContentVersion], Optional[str]]:
    """Inverse of desired_value: (the content version, the revision) a desired value names, each or None."""
    match = _DESIRED_WITH_VERSION.match(value) if isinstance(value, str) and value != WARM else None
    if not match or not (match.group(1) or match.group(3) or match.group(4)):
        return None, None
    etag, size, lastmod, revision = match.groups()
    content = ContentVersion(etag, int(size)) if etag else ContentVersion.of_lastmod(lastmod) if lastmod else None
    return content, revision


def change_note(old: Any, new: Any, purges: bool) -> Optional[str]:
    """What a target's changed desired value asks of the next up, for the preview, e.g.
    ``stale (etag 3f2a…⇒9a0b…): purge, then prefetch`` or ``revision r41⇒r42: purge, then prefetch``;
    None when its version did not change (or the old value names none: nothing to compare)."""
    old_content, old_revision = parse_desired(old)
    new_content, new_revision = parse_desired(new)
    changes = []
    if old_content and new_content and old_content.etag != new_content.etag:
        if old_content.lastmod and new_content.lastmod:
            changes.append(f"stale (lastmod {old_content.lastmod}⇒{new_content.lastmod})")
        else:
            changes.append(f"stale (etag {old_content.etag}⇒{new_content.etag})")
    if new_revision is not None and new_revision != old_revision:
        changes.append(f"revision {old_revision or '(none)'}⇒{new_revision}")
    if not changes:
        return None
    return f"{'; '.join(changes)}: {'purge, then prefetch' if purges else 'prefetch again (onChange: prefetch)'}"


def resource_inputs(set_name: Any, destination: Any, targets: Any, freshness: Any, wait: Any,
                    shard: Optional[tuple[int, int]] = None) -> dict[str, Any]:
    """The dynamic resource's inputs, the one place their keys are written (values may be Pulumi Inputs).

    ``shard`` (index, count) only when the set is split, so an unsplit set's inputs never change.
    """
    props = {"set": set_name, "destination": destination, "targets": targets, "freshness": freshness, "wait": wait}
    if shard is not None:
        props["shard"] = {"index": shard[0], "count": shard[1]}
    return props


@dataclass(frozen=True)
class ShardInputs:
    """The dynamic resource's inputs, typed.

    ``content`` holds the origin's current version of each origin-derived target; URL targets
    have none and keep the plain desired value ``warm``. ``revision`` is the set's declared revision
    (one for every target of the resource), None when it declares none.
    """

    set: str
    destination: Mapping[str, Any]
    targets: tuple[str, ...]
    freshness: str
    wait: str
    content: Mapping[str, ContentVersion] = field(default_factory=dict)
    shard: Optional[tuple[int, int]] = None  # (index, count) of a set split into shards; None: not split
    revision: Optional[str] = None

    @property
    def provider(self) -> str:
        return self.destination["provider"]

    @cached_property
    def options(self) -> Optional[str]:
        """The digest of the destination's declared prefetch options (registry ``prefetch_options``), or None."""
        spec = find(self.provider)
        return options_token(spec.declared_options(self.destination)) if spec else None

    def version(self, url: str) -> Optional[str]:
        """The version a task submitted now for ``url`` is for (model/status.py ``version_token``)."""
        content = self.content.get(url)
        return version_token(content.etag if content else None, self.revision, self.options)

    def to_props(self) -> dict[str, Any]:
        """The resource inputs (``resource_inputs``), with the ``targets`` map of desired values."""
        content, revision = self.content, self.revision
        targets = ({url: desired_value(content.get(url), revision) for url in self.targets}
                   if content or revision is not None else dict.fromkeys(self.targets, WARM))
        return resource_inputs(self.set, dict(self.destination), targets, self.freshness, self.wait, self.shard)

    def output_props(self) -> dict[str, Any]:
        """The inputs as outputs repeat them: ``target_lines`` in place of the ``targets`` map."""
        props = resource_inputs(self.set, dict(self.destination), None, self.freshness, self.wait, self.shard)
        del props["targets"]
        props[TARGET_LINES] = target_lines(self.targets, self.content, self.revision)
        return props

    @classmethod
    def from_declaration(cls, decl: PrefetchSetDeclaration, destination: DestinationDeclaration) -> "ShardInputs":
        return cls(decl.name, destination.as_dict(), decl.targets, decl.freshness, decl.wait, dict(decl.content),
                   revision=decl.revision)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> "ShardInputs":
        """From inputs (the ``targets`` map), new outputs (``target_lines``) or old outputs (the map).

        KeyError when the props hold neither form of the targets; ValueError for a malformed ``shard``.
        """
        targets = props.get("targets")
        if isinstance(targets, Mapping):
            # A map crosses gRPC as a protobuf Struct, which keeps no order: sort, for deterministic batches.
            urls = sorted(targets)
            desired: Iterable[tuple[str, Any]] = targets.items()
        elif isinstance(props.get(TARGET_LINES), str):
            urls, desired = _read_lines(props[TARGET_LINES])
            urls.sort()  # written sorted: a linear check, and the same order whatever wrote them
        else:
            raise KeyError("targets")
        content = {}
        revision = None
        for url, value in desired:
            if value == WARM:
                continue  # a URL target (the common case): no content version
            version, declared = parse_desired(value)
            if version is not None:
                content[url] = version
            if declared is not None:
                revision = declared  # one for the resource (provider check() refuses a mix)
        return cls(
            set=props["set"],
            destination=dict(props["destination"]),
            targets=tuple(urls),
            freshness=props["freshness"],
            wait=props["wait"],
            content=content,
            shard=parse_shard(props.get("shard")),
            revision=revision,
        )


def parse_shard(value: Any) -> Optional[tuple[int, int]]:
    """``{"index": k, "count": K}`` as (k, K); None when absent. ValueError names what is wrong.

    Numbers cross gRPC as doubles (a Struct has no integers): ``1.0`` is read as 1, ``1.5`` refused.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"index", "count"}:
        raise ValueError(f"shard must be a map {{index: k, count: K}}; got {value!r}")
    index, count = _whole(value["index"]), _whole(value["count"])
    if index is None or count is None or not 0 <= index < count:
        raise ValueError(f"shard must have whole numbers 0 <= index < count; got index {value['index']!r}, "
                         f"count {value['count']!r}")
    return index, count


def _whole(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def target_lines(targets: Iterable[str], content: Mapping[str, ContentVersion], revision: Optional[str] = None) -> str:
    """The outputs' ``target_lines``: sorted URLs one a line; ``url<TAB>desired`` for a target with a version."""
    order = sorted(targets)
    if revision is not None:
        return "\n".join(f"{url}\t{desired_value(content.get(url), revision)}" for url in order)
    if not content:
        return "\n".join(order)
    return "\n".join(url if url not in content else f"{url}\t{desired_value(content[url])}" for url in order)


def _read_lines(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(URLs in written order, (url, desired) of the lines that name a desired value other than warm)."""
    if not text:
        return [], []
    lines = text.split("\n")
    if "\t" not in text:
        return lines, []
    urls, desired = [], []
    for line in lines:
        url, tab, value = line.partition("\t")
        urls.append(url)
        if tab:
            desired.append((url, value))
    return urls, desired


def targets_digest(targets: Iterable[str]) -> str:
    """Order-independent digest of the declared targets, so an auditor can match outputs to a declaration."""
    return "sha256:" + hashlib.sha256("".join(url + "\n" for url in sorted(targets)).encode("utf-8")).hexdigest()


WARM = TargetState.WARM.value
