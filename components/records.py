"""The resource's recorded state: program inputs, provider outputs (the audit record), and the
inputs a refresh writes back so the engine's own diff shows each drifted target.

Pure functions: a plan in, plain dicts out (and back), so the shape is tested without an engine.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from .declarations import DestinationDeclaration, PrefetchSetDeclaration
from .reconcile import Plan
from .status import ALL_STATES, ContentVersion, Observation, TargetState, TargetStatus, format_time, parse_time

OUTPUTS_VERSION = 1
WARM = TargetState.WARM.value
# Input keys of the dynamic resource (``shard`` only when the set is split). Outputs repeat them so
# read/delete (which get outputs) see them, except ``targets``: outputs carry it as ``target_lines``.
INPUT_KEYS = ("set", "destination", "targets", "freshness", "wait", "shard")
# The outputs' form of the targets: one string, the sorted URLs one a line; a target whose desired
# value is not plain ``warm`` is written ``url<TAB>desired``. Why not the map: the SDK (de)serialises
# every map value on each RPC (~4-9 us each), and 100,000 targets cross read, refresh-diff and diff
# in the outputs; one string crosses in one piece. Old state (the map under ``targets``) still reads.
TARGET_LINES = "target_lines"
DRIFTED_LIST_LIMIT = 100
# ``observed`` records, per target, the task that decided its status: [state, task id, time, reason]
# plus the ETag for origin targets. Up to this many targets it is a readable map {url: record}.
# Above it, each distinct record is stored once in a table and every target names its record by
# index, in sorted-URL order, run-length encoded: 100,000 targets in 100 tasks cost a few kB of
# state instead of ~11 MB, and the provider host (de)serialises a handful of values instead of
# 500,000. prior_observations and audit_entry read both forms.
COMPACT_OBSERVED_ABOVE = 256
OBSERVED_ENCODING = "records-by-target-index"
_NO_RECORD = "-"  # in the index: a target without a task (missing)
_STATE_VALUES = {state: state.value for state in ALL_STATES}  # Enum.value is a slow descriptor
# The desired value of an origin-derived target: warm, with the content the origin has now.
_DESIRED_WITH_CONTENT = re.compile(r"^warm \(etag (\S+), (\d+) bytes\)$")


def desired_value(content: Optional[ContentVersion]) -> str:
    """``warm`` for a URL target; ``warm (etag 9b2cf535d3e1, 2048 bytes)`` for an origin object."""
    return WARM if content is None else f"{WARM} ({content.marker})"


def parse_desired(value: Any) -> Optional[ContentVersion]:
    """Inverse of desired_value: the content version a desired value names, or None."""
    match = _DESIRED_WITH_CONTENT.match(value) if isinstance(value, str) else None
    return ContentVersion(match.group(1), int(match.group(2))) if match else None


@dataclass(frozen=True)
class SetInputs:
    """The dynamic resource's inputs, typed.

    ``content`` holds the origin's current version of each origin-derived target; URL targets
    have none and keep the plain desired value ``warm``.
    """

    set: str
    destination: Mapping[str, Any]
    targets: tuple[str, ...]
    freshness: str
    wait: str
    content: Mapping[str, ContentVersion] = field(default_factory=dict)
    shard: Optional[tuple[int, int]] = None  # (index, count) of a set split into shards; None: not split

    @property
    def provider(self) -> str:
        return self.destination["provider"]

    def to_props(self) -> dict[str, Any]:
        """The resource inputs. ``shard`` only when split, so an unsplit set's inputs never change."""
        content = self.content
        props = {
            "set": self.set,
            "destination": dict(self.destination),
            "targets": ({url: desired_value(content.get(url)) for url in self.targets} if content
                        else dict.fromkeys(self.targets, WARM)),
            "freshness": self.freshness,
            "wait": self.wait,
        }
        if self.shard is not None:
            props["shard"] = {"index": self.shard[0], "count": self.shard[1]}
        return props

    def output_props(self) -> dict[str, Any]:
        """The inputs as outputs repeat them: ``target_lines`` in place of the ``targets`` map."""
        props = {
            "set": self.set,
            "destination": dict(self.destination),
            TARGET_LINES: target_lines(self.targets, self.content),
            "freshness": self.freshness,
            "wait": self.wait,
        }
        if self.shard is not None:
            props["shard"] = {"index": self.shard[0], "count": self.shard[1]}
        return props

    @classmethod
    def from_declaration(cls, decl: PrefetchSetDeclaration, destination: DestinationDeclaration) -> "SetInputs":
        return cls(decl.name, destination.as_dict(), decl.targets, decl.freshness, decl.wait, dict(decl.content))

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> "SetInputs":
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
        for url, value in desired:
            if value == WARM:
                continue  # a URL target (the common case): no content version
            version = parse_desired(value)
            if version is not None:
                content[url] = version
        return cls(
            set=props["set"],
            destination=dict(props["destination"]),
            targets=tuple(urls),
            freshness=props["freshness"],
            wait=props["wait"],
            content=content,
            shard=parse_shard(props.get("shard")),
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


def target_lines(targets: Iterable[str], content: Mapping[str, ContentVersion]) -> str:
    """The outputs' ``target_lines``: sorted URLs one a line; ``url<TAB>desired`` for an origin object."""
    order = sorted(targets)
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


def output_targets(outputs: Optional[Mapping[str, Any]]) -> Optional[dict[str, str]]:
    """{url: desired} of some outputs, new (``target_lines``) or old (``targets`` map); None if neither reads."""
    form = _output_targets_form(outputs) if outputs else None
    if form is None:
        return None
    urls, desired = form
    result = dict.fromkeys(urls, WARM)
    result.update(desired)
    return result


def _target_order(outputs: Mapping[str, Any]) -> Optional[list[str]]:
    """Every target of some outputs, sorted (the order of the compact ``observed``); None if unreadable."""
    form = _output_targets_form(outputs)
    if form is None:
        return None
    urls, _ = form
    urls.sort()  # already sorted when we wrote it: a linear pass
    return urls


def _output_targets_form(outputs: Mapping[str, Any]) -> Optional[tuple[list[str], Iterable[tuple[str, str]]]]:
    """(every URL, (url, desired) of those not plain warm) from the old ``targets`` map or ``target_lines``."""
    targets = outputs.get("targets")
    if isinstance(targets, Mapping):
        return list(targets), [(url, value) for url, value in targets.items() if value != WARM]
    text = outputs.get(TARGET_LINES)
    if not isinstance(text, str):
        return None
    return _read_lines(text)


@dataclass(frozen=True)
class SubmittedTask:
    """One submit this resource made: never forgotten, whatever happens after."""

    task_id: str
    at: datetime
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "at": format_time(self.at), "count": self.count}


