"""A destination's live prefetch quota: what an adapter reads and the plan judges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Quota:
    """Live prefetch (or purge) quota of one destination.

    A cloud may answer without a quota (EdgeOne documents ``PrefetchQuota`` and ``PurgeQuota`` as possibly
    null): ``daily`` and ``available`` are then None, nothing is judged against them, the cloud refuses what
    exceeds its quota; ``batch`` is then a guess, and ``smaller_batches`` are the sizes to step down to when
    the cloud refuses a batch as too large.
    """

    batch: int                 # most URLs one submit may carry
    daily: Optional[int]       # daily cap; None: not reported
    available: Optional[int]   # what is left today; None: not reported
    smaller_batches: tuple[int, ...] = ()

    @property
    def reported(self) -> bool:
        return self.daily is not None and self.available is not None

    @classmethod
    def unreported(cls, batches: tuple[int, ...]) -> "Quota":
        """What a cloud that did not report its quota allows, as far as we know: ``batches`` largest first."""
        return cls(batches[0], None, None, tuple(batches[1:]))
