"""Submits whose outcome nobody knows yet, and what a later read of history decides about them (pure).

A submit answered with a timeout, a reset or a 5xx may have been accepted, and a cloud may even
execute it well after the client gave up. When the confirmation reads after such a failure
(resource/submitter.py) do not show its targets, they are neither sent again in that ``up`` (the
request may still run: quota spent twice) nor forgotten: the attempt is recorded in the outputs
(``unconfirmed``) with when its answer was lost, until when the request may still be executed
(its whole possible life) and the tasks its targets had in history then. Every later refresh or
``up`` decides each of its targets from the history it read:

- the target has a task that was not known then: the cloud took a submit of it (ours, late, or
  someone else's): history decides the target as for any other, and the task counts as submitted;
- it has none, and the read started after the request's life ended: the request was never
  executed, so the target is what history says (missing, failed...) and is sent as usual;
- it has none yet: it is held, reported ``unknown`` ("submit unconfirmed") and never submitted.

Times are ours (when the answer was lost); tasks are told apart by id, never by the cloud's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

from ..model.status import HistoryRow, TargetState, TargetStatus, TaskKind, format_time, parse_time
from .reconcile import Plan

ERROR_CHARS = 200  # what the client saw, cut to a readable length in outputs and messages


@dataclass(frozen=True)
class Attempt:
    """One ambiguous submit of ``urls`` (of one kind) that history has not confirmed yet."""

    kind: TaskKind
    at: datetime      # our clock: when its answer was lost
    until: datetime   # our clock: the cloud may execute it until then
    urls: tuple[str, ...]
    known: frozenset[str]  # ids of the tasks its targets had in history when it was sent
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The ``unconfirmed`` entry of the outputs."""
        return {"kind": self.kind.value, "at": format_time(self.at), "until": format_time(self.until),
                "targets": list(self.urls), "known": sorted(self.known), "error": self.error[:ERROR_CHARS]}

    @classmethod
    def from_dict(cls, entry: Any) -> Optional["Attempt"]:
        """The attempt an ``unconfirmed`` entry records, or None when it does not read (no evidence)."""
        try:
            urls, known = entry["targets"], entry.get("known") or []
            if not all(isinstance(u, str) for u in urls) or not all(isinstance(t, str) for t in known):
                return None
            return cls(TaskKind(entry["kind"]), parse_time(entry["at"]), parse_time(entry["until"]), tuple(urls),
                       frozenset(known), str(entry.get("error") or ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def describe(self) -> str:
        """Why its targets are held, in plain words (their status reason)."""
        what = "purge" if self.kind is TaskKind.PURGE else "submit"
        lost = f" ({self.error[:ERROR_CHARS]})" if self.error else ""
        return (f"{what} unconfirmed: the answer to the {what} at {format_time(self.at)} was lost{lost}; not sent "
                f"again before a read of history after {format_time(self.until)} shows whether the cloud executed it")


def prior_attempts(outputs: Optional[Mapping[str, Any]]) -> list[Attempt]:
    """The attempts earlier outputs left unconfirmed (an unreadable entry is skipped)."""
    entries = (outputs or {}).get("unconfirmed") or []
    found = [Attempt.from_dict(e) for e in entries] if isinstance(entries, list) else []
    return [a for a in found if a is not None]


@dataclass(frozen=True)
class Settled:
    """What a read of history decided about earlier attempts."""

    pending: list[Attempt]    # still unconfirmed: carried on, their targets held
    found: dict[TaskKind, list[HistoryRow]]  # per kind, rows of tasks the targets got since (counted as submitted)
    expired: list[Attempt]    # no task over the request's whole life: never executed


def settle(attempts: Iterable[Attempt], rows: Mapping[TaskKind, Optional[Iterable[HistoryRow]]], read_at: datetime,
           targets: Iterable[str]) -> Settled:
    """Decide each attempt's targets from history rows of their kind, read from ``read_at`` (our clock).

    ``rows[kind]`` None: that kind's history was not read (nothing can be found in it). Targets no
    longer declared are dropped.
    """
    declared = set(targets)
    pending: list[Attempt] = []
    found: dict[TaskKind, list[HistoryRow]] = {}
    expired: list[Attempt] = []
    for attempt in attempts:
        urls = [u for u in attempt.urls if u in declared]
        newest = _new_tasks(attempt, urls, rows.get(attempt.kind) or ())
        if newest:
            found.setdefault(attempt.kind, []).extend(newest.values())
        left = tuple(u for u in urls if u not in newest)
        if not left:
            continue
        rest = Attempt(attempt.kind, attempt.at, attempt.until, left, attempt.known, attempt.error)
        (expired if read_at >= attempt.until else pending).append(rest)
    return Settled(pending, found, expired)


def _new_tasks(attempt: Attempt, urls: Sequence[str], rows: Iterable[HistoryRow]) -> dict[str, HistoryRow]:
    """Per target of ``urls``, its newest row of a task not known when the attempt was sent."""
    wanted, known = set(urls), attempt.known
    newest: dict[str, HistoryRow] = {}
    for row in rows:
        if row.url in wanted and row.task_id not in known:
            best = newest.get(row.url)
            if best is None or (row.created, row.at) > (best.created, best.at):
                newest[row.url] = row
    return newest


def hold(plan: Plan, attempts: Iterable[Attempt]) -> Plan:
    """The plan with every target of an unconfirmed attempt held: reported unknown, neither submitted nor purged.

    A held target keeps the prefetch that decided it before (the one a purge state follows) and the
    version it was for: its record in the outputs must still say which content the cloud holds.
    """
    due = set(plan.to_submit) | set(plan.to_purge)
    held: dict[str, TargetStatus] = {}
    for attempt in attempts:
        reason = None
        for url in attempt.urls:
            if url in due:
                reason = reason or attempt.describe()
                was = plan.statuses[url]
                held[url] = TargetStatus(url, TargetState.UNKNOWN, was.prefetch_task or was.task_id, was.at, reason,
                                         None, was.content)
    if not held:
        return plan
    return Plan({u: held.get(u, s) for u, s in plan.statuses.items()},
                tuple(u for u in plan.to_submit if u not in held), tuple(u for u in plan.to_purge if u not in held))
