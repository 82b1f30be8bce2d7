"""Benchmark: create + refresh of 1,000 / 10,000 / 100,000 prefetch targets on each cloud, against the sandbox.

The sandbox keeps its real rate limits (20 requests/s per Tencent action, one UCloud submit per
10 s, Limit <= 1000); only the daily quotas are raised so that large sets fit. The provider runs
in the SDK's real dynamic provider host (``python -u -m pulumi.dynamic``), driven over gRPC the way
the engine drives it (bench/host.py, bench/steps.py); the sandbox runs in this process, so the
host's CPU seconds and peak RSS (read from /proc) are the provider's alone.

A set becomes the resources the program makes of it (bench/layout.py, components/plan/shards.py): one
up to 8,192 targets, then a power of two of shards, each with a ``shard`` input. They are created
and refreshed concurrently, as the engine steps resources in parallel.

Per size and cloud it prints: API calls made against the minimum possible (one read of the zone's
history, however many resources), wall time against the rate-limit floor (for a create: the submit
limit, the history limit beside it, and the sandbox's completion time; ``create_floor``), the host's CPU seconds
and peak RSS next to the SDK's own floor (the same RPCs against a provider that does nothing,
bench/null_provider.py), and bytes of state per target. A UCloud refresh is also judged against one bare SDK
call for the same rows (bench/ucloud_floor.py): its history is one call, so the rate-limit floor says nothing. It also checks that sets sharing a zone
share its history read, that a one-target change previews as exactly that target, and runs the
naive strategy (one task id per call, the API's default page size) for the ratio of calls.

    venv/bin/python bench/prefetch_bench.py                       # the default run
    venv/bin/python bench/prefetch_bench.py --sizes 1000 --clouds edgeone --also none
    venv/bin/python bench/prefetch_bench.py --sizes 100000 --clouds edgeone --skip-create --also none
    venv/bin/python bench/prefetch_bench.py --sizes 100000 --clouds edgeone --shards 1   # one unsharded resource
    venv/bin/python bench/prefetch_bench.py --sizes 100000 --clouds tencent-cdn --skip-create --also none \
        --cdn-max-limit 100 --cdn-over-limit refuse     # a Cloud CDN refusing Limit > 100 (issue 21)

With ``--cdn-max-limit`` / ``--cdn-over-limit`` the sandbox's Cloud CDN serves history pages up to
that Limit and refuses (or caps) larger ones; the report then says which page size the adapter
ended up using (the served Limit, from the sandbox's request log) and how many requests were refused.

This is a benchmark, not a test: the test suite never runs it. It exits 1 when the one-target
change shows anything but the changed target(s).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.runtime.proto import provider_pb2  # noqa: E402

from bench import cloud_side, steps, ucloud_floor  # noqa: E402
from bench.cloud_side import (  # noqa: E402
    CLOUDS,
    HOST,
    PAGE,
    PROGRESS_SECONDS,
    RESOURCE_TYPE,
    TENCENT_RATE,
    UCLOUD_INTERVAL,
    Cloud,
    config_for,
    naive_calls_computed,
    page_use,
    probe_page_latency,
    request_counts,
    run_naive,
    seed_history,
    start_sandbox,
)
from bench.host import ProviderHost  # noqa: E402
from bench.layout import Resource, lean_outputs, outputs_form, set_resources, state_size, target_urls  # noqa: E402
from bench.report import ChangeCheck, Floor, Phase, Run, Shared, ratio, report, speed_probe  # noqa: E402
from bench.steps import Refreshed, create_all, preview_all, refresh_all  # noqa: E402
from sandbox import Sandbox  # noqa: E402

# The default run's extra sizes: 100,000 targets created for real where a create takes seconds (Tencent,
# 20 submits/s), seeded where it takes 17 minutes (UCloud, one submit per 10 s).
DEFAULT_ALSO = ("100000:edgeone+tencent-cdn", "100000:ucloud:skip-create")
FRESHNESS, WAIT = "24h", "10m"
Log = Callable[[str], None]


def provider_blob(null: bool = False) -> str:
    """``__provider`` as the program pickles it (by reference), for the real provider or the null one."""
    from pulumi.dynamic.dynamic import serialize_provider

    if null:
        from bench.null_provider import NullProvider

        return serialize_provider(NullProvider())
    from components.provider import PrefetchProvider

    return serialize_provider(PrefetchProvider())


def resources_for(cloud: Cloud, urls: Sequence[str], shards: Optional[int], *, set_name: str,
                  base: str) -> list[Resource]:
    return set_resources(base, set_name, cloud.destination, urls, freshness=FRESHNESS, wait=WAIT,
                         provider=provider_blob(), urn_of=lambda name: ProviderHost.urn(RESOURCE_TYPE, name),
                         shards=shards)


def warm_count(outputs: dict) -> int:
    return int(outputs.get("summary", {}).get("counts", {}).get("warm", 0))


# -- create (up) ---------------------------------------------------------------------------------------
def run_create(box: Sandbox, cloud: Cloud, resources: list[Resource]) -> Phase:
    host = ProviderHost(config_for(box, cloud))
    try:
        box.store.clear_requests()
        started, sandbox_cpu = time.time(), time.process_time()
        usage = create_all(host, resources)
        sandbox_cpu = time.process_time() - sandbox_cpu
    finally:
        log = host.stop()
    calls, rejected = request_counts(box)
    sent = [r["time"] for r in box.store.requests(action=cloud.submit_action) if r["error_code"] is None]
    size = sum(r.targets for r in resources)
    submits = sum(cloud.submits(r.targets) for r in resources)  # each resource submits its own targets
    # one history read of the (empty) zone + one quota call + the submits + one read that sees every task finished
    pages = cloud.history_pages(size, submits)
    minimum = 1 + 1 + submits + pages
    phase = Phase(calls, rejected, minimum, usage.wall, create_floor(cloud, submits, pages), usage.cpu,
                  usage.peak_rss)
    warm = sum(warm_count(r.outputs) for r in resources)
    # The Checks come first (the host serves the RPCs in arrival order, 4 at a time): the SDK decodes and
    # re-encodes every target there, a cost no provider avoids and the floor leaves out; shown apart.
    phase.note = (f"{len(resources)} resources, {submits} submits; Checks answered by {usage.checks:.2f}s, "
                  f"wall after them {usage.wall - usage.checks:.2f}s = {ratio(usage.wall - usage.checks, phase.floor)} "
                  "the floor")
    if len(sent) > 1:  # where the rest goes: the submits' pace, and the wait for the last tasks after them
        span = max(sent) - min(sent)
        phase.note += (f"; accepted submits reached the sandbox over {span:.2f}s ({(len(sent) - 1) / span:.1f}/s), "
                       f"the last {started + usage.wall - max(sent):.2f}s before the end; sandbox CPU "
                       f"{sandbox_cpu:.2f}s (the bench process)")
    if warm != size:
        phase.note += f"; NOT ALL WARM after create: {warm} of {size}; host log:\n{log[-2000:]}"
    return phase


def create_floor(cloud: Cloud, submits: int, pages: int) -> float:
    """The least wall of a create, set by the submit limit, the quotas and the sandbox's completion time.

    Tencent clouds count 20 requests/s per action, submits and history reads apart, so the two run side
    by side. Submits: ``submits / 20`` s (the daily quota, raised here, never binds; the batch quota makes
    the count); the last task finishes ``PROGRESS_SECONDS`` after it is sent, and at least one page of
    history must be read after that (1/20 s). History: the read of the empty zone and the pages of every
    row, ``(1 + pages) / 20`` s, none of which can finish before the submits' path does (the last rows
    exist only then). The floor is the longer path. Not counted: the provider host's start (its imports,
    the Checks), which no implementation avoids, nor any margin a client keeps under the limit.
    UCloud: one submit per 10 s, so ``(submits - 1) * 10`` s, plus the last task's completion.
    """
    if cloud.name == "ucloud":
        return (submits - 1) * UCLOUD_INTERVAL + PROGRESS_SECONDS
    submit_path = submits / TENCENT_RATE + PROGRESS_SECONDS + 1 / TENCENT_RATE
    history_path = (1 + pages) / TENCENT_RATE
    return max(submit_path, history_path)


# -- refresh (preview --refresh) -----------------------------------------------------------------------
def run_refresh(box: Sandbox, cloud: Cloud, resources: list[Resource], run: Run) -> tuple[Phase, list[Refreshed]]:
    """What ``pulumi preview --refresh`` asks of the provider: Read and the refresh Diff of every resource,
    then Check and Diff of every resource."""
    host = ProviderHost(config_for(box, cloud))
    try:
        box.store.clear_requests()
        run.host_start_cpu = host.usage().cpu
        result = refresh_all(host, resources)
    finally:
        log = host.stop()
    calls, rejected = request_counts(box)
    arrivals = [r["time"] for r in box.store.requests()]
    size = sum(r.targets for r in resources)
    minimum = cloud.history_pages(size, 0)  # one read of the zone's history, shared by every resource
    # The refresh's wall ends with the last refresh Diff: the engine sends it right after each Read, and
    # `pulumi refresh` is done with the provider only when both are answered.
    phase = Phase(calls, rejected, minimum, result.refresh_wall, minimum / TENCENT_RATE, result.cpu, result.peak_rss,
                  cpu_refresh=result.cpu_refresh, cpu_preview=result.cpu_preview, cpu_check=result.cpu_check,
                  read_wall=result.read_wall, pages=page_use(box, cloud))
    span = max(arrivals) - min(arrivals) if arrivals else 0.0
    phase.note = (f"wall: Reads {result.read_wall:.2f}s (first sent to last answered; the {len(arrivals)} history "
                  f"requests reached the sandbox over {span:.2f}s), refresh Diffs done at "
                  f"{result.refresh_wall:.2f}s, whole sequence {result.wall:.2f}s; host CPU: Reads + refresh Diffs "
                  f"{result.cpu_refresh:.2f}s, Checks {result.cpu_check:.2f}s, Diffs "
                  f"{result.cpu_preview - result.cpu_check:.2f}s")
    warm = sum(warm_count(state.outputs) for state in result.states)
    run.warm = warm
    if warm != size:
        phase.note += f"; NOT ALL WARM: {warm} of {size}; host log: {log[-1500:]}"
    return phase, result.states


def run_floor(box: Sandbox, cloud: Cloud, resources: list[Resource]) -> Floor:
    """The same refresh against bench/null_provider.py: the SDK's (de)serialisation with no provider work."""
    blob = provider_blob(null=True)
    null = [Resource(r.name, r.urn, {**r.inputs, "__provider": blob}, r.id, lean_outputs(r.outputs, blob),
                     {**(r.state_inputs or r.inputs), "__provider": blob}) for r in resources]
    host = ProviderHost(config_for(box, cloud))
    try:
        result = refresh_all(host, null)
    finally:
        host.stop()
    state = sum(state_size(s.inputs, s.outputs) for s in result.states)
    return Floor(result.cpu_refresh, result.cpu_preview, result.peak_rss, state, result.cpu_check,
                 result.refresh_wall)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def median_phase(phases: list[Phase]) -> Phase:
    """One refresh measured several times (each in a fresh host): the median of each figure, the range in the note."""
    if len(phases) == 1:
        return phases[0]
    first = phases[0]
    walls, cpus, rsss = ([p.wall for p in phases], [p.cpu for p in phases], [p.peak_rss for p in phases])
    calls = {sum(p.calls.values()) for p in phases}
    note = (f"median of {len(phases)} runs (wall to the last refresh Diff {min(walls):.2f}-{max(walls):.2f}s, "
            f"host CPU {min(cpus):.2f}-"
            f"{max(cpus):.2f}s, peak RSS {min(rsss) / 1e6:.0f}-{max(rsss) / 1e6:.0f} MB"
            + ("" if len(calls) == 1 else f", calls {sorted(calls)}") + f"); first run: {first.note}")
    return Phase(first.calls, max(p.rejected for p in phases), first.min_calls, median(walls), first.floor,
                 median(cpus), int(median(rsss)), note, median([p.cpu_refresh for p in phases]),
                 median([p.cpu_preview for p in phases]), median([p.cpu_check for p in phases]),
                 median([p.read_wall for p in phases]), first.pages)


