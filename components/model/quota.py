"""A destination's live prefetch quota: what an adapter reads and the plan judges."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """Live prefetch quota of one destination."""

    batch: int       # most URLs one submit may carry
    daily: int       # daily cap
    available: int   # what is left today
