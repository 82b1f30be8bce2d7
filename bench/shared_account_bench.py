"""Benchmark: N provider processes creating their own sets at once on one cloud account (issue 19).

Several pipelines (a matrix of sites, several repositories deploying together) run their stacks at
the same time against one account, whose rate limit (20 requests/s per action for Tencent) they
share. Each is its own provider process (its own host, as each ``pulumi up`` starts its own), with
its own set of 25,000 targets on its own EdgeOne zone of the one account: the sandbox counts the
limit per account (SecretId), service and action, whatever the zone, as the cloud does. EdgeOne
because its history is read per zone, so each process's minimum calls are its own; the processes
share nothing but the account's limit.

All N hosts are started and configured first; then every host gets the engine's `pulumi up` of a new
set (Check then Create of each of its resources, all at once: bench/steps.py ``create_all``) at the
same moment. Per N, the median of ``--repeat`` runs (each on a new sandbox database) of:

- **total calls**: every request the sandbox logged, throttled ones included (each is a call);
- **throttled**: requests answered ``RequestLimitExceeded``, and their share of all calls;
- **wall**: from the common start to the last process's last Create answered;
- **shared floor**: the fewest calls of every process (as bench/prefetch_bench.py counts a create's:
  one history read of the empty zone, one quota call, the submits, one history read of the finished
  tasks), each action's at its 20/s shared by all processes, the actions side by side as
  prefetch_bench.py's ``create_floor`` has them: the submit path (every submit, the last task's 0.5 s
  completion, one history page after it) or the history path, whichever is longer (``rate_floor``).
  Until session 6 the actions were summed, which put the floor above what the processes reached;
- **calls floor**: the same for the calls the processes really made (throttled ones left out): what
  the rate alone could have done with them. Wall against it says how well the processes shared
  the limit; wall against the shared floor adds what a create spends over the minimum calls;
- **each target submitted once**: from the sandbox's request log, not the provider's outputs: every
  URL of every set is in exactly one accepted CreatePrefetchTask, and no accepted one holds another URL.

    venv/bin/python bench/shared_account_bench.py                      # N = 1, 2, 4; 25,000 targets each
    venv/bin/python bench/shared_account_bench.py --processes 4 --targets 5000 --repeat 1
    venv/bin/python bench/shared_account_bench.py --rate-share 0.25    # with cdn-prefetch:rateShare set

This is a benchmark, not a test: the test suite never runs it. It exits 1 when a target was not
submitted exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import steps  # noqa: E402
from bench.cloud_side import CLOUDS, PROGRESS_SECONDS, TENCENT_RATE, config_for, start_sandbox  # noqa: E402
from bench.host import ProviderHost  # noqa: E402
from bench.layout import Resource, set_resources, target_urls  # noqa: E402
from bench.prefetch_bench import FRESHNESS, WAIT, provider_blob, warm_count  # noqa: E402
from bench.report import speed_probe  # noqa: E402

CLOUD = CLOUDS["edgeone"]
THROTTLED = "RequestLimitExceeded"


def zone(process: int) -> str:
    return f"zone-share{process}"


def process_urls(process: int, count: int) -> list[str]:
    """Process ``process``'s own ``count`` URLs: the benchmark's usual URLs under a path of its own."""
    return [url.replace("/assets/v2/", f"/assets/p{process}/") for url in target_urls(count)]


def process_resources(process: int, urls: Sequence[str]) -> list[Resource]:
    base = f"share-{process}"
    return set_resources(base, base, {"provider": "edgeone", "zone": zone(process)}, urls, freshness=FRESHNESS,
                         wait=WAIT, provider=provider_blob(), urn_of=lambda name: ProviderHost.urn(
                             "pulumi-python:dynamic/cdnprefetch:Destination", name))


def minimum_calls(resources: Sequence[Resource]) -> Counter:
    """A create's fewest calls per action (bench/prefetch_bench.py ``run_create``): one read of the empty zone,
    one quota call, the submits (each resource submits its own targets), one read of the finished tasks."""
    size = sum(r.targets for r in resources)
    submits = sum(CLOUD.submits(r.targets) for r in resources)
    return Counter({CLOUD.history_action: 1 + CLOUD.history_pages(size, submits), "DescribeContentQuota": 1,
                    CLOUD.submit_action: submits})


@dataclass
class Run:
    processes: int
    targets: int
    calls: Counter = field(default_factory=Counter)  # per action, every logged request
    throttled: Counter = field(default_factory=Counter)  # per action
    other_errors: Counter = field(default_factory=Counter)  # error code -> count
    minimum: Counter = field(default_factory=Counter)  # per action, all processes
    wall: float = 0.0
    process_walls: list[float] = field(default_factory=list)
    once: bool = False
    once_note: str = ""
    warm: int = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def throttled_total(self) -> int:
        return sum(self.throttled.values())

    @property
    def floor(self) -> float:
        return rate_floor(self.minimum)

    @property
    def calls_floor(self) -> float:
        return rate_floor(self.calls - self.throttled)


def rate_floor(calls: Counter) -> float:
    """The least wall for ``calls`` (per action) at 20/s per action, the actions side by side, as
    bench/prefetch_bench.py's ``create_floor``: the submits, then the last task's completion and one
    history page after it; every other action's calls at their own 20/s."""
    submits = calls[CLOUD.submit_action]
    paths = [submits / TENCENT_RATE + PROGRESS_SECONDS + 1 / TENCENT_RATE]
    paths += [count / TENCENT_RATE for action, count in calls.items() if action != CLOUD.submit_action]
    return max(paths)


