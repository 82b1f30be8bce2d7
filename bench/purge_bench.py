"""Benchmark: purge, then prefetch, of a whole set whose revision changed (issue #16), against the sandbox.

Per cloud: the set is created warm at revision ``r1`` (``create_all``: Check + Create of every
resource, as ``pulumi up`` of a new set), the sandbox's clock is moved an hour on (``store.age``:
the release comes later, its tasks are outside the polls' window) and the origin starts serving
``v2`` of every URL. Then the set's revision is bumped to ``r2``: the program's inputs change the
way the program writes them (every target's desired value ``warm (revision r2)``,
bench/layout.py), and ``pulumi up`` runs in a new provider host in the engine's order: Check, Diff
and Update of every resource, all sent at once (``update_all``, bench/steps.py). The provider
purges every target, waits for the purges to succeed in the cloud's purge history, then
prefetches them.

The sandbox keeps its real rate limits and batch sizes (20 requests/s per Tencent action; UCloud:
one prefetch submit per 10 s per account, 30 URLs per refresh; EdgeOne 1000 per purge, CDN 1000
per purge and 500 per push); only the daily quotas are raised (prefetch and purge). The set
consents to purging all of itself (``maxPurgeShare: 1``); pacing is the default (none) unless
``--pace-batch-size`` / ``--pace-pause`` say otherwise.

Printed per cloud: API calls of the update by action against the minimum, rejected requests,
wall against the floor (rate limits, pacing pauses, the sandbox's task progress time), host CPU
seconds and peak RSS; and the checks: every target warm, each URL purged exactly once and
prefetched exactly once during the update, each purge before its prefetch, every resource
updated, and the edge (sandbox/edge.py) serving the origin's new version. Exits 1 if a check fails.

    venv/bin/python bench/purge_bench.py                                   # 10,000 targets, every cloud
    venv/bin/python bench/purge_bench.py --clouds ucloud --size 300 --wait 30s
    venv/bin/python bench/purge_bench.py --clouds edgeone --pace-batch-size 500 --pace-pause 2s

This is a benchmark, not a test: the test suite never runs it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import steps  # noqa: E402
from bench.cloud_side import (  # noqa: E402
    CLOUDS,
    PAGE,
    PROGRESS_SECONDS,
    QUOTA,
    RESOURCE_TYPE,
    TENCENT_RATE,
    UCLOUD_INTERVAL,
    Cloud,
    config_for,
    request_counts,
    start_sandbox,
)
from bench.host import ProviderHost  # noqa: E402
from bench.layout import Resource, set_resources, target_urls  # noqa: E402
from bench.prefetch_bench import provider_blob, run_create, warm_count  # noqa: E402
from bench.report import speed_probe  # noqa: E402
from bench.steps import update_all  # noqa: E402

FRESHNESS = "24h"
OLD, NEW = "r1", "r2"              # the set's revision at create, and after the release
ORIGIN_OLD, ORIGIN_NEW = "v1", "v2"  # what the origin serves before and after (sandbox/edge.py versions)
AGE = 3600.0                       # seconds between the create and the release (sandbox clock moved on)
UPDATE_TIMEOUT = 4 * 3600.0        # the Update RPC's deadline (UCloud's long runs; bench/host.py's is 1 h)


@dataclass(frozen=True)
class PurgeSide:
    """A cloud's purge actions in the sandbox, its purge batch and its quota settings."""

    submit: str
    history: str
    batch: int
    url_key: str                   # the submit's parameter holding the URLs (a list in the request log)
    prefetch_url_key: str
    quota_actions: tuple[str, ...]  # the calls that answer both quotas (one action on EdgeOne and UCloud)
    settings: tuple[str, ...]      # daily purge quota settings raised like the prefetch ones


PURGE = {
    "edgeone": PurgeSide("CreatePurgeTask", "DescribePurgeTasks", 1000, "Targets", "Targets",
                         ("DescribeContentQuota",), ("purge_daily",)),
    "tencent-cdn": PurgeSide("PurgeUrlsCache", "DescribePurgeTasks", 1000, "Urls", "Urls",
                             ("DescribePushQuota", "DescribePurgeQuota"),
                             ("cdn_purge_daily_mainland", "cdn_purge_daily_overseas")),
    "ucloud": PurgeSide("RefreshNewUcdnDomainCache", "DescribeNewUcdnRefreshCacheTask", 30, "UrlList", "UrlList",
                        ("GetUcdnDomainPrefetchRefreshState",), ("ucloud_refresh_daily",)),
}


