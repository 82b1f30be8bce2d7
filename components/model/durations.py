"""Human durations (``90s``, ``15m``, ``24h``, ``7d``, ``1h30m``) used by declarations.

Kept in one place so the schema's pattern, the loader and the provider agree on one grammar.
"""

from __future__ import annotations

import re
from datetime import timedelta

# Mirrors the "duration" pattern in schemas/prefetch-set.schema.json.
DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m``-style text; raise ValueError with the accepted grammar on anything else."""
    if not isinstance(text, str) or not _DURATION_RE.match(text):
        raise ValueError(
            f"{text!r} is not a duration; write e.g. 90s, 15m, 24h, 7d or 1h30m"
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", text))
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