def submitted_once(box: Any, sets: Sequence[Sequence[str]]) -> tuple[bool, str]:
    """Every URL of ``sets`` in exactly one accepted submit, and nothing else submitted (the request log)."""
    seen: Counter = Counter()
    for row in box.store.requests(action=CLOUD.submit_action):
        if row["error_code"] is None and row["handled"]:
            seen.update((row["params"] or {}).get("Targets") or [])
    wanted = {url for urls in sets for url in urls}
    missing = len(wanted - seen.keys())
    twice = sum(1 for url in wanted if seen[url] > 1)
    stray = len(seen.keys() - wanted)
    ok = not (missing or twice or stray)
    return ok, "" if ok else f"{missing} never submitted, {twice} submitted more than once, {stray} not ours"


def run_once(processes: int, targets: int, workdir: Path, share: Optional[float], log) -> Run:
    db = workdir / f"share-{processes}.db"
    box = start_sandbox(db)
    hosts: list[ProviderHost] = []
    run = Run(processes, targets)
    try:
        sets = [process_urls(p, targets) for p in range(processes)]
        layouts = [process_resources(p, urls) for p, urls in enumerate(sets)]
        config = dict(config_for(box, CLOUD))
        if share is not None:
            config["cdn-prefetch:rateShare"] = str(share)
        hosts = [ProviderHost(config) for _ in range(processes)]
        time.sleep(1.2)  # nothing of the hosts' start in the sandbox's rate window
        box.store.clear_requests()
        go = threading.Barrier(processes + 1)
        ends: list[float] = [0.0] * processes
        errors: list[BaseException] = []

        def one(index: int) -> None:
            go.wait()
            try:
                steps.create_all(hosts[index], layouts[index])
            except BaseException as exc:  # noqa: BLE001 - reported below, with the host's log
                errors.append(exc)
            ends[index] = time.monotonic()

        threads = [threading.Thread(target=one, args=(p,)) for p in range(processes)]
        for thread in threads:
            thread.start()
        go.wait()
        start = time.monotonic()
        for thread in threads:
            thread.join()
        if errors:
            raise RuntimeError(f"a create failed: {errors[0]!r}\n{hosts[0].log()[-2000:]}")
        run.wall = max(ends) - start
        run.process_walls = [end - start for end in ends]
        for row in box.store.requests():
            run.calls[row["action"]] += 1
            code = row["error_code"]
            if code and code.startswith(THROTTLED):
                run.throttled[row["action"]] += 1
            elif code:
                run.other_errors[code] += 1
        for resources in layouts:
            run.minimum.update(minimum_calls(resources))
        run.once, run.once_note = submitted_once(box, sets)
        run.warm = sum(warm_count(r.outputs) for resources in layouts for r in resources)
        log(f"  N={processes}: {run.total} calls ({dict(run.calls)}), {run.throttled_total} throttled, "
            f"wall {run.wall:.2f}s (processes {', '.join(f'{w:.1f}' for w in run.process_walls)}), floor "
            f"{run.floor:.2f}s, calls floor {run.calls_floor:.2f}s, once: {run.once} {run.once_note}"
            + (f", other errors {dict(run.other_errors)}" if run.other_errors else ""))
        return run
    finally:
        for host in hosts:
            host.stop()
        box.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def report(results: dict[int, list[Run]], command: str, load: tuple, probe: tuple, share: Optional[float]) -> str:
    lines = [f"Command: `{command}`", "",
             f"Load average (1, 5, 15 min) at start {', '.join(f'{x:.2f}' for x in load[0])}; "
             f"at end {', '.join(f'{x:.2f}' for x in load[1])}",
             f"Speed probe (bench/report.py, lower is faster): {probe[0]:.3f} at start, {probe[1]:.3f} at end",
             f"cdn-prefetch:rateShare: {share if share is not None else 'unset (the default: adaptive from the limit)'}",
             "",
             "| N | targets each | total calls | throttled | throttled % | wall s | shared floor s | wall / floor "
             "| calls floor s | wall / calls floor | each target submitted once |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n, runs in results.items():
        pct = [100 * r.throttled_total / r.total for r in runs]
        lines.append(
            f"| {n} | {runs[0].targets:,} | {median([r.total for r in runs]):.0f} | "
            f"{median([r.throttled_total for r in runs]):.0f} | {median(pct):.1f} | {median([r.wall for r in runs]):.2f} "
            f"| {runs[0].floor:.2f} | {median([r.wall / r.floor for r in runs]):.2f}x | "
            f"{median([r.calls_floor for r in runs]):.2f} | {median([r.wall / r.calls_floor for r in runs]):.2f}x | "
            f"{'yes' if all(r.once for r in runs) else 'NO'} |")
    lines += ["", f"Medians of {len(next(iter(results.values())))} runs. Each run, per N:", ""]
    for n, runs in results.items():
        for r in runs:
            lines.append(f"- N={n}: calls {dict(r.calls)} (minimum {dict(r.minimum)}), throttled {dict(r.throttled)}"
                         f" ({100 * r.throttled_total / r.total:.1f} %), wall {r.wall:.2f}s (each process: "
                         f"{', '.join(f'{w:.1f}' for w in r.process_walls)}), warm {r.warm:,}"
                         + (f", other errors {dict(r.other_errors)}" if r.other_errors else "")
                         + ("" if r.once else f", NOT SUBMITTED ONCE: {r.once_note}"))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4", help="comma-separated N (default 1,2,4)")
    parser.add_argument("--targets", type=int, default=25_000, help="targets of each process's set (default 25000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per N; the report gives medians (default 3)")
    parser.add_argument("--rate-share", type=float, default=None,
                        help="set cdn-prefetch:rateShare in every process (default: unset)")
    parser.add_argument("--output", help="also write the report (markdown) to this file")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    load_start, probe_start = os.getloadavg(), speed_probe()
    results: dict[int, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="shared-account-bench-") as tmp:
        for n in [int(x) for x in args.processes.split(",") if x.strip()]:
            for attempt in range(max(1, args.repeat)):
                log(f"N={n}, {args.targets:,} targets each, run {attempt + 1} of {args.repeat}")
                results.setdefault(n, []).append(run_once(n, args.targets, Path(tmp), args.rate_share, log))
    command = "venv/bin/python bench/shared_account_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, command.strip(), (load_start, os.getloadavg()), (probe_start, speed_probe()),
                  args.rate_share)
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0 if all(r.once for runs in results.values() for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
