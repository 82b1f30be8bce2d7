"""How a value from the user appears in a message: cut to a readable length, URL userinfo hidden.

One home for it, so that no message echoes a 50 MB description or the password of
``https://user:password@host/``: every message that quotes a declared value quotes ``shown(value)``.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

#: Characters of a text shown before it is cut; a URL with a long path still shows its host.
SHOWN_CHARS = 80

# Where a URL's authority (``user:password@host:port``) starts: after "scheme://" (or "scheme:/" and
# "scheme:\\", which browsers read alike), or "//" at the start; and where it ends. ``mailto:x@y`` and
# ``user:pw@host`` have none: a URL parser reads the scheme "mailto" or "user" and a path.
_AUTHORITY_START = re.compile(r"^//|:[/\\]+")
_AUTHORITY_END = re.compile(r"[/?#\\]")
# The userinfo of an authority: up to the last "@" before the authority ends.
_USERINFO = re.compile(r"(^//|:[/\\]+)[^/?#\\]*@")


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was, with URL userinfo hidden:
    ``https://user:pw@host/x`` -> ``https://***@host/x``."""
    head = _head(text, limit)
    return head if len(text) <= limit else f"{head}… ({len(text):,} characters)"


def _head(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, userinfo hidden. Work: the head, plus one scan of the
    rest only when the head ends inside an authority (a userinfo may end far beyond the head)."""
    head = text[:limit]
    if len(text) > limit:
        last = max((m.end() for m in _AUTHORITY_START.finditer(head)), default=None)
        if last is not None and _AUTHORITY_END.search(head, last) is None and text.find("@", limit) >= 0:
            # the head ends inside this authority
            end = _AUTHORITY_END.search(text, limit)
            if text.rfind("@", limit, end.start() if end else len(text)) >= 0:
                head = head[:last] + "***"  # ... whose userinfo goes on past the head
    return _USERINFO.sub(r"\1***@", head) if "@" in head else head


class _Shown(reprlib.Repr):
    """``repr`` with lists, mappings and nesting cut (reprlib), and texts as ``cut`` shows them."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 5, 5, 5, 5
        self.maxother = limit

    def repr_str(self, x: str, level: int) -> str:
        quoted = repr(_head(x, self.limit))
        return quoted if len(x) <= self.limit else f"{quoted[:-1]}…{quoted[-1]} ({len(x):,} characters)"

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than Python converts to text
            return f"<a number of {x.bit_length():,} bits>"


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as a message quotes it: like ``repr``, but cut and without userinfo.

    ``shown("https://u:p@a.example.com/x")`` -> ``'https://***@a.example.com/x'``; a text longer than
    ``limit`` ends ``…' (50,000,000 characters)``; a list shows its first items and ``...``.
    """
    return _Shown(limit).repr(value)