@dataclass
class Result:
    cloud: str
    size: int
    resources: int
    calls: Counter
    rejected: int
    minimum: dict[str, int]        # action -> fewest calls
    wall: float
    update_wall: float
    floor: float
    floor_parts: dict[str, float]
    cpu: float
    peak_rss: int
    create_calls: int = 0
    create_wall: float = 0.0
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.checks.values())


def pages(rows: int, cloud: Cloud) -> int:
    """Fewest history calls that return ``rows`` rows: one UCloud call (no Limit), else 1000-row pages."""
    return 1 if cloud.name == "ucloud" else max(1, math.ceil(rows / PAGE))


def destination(cloud: Cloud, pace_batch: Optional[int], pace_pause: Optional[str]) -> dict[str, Any]:
    """The destination input with the set's policy, as components/model/policy.py ``policy_entries`` writes it."""
    from components.model.policy import policy_entries

    pace = {}
    if pace_batch:
        pace["batchSize"] = pace_batch
    if pace_pause:
        pace["pause"] = pace_pause
    return {**cloud.destination, **policy_entries(False, {"maxPurgeShare": 1.0}, None, pace)}


def resources_at(cloud: Cloud, urls: list[str], dest: dict[str, Any], revision: str, wait: str) -> list[Resource]:
    size = len(urls)
    return set_resources(f"bench-{cloud.name}-{size}", f"bench-{size}", dest, urls, freshness=FRESHNESS, wait=wait,
                         provider=provider_blob(), urn_of=lambda name: ProviderHost.urn(RESOURCE_TYPE, name),
                         revision=revision)


def urls_of(rows: list[dict], key: str) -> Counter:
    """How many accepted submits named each URL."""
    found: Counter = Counter()
    for row in rows:
        if row["error_code"] is None:
            found.update(row["params"].get(key) or [])
    return found


def timeline(rows: list[dict]) -> str:
    """Each action's calls as ``action first-last (count)``, in order of first arrival: where the wall goes."""
    if not rows:
        return "no requests"
    origin = rows[0]["time"]
    spans: dict[str, list[float]] = {}
    for row in rows:
        spans.setdefault(row["action"], []).append(row["time"] - origin)
    return ", ".join(f"{action} {times[0]:.2f}-{times[-1]:.2f} ({len(times)})" for action, times in spans.items())


