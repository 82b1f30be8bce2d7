"""The SDK's provider host (``python -m pulumi.dynamic``) under cProfile, every thread: bench only.

``bench/host.py`` starts this instead of the host when ``BENCH_HOST_PROFILE`` names a directory.
cProfile sees only the thread that enables it, and the host serves RPCs on a thread pool, so each
thread gets its own profiler, timed by the thread's CPU clock (a wall clock would count the waits
for the GIL and for the network as the time of whatever call was waiting). The bench stops hosts
with SIGTERM; their stats are then merged into ``<dir>/host-<pid>.prof`` (read it with ``python -m
pstats``). The CPU clock is a system call per event, so the host runs several times slower and
calls that are many and short look dearer than they are: use it to see where the time goes, not
how much there is.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import runpy
import signal
import sys
import threading
import time
from typing import Any

_PROFILES: list[cProfile.Profile] = []
_LOCK = threading.Lock()
_thread_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile(time.thread_time)
    with _LOCK:
        _PROFILES.append(profile)
    profile.enable()
    try:
        _thread_run(self)
    finally:
        profile.disable()


def _dump(path: str) -> None:
    with _LOCK:
        profiles = list(_PROFILES)
    stats = None
    for profile in profiles:
        profile.disable()
        stats = pstats.Stats(profile) if stats is None else stats.add(profile)
    if stats is not None:
        stats.dump_stats(path)


def main() -> None:
    path = os.path.join(sys.argv[1], f"host-{os.getpid()}.prof")
    sys.argv = [sys.argv[0], *sys.argv[2:]]

    def stop(*_: Any) -> None:
        _dump(path)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile(time.thread_time)
    _PROFILES.append(main_profile)
    main_profile.enable()
    runpy.run_module("pulumi.dynamic", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
