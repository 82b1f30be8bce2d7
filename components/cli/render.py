"""What plan and apply print: per shard, each target that is not warm in the preview's words (its
status, ``TargetStatus.describe()``) and what an apply does about it. Pure: shards in, text out."""

from __future__ import annotations

from typing import Sequence

from .run import Shard, Totals
from ..model.status import TargetState

#: Targets listed per shard unless --max-rows says otherwise (0: all).
DEFAULT_MAX_ROWS = 100


def action(shard: Shard, url: str) -> str:
    """What the next apply does for one target that is not warm, in the preview's words."""
    result = shard.observed
    assert result is not None
    plan = result.plan
    status = plan.statuses[url]
    if url in plan.to_purge:
        return "purge, then prefetch"
    if url in plan.to_submit:
        return "prefetch"
    if status.state is TargetState.PURGING:
        return "wait for the purge, then prefetch"
    if status.state.in_flight:
        return "wait for the running task"
    return "nothing (see the warnings above)"


def plan_text(shards: Sequence[Shard], max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """One header per shard (``set web on <cloud> zone z: 5 targets, 3 warm``), then ``~ url: status => action``."""
    lines = []
    for shard in shards:
        if shard.observed is None:
            lines.append(f"{shard.where}: not read ({shard.error})")
            continue
        statuses = shard.observed.plan.statuses
        drifted = sorted(s.url for s in shard.observed.plan.drifted)
        lines.append(f"{shard.where}: {len(statuses)} targets, {len(statuses) - len(drifted)} warm"
                     + (f", {len(drifted)} not warm" if drifted else ""))
        shown = drifted if max_rows == 0 else drifted[:max_rows]
        lines.extend(f"  ~ {url}: {statuses[url].describe()} => {action(shard, url)}" for url in shown)
        if len(drifted) > len(shown):
            lines.append(f"  ... and {len(drifted) - len(shown)} more (--max-rows 0 lists all)")
    return "".join(line + "\n" for line in lines)


def summary_line(verb: str, totals: Totals, submitted: int = 0) -> str:
    """The last line: ``plan: 3 of 5 targets warm, 2 not warm`` (pairs of target and destination)."""
    total = totals.warm + totals.not_warm
    text = f"{verb}: {totals.warm} of {total} targets warm"
    if totals.not_warm:
        text += f", {totals.not_warm} not warm"
    if submitted:
        text += f"; {submitted} tasks submitted"
    if totals.errors:
        text += f"; {len(totals.errors)} destinations failed"
    return text + "\n"
