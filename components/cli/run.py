"""Plan and apply without Pulumi: the shards the program would register, each observed or converged by
``ShardSync`` exactly as the provider's ``read`` and ``create``/``update`` do.

A shard here is what the program makes a dynamic resource: the same name (``<set>-<label>``, then
``-shard-<k>``), the same inputs (``ShardInputs``, targets sorted as the provider reads them), the same
policy (the destination's entries and the run's consent). Prior outputs come from the local state
file (``cli/state.py``) where Pulumi would hand the provider its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TextIO

from ..clouds.base import CloudAdapter, CloudError, SubmitResult
from ..clouds.factory import adapter_for
from ..clouds.history import HistoryCache
from ..declare.model import DestinationDeclaration, PrefetchSetDeclaration
from ..model.connection import ConfigError, ProviderSettings
from ..model.policy import Policy
from ..model.status import TargetState
from ..plan import shards as sharding
from ..plan.safety import RefusedChange, check_drop
from ..provider import outputs as provider_outputs
from ..resource.audit import audit_entry, merge_shard_entries, stack_record
from ..resource.converge import ShardSync, SubmitError, SyncResult, utcnow
from ..resource.inputs import ShardInputs, targets_digest
from ..resource.outputs import SubmittedTask, output_targets
from ..resource.progress import ProgressSink


@dataclass
class Shard:
    """One set's part on one destination: a dynamic resource of the program."""

    name: str
    decl: PrefetchSetDeclaration
    dest: DestinationDeclaration
    inputs: ShardInputs
    sync: Optional[ShardSync] = None
    observed: Optional[SyncResult] = None   # what plan (and apply, before submitting) read
    result: Optional[SyncResult] = None     # what apply's converge ended with
    error: Optional[str] = None

    @property
    def final(self) -> Optional[SyncResult]:
        return self.result or self.observed

    @property
    def where(self) -> str:
        part = f" (shard {self.inputs.shard[0]} of {self.inputs.shard[1]})" if self.inputs.shard else ""
        return f"set {self.decl.name}{part} on {self.sync.adapter.describe_scope() if self.sync else self.dest.label}"


def shards_of(declarations: Iterable[PrefetchSetDeclaration]) -> list[Shard]:
    """The program's dynamic resources for these sets (plan/shards.py splits a large set)."""
    out = []
    for decl in declarations:
        count = sharding.shard_count(len(decl.targets), sharding.SHARD_TARGETS)
        parts = sharding.split(decl.targets, count)
        for dest in decl.destinations:
            base = ShardInputs.from_declaration(decl, dest)
            for index, part in enumerate(parts):
                inputs = replace(base, targets=tuple(sorted(part)), shard=(index, count) if count > 1 else None,
                                 content={url: base.content[url] for url in part if url in base.content})
                out.append(Shard(sharding.shard_name(f"{decl.name}-{dest.label}", index, count), decl, dest, inputs))
    return out


def connect(shards: Sequence[Shard], settings: ProviderSettings, *, allow_large_changes: bool, log: TextIO,
            record: Optional[Callable[[str, Mapping[str, Any]], None]] = None,
            on_progress: Optional[ProgressSink] = None) -> None:
    """Build every shard's ShardSync before any cloud call: a missing credential or an unresolved name
    stops the run before anything is submitted. ``record(shard name, task)`` hears of every submit;
    ``on_progress`` of every batch sent and every poll (the live display; None: plain lines)."""
    unresolved = [f"set {s.decl.name!r}: {', '.join(f'{k}: {v}' for k, v in s.dest.unresolved.items())}"
                  for s in shards if s.dest.unresolved]
    if unresolved:
        raise ConfigError(f"destinations named by {'; '.join(dict.fromkeys(unresolved))}: the command cannot look "
                          "names up (that needs the Pulumi engine's tencentcloud data sources); write the id "
                          "(zone: zone-…, area: …) in the declaration, or use `pulumi up`")
    history = HistoryCache()  # one read per scope for the whole run, never a read of an earlier run
    for shard in shards:
        adapter = adapter_for(shard.dest.as_dict(), settings)
        if record is not None:
            adapter = RecordingAdapter(adapter, lambda task, name=shard.name: record(name, task))
        policy = Policy.from_destination(shard.dest.as_dict(), allow_large_changes=allow_large_changes)
        shard.sync = ShardSync(adapter, shard.inputs, log=log, policy=policy, history=history, on_progress=on_progress)


