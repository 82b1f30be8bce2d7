"""URL normalisation and acceptance: one spelling per target, and only URLs a CDN takes.

Prefetch APIs key their history by the URL string, so two spellings of one object would be two
targets (prefetched twice, never matching their history). ``normalize_url`` gives every URL its one
spelling, the same for a declared target, an origin-listed key and a history row:

* RFC 3986 §6.2.2 syntax-based normalisation: scheme and host lower-cased, percent-encodings
  upper-cased (``%7e`` -> ``%7E``), percent-encoded unreserved characters decoded (``%41`` -> ``A``),
  dot segments removed (``/a/./b/../c`` -> ``/a/c``), the default port dropped, an empty path ``/``;
* what does not name the object dropped: userinfo and the fragment;
* what no cloud takes converted, as browsers do: an internationalised host to punycode (IDNA 2008,
  UTS #46: ``bücher.example`` -> ``xn--bcher-kva.example``), other non-ASCII characters of the path
  and query percent-encoded as UTF-8 (EdgeOne's and Cloud CDN's ``EncodeUrl``/``UrlEncode`` switches do
  the same; the CDN console refuses non-ASCII paths). The converted form is what is submitted and
  matched in history;
* what cannot be meant refused: control, format (zero-width, bidi) and whitespace characters, a
  host that is not a host name or an IP literal, a scheme other than http(s).

What each cloud takes on top of that (length, hosts) is checked against its registry entry by
``cloud_problems``. Messages never quote userinfo and cut long values (``shown``).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from .shown import shown

if TYPE_CHECKING:
    from .clouds import CloudSpec

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# A percent-encoding already in normal form: upper-case hex of a character outside the unreserved set.
_NORMAL_ESCAPE = r"%(?!3[0-9]|4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]|2[DE]|5F|7E)[0-9A-F]{2}"
# A URL already in normal form, which normalize_url returns unchanged: lower-case http(s) scheme, a
# lower-case LDH host name without userinfo or port, a path, and a non-empty query if any; printable
# ASCII only, percent-encodings normal, no fragment (dot segments are ruled out by ``"/." not in``).
# History rows are nearly all like this (they echo what we submitted), so this one match replaces
# urlsplit + urlunsplit for them (a tenth of the cost, per row of 100,000).
_PATH_RUN, _QUERY_RUN = r"[!\x24\x26-\x3e\x40-\x7e]*", r"[!\x24\x26-\x7e]*"  # runs without "%"
_ALREADY_NORMAL = re.compile(  # runs between escapes, not one alternation per character: 10x faster
    r"https?://(?=[a-z0-9.-]{1,253}/)[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*"
    rf"/{_PATH_RUN}(?:{_NORMAL_ESCAPE}{_PATH_RUN})*"
    rf"(?:\?(?=[^#])(?:{_QUERY_RUN}(?:{_NORMAL_ESCAPE}{_QUERY_RUN})*))?"
)
# Scheme and host already in normal form (checked as _ALREADY_NORMAL checks them), then any printable path and
# query: such a URL needs only the path and query work of _normalize, without urlsplit and the host checks.
_NORMAL_AUTHORITY = re.compile(
    r"(https?://(?=[a-z0-9.-]{1,253}/)[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*)(/[^?#]*)(?:\?([^#]*))?(?:#.*)?"
)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_HOST_NAME = re.compile(r"(?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}")  # LDH labels (an IPv4 address is one too)
# Unicode categories never meant in a URL: control, format (zero-width, bidi overrides), surrogate,
# private use, unassigned, and separators (spaces, line and paragraph separators).
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible formatting character",
                       "Cs": "a lone surrogate", "Co": "a private-use character", "Cn": "an unassigned character",
                       "Zs": "whitespace", "Zl": "a line separator", "Zp": "a paragraph separator"}


class InvalidUrl(ValueError):
    """A declared target that cannot be prefetched; the message says why and how to fix it (and never
    quotes userinfo)."""


def normalize_url(raw: str) -> str:
    """The one spelling of ``raw`` (see the module docstring); InvalidUrl if no CDN would take it."""
    if isinstance(raw, str):
        if _ALREADY_NORMAL.fullmatch(raw) and "/." not in raw:  # _already_normal, inlined
            return raw
        # Only the ASCII scheme and host in upper case (HTTPS://Static.Example.com/...), as people write
        # them: lower-casing them is all _normalize would do, at a tenth of its cost (a set of 100,000).
        end = raw.find("/", raw.find("://") + 3) if "://" in raw else -1
        if end > 0 and raw.isascii():
            head = raw[:end].lower()
            lowered = raw if raw.startswith(head) else head + raw[end:]
            if lowered is not raw and _ALREADY_NORMAL.fullmatch(lowered) and "/." not in lowered:
                return lowered
            # Percent-encoded letters or dot segments (/%61ssets/, /a/../b) in a URL that is otherwise plain:
            # the path and query work alone, at half _normalize's cost (a set of 100,000 such targets).
            if lowered.isprintable() and " " not in lowered:
                plain = _NORMAL_AUTHORITY.fullmatch(lowered)
                if plain is not None:
                    authority, path, query = plain.groups()
                    path = _remove_dot_segments(_canonical(path))
                    return f"{authority}{path}?{_canonical(query)}" if query else authority + path
    return _normalize(raw)


def _already_normal(raw: object) -> bool:
    """Whether ``raw`` is its own normal form, decided by one regex match (the fast path)."""
    return isinstance(raw, str) and _ALREADY_NORMAL.fullmatch(raw) is not None and "/." not in raw


def _normalize(raw: str) -> str:
    """The general case (any spelling)."""
    if not isinstance(raw, str) or not raw.strip(" "):
        raise InvalidUrl("empty URL; give a full http:// or https:// URL")
    text = raw.strip(" ")
    _refuse_invisible(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidUrl(f"{shown(text)} is not a valid URL (its port or [IPv6] host cannot be read); "
                         "write it as https://host[:port]/path") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrl(f"{shown(text)} is not an http(s) URL; CDN prefetch only takes http:// or https:// URLs")
    host = _host(parts.netloc.rpartition("@")[2], text)
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dot_segments(_canonical(parts.path)) if parts.path else "/"
    return urlunsplit((scheme, netloc, path, _canonical(parts.query), ""))


def _refuse_invisible(text: str) -> None:
    """Control, format and whitespace characters: refused, naming the first and where it is."""
    if text.isascii() and text.isprintable() and " " not in text:
        return
    for index, char in enumerate(text):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if what is not None:
            fix = ("percent-encode it (a space is %20)" if what == "whitespace" else
                   "remove it (it is often pasted by accident), or percent-encode it if it is really meant")
            raise InvalidUrl(f"{shown(text)} contains {what} (U+{ord(char):04X}) at character {index + 1}; {fix}")


def _host(hostport: str, text: str) -> str:
    """The host of an authority (``host[:port]``, userinfo removed), in its one spelling."""
    if hostport.startswith("["):
        literal = hostport[1:].partition("]")[0]
        try:
            if "%" in literal:  # a zone id (fe80::1%25eth0) names an interface of this machine, not a CDN
                raise ValueError(literal)
            return f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise InvalidUrl(f"{shown(text)} has an IPv6 host that is not valid ([{literal}]); write it as "
                             "[2001:db8::1]") from None
    host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    if not host:
        raise InvalidUrl(f"{shown(text)} has no host; write it as https://host/path")
    if not host.isascii():
        host = _punycode(host, text)
    host = host.lower()
    if host.endswith("."):
        raise InvalidUrl(f"{shown(text)}: host {shown(host)} ends with a dot; remove it (CDN domains are written "
                         "without one)")
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise InvalidUrl(f"{shown(text)}: host {shown(host)} is not a host name (letters, digits and dashes in "
                         "dot-separated labels of at most 63 characters, 253 in all; no '*', '_', '%' or spaces) "
                         "nor an IP address; write the CDN domain, e.g. static.example.com")
    return host


def _punycode(host: str, text: str) -> str:
    """An internationalised host name in its ASCII (punycode) form, as DNS and the clouds know it."""
    import idna  # imported here: only an internationalised host needs it

    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidUrl(f"{shown(text)}: host {shown(host)} is not a valid internationalised domain name ({exc}); "
                         "write it in its punycode form (xn--...)") from None


def _canonical(component: str) -> str:
    """A path or query with non-ASCII characters percent-encoded (UTF-8) and percent-encodings in normal
    form: upper-case hex, unreserved characters decoded (RFC 3986 §6.2.2.1, §6.2.2.2)."""
    if not component.isascii():
        component = _NON_ASCII.sub(lambda m: quote(m.group(), safe=""), component)
    if "%" in component:
        component = _ESCAPE.sub(_normal_escape, component)
    return component


def _normal_escape(match: "re.Match[str]") -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path: ``/a/./b/../c`` -> ``/a/c``; never above the root."""
    if "/." not in path:  # a dot segment follows a "/": "app.min.js" needs no work
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if len(out) > 1:  # out[0] is the empty segment before the leading "/"
                out.pop()
            continue
        out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")  # "/a/b/.." names the folder "/a/"
    return "/".join(out) if len(out) > 1 else "/"


