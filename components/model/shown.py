"""How a value from the user appears in a message: cut to a readable length, URL userinfo hidden.

One home for it, so that no message echoes a 50 MB description or the password of
``https://user:password@host/``: every message that quotes a declared value or a URL quotes
``shown(value)`` (``cut(text)`` for a location, unquoted).
"""

from __future__ import annotations

import re
import reprlib
from typing import Any, Optional

#: Characters of a value shown before it is cut: a URL with a long path still shows its host.
SHOWN_CHARS = 120

# Where an authority starts: after "scheme://" ("scheme:/" and "scheme:\\", which browsers read alike), or
# after "//" at the start (a scheme-relative URL).
_AUTHORITY_START = re.compile(r"^//|:[/\\]+")
_AUTHORITY_END = re.compile(r"[/?#\\]")  # not quotes nor spaces: a password may hold them
_VALUE_END = re.compile(r"\s")
_PORT = re.compile(r":\d*$")
_SCHEMELESS_USERINFO = re.compile(r"^(\s*[A-Za-z][A-Za-z0-9+.-]*:)(?!//)[^/?#@\s]*@")


def redact_userinfo(text: str, upto: Optional[int] = None) -> str:
    """``https://user:password@host/`` -> ``https://***@host/``, wherever a URL is in ``text`` (or in its
    first ``upto`` characters, all a message shows): userinfo never reaches a message. In linear time:
    ``text`` may be a 50 MB value.

    Also when the password holds a ``/`` (``user:pa/ss@host``, which no parser reads as userinfo) and
    when the scheme is missing (``user:password@host/``): a message may hide too much of a URL, never a
    password."""
    if "@" not in text:
        return text
    out: list[str] = []
    done = 0  # text[:done] is in out
    value = (-1, -1, -1)  # (end of the value being read, its last "@", where the value starts)
    limit = len(text) if upto is None else upto
    mark = _AUTHORITY_START.search(text, 0, limit + 3)
    while mark is not None:
        start = mark.end()
        found = _AUTHORITY_END.search(text, start)
        end = found.start() if found else len(text)
        at = text.rfind("@", start, end)
        if at < 0 and ":" in text[start:end] and not _PORT.search(text, start, end):
            # "user:pa/ss@host": a colon that starts no port, and an "@" further in the same value
            if end >= value[0]:  # each value (up to a space) is searched once: linear in all
                found = _VALUE_END.search(text, end)
                value_end = found.start() if found else len(text)
                value = (value_end, text.rfind("@", end, value_end), end)
            at = value[1] if value[1] >= end else -1
        if at >= 0:
            out += [text[done:start], "***"]
            done = at
        mark = _AUTHORITY_START.search(text, max(end, at), limit + 3)
    text = "".join(out) + text[done:]
    return _SCHEMELESS_USERINFO.sub(r"\1***@", text, count=1)


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was, userinfo hidden (a location, a path)."""
    hidden = redact_userinfo(text, limit)
    return hidden if len(hidden) <= limit else f"{hidden[:limit]}… ({len(text):,} characters)"


class _Shown(reprlib.Repr):
    """``repr`` with lists, mappings and nesting cut (reprlib), and texts as ``shown`` shows them."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 5, 5, 5, 5
        self.maxother = limit

    def repr_str(self, x: str, level: int) -> str:
        hidden = redact_userinfo(x, self.limit)
        if len(hidden) <= self.limit:
            return repr(hidden)
        return f"{hidden[:self.limit]!r}… ({len(x):,} characters)"

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than Python converts to text
            return f"<a number of {x.bit_length():,} bits>"


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as a message quotes it: like ``repr``, but cut and without userinfo.

    ``shown("https://u:p@a.example.com/x")`` -> ``'https://***@a.example.com/x'``; a text longer than
    ``limit`` ends ``'… (50,000,000 characters)``; a list shows its first items and ``...``.
    """
    return _Shown(limit).repr(value)