def observe(shards: Sequence[Shard], prior: Callable[[str], Optional[Mapping[str, Any]]], log: TextIO) -> None:
    """Every shard's live status (and the quota outlook of what needs a task), as a refreshed preview reads it."""
    for shard in shards:
        assert shard.sync is not None
        try:
            shard.observed = shard.sync.observe(prior(shard.name), check_quota=True)
        except CloudError as exc:
            shard.error = str(exc)
            log.write(f"error: {shard.where}: {exc}\n")


def converge(shards: Sequence[Shard], prior: Callable[[str], Optional[Mapping[str, Any]]],
             save: Callable[[str, Mapping[str, Any]], None], log: TextIO) -> None:
    """Converge every shard that could be read: the rails, then submit, wait and report (``ShardSync.converge``).

    A shard refused by a rail or stopped by a cloud error keeps its error; the others still converge.
    """
    for shard in shards:
        if shard.error is not None:
            continue
        assert shard.sync is not None
        before = prior(shard.name)
        try:
            refusal = drop_refusal(shard, before)
            if refusal:
                raise RefusedChange(refusal)
            shard.result = shard.sync.converge(before)
        except (CloudError, SubmitError, RefusedChange) as exc:
            shard.error = str(exc)
            log.write(f"error: {shard.where}: {exc}\n")
            continue
        save(shard.name, shard_outputs(shard))


def drop_refusal(shard: Shard, before: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The provider's rail on targets removed from a declaration, against the last apply's targets."""
    old = output_targets(before)
    if old is None or shard.sync is None:
        return None
    return check_drop(old, shard.inputs.to_props()["targets"], shard.sync.policy, shard.where,
                      shard=shard.inputs.shard).refusal


def needs_tasks(shard: Shard) -> int:
    """Targets an apply would submit (a prefetch or a purge) or wait for on this shard."""
    plan = shard.observed.plan if shard.observed else None
    if plan is None:
        return 0
    purging = sum(1 for s in plan.statuses.values() if s.state is TargetState.PURGING)
    return len(plan.to_submit) + len(plan.to_purge) + purging


def shard_outputs(shard: Shard) -> dict[str, Any]:
    """The shard's resource outputs, as the provider would return them (provider.outputs)."""
    result = shard.final
    assert shard.sync is not None and result is not None
    return provider_outputs(shard.sync, result, inputs_show_drift=False)


def audit_record(shards: Sequence[Shard]) -> dict[str, Any]:
    """The stack outputs' ``prefetch`` record (schemas/stack-outputs.schema.json) from the shards read.

    A destination with a shard that could not be read at all is left out (the run then exits 1).
    """
    sets: dict[str, Any] = {}
    for decl in {id(s.decl): s.decl for s in shards}.values():
        destinations = []
        for dest in decl.destinations:
            mine = [s for s in shards if s.decl is decl and s.dest is dest]
            if any(s.final is None for s in mine):
                continue
            entries = [audit_entry(shard_outputs(s)) for s in mine]
            destinations.append(merge_shard_entries(entries, targets_digest(decl.targets)))
        sets[decl.name] = {"source": decl.source, "description": decl.description or "",
                           "targets": len(decl.targets), "destinations": destinations}
    return {"prefetch": stack_record(sets)}


class RecordingAdapter:
    """An adapter that reports each task id the moment its submit returns (and its purge side likewise).

    Everything else is the wrapped adapter's: ShardSync, the quota ledger and the history cache see it unchanged.
    """

    def __init__(self, inner: CloudAdapter, record: Callable[[Mapping[str, Any]], None]):
        self._inner = inner
        self._record = record

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        result = self._inner.submit(urls)
        self._record(SubmittedTask(result.task_id, utcnow(), len(result.accepted), self._inner.kind).to_dict())
        return result

    def purger(self) -> "RecordingAdapter":
        return RecordingAdapter(self._inner.purger(), self._record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Totals:
    """Targets by outcome over the shards (target x destination pairs)."""

    warm: int = 0
    not_warm: int = 0
    errors: list[str] = field(default_factory=list)


def totals(shards: Sequence[Shard]) -> Totals:
    out = Totals()
    for shard in shards:
        if shard.error is not None:
            out.errors.append(f"{shard.where}: {shard.error}")
        result = shard.final
        if result is not None:
            drifted = len(result.plan.drifted)
            out.not_warm += drifted
            out.warm += len(result.plan.statuses) - drifted
    return out
