"""The audit record (``schemas/stack-outputs.schema.json``): one module builds every part of it.

A shard's entry from its resource outputs (``audit_entry``), a destination's entry from its shards'
(``merge_shard_entries``), a set's summary and drifted list over its destinations, and the stack's
``prefetch`` output (``stack_record``). Pure: plain dicts in, plain dicts out; the component wires
them to Outputs.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence, TypedDict

from ..model.status import ALL_STATES
from .outputs import DRIFTED_LIST_LIMIT, OUTPUTS_VERSION, is_compact


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


class SetSummary(TypedDict):
    """The set's status over all its destinations."""

    total: int
    """Statuses counted: targets x destinations."""
    counts: dict[str, int]
    """Number per status (every status present)."""
    warm_ratio: float
    """Share of ``total`` that is warm (1.0 for an empty set)."""
    in_sync: bool
    """True when every target is warm on every destination."""
    destinations: int
    """Destinations that reported (counted once however many shards; it reports once all its shards have)."""
    verified_at: str
    """The oldest of the destinations' verification times (UTC, ISO 8601); empty before any."""


class DriftedTarget(TypedDict):
    """A target that is not warm on one destination."""

    destination: str
    """The destination's label, ``<cloud>-<zone, area or domain id>``."""
    url: str
    state: str
    """Normalised status: failed, timed_out, expired, missing, queued, running, stale, unknown."""
    status: str
    """The status in plain words."""
    reason: str
    task_id: str
    at: str
    """Time of the task (UTC, ISO 8601), or empty."""


def merge_shard_entries(entries: Sequence[Mapping[str, Any]], digest: str) -> dict[str, Any]:
    """One destination's audit entry from its shards' entries, as if it were one resource.

    - summary: counts and total summed; warm ratio and in-sync recomputed; ``verified_at`` the oldest
      (the destination is verified as of its least recent shard); ``digest`` the one given (the
      program's, over the whole target set). It is ``{}`` (not reported) unless every shard has one.
    - drifted: the first ``DRIFTED_LIST_LIMIT`` in URL order. Each shard lists its own first ones
      in URL order, so this is the list one unsharded resource would give. ``drifted_total`` summed.
    - submitted: every shard's tasks, in time order (stable); ``task_ids``: in shard order, once each.

    A single entry (an unsharded destination) is returned as it is, but for the digest, which is
    the same value: its outputs are the audit record byte for byte, as before sharding existed.
    """
    if not entries:
        raise ValueError("a destination has at least one shard")
    first = entries[0]
    summaries = [entry.get("summary") or {} for entry in entries]
    if len(entries) == 1:
        return {**first, "summary": {**summaries[0], "digest": digest} if summaries[0] else {}}
    summary: dict[str, Any] = {}
    if all(summaries):
        counts = {state.value: 0 for state in ALL_STATES}
        for part in summaries:
            for state, number in (part.get("counts") or {}).items():
                counts[state] = counts.get(state, 0) + int(number or 0)
        total = sum(int(part.get("total") or 0) for part in summaries)
        times = [part["verified_at"] for part in summaries if part.get("verified_at")]
        summary = {
            "version": summaries[0].get("version", OUTPUTS_VERSION),
            "total": total,
            "counts": counts,
            "warm_ratio": round(counts.get("warm", 0) / total, 4) if total else 1.0,
            "in_sync": all(part.get("in_sync") is True for part in summaries),
            "verified_at": min(times) if times else "",
            "digest": digest,
        }
    drifted = sorted((item for entry in entries for item in entry.get("drifted") or []),
                     key=lambda item: str(item.get("url", "")))
    task_ids = list(dict.fromkeys(task for entry in entries for task in entry.get("task_ids") or []))
    return {
        "provider": first.get("provider", ""),
        "scope": first.get("scope") or {},
        "summary": summary,
        "drifted": drifted[:DRIFTED_LIST_LIMIT],
        "drifted_total": sum(int(entry.get("drifted_total") or 0) for entry in entries),
        "submitted": sorted((item for entry in entries for item in entry.get("submitted") or []),
                            key=lambda item: str(item.get("at", ""))),
        "task_ids": task_ids,
    }


def set_summary(summaries: Sequence[Optional[Mapping[str, Any]]]) -> SetSummary:
    """The destinations' summaries combined (a destination without one yet is left out)."""
    counts = {state.value: 0 for state in ALL_STATES}
    total, reported, times = 0, 0, []
    for summary in summaries:
        if not summary:
            continue
        reported += 1
        total += int(summary.get("total") or 0)
        for state, number in (summary.get("counts") or {}).items():
            counts[state] = counts.get(state, 0) + int(number or 0)
        if summary.get("verified_at"):
            times.append(summary["verified_at"])
    warm = counts.get("warm", 0)
    return {
        "total": total,
        "counts": counts,
        "warm_ratio": round(warm / total, 4) if total else 1.0,
        "in_sync": reported == len(summaries) and warm == total,
        "destinations": reported,
        "verified_at": min(times) if times else "",
    }


def drifted_targets(labels: Sequence[str],
                    lists: Sequence[Optional[Sequence[Mapping[str, Any]]]]) -> list[DriftedTarget]:
    """Every destination's drifted list, each entry naming its destination."""
    return [{"destination": label, **entry}  # type: ignore[typeddict-item]
            for label, entries in zip(labels, lists) for entry in (entries or [])]


def stack_record(by_name: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``prefetch`` stack output: versioned, one entry per set."""
    return {"version": OUTPUTS_VERSION, "sets": dict(by_name)}
