"""The benchmark's figures and their markdown report (tables, the issue-6 acceptance, notes)."""

from __future__ import annotations

import os
import platform
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from bench.cloud_side import PageUse
    from bench.ucloud_floor import CallFloor

TARGETS = {  # issue #6, for a refresh of 100,000 targets
    "calls": 1.05, "wall": 1.2, "cpu": 3.0, "rss": 300e6, "state": 250, "growth": 110,
}


class _PreviewCpu:
    """The Diffs' part of a refresh's preview CPU: what is left of ``cpu_preview`` after the Checks."""

    cpu_preview: float
    cpu_check: float

    @property
    def cpu_diff(self) -> float:
        return self.cpu_preview - self.cpu_check


@dataclass
class Phase(_PreviewCpu):
    calls: Counter = field(default_factory=Counter)
    rejected: int = 0
    min_calls: int = 0
    wall: float = 0.0
    floor: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0
    note: str = ""
    cpu_refresh: float = 0.0   # refresh only: host CPU of the Reads and refresh Diffs
    cpu_preview: float = 0.0   # refresh only: host CPU of the Checks and Diffs
    cpu_check: float = 0.0     # refresh only: the Checks' part of cpu_preview
    # refresh only: first Read sent -> last Read answered (``wall`` is to the last refresh Diff answered,
    # the end of what `pulumi refresh` asks of the provider)
    read_wall: float = 0.0
    pages: Optional["PageUse"] = None  # Cloud CDN: the history page size asked, served and refused


@dataclass
class Floor(_PreviewCpu):
    """The SDK floor: the same RPCs and shards against a provider that does nothing (bench/null_provider.py)."""

    cpu_refresh: float
    cpu_preview: float
    peak_rss: int
    state_bytes: int
    cpu_check: float = 0.0
    refresh_wall: float = 0.0  # first Read sent -> last refresh Diff answered: the SDK's RPCs with no provider work

    @property
    def cpu(self) -> float:
        return self.cpu_refresh + self.cpu_preview


@dataclass
class Run:
    cloud: str
    size: int
    resources: int = 1
    create: Optional[Phase] = None
    refresh: Optional[Phase] = None
    host_start_cpu: float = 0.0
    state_bytes: int = 0
    outputs_form: str = ""
    floor: Optional[Floor] = None
    naive_calls: Optional[int] = None
    naive_wall: Optional[float] = None
    naive_note: str = ""
    warm: int = 0
    page_latency: Optional[float] = None  # seconds the sandbox takes to answer one history page
    seeded: bool = False
    sdk_call: Optional["CallFloor"] = None  # UCloud: one bare SDK call for the refresh's rows (bench/ucloud_floor.py)


@dataclass
class Shared:
    """Several resources on one zone refreshed by one host: their history calls against one read of the zone."""

    cloud: str
    sets: int
    size: int          # targets over all the sets
    resources: int
    calls: Counter
    min_calls: int
    wall: float

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class ChangeCheck:
    """A one-target change previewed against the refreshed state: which resources show which keys."""

    cloud: str
    size: int
    change: str
    expected: list[str]
    shown: dict[str, list[str]]   # resource name -> "kind path" entries (or "create"/"delete")
    cpu: float

    @property
    def ok(self) -> bool:
        return sorted(entry for entries in self.shown.values() for entry in entries) == sorted(self.expected)


def machine() -> str:
    mem = 0
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {mem / 2**30:.1f} GiB memory, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _mark(ok: bool, text: str) -> str:
    return f"{'yes' if ok else '**no**'}: {text}"


