"""A set's policy: its consent to large changes (safety rails) and to partial submits, what it does
when content changes (``onChange``), and how its submits are paced (``pace``).

Declared in a set (``allowPartial``, ``safety``, ``onChange``, ``pace``) or by stack config
(``allowLargeChanges``), it
travels to the provider inside the resource's ``destination`` input as text values (present only
when declared), so consent shows in the preview diff and in state. A value: the declarations build
it, the plan (``plan/safety.py``) judges with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional

from .durations import parse_duration
from .status import OnChange

DEFAULT_MAX_QUOTA_SHARE = 0.5
DEFAULT_MAX_DROP_SHARE = 0.5
# Purging is the dangerous half of a release: every purged URL is fetched from the origin again.
DEFAULT_MAX_PURGE_SHARE = 0.5


CONFIG_KEY = "cdn-prefetch:allowLargeChanges"


# Keys of the destination input that carry the policy (never part of the cloud scope).
SHARE_KEYS = ("maxQuotaShare", "maxDropShare", "maxPurgeShare")
POLICY_KEYS = ("allowPartial", *SHARE_KEYS, "onChange", "paceBatchSize", "pacePause")


@dataclass(frozen=True)
class Policy:
    max_quota_share: float = DEFAULT_MAX_QUOTA_SHARE
    max_drop_share: float = DEFAULT_MAX_DROP_SHARE
    allow_partial: bool = False
    allow_large_changes: bool = False  # stack config consent: no share limit at all
    max_purge_share: float = DEFAULT_MAX_PURGE_SHARE
    # None: the default of the destination's cloud (purge-then-prefetch where it can purge).
    on_change: Optional[OnChange] = None
    pace_batch_size: Optional[int] = None  # most URLs one submit carries (None: the cloud's batch size)
    pace_pause: float = 0.0                # seconds between two submits of one kind

    @classmethod
    def from_destination(cls, destination: Mapping[str, Any], *, allow_large_changes: bool = False) -> "Policy":
        """The policy a destination input carries (see ``policy_entries``); absent keys take the defaults."""
        on_change = destination.get("onChange")
        return cls(
            max_quota_share=_share(destination.get("maxQuotaShare"), DEFAULT_MAX_QUOTA_SHARE),
            max_drop_share=_share(destination.get("maxDropShare"), DEFAULT_MAX_DROP_SHARE),
            allow_partial=str(destination.get("allowPartial", "")).strip().lower() == "true",
            allow_large_changes=allow_large_changes,
            max_purge_share=_share(destination.get("maxPurgeShare"), DEFAULT_MAX_PURGE_SHARE),
            on_change=OnChange(on_change) if on_change in _ON_CHANGE_VALUES else None,
            pace_batch_size=_batch_size(destination.get("paceBatchSize")),
            pace_pause=_pause(destination.get("pacePause")) or 0.0,
        )

    def for_purge(self) -> "Policy":
        """The policy the purge quota is judged with: ``maxPurgeShare`` in place of ``maxQuotaShare``."""
        return replace(self, max_quota_share=self.max_purge_share)

    def purges_on_change(self, cloud_can_purge: bool) -> bool:
        """Whether changed content is purged before it is prefetched again on a cloud (default: where it can)."""
        if self.on_change is None:
            return cloud_can_purge
        return self.on_change is OnChange.PURGE_THEN_PREFETCH and cloud_can_purge


_ON_CHANGE_VALUES = frozenset(value.value for value in OnChange)


def policy_entries(allow_partial: bool, safety: Mapping[str, float], on_change: Optional[str] = None,
                   pace: Optional[Mapping[str, Any]] = None) -> dict[str, str]:
    """The destination input entries for a declared policy: only what was declared, as text.

    Text because the destination is echoed into the audit record's ``scope``, whose values are
    strings; a set that declares nothing gets no entries, so its inputs do not change.
    """
    entries: dict[str, str] = {}
    if allow_partial:
        entries["allowPartial"] = "true"
    for key in SHARE_KEYS:
        if key in safety:
            entries[key] = f"{float(safety[key]):g}"
    if on_change is not None:
        entries["onChange"] = str(on_change)
    pace = pace or {}
    if "batchSize" in pace:
        entries["paceBatchSize"] = str(int(pace["batchSize"]))
    if "pause" in pace:
        entries["pacePause"] = str(pace["pause"])
    return entries


def policy_problems(destination: Mapping[str, Any]) -> list[str]:
    """What is wrong with the policy entries of a destination input (for check(), typed API users)."""
    problems = []
    for key in SHARE_KEYS:
        if key in destination and _valid_share(destination[key]) is None:
            problems.append(f"destination.{key} must be a share between 0 (exclusive) and 1, e.g. '0.5'")
    if "allowPartial" in destination and str(destination["allowPartial"]).strip().lower() not in ("true", "false"):
        problems.append("destination.allowPartial must be 'true' or 'false'")
    if "onChange" in destination and destination["onChange"] not in _ON_CHANGE_VALUES:
        problems.append("destination.onChange must be 'purge-then-prefetch' or 'prefetch'")
    if "paceBatchSize" in destination and _batch_size(destination["paceBatchSize"]) is None:
        problems.append("destination.paceBatchSize must be a whole number of URLs from 1, e.g. '500'")
    if "pacePause" in destination and _pause(destination["pacePause"]) is None:
        problems.append("destination.pacePause must be a duration such as 2s or 1m")
    return problems


def _batch_size(value: Any) -> Optional[int]:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 1 else None


def _pause(value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError:
        return None


def parse_consent(value: Any) -> bool:
    """``cdn-prefetch:allowLargeChanges`` as the engine sends it (text); ValueError if not true/false."""
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"stack config {CONFIG_KEY} must be true or false; got {value!r}")


def _share(value: Any, default: float) -> float:
    number = _valid_share(value)
    return default if number is None else number


def _valid_share(value: Any) -> Optional[float]:
    """A share in (0, 1], from a number or its text; None if it is anything else."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 < number <= 1 else None
