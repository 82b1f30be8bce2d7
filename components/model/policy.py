"""A set's policy: its consent to large changes (safety rails) and to partial submits.

Declared in a set (``allowPartial``, ``safety``) or by stack config (``allowLargeChanges``), it
travels to the provider inside the resource's ``destination`` input as text values (present only
when declared), so consent shows in the preview diff and in state. A value: the declarations build
it, the plan (``plan/safety.py``) judges with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

DEFAULT_MAX_QUOTA_SHARE = 0.5


DEFAULT_MAX_DROP_SHARE = 0.5


CONFIG_KEY = "cdn-prefetch:allowLargeChanges"


# Keys of the destination input that carry the policy (never part of the cloud scope).
POLICY_KEYS = ("allowPartial", "maxQuotaShare", "maxDropShare")


@dataclass(frozen=True)
class Policy:
    max_quota_share: float = DEFAULT_MAX_QUOTA_SHARE
    max_drop_share: float = DEFAULT_MAX_DROP_SHARE
    allow_partial: bool = False
    allow_large_changes: bool = False  # stack config consent: no share limit at all

    @classmethod
    def from_destination(cls, destination: Mapping[str, Any], *, allow_large_changes: bool = False) -> "Policy":
        """The policy a destination input carries (see ``policy_entries``); absent keys take the defaults."""
        return cls(
            max_quota_share=_share(destination.get("maxQuotaShare"), DEFAULT_MAX_QUOTA_SHARE),
            max_drop_share=_share(destination.get("maxDropShare"), DEFAULT_MAX_DROP_SHARE),
            allow_partial=str(destination.get("allowPartial", "")).strip().lower() == "true",
            allow_large_changes=allow_large_changes,
        )


def policy_entries(allow_partial: bool, safety: Mapping[str, float]) -> dict[str, str]:
    """The destination input entries for a declared policy: only what was declared, as text.

    Text because the destination is echoed into the audit record's ``scope``, whose values are
    strings; a set that declares nothing gets no entries, so its inputs do not change.
    """
    entries: dict[str, str] = {}
    if allow_partial:
        entries["allowPartial"] = "true"
    for key in ("maxQuotaShare", "maxDropShare"):
        if key in safety:
            entries[key] = f"{float(safety[key]):g}"
    return entries


def policy_problems(destination: Mapping[str, Any]) -> list[str]:
    """What is wrong with the policy entries of a destination input (for check(), typed API users)."""
    problems = []
    for key in ("maxQuotaShare", "maxDropShare"):
        if key in destination and _valid_share(destination[key]) is None:
            problems.append(f"destination.{key} must be a share between 0 (exclusive) and 1, e.g. '0.5'")
    if "allowPartial" in destination and str(destination["allowPartial"]).strip().lower() not in ("true", "false"):
        problems.append("destination.allowPartial must be 'true' or 'false'")
    return problems


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