def median_floor(floors: list[Floor]) -> Floor:
    """The SDK floor measured several times (each in a fresh host): the median of each stage."""
    return Floor(median([f.cpu_refresh for f in floors]), median([f.cpu_preview for f in floors]),
                 int(median([f.peak_rss for f in floors])), floors[0].state_bytes,
                 median([f.cpu_check for f in floors]))


# -- shared history read: two sets on one zone -------------------------------------------------------------
def run_shared(cloud: Cloud, size: int, shards: Optional[int], workdir: Path, log: Log) -> Shared:
    """Two sets of ``size / 2`` targets on the same zone, refreshed by one host: their history costs one read."""
    db = workdir / f"{cloud.name}-{size}-shared.db"
    box = start_sandbox(db)
    try:
        urls = target_urls(size)
        resources = []
        for label, part in (("a", urls[:size // 2]), ("b", urls[size // 2:])):
            resources += resources_for(cloud, part, shards, set_name=f"bench-{label}-{size}",
                                       base=f"bench-{cloud.name}-{label}-{size}")
        log(f"{cloud.name} {size}: shared read, 2 sets on one zone in {len(resources)} resources (seeded)")
        seed_history(box, cloud, resources)
        time.sleep(1.2)  # the sandbox's one-second rate window is clear
        host = ProviderHost(config_for(box, cloud))
        try:
            box.store.clear_requests()
            result = refresh_all(host, resources, preview=False)
        finally:
            host.stop()
        calls, _ = request_counts(box)
        shared = Shared(cloud.name, 2, size, len(resources), calls, cloud.history_pages(size, 0), result.read_wall)
        log(f"  shared: {dict(calls)} (minimum {shared.min_calls}) in {result.read_wall:.2f}s")
        return shared
    finally:
        box.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


# -- a one-target change, previewed against the refreshed state ----------------------------------------------
def run_change_check(box: Sandbox, cloud: Cloud, urls: list[str], resources: list[Resource],
                     states: list[Refreshed], shards: Optional[int], log: Log) -> list[ChangeCheck]:
    """Replace one URL (and, separately, add one), rebuild the resources like the program, Check + Diff each.

    The provider's Diff answers DIFF_UNKNOWN, so the engine diffs the old inputs (the refreshed state's)
    against the checked new inputs itself (pulumi-dynamic.md §1.4, tests/engine.py ``input_diff``).
    Only the changed target(s) may appear: nothing else in their shard, no other shard.
    """
    from tests.engine import input_diff

    by_name = {r.name: s for r, s in zip(resources, states)}
    size = len(urls)

    def new_url(tag: str) -> str:
        return f"https://{HOST}/assets/v2/new/chunk-{hashlib.md5(tag.encode()).hexdigest()[:10]}.js"

    def entries(old: dict, new: dict) -> list[str]:
        return [f"{entry.kind} {path}" for path, entry in input_diff(old, new).items()]

    middle, replacement, added = size // 2, new_url("replaced"), new_url("added")
    variants = [
        ("one target replaced", urls[:middle] + [replacement] + urls[middle + 1:],
         entries({"targets": {urls[middle]: "warm"}}, {"targets": {replacement: "warm"}})),
        ("one target added", urls + [added], entries({"targets": {}}, {"targets": {added: "warm"}})),
    ]
    checks = []
    for change, new_urls, expected in variants:
        program = resources_for(cloud, new_urls, shards, set_name=f"bench-{size}", base=f"bench-{cloud.name}-{size}")
        host = ProviderHost(config_for(box, cloud))
        try:
            before = host.usage().cpu
            answers = preview_all(host, program, by_name)
            cpu = host.usage().cpu - before
        finally:
            host.stop()
        shown: dict[str, list[str]] = {}
        for resource in program:
            changes, checked = answers[resource.name]
            if changes == -1:
                shown[resource.name] = ["create"]
            elif changes != provider_pb2.DiffResponse.DIFF_NONE:
                found = entries(by_name[resource.name].inputs, checked)
                if found or changes == provider_pb2.DiffResponse.DIFF_SOME:
                    shown[resource.name] = found or ["update (DIFF_SOME, equal inputs)"]
        for name in sorted(by_name.keys() - {r.name for r in program}):
            shown[name] = ["delete"]
        check = ChangeCheck(cloud.name, size, change, expected, shown, cpu)
        log(f"{cloud.name} {size}: {change}: {'ok' if check.ok else 'FAILED'}: "
            f"{shown if len(shown) < 5 else list(shown)}")
        checks.append(check)
    return checks


# -- one size on one cloud -----------------------------------------------------------------------------
def bench_one(cloud: Cloud, size: int, *, skip_create: bool, naive_max: int, workdir: Path, log: Log,
              repeat: int = 1, shards: Optional[int] = None, floor: bool = True,
              change_check: bool = False) -> tuple[Run, list[ChangeCheck]]:
    run = Run(cloud.name, size)
    checks: list[ChangeCheck] = []
    db = workdir / f"{cloud.name}-{size}.db"
    box = start_sandbox(db)
    try:
        urls = target_urls(size)
        resources = resources_for(cloud, urls, shards, set_name=f"bench-{size}", base=f"bench-{cloud.name}-{size}")
        run.resources = len(resources)
        if skip_create:
            log(f"{cloud.name} {size}: seeding history in the sandbox store (create skipped), "
                f"{len(resources)} resources")
            seed_history(box, cloud, resources)
        else:
            log(f"{cloud.name} {size}: create, {len(resources)} resources")
            run.create = run_create(box, cloud, resources)
            log(f"  create: {dict(run.create.calls)} in {run.create.wall:.1f}s, host CPU {run.create.cpu:.2f}s; "
                f"{run.create.note}")
        time.sleep(max(PROGRESS_SECONDS, 1.0) + 0.2)  # every task finished; the last second's calls are past
        phases = []
        for attempt in range(repeat):
            if attempt:
                time.sleep(1.2)  # the last second's calls are out of the sandbox's rate window
            log(f"{cloud.name} {size}: refresh (Read, refresh Diff, Check, Diff), {attempt + 1} of {repeat}")
            phase, states = run_refresh(box, cloud, resources, run)
            log(f"  refresh: {dict(phase.calls)}, Reads {phase.wall:.2f}s, host CPU {phase.cpu:.2f}s, "
                f"peak RSS {phase.peak_rss / 2**20:.0f} MiB; {phase.note}")
            phases.append(phase)
        run.refresh = median_phase(phases)
        if cloud.name == "ucloud":
            log(f"{cloud.name} {size}: one bare SDK call for the same rows (bench/ucloud_floor.py), median of 3")
            run.sdk_call = ucloud_floor.measure(box)
            log(f"  bare SDK call: {run.sdk_call.default:.2f}s default, {run.sdk_call.lean:.2f}s lean, "
                f"{run.sdk_call.urls:,} URLs in {run.sdk_call.tasks} tasks")
        run.state_bytes = sum(state_size(s.inputs, s.outputs) for s in states)
        run.outputs_form = outputs_form(states[0].outputs)
        if floor:
            floors = []
            for attempt in range(repeat):  # as many as our refreshes, each in a fresh host: the medians are compared
                log(f"{cloud.name} {size}: SDK floor (null provider, same RPCs and shards), {attempt + 1} of {repeat}")
                floors.append(run_floor(box, cloud, resources))
                log(f"  floor: host CPU {floors[-1].cpu:.2f}s (refresh {floors[-1].cpu_refresh:.2f}s, Checks "
                    f"{floors[-1].cpu_check:.2f}s, Diffs {floors[-1].cpu_diff:.2f}s), peak RSS "
                    f"{floors[-1].peak_rss / 2**20:.0f} MiB")
            run.floor = median_floor(floors)
        if change_check:
            checks = run_change_check(box, cloud, urls, resources, states, shards, log)
        pages = run.refresh.pages
        run.page_latency = probe_page_latency(box, cloud, size, limit=pages.served if pages and pages.served else PAGE)
        run.seeded = skip_create
        submitted = [task for r in resources for task in r.outputs.get("submitted") or []]
        if size <= naive_max:
            log(f"{cloud.name} {size}: naive strategy over {len(submitted)} tasks")
            run.naive_calls, run.naive_wall = run_naive(box, cloud, [task["task_id"] for task in submitted])
        else:
            run.naive_calls = naive_calls_computed(cloud, [int(task["count"]) for task in submitted])
            run.naive_note = "computed"
    finally:
        box.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    return run, checks


def count_or(word: str, option: str) -> Callable[[str], Optional[int]]:
    """An argparse type: ``word`` (None) or a count >= 1, e.g. ``--shards auto|N``."""
    def parse(text: str) -> Optional[int]:
        if text == word:
            return None
        try:
            count = int(text)
        except ValueError:
            count = 0
        if count < 1:
            raise argparse.ArgumentTypeError(f"{option} must be '{word}' or a count >= 1")
        return count
    return parse


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated target counts (default 1000,10000)")
    parser.add_argument("--clouds", default="edgeone,tencent-cdn,ucloud", help="comma-separated clouds")
    parser.add_argument("--skip-create", action="store_true",
                        help="seed history directly in the sandbox store instead of running create")
    parser.add_argument("--also", action="append", metavar="SIZE:CLOUD[+CLOUD][:skip-create]",
                        help="extra runs after the grid, e.g. 100000:edgeone+tencent-cdn or 100000:ucloud:skip-create "
                             f"(default: {' and '.join(DEFAULT_ALSO)}; --also none for no extra runs)")
    parser.add_argument("--shards", type=count_or("auto", "--shards"), default=None, metavar="auto|N",
                        help="resources per set: 'auto' (default) as the program splits it (components/plan/shards.py), "
                             "or N; --shards 1 measures one unsharded resource for comparison")
    parser.add_argument("--parallel", type=count_or("unbounded", "--parallel"), default=None, metavar="unbounded|N",
                        help="resource operations in flight at once, as `pulumi --parallel`: 'unbounded' (default, "
                             "the engine's default) or N")
    parser.add_argument("--naive-max", type=int, default=10_000,
                        help="run the naive strategy up to this size; above it its calls are computed (default 10000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measure each refresh this many times, each in a fresh host, and report the medians "
                             "(default 3: wall time and peak RSS vary by 5-10 %% between runs)")
    parser.add_argument("--no-floor", action="store_true", help="skip the SDK floor (null provider) measurement")
    parser.add_argument("--shared-max", type=int, default=10_000,
                        help="run the two-sets-on-one-zone shared read check up to this size (default 10000; 0: "
                             "never). Above it the K shards of the refresh itself show the shared read")
    parser.add_argument("--no-change-check", action="store_true",
                        help="skip the one-target change check (at the largest size, on its first cloud)")
    parser.add_argument("--index-sandbox", action="store_true",
                        help="no effect, kept so that older commands still run: the sandbox store now always has "
                             "the (service, created) index this used to add")
    parser.add_argument("--cdn-max-limit", type=int, default=None, metavar="N",
                        help="the sandbox's largest Cloud CDN history Limit (setting cdn_history_max_limit; default "
                             "the sandbox's, 1000). The adapter asks 1000 and steps down to 20 when it is refused")
    parser.add_argument("--cdn-over-limit", choices=("refuse", "cap"), default=None,
                        help="what the sandbox does with a larger Limit (setting cdn_history_over_limit): refuse "
                             "(InvalidParameter.CdnParamError, the sandbox's default) or cap (serve N rows a page)")
    parser.add_argument("--output", help="also write the report (markdown) to this file")
    args = parser.parse_args(argv)
    steps.PARALLEL = args.parallel
    for key, value in (("cdn_history_max_limit", args.cdn_max_limit), ("cdn_history_over_limit", args.cdn_over_limit)):
        if value is not None:
            cloud_side.SANDBOX_SETTINGS[key] = value

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    clouds = [CLOUDS[c.strip()] for c in args.clouds.split(",") if c.strip()]
    plan = [(cloud, size, args.skip_create) for size in sizes for cloud in clouds]
    for item in args.also if args.also is not None else DEFAULT_ALSO:
        if item == "none":
            continue
        size, names, *rest = item.split(":")
        if rest not in ([], ["skip-create"]):
            parser.error(f"--also {item!r}: expected SIZE:CLOUD[+CLOUD][:skip-create]")
        plan.extend((CLOUDS[name], int(size), args.skip_create or bool(rest)) for name in names.split("+"))
    largest = max(size for _, size, _ in plan)
    change_at = None if args.no_change_check else next(i for i, (_, size, _) in enumerate(plan) if size == largest)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    runs, checks, shared = [], [], []
    load_start = os.getloadavg()
    probe_start = speed_probe()
    with tempfile.TemporaryDirectory(prefix="prefetch-bench-") as tmp:
        for index, (cloud, size, skip) in enumerate(plan):
            run, found = bench_one(cloud, size, skip_create=skip, naive_max=args.naive_max, workdir=Path(tmp), log=log,
                                   repeat=max(1, args.repeat), shards=args.shards, floor=not args.no_floor,
                                   change_check=index == change_at)
            runs.append(run)
            checks += found
        for name, size in dict.fromkeys((cloud.name, size) for cloud, size, _ in plan):
            if size <= args.shared_max:
                shared.append(run_shared(CLOUDS[name], size, args.shards, Path(tmp), log))
    command = "venv/bin/python bench/prefetch_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(runs, shared, checks, command.strip(), (load_start, os.getloadavg()), (probe_start, speed_probe()),
                  args.parallel, cloud_side.SANDBOX_SETTINGS)
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    failed = [check for check in checks if not check.ok]
    for check in failed:
        log(f"FAILED: {check.cloud} {check.size:,} {check.change}: the preview shows {check.shown}, "
            f"expected only {check.expected}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