# -- what each cloud takes -----------------------------------------------------------------------
def host_of(url: str) -> str:
    """The host of a normalised URL (``scheme://host[:port]/...``), port excluded; string slicing, not
    urlsplit: it runs once per target of a set of 100,000."""
    start = url.find("//") + 2
    netloc = url[start:url.find("/", start)]
    if netloc.startswith("["):
        return netloc[:netloc.find("]") + 1]
    return netloc.partition(":")[0]


def cloud_problems(urls: Sequence[str], spec: "CloudSpec", scope: Mapping[str, Any],
                   name: Callable[[int], str] = "targets[{}]".format) -> list[tuple[int, str]]:
    """What one destination's cloud would refuse among normalised URLs, before anything is submitted:
    (index into ``urls``, what is wrong and the fix) pairs; ``name(index)`` names a URL in messages.

    The rules are the cloud's registry facts (components/model/clouds.py): ``max_url_length``,
    ``host_within`` (the scope key naming the site whose hosts it accelerates: EdgeOne's ``zoneName``),
    ``same_host`` (one domain per destination, every URL under it: UCloud).
    """
    problems: list[tuple[int, str]] = []
    site = str(scope.get(spec.host_within) or "").lower() if spec.host_within else ""
    first: Optional[tuple[int, str]] = None  # (index, host) of the first URL, for same_host
    for index, url in enumerate(urls):
        if len(url) > spec.max_url_length:
            problems.append((index, f"{shown(url, 60)} is {len(url):,} characters long once normalised; "
                                    f"{spec.title} takes URLs of at most {spec.max_url_length:,}; shorten it "
                                    "(a long query string is the usual cause)"))
            continue
        if not (site or spec.same_host):
            continue
        host = host_of(url)
        if site and host != site and not host.endswith("." + site):
            problems.append((index, f"host {host} is not {site} or below it, so {spec.title} site "
                                    f"{spec.host_within}: {site} does not accelerate it (the submit would fail "
                                    "with InvalidParameter.DomainNotFound); fix the host, or move the URL to a "
                                    "set whose destination is that host's site"))
        elif spec.same_host:
            if first is None:
                first = (index, host)
            elif host != first[1]:
                problems.append((index, f"host {host} differs from {first[1]} ({name(first[0])}): a {spec.title} "
                                        f"destination is one domain ({spec.identity_key}), and every URL it "
                                        "prefetches must start with http(s)://<that domain>/; put the URLs of "
                                        f"{host} in a set whose destination is that domain's {spec.identity_key}"))
    return problems
