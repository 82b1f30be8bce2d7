"""The resource's recorded state: program inputs, provider outputs (the audit record), and the
inputs a refresh writes back so the engine's own diff shows each drifted target.

Pure functions: a plan in, plain dicts out (and back), so the shape is tested without an engine.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

from .declarations import DestinationDeclaration, PrefetchSetDeclaration
from .reconcile import Plan
from .status import ALL_STATES, ContentVersion, Observation, TargetState, TargetStatus, format_time, parse_time

OUTPUTS_VERSION = 1
WARM = TargetState.WARM.value
# Input keys of the dynamic resource; outputs repeat them so read/delete (which get outputs) see them.
INPUT_KEYS = ("set", "destination", "targets", "freshness", "wait")
DRIFTED_LIST_LIMIT = 100
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

    @property
    def provider(self) -> str:
        return self.destination["provider"]

    def to_props(self) -> dict[str, Any]:
        content = self.content
        return {
            "set": self.set,
            "destination": dict(self.destination),
            "targets": {url: desired_value(content.get(url)) for url in self.targets},
            "freshness": self.freshness,
            "wait": self.wait,
        }

    @classmethod
    def from_declaration(cls, decl: PrefetchSetDeclaration, destination: DestinationDeclaration) -> "SetInputs":
        return cls(decl.name, destination.as_dict(), decl.targets, decl.freshness, decl.wait, dict(decl.content))

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> "SetInputs":
        targets = props["targets"]
        content = {}
        for url, value in targets.items():
            version = parse_desired(value)
            if version is not None:
                content[url] = version
        return cls(
            set=props["set"],
            destination=dict(props["destination"]),
            # A map crosses gRPC as a protobuf Struct, which keeps no order: sort, for deterministic batches.
            targets=tuple(sorted(targets)),
            freshness=props["freshness"],
            wait=props["wait"],
            content=content,
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
            record = [status.state.value, status.task_id, format_time(status.at) if status.at else "",
                      status.reason or ""]
            if status.content:
                record.append(status.content)  # the ETag this task was submitted for
            observed[url] = record
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


def prior_observations(outputs: Optional[Mapping[str, Any]]) -> list[Observation]:
    """Observations recorded in earlier outputs: they keep old results the cloud's history has dropped."""
    if not outputs:
        return []
    result = []
    for url, record in (outputs.get("observed") or {}).items():
        try:
            state_text, task_id, at_text = record[0], record[1], record[2]
            reason = record[3] if len(record) > 3 else ""
            content = record[4] if len(record) > 4 and isinstance(record[4], str) and record[4] else None
            at = parse_time(at_text)
            state = TargetState(state_text)
        except (IndexError, TypeError, ValueError):
            continue  # an unreadable old record is no evidence; history still decides
        if state in (TargetState.EXPIRED, TargetState.STALE):
            state = TargetState.WARM  # both are recomputed: from the time, and from the ETag recorded
            reason = ""
        result.append(Observation(url, task_id, state, at, at, reason or None, None, content))
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
