"""The drift report as a value: what was read per set and destination, counted and listed.

Pure: readings in (a reconcile plan, or the error that stopped the read), plain data out; no cloud,
no files, no clock (the caller passes the time). The renderers (``report/renderers.py``) turn it
into text; the command line (``report/cli.py``) does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional

from ..declare.model import DestinationDeclaration, PrefetchSetDeclaration
from ..model.status import ALL_STATES, TargetState, TargetStatus, format_time
from ..plan.reconcile import Plan
from ..resource.inputs import targets_digest
from ..resource.outputs import drift_entry

EXIT_WARM, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


REPORT_VERSION = 1


def state_word(state: TargetState) -> str:
    """The plain word of a state (``timed out``), the same words ``TargetStatus.describe()`` uses."""
    return TargetStatus("", state).describe()


# -- what was observed (input of build_report) ------------------------------------------------------
@dataclass(frozen=True)
class DestinationReading:
    """One set on one destination as observed: a reconcile plan, or the error that stopped the read."""

    declaration: PrefetchSetDeclaration
    destination: DestinationDeclaration
    plan: Optional[Plan] = None
    verified_at: Optional[datetime] = None
    error: Optional[str] = None


# -- the report (plain data) ------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftRow:
    url: str
    state: str        # TargetState value: failed, timed_out, ...
    status: str       # TargetStatus.describe(): the full plain-words status
    word: str         # the state in plain words: "timed out"
    reason: str       # why, in the cloud's words (for unknown: the raw status the cloud answered)
    task_id: str
    at: str           # format_time, or "" when no task exists

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "state": self.state, "status": self.status, "reason": self.reason,
                "task_id": self.task_id, "at": self.at}


@dataclass(frozen=True)
class DestinationReport:
    set: str
    label: str                     # destination label: <cloud>-<zone, area or domain id>
    provider: str
    scope: Mapping[str, Any]
    source: str                    # declaration file
    total: int
    counts: Mapping[str, int]      # every TargetState value -> count
    drifted: tuple[DriftRow, ...] = ()
    verified_at: str = ""
    digest: str = ""
    error: Optional[str] = None

    @property
    def warm(self) -> int:
        return self.counts.get(TargetState.WARM.value, 0)

    @property
    def in_sync(self) -> bool:
        return self.error is None and not self.drifted

    def drift_kinds(self) -> list[tuple[str, int]]:
        """Non-zero drift counts in the status model's order, as (plain word, count)."""
        return [(state_word(s), self.counts[s.value]) for s in ALL_STATES
                if s is not TargetState.WARM and self.counts.get(s.value)]


@dataclass(frozen=True)
class Report:
    stack: str
    generated_at: str
    destinations: tuple[DestinationReport, ...] = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)   # set -> description

    @property
    def total(self) -> int:
        return sum(d.total for d in self.destinations if d.error is None)

    @property
    def warm(self) -> int:
        return sum(d.warm for d in self.destinations if d.error is None)

    @property
    def drifted(self) -> int:
        return sum(len(d.drifted) for d in self.destinations)

    @property
    def errors(self) -> list[DestinationReport]:
        return [d for d in self.destinations if d.error is not None]

    @property
    def in_sync(self) -> bool:
        return all(d.in_sync for d in self.destinations)

    @property
    def exit_code(self) -> int:
        """1 when a destination could not be read, else 2 when any target is not warm, else 0."""
        if self.errors:
            return EXIT_ERROR
        return EXIT_DRIFT if self.drifted else EXIT_WARM


def build_report(results: Iterable[DestinationReading], *, stack: str = "", generated_at: Optional[datetime] = None) -> Report:
    """DestinationReading plans -> the report: counts per status and the drifted targets, in declaration order."""
    destinations = []
    descriptions: dict[str, str] = {}
    for item in results:
        decl, dest = item.declaration, item.destination
        descriptions.setdefault(decl.name, decl.description)
        common = dict(set=decl.name, label=dest.label, provider=dest.provider, scope=dict(dest.scope),
                      source=decl.source, digest=targets_digest(decl.targets))
        if item.plan is None:
            destinations.append(DestinationReport(**common, total=len(decl.targets),
                                                  counts={s.value: 0 for s in ALL_STATES},
                                                  error=item.error or "not observed"))
            continue
        counts = {s.value: 0 for s in ALL_STATES}
        for status in item.plan.statuses.values():
            counts[status.state.value] += 1
        destinations.append(DestinationReport(
            **common,
            total=len(item.plan.statuses),
            counts=counts,
            drifted=tuple(_drifted(s) for s in item.plan.drifted),
            verified_at=format_time(item.verified_at) if item.verified_at else "",
        ))
    return Report(stack=stack, generated_at=format_time(generated_at) if generated_at else "",
                  destinations=tuple(destinations), descriptions=descriptions)


def _drifted(status: TargetStatus) -> DriftRow:
    entry = drift_entry(status)
    reason = entry["reason"]
    if status.state is TargetState.UNKNOWN and status.raw_status is not None:
        reason = f"cloud reported status {status.raw_status!r}" + (f", {reason}" if reason else "")
    return DriftRow(entry["url"], entry["state"], entry["status"], state_word(status.state), reason,
                         entry["task_id"], entry["at"])
