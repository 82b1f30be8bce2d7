"""The resource's recorded state: program inputs, provider outputs (the audit record), and the
inputs a refresh writes back so the engine's own diff shows each drifted target.

Pure functions: a plan in, plain dicts out (and back), so the shape is tested without an engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

from .declarations import DestinationDeclaration, PrefetchSetDeclaration
from .reconcile import Plan
from .status import ALL_STATES, Observation, TargetState, TargetStatus, format_time, parse_time

OUTPUTS_VERSION = 1
WARM = TargetState.WARM.value
# Input keys of the dynamic resource; outputs repeat them so read/delete (which get outputs) see them.
INPUT_KEYS = ("set", "destination", "targets", "freshness", "wait")
DRIFTED_LIST_LIMIT = 100


@dataclass(frozen=True)
class SetInputs:
    """The dynamic resource's inputs, typed."""

    set: str
    destination: Mapping[str, Any]
    targets: tuple[str, ...]
    freshness: str
    wait: str

    @property
    def provider(self) -> str:
        return self.destination["provider"]

    def to_props(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "destination": dict(self.destination),
            "targets": {url: WARM for url in self.targets},
            "freshness": self.freshness,
            "wait": self.wait,
        }

    @classmethod
    def from_declaration(cls, decl: PrefetchSetDeclaration, destination: DestinationDeclaration) -> "SetInputs":
        return cls(decl.name, destination.as_dict(), decl.targets, decl.freshness, decl.wait)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> "SetInputs":
        return cls(
            set=props["set"],
            destination=dict(props["destination"]),
            # A map crosses gRPC as a protobuf Struct, which keeps no order: sort, for deterministic batches.
            targets=tuple(sorted(props["targets"])),
            freshness=props["freshness"],
            wait=props["wait"],
        )


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
    h = hashlib.sha256()
    for url in sorted(targets):
        h.update(url.encode("utf-8"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def build_outputs(
    inputs: SetInputs,
    plan: Plan,
    *,
    verified_at: datetime,
    submitted: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The provider outputs: the inputs, per-target last known task, summary, bounded drift list."""
    counts = {state.value: 0 for state in ALL_STATES}
    observed: dict[str, list[str]] = {}
    for url, status in plan.statuses.items():
        counts[status.state.value] += 1
        if status.task_id:
            observed[url] = [status.state.value, status.task_id, format_time(status.at) if status.at else "",
                             status.reason or ""]
    total = len(plan.statuses)
    drifted = plan.drifted
    return {
        **inputs.to_props(),
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

    The engine diffs these against the program's inputs (every target ``warm``), so a preview
    shows exactly the drifted targets, each with its live status.
    """
    props = inputs.to_props()
    props["targets"] = {url: plan.statuses[url].describe() for url in inputs.targets}
    return props


def prior_observations(outputs: Optional[Mapping[str, Any]]) -> list[Observation]:
    """Observations recorded in earlier outputs: they keep old results the cloud's history has dropped."""
    if not outputs:
        return []
    result = []
    for url, record in (outputs.get("observed") or {}).items():
        try:
            state_text, task_id, at_text = record[0], record[1], record[2]
            reason = record[3] if len(record) > 3 else ""
            at = parse_time(at_text)
            state = TargetState(state_text)
        except (IndexError, TypeError, ValueError):
            continue  # an unreadable old record is no evidence; history still decides
        if state is TargetState.EXPIRED:
            state = TargetState.WARM  # expiry is recomputed from the time
        result.append(Observation(url, task_id, state, at, at, reason or None, None))
    return result


def prior_submitted(outputs: Optional[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not outputs:
        return []
    return [dict(s) for s in outputs.get("submitted") or [] if isinstance(s, Mapping)]


def audit_entry(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """One destination's part of the stack-output audit record (schemas/stack-outputs.schema.json)."""
    destination = dict(outputs.get("destination") or {})
    task_ids: list[str] = []
    for item in outputs.get("submitted") or []:
        if item.get("task_id") and item["task_id"] not in task_ids:
            task_ids.append(item["task_id"])
    for record in (outputs.get("observed") or {}).values():
        if len(record) > 1 and record[1] and record[1] not in task_ids:
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