def bench_cloud(cloud: Cloud, size: int, *, wait: str, pace_batch: Optional[int], pace_pause: Optional[str],
                workdir: Path, log) -> Result:
    from components.model.durations import parse_duration

    side = PURGE[cloud.name]
    db = workdir / f"{cloud.name}-{size}.db"
    box = start_sandbox(db)
    try:
        for key in side.settings:
            box.store.set_setting(key, QUOTA)
        urls = target_urls(size)
        dest = destination(cloud, pace_batch, pace_pause)
        old = resources_at(cloud, urls, dest, OLD, wait)

        # -- the set, warm at r1 ----------------------------------------------------------------
        log(f"{cloud.name} {size}: create at revision {OLD}, {len(old)} resources")
        created = run_create(box, cloud, old)  # bench/prefetch_bench.py: Check + Create of every resource
        log(f"  create: {dict(created.calls)} in {created.wall:.1f}s; {created.note}")
        if "NOT ALL WARM" in created.note or created.rejected:
            raise RuntimeError(f"{cloud.name}: the create failed ({created.rejected} rejected): {created.note}")

        # -- the release: an hour later, the origin serves v2 ------------------------------------
        time.sleep(PROGRESS_SECONDS + 0.2)  # every create task finished
        box.store.age(AGE)
        release = time.time()
        with box.store._write() as db_:  # one transaction for N rows (set_origin_version writes one at a time)
            db_.executemany("INSERT INTO origin_versions (url, version, at) VALUES (?, ?, ?)",
                            [(url, ORIGIN_NEW, release) for url in urls])
        before = box.store.edges(urls, cloud.service)
        stale_before = sum(1 for e in before.values() if e.serves == ORIGIN_OLD)
        log(f"  release: origin serves {ORIGIN_NEW}; the edge serves {ORIGIN_OLD} for {stale_before} of {size}")

        # -- pulumi up of the bumped revision ---------------------------------------------------
        new = resources_at(cloud, urls, dest, NEW, wait)
        states = {r.name: r for r in old}
        time.sleep(1.2)  # the sandbox's one-second rate window is clear
        box.store.clear_requests()
        log(f"{cloud.name} {size}: up at revision {NEW} (Check, Diff, Update of {len(new)} resources)")
        host = ProviderHost(config_for(box, cloud))
        try:
            run = update_all(host, new, states, timeout=UPDATE_TIMEOUT)
        finally:
            host_log = host.stop()
        calls, rejected = request_counts(box)
        log(f"  update: {dict(calls)} in {run.wall:.1f}s, host CPU {run.cpu:.2f}s, "
            f"peak RSS {run.peak_rss / 2**20:.0f} MiB")

        # -- the minimum and the floor ----------------------------------------------------------
        sizes = [r.targets for r in new]
        prefetch_submits = sum(math.ceil(n / min(cloud.batch, pace_batch or cloud.batch)) for n in sizes)
        purge_submits = sum(math.ceil(n / min(side.batch, pace_batch or side.batch)) for n in sizes)
        minimum = {
            cloud.history_action: 2 * pages(size, cloud),   # the state before (the create's rows), the poll after
            side.history: 1 + pages(size, cloud),           # the (empty) purge history before, the poll after
            side.submit: purge_submits,
            cloud.submit_action: prefetch_submits,
        }
        for action in side.quota_actions:
            minimum[action] = minimum.get(action, 0) + 1
        pause = parse_duration(pace_pause).total_seconds() if pace_pause else 0.0
        batch_p = min(side.batch, pace_batch or side.batch)
        batch_f = min(cloud.batch, pace_batch or cloud.batch)
        pauses = pause * (max(math.ceil(n / batch_p) for n in sizes) - 1 +
                          max(math.ceil(n / batch_f) for n in sizes) - 1)
        parts: dict[str, float] = {}
        if cloud.name == "ucloud":
            # Prefetch submits: one per 10 s per account, all shards together. Refreshes: no interval is
            # documented (the sandbox enforces none); the rest at the polite 20 calls/s.
            others = sum(minimum.values()) - prefetch_submits
            parts["prefetch submits, one per 10 s"] = max((prefetch_submits - 1) * UCLOUD_INTERVAL,
                                                          pause * (max(math.ceil(n / batch_f) for n in sizes) - 1))
            parts["other calls at 20/s"] = others / TENCENT_RATE
            parts["pacing pauses (purges)"] = pause * (max(math.ceil(n / batch_p) for n in sizes) - 1)
        else:
            parts["calls at 20/s per action"] = sum(minimum.values()) / TENCENT_RATE
            parts["pacing pauses"] = pauses
        parts["task progress (purge, then prefetch)"] = 2 * PROGRESS_SECONDS
        floor = sum(parts.values())

        result = Result(cloud.name, size, len(new), calls, rejected, minimum, run.wall, run.update_wall, floor, parts,
                        run.cpu, run.peak_rss, sum(created.calls.values()), created.wall)
        result.notes.append("timeline (arrivals at the sandbox, s after the update's first request): "
                            + timeline(box.store.requests()))
        result.notes.append(f"purge submits set-wide ceil({size}/{batch_p}) = {math.ceil(size / batch_p)}, per "
                            f"resource {purge_submits} (shards of {sizes}); prefetch submits {prefetch_submits}")

        # -- the checks -------------------------------------------------------------------------
        warm = sum(warm_count(r.outputs) for r in new)
        result.checks["every target warm"] = (warm == size, f"{warm} of {size}")
        result.checks["no rejected request"] = (rejected == 0, f"{rejected} rejected")
        result.checks["every resource updated"] = (len(run.updated) == len(new), f"{len(run.updated)} of {len(new)}")
        purge_rows = box.store.requests(action=side.submit)
        prefetch_rows = box.store.requests(action=cloud.submit_action)
        purged, prefetched = urls_of(purge_rows, side.url_key), urls_of(prefetch_rows, side.prefetch_url_key)
        wanted = set(urls)
        once = lambda counts: set(counts) == wanted and set(counts.values()) == {1}  # noqa: E731
        result.checks["each URL purged exactly once"] = (
            once(purged), f"{len(purged)} URLs in {len(purge_rows)} submits, most {max(purged.values(), default=0)} times")
        result.checks["each URL prefetched exactly once"] = (
            once(prefetched), f"{len(prefetched)} URLs in {len(prefetch_rows)} submits, "
                              f"most {max(prefetched.values(), default=0)} times")
        purged_at = {u: r["time"] for r in purge_rows if r["error_code"] is None for u in r["params"][side.url_key]}
        early = sum(1 for r in prefetch_rows if r["error_code"] is None for u in r["params"][side.prefetch_url_key]
                    if u not in purged_at or purged_at[u] >= r["time"])
        result.checks["each purge sent before its prefetch"] = (early == 0, f"{early} prefetched before their purge")
        edges = box.store.edges(urls, cloud.service)
        serving = Counter(e.version for e in edges.values())
        result.checks["the edge serves the new version"] = (
            serving == Counter({ORIGIN_NEW: size}),
            f"cached copies by version: {dict(serving)} (before the up: {stale_before} served {ORIGIN_OLD})")
        if not result.ok:
            result.notes.append("host log (end): " + host_log[-3000:])
        return result
    finally:
        box.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


