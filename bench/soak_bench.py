"""Benchmark: the soak scenario at 5,000 targets on the three clouds under chaos, with its figures.

The scenario is the test suite's (tests/test_soak.py runs it at 1,200 targets): ``run_soak`` in
tests/stacks.py, one set with an EdgeOne, a Tencent Cloud CDN and a UCloud destination, through the
engine harness and the real provider host, against a sandbox that throttles, answers 502 and resets
connections (half of those after the cloud did the work), ``up`` repeated until in sync. The same
guarantees are checked (every destination converged, every target submitted exactly once per
destination, the chaos happened); the benchmark exits 1 if one does not hold.

Printed: targets, ups (and failed ones), wall seconds, requests per action, per fault, per error
code, and the ambiguous submits. Wall time is dominated by UCloud's 10 s spacing between submits
(5 batches of 1,000, plus the retries of the ambiguous submits), which the provider enforces.

    venv/bin/python bench/soak_bench.py
    venv/bin/python bench/soak_bench.py --targets 2000 --max-ups 8

This is a benchmark, not a test: the test suite never runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import machine  # noqa: E402
from tests.stacks import SOAK_MAX_UPS, run_soak, start_sandbox  # noqa: E402


def table(title: str, counts: dict) -> list[str]:
    rows = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return ["", f"| {title} | requests |", "|---|---:|", *(f"| {name} | {n:,} |" for name, n in rows)]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=5_000, help="targets in the set (default 5000)")
    parser.add_argument("--max-ups", type=int, default=SOAK_MAX_UPS, help="ups at most before giving up")
    args = parser.parse_args(argv)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    with tempfile.TemporaryDirectory(prefix="soak-bench-") as folder:
        sandbox = start_sandbox(Path(folder) / "sandbox.db")
        try:
            run = run_soak(Path(folder), sandbox, args.targets, max_ups=args.max_ups)
        finally:
            sandbox.stop()
    report = run.report()
    command = "venv/bin/python bench/soak_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"Machine: {machine()}", f"Command: `{command.strip()}`", "",
             f"targets: {report['targets']:,} on {report['destinations']} destinations",
             f"ups: {report['ups']} ({report['failed_ups']} failed)",
             f"wall time: {report['seconds']} s",
             f"requests: {report['requests']:,}",
             *table("action", report["by_action"]), *table("fault", report["by_fault"]),
             *table("error code", report["by_error_code"]), *table("ambiguous submit", report["ambiguous_submits"])]
    lines += [f"failed up: {failure}" for failure in run.failures]
    try:
        run.check()
    except AssertionError as failed:
        print("\n".join([*lines, "", f"GUARANTEE NOT MET: {failed}"]))
        return 1
    print("\n".join([*lines, "", "guarantees: every destination in sync, every target submitted exactly once per "
                                 "destination, the chaos happened"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