def targets_digest(targets: Iterable[str]) -> str:
    """Order-independent digest of the declared targets, so an auditor can match outputs to a declaration."""
    return "sha256:" + hashlib.sha256("".join(url + "\n" for url in sorted(targets)).encode("utf-8")).hexdigest()


def build_outputs(
    inputs: SetInputs,
    plan: Plan,
    *,
    verified_at: datetime,
    submitted: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The provider outputs: the inputs (targets as ``target_lines``), per-target last known task,
    summary, bounded drift list."""
    counts = {state.value: 0 for state in ALL_STATES}
    records: dict[str, tuple] = {}
    value_of = _STATE_VALUES
    for url, status in plan.statuses.items():
        state = value_of[status.state]
        counts[state] += 1
        if status.task_id:
            record: tuple = (state, status.task_id, format_time(status.at) if status.at else "", status.reason or "")
            if status.content:
                record += (status.content,)  # the ETag this task was submitted for
            records[url] = record
    if len(plan.statuses) > COMPACT_OBSERVED_ABOVE:
        observed: dict[str, Any] = compact_observed(records, sorted(plan.statuses))
    else:
        observed = {url: list(record) for url, record in records.items()}
    total = len(plan.statuses)
    drifted = plan.drifted
    return {
        **inputs.output_props(),
        "observed": observed,
        "submitted": [dict(s) for s in submitted],
        "summary": {
            "version": OUTPUTS_VERSION,
            "total": total,
            "counts": counts,
            "warm_ratio": round(counts[WARM] / total, 4) if total else 1.0,
            "in_sync": not drifted,
            "verified_at": format_time(verified_at),
            "digest": targets_digest(inputs.targets),
        },
        "drifted": [drift_entry(s) for s in drifted[:DRIFTED_LIST_LIMIT]],
        "drifted_total": len(drifted),
    }


def compact_observed(records: Mapping[str, Sequence[str]], order: Sequence[str]) -> dict[str, Any]:
    """The compact ``observed``: each distinct record once, and per URL of ``order`` its record's index.

    ``order`` is every target, sorted (the order the reader rebuilds from the outputs' targets);
    a target without a record gets ``-``. Runs of one index are written ``<index>*<count>``.
    """
    table: list[list[str]] = []
    numbers: dict[tuple, int] = {}
    runs: list[tuple[int, int]] = []  # (record number, or -1 for no record; run length)
    previous, run = None, 0
    get = records.get
    for url in order:
        record = get(url)
        if record is None:
            number = -1
        else:
            key = record if record.__class__ is tuple else tuple(record)
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = len(table)
                table.append(list(key))
        if number == previous:
            run += 1
            continue
        if previous is not None:
            runs.append((previous, run))
        previous, run = number, 1
    if previous is not None:
        runs.append((previous, run))
    index = ",".join((_NO_RECORD if number < 0 else str(number)) + ("" if count == 1 else f"*{count}")
                     for number, count in runs)
    return {"encoding": OBSERVED_ENCODING, "records": table, "index": index}


def is_compact(observed: Any) -> bool:
    return isinstance(observed, Mapping) and observed.get("encoding") == OBSERVED_ENCODING


def observed_records(outputs: Optional[Mapping[str, Any]]) -> dict[str, list]:
    """``observed`` of some outputs as the readable map {url: record}, whichever form they hold.

    A compact form that does not fit the outputs' targets (never written so) reads as empty: an
    unreadable record is no evidence, and history still decides.
    """
    if not outputs:
        return {}
    observed = outputs.get("observed") or {}
    if not is_compact(observed):
        return dict(observed) if isinstance(observed, Mapping) else {}
    return dict(_expand(observed, outputs))


def _expand(observed: Mapping[str, Any], outputs: Mapping[str, Any],
            wanted: Optional[set[int]] = None) -> Iterator[tuple[str, Any]]:
    """(url, record) for every target with a record, from the compact form; nothing if it does not fit.

    The order of targets comes from the outputs (``target_lines`` or the old ``targets`` map). With
    ``wanted`` (indexes into the record table), only targets of those records come out, and when
    it is empty the targets are not even read. The whole index is checked before the first pair
    comes out; the pairs themselves are produced lazily (100,000 targets need no list of 100,000 pairs).
    """
    table, index = observed.get("records"), observed.get("index")
    if not isinstance(table, list) or not isinstance(index, str):
        return iter(())
    runs: list[tuple[Any, int]] = []  # (record or None, how many targets in a row)
    position = 0
    try:
        for token in index.split(",") if index else ():
            number, _, count = token.partition("*")
            repeat = int(count) if count else 1
            if repeat < 1:
                return iter(())
            record = None
            if number != _NO_RECORD:
                value = int(number)
                if value < 0:
                    return iter(())
                record = table[value]
                if wanted is not None and value not in wanted:
                    record = None
            runs.append((record, repeat))
            position += repeat
    except (ValueError, IndexError):
        return iter(())
    if wanted is not None and not wanted:
        return iter(())  # nothing asked for: the targets need not be read (index checked all the same)
    order = _target_order(outputs)
    if order is None or position != len(order):
        return iter(())
    return _pairs(order, runs)


def _pairs(order: list[str], runs: list[tuple[Any, int]]) -> Iterator[tuple[str, Any]]:
    position = 0
    for record, repeat in runs:
        if record is not None:
            for url in order[position:position + repeat]:
                yield url, record
        position += repeat


def drift_entry(status: TargetStatus) -> dict[str, Any]:
    return {
        "url": status.url,
        "state": status.state.value,
        "status": status.describe(),
        "reason": status.reason or "",
        "task_id": status.task_id or "",
        "at": format_time(status.at) if status.at else "",
    }


def refreshed_inputs(inputs: SetInputs, plan: Plan) -> dict[str, Any]:
    """Inputs as the live state has them: each drifted target's value becomes its status in plain words.

    The engine diffs these against the program's inputs (``warm``, or ``warm (etag …)`` for an
    origin object), so a preview shows exactly the drifted targets, each with its live status. A
    warm target keeps its desired value, content marker included: when the program then lists a
    new ETag for it, the diff shows the old and the new content of exactly that target.
    """
    props = inputs.to_props()
    desired = props["targets"]
    statuses = plan.statuses
    props["targets"] = {url: desired[url] if statuses[url].state is TargetState.WARM else statuses[url].describe()
                        for url in inputs.targets}
    return props


def prior_observations(outputs: Optional[Mapping[str, Any]],
                       older_than: Optional[datetime] = None) -> list[Observation]:
    """Observations recorded in earlier outputs: they keep old results the cloud's history has dropped.

    With ``older_than``, only records created before that time: the caller reads the cloud's history
    from then on, which is authoritative there. In the compact form a record is judged once for all
    its targets, and when no record is that old the targets are not read at all (the common case
    of a set refreshed within its history window: no 100,000-URL parse).
    """
    if not outputs:
        return []
    observed = outputs.get("observed") or {}
    if is_compact(observed):
        table = observed.get("records")
        wanted = None
        if older_than is not None and isinstance(table, list):
            wanted = {i for i, record in enumerate(table) if _created_before(record, older_than)}
        pairs: Iterable[tuple[str, Any]] = _expand(observed, outputs, wanted)
    else:
        pairs = observed.items() if isinstance(observed, Mapping) else ()
    result = []
    parsed: dict[int, Optional[tuple]] = {}  # records the compact form shares between targets: read once
    for url, record in pairs:
        key = id(record)  # the record objects stay alive (in ``outputs``) while this runs
        fields = parsed[key] if key in parsed else parsed.setdefault(key, _read_record(record))
        if fields is not None and (older_than is None or fields[2] < older_than):
            result.append(Observation(url, *fields))
    return result


def prior_contents(outputs: Optional[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """{(url, task id): ETag} of the readable recorded tasks that were for an origin object's content
    (what ``prior_observations`` gives as ``content``, without building an observation per target).

    The compact form expands only the records that carry an ETag: a set of URL targets has none,
    and its targets are not read.
    """
    if not outputs:
        return {}
    observed = outputs.get("observed") or {}
    if is_compact(observed):
        table = observed.get("records")
        wanted = ({i for i, record in enumerate(table) if _content_of(record)} if isinstance(table, list)
                  else set())
        pairs: Iterable[tuple[str, Any]] = _expand(observed, outputs, wanted)
    else:
        pairs = observed.items() if isinstance(observed, Mapping) else ()
    result = {}
    parsed: dict[int, Optional[tuple]] = {}
    for url, record in pairs:
        key = id(record)
        fields = parsed[key] if key in parsed else parsed.setdefault(key, _read_record(record))
        if fields is not None and fields[6]:
            result[(url, fields[0])] = fields[6]
    return result


def _content_of(record: Any) -> Optional[str]:
    """The ETag of a readable record, or None."""
    fields = _read_record(record)
    return fields[6] if fields is not None else None


def _created_before(record: Any, moment: datetime) -> bool:
    """Whether a recorded task was created before ``moment`` (an unreadable record: no, it is no evidence)."""
    fields = _read_record(record)
    return fields is not None and fields[2] < moment


def _read_record(record: Any) -> Optional[tuple]:
    """(task id, state, created, updated, reason, raw status, content) of one record, or None if unreadable."""
    try:
        state_text, task_id, at_text = record[0], record[1], record[2]
        reason = record[3] if len(record) > 3 else ""
        content = record[4] if len(record) > 4 and isinstance(record[4], str) and record[4] else None
        at = parse_time(at_text)
        state = TargetState(state_text)
    except (IndexError, TypeError, ValueError, KeyError, AttributeError):
        return None  # an unreadable old record is no evidence; history still decides
    if state in (TargetState.EXPIRED, TargetState.STALE):
        state = TargetState.WARM  # both are recomputed: from the time, and from the ETag recorded
        reason = ""
    return task_id, state, at, at, reason or None, None, content


def prior_submitted(outputs: Optional[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not outputs:
        return []
    return [dict(s) for s in outputs.get("submitted") or [] if isinstance(s, Mapping)]


def audit_entry(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """One destination's part of the stack-output audit record (schemas/stack-outputs.schema.json)."""
    destination = dict(outputs.get("destination") or {})
    task_ids: list[str] = []
    seen: set[str] = set()
    for item in outputs.get("submitted") or []:
        if item.get("task_id") and item["task_id"] not in seen:
            seen.add(item["task_id"])
            task_ids.append(item["task_id"])
    observed = outputs.get("observed") or {}
    records = observed.get("records") if is_compact(observed) else observed.values()
    for record in records if isinstance(records, Iterable) else ():
        if len(record) > 1 and record[1] and record[1] not in seen:
            seen.add(record[1])
            task_ids.append(record[1])
    return {
        "provider": destination.pop("provider", ""),
        "scope": destination,
        "summary": outputs.get("summary") or {},
        "drifted": list(outputs.get("drifted") or []),
        "drifted_total": outputs.get("drifted_total") or 0,
        "submitted": list(outputs.get("submitted") or []),
        "task_ids": task_ids,
    }
