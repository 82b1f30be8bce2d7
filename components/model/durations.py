"""Human durations (``90s``, ``15m``, ``24h``, ``7d``, ``1h30m``) used by declarations.

Kept in one place so the schema's pattern, the loader and the provider agree on one grammar, and
on the longest duration anything takes (each key's own maximum is its ``maxDuration`` in the schema).
"""

from __future__ import annotations

import re
from datetime import timedelta

from .shown import shown

# Mirrors the "duration" pattern in schemas/prefetch-set.schema.json.
DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

#: The longest duration anything takes: the schema's largest ``maxDuration`` (freshness, 365d). Every
#: duration that parses is a ``timedelta`` and "now" plus or minus it a ``datetime``: no OverflowError.
LONGEST = timedelta(days=365)


class DurationTooLong(ValueError):
    """A well-formed duration longer than the longest its key takes."""


def parse_duration(text: str, longest: timedelta = LONGEST) -> timedelta:
    """Parse ``1h30m``-style text; raise ValueError with the accepted grammar on anything else, and
    DurationTooLong for a duration over ``longest``."""
    if not isinstance(text, str) or not _DURATION_RE.match(text):
        raise ValueError(f"{shown(text)} is not a duration; write e.g. 90s, 15m, 24h, 7d or 1h30m")
    parts = re.findall(r"(\d+)([dhms])", text)
    # A number of more digits than any duration up to LONGEST has is too long already (and not converted:
    # Python refuses to convert more than 4,300 digits, and a sum of huge numbers costs their length).
    numbers = [(n.lstrip("0") or "0", unit) for n, unit in parts]
    too_long = any(len(n) > 12 for n, _ in numbers)
    seconds = 0 if too_long else sum(int(n) * _UNITS[unit] for n, unit in numbers)
    if too_long or seconds > longest.total_seconds():
        raise DurationTooLong(f"{shown(text)} is longer than {format_duration(longest)}, the longest allowed here")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Inverse of parse_duration, for messages (``timedelta(hours=24)`` -> ``24h``, 7 days -> ``7d``).

    Days are used only from two days up, because people write a day as ``24h``.
    """
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    units = _UNITS if seconds >= 2 * _UNITS["d"] else {k: v for k, v in _UNITS.items() if k != "d"}
    for unit, size in units.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
