"""The one definition of the dynamic resource's outputs: the inputs repeated (targets as
``target_lines``), the history row that decided each target (``observed``), every task submitted,
the submits history has not confirmed yet (``unconfirmed``, plan/unconfirmed.py; only when there
are some), a summary and a bounded drift list; how earlier outputs are read back as history rows;
and the inputs a refresh writes back so the engine's own diff shows each drifted target.

Pure functions: a plan in, plain dicts out (and back), so the shape is tested without an engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from ..model.status import (ALL_STATES, PURGE_STATES, HistoryRow, TargetState, TargetStatus, TaskKind,
                                     format_time, parse_time)
from ..plan.reconcile import Plan
from ..plan.unconfirmed import Attempt
from .inputs import TARGET_LINES, WARM, ShardInputs, _read_lines, targets_digest

OUTPUTS_VERSION = 1
DRIFTED_LIST_LIMIT = 100
# ``observed`` records, per target, the task that decided its status: [state, task id, time, reason]
# plus the version (ETag and/or revision, model/status.py version_token) its prefetch was for; in a
# purge state (purging, purged, purge_failed) the task is the purge. Up to this many targets it is a readable map {url: record}.
# Above it, each distinct record is stored once in a table and every target names its record by
# index, in sorted-URL order, run-length encoded: 100,000 targets in 100 tasks cost a few kB of
# state instead of ~11 MB, and the provider host (de)serialises a handful of values instead of
# 500,000. prior_observations and audit_entry read both forms.
COMPACT_OBSERVED_ABOVE = 256
OBSERVED_ENCODING = "records-by-target-index"
_NO_RECORD = "-"  # in the index: a target without a task (missing)
_STATE_VALUES = {state: state.value for state in ALL_STATES}  # Enum.value is a slow descriptor


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
    """One submit this resource made (a prefetch or a purge): never forgotten, whatever happens after."""

    task_id: str
    at: datetime
    count: int
    kind: TaskKind = TaskKind.PREFETCH

    def to_dict(self) -> dict[str, Any]:
        """The ``submitted`` entry; ``kind`` only for a purge (entries written before purges had none)."""
        entry: dict[str, Any] = {"task_id": self.task_id, "at": format_time(self.at), "count": self.count}
        if self.kind is not TaskKind.PREFETCH:
            entry["kind"] = self.kind.value
        return entry


def build_outputs(
    inputs: ShardInputs,
    plan: Plan,
    *,
    verified_at: datetime,
    submitted: Sequence[Mapping[str, Any]],
    unconfirmed: Sequence[Attempt] = (),
) -> dict[str, Any]:
    """The provider outputs: the inputs (targets as ``target_lines``), per-target last known task,
    unconfirmed submits, summary, bounded drift list."""
    counts = {state.value: 0 for state in ALL_STATES}
    records: dict[str, tuple] = {}
    value_of = _STATE_VALUES
    for url, status in plan.statuses.items():
        state = value_of[status.state]
        counts[state] += 1
        if status.task_id:
            record: tuple = (state, status.task_id, format_time(status.at) if status.at else "", status.reason or "")
            if status.state in PURGE_STATES:
                # the purge, then the prefetch it follows and that prefetch's version (_task_version)
                record += (status.content or "", status.prefetch_task or "")
            elif status.content:
                record += (status.content,)  # the version this task was submitted for
            records[url] = record
    if len(plan.statuses) > COMPACT_OBSERVED_ABOVE:
        observed: dict[str, Any] = compact_observed(records, sorted(plan.statuses))
    else:
        observed = {url: list(record) for url, record in records.items()}
    total = len(plan.statuses)
    drifted = plan.drifted
    pending = {"unconfirmed": [a.to_dict() for a in unconfirmed]} if unconfirmed else {}
    return {
        **inputs.output_props(),
        "observed": observed,
        "submitted": [dict(s) for s in submitted],
        **pending,
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


def refreshed_inputs(inputs: ShardInputs, plan: Plan) -> dict[str, Any]:
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
                       older_than: Optional[datetime] = None) -> list[HistoryRow]:
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
            result.append(HistoryRow(url, *fields))
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
    parsed: dict[int, Optional[tuple[str, str]]] = {}
    for url, record in pairs:
        key = id(record)
        known = parsed[key] if key in parsed else parsed.setdefault(key, _task_version(record))
        if known is not None:
            result[(url, known[0])] = known[1]
    return result


def _task_version(record: Any) -> Optional[tuple[str, str]]:
    """(prefetch task id, version it was for) of a record, or None.

    A purge state's record names the purge, and after it the prefetch the purge follows and that
    prefetch's version: the version must outlive the purge, or the old prefetch would pass for current.
    """
    fields = _read_record(record)
    if fields is not None:
        return (fields[0], fields[6]) if fields[6] else None
    try:
        state, version, prefetch_task = TargetState(record[0]), record[4], record[5]
    except (IndexError, TypeError, ValueError, KeyError):
        return None
    if state in PURGE_STATES and isinstance(version, str) and version and isinstance(prefetch_task, str):
        return prefetch_task, version
    return None


def _content_of(record: Any) -> Optional[str]:
    """The version a readable record names, or None."""
    known = _task_version(record)
    return known[1] if known is not None else None


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
    if state in PURGE_STATES:
        return None  # a purge task's record is no prefetch row (its id stays in ``submitted``)
    if state in (TargetState.EXPIRED, TargetState.STALE):
        state = TargetState.WARM  # both are recomputed: from the time, and from the ETag recorded
        reason = ""
    return task_id, state, at, at, reason or None, None, content


def prior_submitted(outputs: Optional[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not outputs:
        return []
    return [dict(s) for s in outputs.get("submitted") or [] if isinstance(s, Mapping)]