def render(results: list[Result], command: str, load: tuple, probe: tuple) -> str:
    lines = [f"Command: `{command}`", "",
             f"Machine: {os.cpu_count()} cores; load average at start {', '.join(f'{x:.2f}' for x in load[0])}, "
             f"at end {', '.join(f'{x:.2f}' for x in load[1])}; speed probe {probe[0]:.3f} at start, "
             f"{probe[1]:.3f} at end", "",
             "| cloud | targets | resources | API calls (min) | calls / min | rejected | wall s (floor) | wall / floor "
             "| host CPU s | host peak RSS MB | checks |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        total, least = sum(r.calls.values()), sum(r.minimum.values())
        lines.append(f"| {r.cloud} | {r.size:,} | {r.resources} | {total} ({least}) | {total / least:.2f}x | "
                     f"{r.rejected} | {r.wall:.2f} ({r.floor:.2f}) | {r.wall / r.floor:.2f}x | {r.cpu:.2f} | "
                     f"{r.peak_rss / 1e6:.0f} | {'all pass' if r.ok else 'FAILED'} |")
    lines += ["", "API calls of the update by action (minimum in brackets):", ""]
    for r in results:
        actions = sorted(set(r.calls) | set(r.minimum))
        lines.append(f"- {r.cloud}: " + ", ".join(f"{a} {r.calls.get(a, 0)} ({r.minimum.get(a, 0)})" for a in actions))
    lines += ["", "Floor parts and checks:", ""]
    for r in results:
        lines.append(f"- {r.cloud}: floor " + ", ".join(f"{k} {v:.2f}s" for k, v in r.floor_parts.items())
                     + f"; Updates {r.update_wall:.2f}s of the {r.wall:.2f}s; create before it: {r.create_calls} "
                       f"calls in {r.create_wall:.1f}s")
        for name, (ok, detail) in r.checks.items():
            lines.append(f"  - {'ok' if ok else 'FAILED'}: {name} ({detail})")
        for note in r.notes:
            lines.append(f"  - {note}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clouds", default="edgeone,tencent-cdn,ucloud", help="comma-separated clouds")
    parser.add_argument("--size", type=int, default=10_000, help="targets in the set (default 10000)")
    parser.add_argument("--wait", default="10m", help="the set's wait (default 10m, the benchmark sets' own)")
    parser.add_argument("--pace-batch-size", type=int, default=None, help="the set's pace.batchSize (default: none)")
    parser.add_argument("--pace-pause", default=None, help="the set's pace.pause, e.g. 2s (default: none)")
    parser.add_argument("--parallel", type=int, default=None, help="as `pulumi up --parallel N` (default unbounded)")
    parser.add_argument("--output", help="also write the report (markdown) to this file")
    args = parser.parse_args(argv)
    steps.PARALLEL = args.parallel

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    load_start, probe_start = os.getloadavg(), speed_probe()
    results = []
    with tempfile.TemporaryDirectory(prefix="purge-bench-") as tmp:
        for name in (c.strip() for c in args.clouds.split(",") if c.strip()):
            results.append(bench_cloud(CLOUDS[name], args.size, wait=args.wait, pace_batch=args.pace_batch_size,
                                       pace_pause=args.pace_pause, workdir=Path(tmp), log=log))
    command = ("venv/bin/python bench/purge_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    text = render(results, command, (load_start, os.getloadavg()), (probe_start, speed_probe()))
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    failed = [f"{r.cloud}: {name} ({detail})" for r in results for name, (ok, detail) in r.checks.items() if not ok]
    for line in failed:
        log(f"FAILED: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