def main_table(runs: list[Run]) -> list[str]:
    lines = ["| cloud | targets | resources | phase | API calls (min) | calls / min | wall s (rate floor) "
             "| wall / floor | sandbox s per page | host CPU s | SDK floor CPU s | host peak RSS MB | state B/target "
             "| naive calls | naive / ours |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        phases = [("create", run.create)] if run.create else [("create", None)] if run.seeded else []
        for name, phase in phases + [("refresh", run.refresh)]:
            if phase is None:
                lines.append(f"| {run.cloud} | {run.size:,} | {run.resources} | create | seeded in the sandbox store "
                             "(--skip-create) | | | | | | | | | | |")
                continue
            calls = sum(phase.calls.values())
            refresh = name == "refresh"
            state = f"{run.state_bytes / run.size:.0f}" if refresh else ""
            naive = (f"{run.naive_calls:,}{' (computed)' if run.naive_note else ''}" if run.naive_calls else "-") \
                if refresh else ""
            latency = f"{run.page_latency:.3f}" if refresh and run.page_latency is not None else ""
            floor = f"{run.floor.cpu:.2f}" if refresh and run.floor else ""
            lines.append(
                f"| {run.cloud} | {run.size:,} | {run.resources} | {name} | {calls:,} ({phase.min_calls:,}) "
                f"| {ratio(calls, phase.min_calls)} | {phase.wall:.2f} ({phase.floor:.2f}) "
                f"| {ratio(phase.wall, phase.floor)} | {latency} | {phase.cpu:.2f} | {floor} "
                f"| {phase.peak_rss / 1e6:.0f} | {state} | {naive} "
                f"| {ratio(run.naive_calls, calls) if refresh and run.naive_calls else ''} |")
    return lines


def acceptance_table(runs: list[Run]) -> list[str]:
    lines = ["| cloud | targets | resources | calls ≤ 1.05 × min | wall ≤ 1.2 × floor | host CPU, refresh + diff ≤ 3 s "
             "| peak RSS ≤ 300 MB | state ≤ 250 B/target | calls, CPU growth vs 1,000 ≤ 110 × |",
             "|---|---:|---:|---|---|---|---|---|---|"]
    for cloud in dict.fromkeys(r.cloud for r in runs):
        mine = sorted((r for r in runs if r.cloud == cloud and r.refresh), key=lambda r: r.size)
        big, small = mine[-1], next((r for r in mine if r.size == 1000), None)
        ph = big.refresh
        calls = sum(ph.calls.values())
        growth = "-"
        if small is not None and small is not big:
            g_calls = calls / max(1, sum(small.refresh.calls.values()))
            g_cpu = ph.cpu / small.refresh.cpu if small.refresh.cpu else float("inf")
            allowed = TARGETS["growth"] * big.size / 100_000  # 110 x for 100 x the targets
            growth = _mark(g_calls <= allowed and g_cpu <= allowed, f"{g_calls:.0f} x calls, {g_cpu:.0f} x CPU")
        per_target = big.state_bytes / big.size
        cells = [_mark(calls <= TARGETS["calls"] * ph.min_calls, f"{calls / ph.min_calls:.2f}"),
                 _mark(ph.wall <= TARGETS["wall"] * ph.floor,
                       f"{ph.wall / ph.floor:.2f} (Reads alone {ph.read_wall / ph.floor:.2f})"),
                 _mark(ph.cpu_refresh + ph.cpu_diff <= TARGETS["cpu"],
                       f"{ph.cpu_refresh + ph.cpu_diff:.2f} s (refresh {ph.cpu_refresh:.2f} + Diff {ph.cpu_diff:.2f}); "
                       f"with the preview's Check {ph.cpu:.2f} s"),
                 _mark(ph.peak_rss <= TARGETS["rss"], f"{ph.peak_rss / 1e6:.0f} MB"),
                 _mark(per_target <= TARGETS["state"], f"{per_target:.0f}"), growth]
        lines.append(f"| {cloud} | {big.size:,} | {big.resources} | " + " | ".join(cells) + " |")
    return lines


def shared_table(runs: list[Run], shared: list[Shared]) -> list[str]:
    lines = ["| cloud | what | targets | resources | history calls (min: one read of the zone) | calls / min "
             "| ≤ 1.05 × min |",
             "|---|---|---:|---:|---:|---:|---|"]
    rows = [(r.cloud, f"1 set, {r.resources} shards", r.size, r.resources, sum(r.refresh.calls.values()),
             r.refresh.min_calls) for r in runs if r.refresh and r.resources > 1]
    rows += [(s.cloud, f"{s.sets} sets, one zone", s.size, s.resources, s.total, s.min_calls) for s in shared]
    for cloud, what, size, resources, calls, minimum in rows:
        lines.append(f"| {cloud} | {what} | {size:,} | {resources} | {calls:,} ({minimum:,}) | {ratio(calls, minimum)} "
                     f"| {_mark(calls <= TARGETS['calls'] * minimum, f'{calls / minimum:.2f}')} |")
    return lines


def floor_table(runs: list[Run]) -> list[str]:
    lines = ["| cloud | targets | resources | our outputs carry | host CPU s: ours (refresh + Check + Diff) "
             "| SDK floor (refresh + Check + Diff) | ours − floor | ours / floor | peak RSS MB: ours / floor "
             "| state B/target: ours / floor |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        if not run.floor or not run.refresh:
            continue
        fl, ph = run.floor, run.refresh
        lines.append(f"| {run.cloud} | {run.size:,} | {run.resources} | {run.outputs_form} "
                     f"| {ph.cpu:.2f} ({ph.cpu_refresh:.2f} + {ph.cpu_check:.2f} + {ph.cpu_diff:.2f}) "
                     f"| {fl.cpu:.2f} ({fl.cpu_refresh:.2f} + {fl.cpu_check:.2f} + {fl.cpu_diff:.2f}) "
                     f"| {ph.cpu - fl.cpu:.2f} | {ph.cpu / fl.cpu:.2f}x "
                     f"| {ph.peak_rss / 1e6:.0f} / {fl.peak_rss / 1e6:.0f} "
                     f"| {run.state_bytes / run.size:.0f} / {fl.state_bytes / run.size:.0f} |")
    return lines


def page_table(runs: list[Run]) -> list[str]:
    """Cloud CDN refreshes: the page size the adapter ended up with, and what it cost against the fewest calls."""
    lines = ["| cloud | targets | resources | sandbox: largest Limit, over it | Limit asked (answered requests) "
             "| served Limit | refused requests (Limit: code) | history calls | total calls "
             "| min ⌈rows / served⌉ | calls / min | min at 1000 | calls / min at 1000 "
             "| wall s (floor at served) | wall / floor | host CPU s: refresh + Diff (+ Check) |",
             "|---|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        ph = run.refresh
        use = ph.pages if ph else None
        if use is None:
            continue
        calls = sum(ph.calls.values())
        least = use.fewest_pages(run.size)
        floor = least / 20.0
        asked = ", ".join(f"{limit} × {count}" for limit, count in sorted(use.asked.items(), reverse=True)) or "-"
        refused = ", ".join(f"{limit}: {code}" for limit, code in use.refused) or "none"
        lines.append(f"| {run.cloud} | {run.size:,} | {run.resources} | {use.max_limit}, {use.over_limit} | {asked} "
                     f"| {use.served} | {len(use.refused)} ({refused}) | {use.answered + len(use.refused):,} "
                     f"| {calls:,} | {least:,} | {ratio(calls, least)} | {ph.min_calls:,} "
                     f"| {ratio(calls, ph.min_calls)} "
                     f"| {ph.wall:.2f} ({floor:.2f}) | {ratio(ph.wall, floor)} "
                     f"| {ph.cpu_refresh + ph.cpu_diff:.2f} (+ {ph.cpu_check:.2f}) |")
    return lines


def change_lines(checks: list[ChangeCheck]) -> list[str]:
    lines = []
    for check in checks:
        verdict = "yes" if check.ok else "**no**"
        lines.append(f"- {check.cloud} {check.size:,}, {check.change}: only the changed target(s) shown: {verdict}; "
                     f"expected {check.expected}; host CPU {check.cpu:.2f}s for Check + Diff of every resource")
        if not check.shown:
            lines.append("  - no resource shows a diff")
        for name, entries in check.shown.items():
            more = f" … and {len(entries) - 6} more" if len(entries) > 6 else ""
            lines.append(f"  - {name}: {entries[:6]}{more}")
    return lines


def speed_probe() -> float:
    """CPU seconds of a fixed piece of Python work like the provider's (JSON rows into dicts and tuples).

    The machine is a shared VM: the same benchmark's CPU figures move by 20 % between runs an
    hour apart. The probe, taken at the start and end of a run, says how fast the machine was
    then, so runs can be compared.
    """
    import json
    import time

    body = json.dumps([{"JobId": f"j{i // 1000}", "Target": f"https://static.example.com/{i}.js", "Status": "success",
                        "CreateTime": "2026-11-23T10:00:00+08:00"} for i in range(20_000)])
    start = time.process_time()
    for _ in range(5):
        index: dict = {}
        for row in json.loads(body):
            index[row["Target"]] = (row.get("JobId"), row.get("Status"), row.get("CreateTime"))
    return time.process_time() - start


def report(runs: list[Run], shared: list[Shared], checks: list[ChangeCheck], command: str,
           load: tuple[tuple[float, ...], tuple[float, ...]], probes: tuple[float, float] = (0.0, 0.0),
           parallel: Optional[int] = None, settings: Optional[dict[str, Any]] = None) -> str:
    lines = [f"Machine: {machine()}",
             f"Load average (1, 5, 15 min) at start {', '.join(f'{x:.2f}' for x in load[0])}; "
             f"at end {', '.join(f'{x:.2f}' for x in load[1])}",
             f"Speed probe (CPU s of fixed Python work, bench/report.py speed_probe; lower is faster): "
             f"{probes[0]:.3f} at start, {probes[1]:.3f} at end",
             f"Command: `{command}`",
             "Resource operations in flight at once: " + ("unbounded, every resource's RPC sent together (the "
                                                          "engine's default `--parallel`)" if parallel is None
                                                          else f"{parallel} (`--parallel {parallel}`)")]
    if settings:
        lines.append("Sandbox settings besides the raised quotas: "
                     + ", ".join(f"`{key}` = {value}" for key, value in settings.items()))
    lines += [""] + main_table(runs)
    lines += ["", "Acceptance (issue #6), refresh of the largest size per cloud:", ""]
    lines += acceptance_table(runs)
    if any(r.sdk_call for r in runs):
        from bench.ucloud_floor import floor_lines

        lines += ["", "UCloud (issue 19): the refresh's wall to the last refresh Diff against one bare SDK call of "
                      "DescribeNewUcdnPrefetchCacheTask for the same rows (bench/ucloud_floor.py; median of 3 calls; "
                      "its 'wall ≤ 1.2 × floor' above is against a rate-limit floor that does not apply):", ""]
        lines += floor_lines(runs)
    if any(r.resources > 1 for r in runs) or shared:
        lines += ["", "Shared history read: every resource on one zone, refreshed by one host, "
                      "against one read of the zone's history:", ""]
        lines += shared_table(runs, shared)
    if any(r.floor for r in runs):
        lines += ["", "SDK floor: the same refresh RPCs and shards against bench/null_provider.py "
                      "(no provider work; `target_lines` outputs):", ""]
        lines += floor_table(runs)
    if any(r.refresh and r.refresh.pages for r in runs):
        lines += ["", "Cloud CDN history page size (DescribePushTasks `Limit`, from the sandbox's request log; "
                      "min: the fewest calls at the served size, and at 1000):", ""]
        lines += page_table(runs)
    if checks:
        lines += ["", "One-target change, previewed against the refreshed state (engine input diff, DIFF_UNKNOWN):", ""]
        lines += change_lines(checks)
    lines += ["", "Calls per action, rejected requests, notes:", ""]
    for run in runs:
        for name, phase in (("create", run.create), ("refresh", run.refresh)):
            if phase is None:
                continue
            rejected = f", {phase.rejected} rejected" if phase.rejected else ""
            note = f"; {phase.note}" if phase.note else ""
            lines.append(f"- {run.cloud} {run.size:,} {name}: {dict(phase.calls)}{rejected}{note}")
        if run.naive_wall is not None:
            lines.append(f"- {run.cloud} {run.size:,} naive: {run.naive_calls:,} calls in {run.naive_wall:.1f}s")
        lines.append(f"- {run.cloud} {run.size:,}: host start-up CPU (before the first RPC) {run.host_start_cpu:.2f}s")
    for item in shared:
        lines.append(f"- {item.cloud} {item.size:,} shared ({item.sets} sets, {item.resources} resources): "
                     f"{dict(item.calls)} in {item.wall:.2f}s")
    return "\n".join(lines) + "\n"
