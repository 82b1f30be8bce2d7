"""UCloud's fair refresh floor: one bare SDK call of DescribeNewUcdnPrefetchCacheTask for the same rows (issue 19).

Why a floor of its own: UCloud's history API answers every task of a window in one call (``Limit``
defaults to all), so the rate-limit floor the other clouds are judged by (calls / 20 per second) is
0.05 s and means nothing: no reader of 100,000 rows comes near it. What a refresh cannot beat is
asking the cloud once for the same rows with its own SDK and getting them back as Python data.

The call is made the way a user of ``ucloud-sdk-python3`` makes it: ``UCDNClient`` with its default
settings apart from the sandbox's endpoint and key pair, through ``describe_new_ucdn_prefetch_cache_task``
(the SDK's request and response schemas included), for the window the refresh reads. Two figures:

- ``default``: the SDK's default middleware, which logs every request and response at INFO
  (the whole 16 MB answer at 100,000 targets); its lines go to /dev/null, the cheapest sink;
- ``lean``: the same call with an empty middleware (no logging), as the adapter's client is built:
  the stricter floor.

The calls run in a process of their own, as the provider host does, so the caller and the sandbox
(in the benchmark's process) do not share an interpreter lock. The median of ``repeat`` calls is
reported, with the tasks and URLs the answer held (the same rows as the refresh read).

    venv/bin/python -m bench.ucloud_floor --endpoint http://127.0.0.1:PORT --begin B --end E   # (the child)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from bench.report import Run
    from sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
ACTION = "DescribeNewUcdnPrefetchCacheTask"
TARGET = 1.2  # issue 19: the refresh's wall at most 1.2 x one bare SDK call


@dataclass(frozen=True)
class CallFloor:
    """Medians of one bare SDK call, and what its answer held."""

    default: float        # seconds, the SDK's default client (its logging middleware included)
    lean: float           # seconds, the same client with an empty middleware
    tasks: int
    urls: int
    samples: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # every call's seconds: default, lean


def refresh_window(now: Optional[datetime] = None) -> tuple[int, int]:
    """(BeginTime, EndTime) of a refresh's history read with the benchmark's 24 h freshness: from a day of
    freshness plus a day of margin before now, floored to the 10 minutes (resource/converge.py,
    clouds/history.py ``window_start``), to a day after now (clouds/ucloud.py ``CLOCK_AHEAD_ALLOWANCE``).
    A few minutes either way hold the same rows: the seeded tasks finished ten minutes ago."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=2)
    since = since.replace(minute=since.minute - since.minute % 10, second=0, microsecond=0)
    return int(since.timestamp()), int((now + timedelta(days=1)).timestamp()) + 1


def measure(box: "Sandbox", repeat: int = 3) -> CallFloor:
    """The floor against ``box``, measured in a child process (see the module docstring)."""
    begin, end = refresh_window()
    time.sleep(1.2)  # the refresh's calls are out of the sandbox's one-second rate window
    child = subprocess.run([sys.executable, "-m", "bench.ucloud_floor", "--endpoint", box.url, "--begin", str(begin),
                            "--end", str(end), "--repeat", str(repeat)], cwd=str(ROOT), capture_output=True,
                           text=True, env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1"},
                           timeout=600)
    if child.returncode != 0:
        raise RuntimeError(f"the SDK floor's process failed: {child.stderr[-2000:]}")
    found = json.loads(child.stdout.strip().splitlines()[-1])
    default, lean = found["default"], found["lean"]
    return CallFloor(statistics.median(default), statistics.median(lean), found["tasks"], found["urls"],
                     (tuple(default), tuple(lean)))


def floor_lines(runs: list["Run"]) -> list[str]:
    """The report's table: each UCloud refresh against one bare SDK call for the same rows.

    Beside it, the same refresh's RPCs against the null provider (the SDK's own (de)serialising of 16 Reads
    and refresh Diffs, no provider work, when the run measured it): the refresh cannot take less than the
    call or those RPCs, nor, unless they overlap, than both.
    """
    lines = ["| cloud | targets | resources | history calls | refresh wall s (Reads alone) | bare SDK call s: "
             "default (lean) | rows the call held: tasks, URLs | wall / call: default (lean) | wall ≤ 1.2 × call "
             "| null-provider refresh wall s | wall / (call + null wall) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for run in runs:
        floor, phase = getattr(run, "sdk_call", None), run.refresh
        if floor is None or phase is None:
            continue
        calls = phase.calls.get(ACTION, 0)
        ok = phase.wall <= TARGET * floor.default
        strict = phase.wall <= TARGET * floor.lean
        verdict = f"{'yes' if ok else '**no**'} (against the lean call: {'yes' if strict else 'no'})"
        null = run.floor.refresh_wall if run.floor and run.floor.refresh_wall else None
        both = f"{null:.2f} | {phase.wall / (floor.default + null):.2f}x" if null else "- | -"
        lines.append(f"| {run.cloud} | {run.size:,} | {run.resources} | {calls} | {phase.wall:.2f} "
                     f"({phase.read_wall:.2f}) | {floor.default:.2f} ({floor.lean:.2f}) | {floor.tasks:,}, "
                     f"{floor.urls:,} | {phase.wall / floor.default:.2f}x ({phase.wall / floor.lean:.2f}x) "
                     f"| {verdict} | {both} |")
    return lines


# -- the child: the calls themselves ------------------------------------------------------------------------
def _time_calls(client: object, params: dict, repeat: int) -> tuple[list[float], dict]:
    took, answer = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.describe_new_ucdn_prefetch_cache_task(dict(params))  # type: ignore[attr-defined]
        took.append(time.perf_counter() - start)
        time.sleep(0.1)
    return took, answer


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--begin", type=int, required=True)
    parser.add_argument("--end", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from ucloud.core.utils import log as sdk_log
    from ucloud.core.utils.middleware import Middleware
    from ucloud.services.ucdn.client import UCDNClient

    from sandbox import SANDBOX_UCLOUD_PRIVATE_KEY, SANDBOX_UCLOUD_PUBLIC_KEY

    with open(os.devnull, "w", encoding="utf-8") as sink:
        for handler in sdk_log.default_logger.handlers:  # the default client logs every answer: to /dev/null
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)
        config = {"base_url": args.endpoint, "public_key": SANDBOX_UCLOUD_PUBLIC_KEY,
                  "private_key": SANDBOX_UCLOUD_PRIVATE_KEY}
        params = {"BeginTime": args.begin, "EndTime": args.end}
        default, answer = _time_calls(UCDNClient(dict(config)), params, args.repeat)
        lean, _ = _time_calls(UCDNClient(dict(config), middleware=Middleware()), params, args.repeat)
    tasks = answer.get("TaskList") or []
    urls = sum(len(task.get("UrlLists") or []) for task in tasks)
    print(json.dumps({"default": default, "lean": lean, "tasks": len(tasks), "urls": urls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
