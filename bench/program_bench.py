"""Benchmark: the Pulumi program's own cost for a set of 1,000 / 10,000 / 100,000 targets.

``bench/prefetch_bench.py`` measures the provider host. Every ``pulumi preview`` and ``pulumi up``
also runs the program first: it reads the declaration (YAML, validated by the JSON Schema),
normalises and de-duplicates the URLs, splits them into shards and registers the resources. That
must be linear too (issue #6: "normalising ... 100,000 targets is linear and fast").

Two ways in, each size in a fresh Python process (so peak RSS is this program's alone):
- ``yaml``: a sets folder with one declaration file of N targets, run through ``components.program.main``;
- ``typed``: ``PrefetchSet(name, PrefetchSetArgs(targets=[N URLs]))``, the typed API.

The program runs under ``pulumi.runtime.set_mocks`` (tests/fakes.py ``run_program``),
which records every RegisterResource the engine would receive; the registered shards' targets are
counted against N (nothing dropped). Printed per way and size: CPU seconds of the process from the
program's start to its last registration (the SDK's serialisation of the resources included),
peak RSS, resources, and the growth against the 1,000-target figure (issue #6: ≤ 110 ×).

    venv/bin/python bench/program_bench.py
    venv/bin/python bench/program_bench.py --sizes 1000,100000 --ways yaml

This is a benchmark, not a test: the test suite never runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.host import process_usage  # noqa: E402
from bench.layout import target_urls  # noqa: E402
from bench.report import machine, speed_probe  # noqa: E402

WAYS = ("yaml", "typed")
ZONE = "zone-2o0i4xfimj9g"
GROWTH_LIMIT = 110


def child(way: str, size: int) -> dict:
    """Run the program once in this process; what the parent prints for one way and size."""
    from components import program
    from components.engine.args import PrefetchSetArgs
    from components.engine.prefetch_set import PrefetchSet
    from tests.fakes import DYNAMIC, run_program

    urls = target_urls(size)
    with tempfile.TemporaryDirectory(prefix="program-bench-") as tmp:
        config = None
        if way == "yaml":
            sets = Path(tmp) / "sets"
            sets.mkdir()
            lines = ["provider: edgeone", f"zone: {ZONE}", "preflight: off", "targets:"] + [f"  - {u}" for u in urls]
            (sets / "big.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
            config = {"cdn-prefetch:setsDir": str(sets)}
            run_it = program.main
        else:
            def run_it() -> None:
                PrefetchSet("big", PrefetchSetArgs(provider="edgeone", zone=ZONE, targets=urls, preflight="off"))
        wall, cpu = time.perf_counter(), time.process_time()
        run = run_program(run_it, config=config)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if run.error is not None:
        raise SystemExit(f"{way} {size}: the program failed: {run.error}")
    shards = [r for r in run.registrations if r.type == DYNAMIC]
    registered = sum(len(r.inputs["targets"]) for r in shards)
    return {"way": way, "size": size, "cpu": cpu, "wall": wall, "rss": process_usage(os.getpid()).peak_rss / 2**20,
            "resources": len(shards), "registered": registered}


def measure(way: str, size: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", way, str(size)], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> list[str]:
    lines = ["| way | targets | resources | targets registered | CPU s | wall s | peak RSS MB | CPU vs 1,000 | ≤ 110 × |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    base = {r["way"]: r["cpu"] for r in rows if r["size"] == 1000}
    for r in rows:
        growth = r["cpu"] / base[r["way"]] if r["way"] in base and base[r["way"]] > 0 else None
        grown = f"{growth:.0f} x" if growth is not None else "-"
        verdict = "-" if growth is None or r["size"] == 1000 else ("yes" if growth <= GROWTH_LIMIT else "**no**")
        complete = "all" if r["registered"] == r["size"] else f"**{r['registered']:,} of {r['size']:,}**"
        lines.append(f"| {r['way']} | {r['size']:,} | {r['resources']} | {complete} | {r['cpu']:.2f} | "
                     f"{r['wall']:.2f} | {r['rss']:.0f} | {grown} | {verdict} |")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated target counts")
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated: yaml, typed")
    parser.add_argument("--repeat", type=int, default=3, help="runs per way and size; the median CPU run is kept")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return 0
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    unknown = sorted(set(ways) - set(WAYS))
    if unknown:
        parser.error(f"--ways: unknown {', '.join(unknown)} (known: {', '.join(WAYS)})")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    probe_start = speed_probe()
    rows = []
    for way in ways:
        for size in sizes:
            runs = sorted((measure(way, size) for _ in range(max(1, args.repeat))), key=lambda r: r["cpu"])
            rows.append(runs[len(runs) // 2])
            spread = ", ".join(f"{r['cpu']:.2f}" for r in runs)
            print(f"{way} {size:,}: CPU {spread} s", file=sys.stderr, flush=True)
    command = "venv/bin/python bench/program_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print("\n".join([f"Machine: {machine()}",
                     f"Speed probe (bench/report.py speed_probe; lower is faster): {probe_start:.3f} at start, "
                     f"{speed_probe():.3f} at end",
                     f"Command: `{command.strip()}`", "", *table(rows)]))
    short = [r for r in rows if r["registered"] != r["size"]]
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
