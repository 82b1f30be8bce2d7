"""Prefetch targets from a site's sitemaps (the sitemaps.org protocol), read by the program.

Like an origin listing (declare/origin.py), the sitemaps are read in the Pulumi program on every
preview and up, never in the provider. Each ``<url>`` of a ``<urlset>`` becomes a target; a
``<sitemapindex>`` is followed one level, as the protocol allows (an index listing an index is an
error). A file may be gzipped (``.xml.gz``, or ``Content-Encoding: gzip``). The protocol's limits hold
per file: 50,000 URLs (or sitemaps) and 50 MB (52,428,800 bytes) uncompressed; past either the file is
refused, never read in part.

Each URL's ``<lastmod>`` is its version, as an origin object's ETag is: the desired value reads
``warm (lastmod 2026-05-01T10:00:00Z)``, and a changed lastmod makes the target stale (purge, then
prefetch). A lastmod that is not a W3C datetime is ignored (the URL is then a plain target).

Each file is fetched with requests and parsed with defusedxml, DTDs refused (declare/sitemap_reader.py).
Any failure to fetch or parse fails the whole preview
with a message naming the set and the URL: a set read in part is never used, so a sitemap that cannot
be read never removes targets. One that lists far fewer URLs is caught by the drop rail
(plan/safety.py); one that lists none is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import urljoin, urlsplit

from .model import DeclarationError, PrefetchSetDeclaration, Problem, SitemapDeclaration
from .origin import glob_matcher
from .schema import load_schema
from .sitemap_reader import Entry, SitemapFailed, SitemapFile, fetch, make_session, parse, url_problem
from ..model.clouds import cloud
from ..model.shown import cut, shown
from ..model.status import ContentVersion
from ..model.urls import InvalidUrl, cloud_problems, normalize_url

if TYPE_CHECKING:
    from .yaml_source import LineFinder

# W3C Datetime (the protocol's lastmod): YYYY, YYYY-MM, YYYY-MM-DD, or a date and time with a zone.
_W3C = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?)?)?")


class SitemapError(DeclarationError):
    """Reading one or more sitemaps failed; str() lists each problem, naming the set and the URL."""

    about = "reading sitemaps (nothing was submitted)"


@dataclass
class Selection:
    """What a set's sitemaps give: targets (in the order listed) with their versions, and what was left out."""

    urls: list[str] = field(default_factory=list)
    versions: dict[str, ContentVersion] = field(default_factory=dict)
    unusable: list[str] = field(default_factory=list)   # locs that are no http(s) URL
    over_limit: int = 0                                  # matching URLs past ``limit``
    bad_lastmod: int = 0                                 # lastmods that are no W3C datetime (ignored)


def declared_sitemap(raw: Mapping[str, Any], file: str, lines: "LineFinder",
                     problems: list[Problem]) -> SitemapDeclaration:
    """The ``sitemap`` key of a declaration (already schema-valid), each URL checked (``url_problem``);
    what is wrong is added to ``problems``, located."""
    defs = load_schema()["$defs"]["sitemap"]["properties"]
    url_lines = tuple(lines.line(("sitemap", "urls", index)) for index in range(len(raw["urls"])))
    for index, url in enumerate(raw["urls"]):
        wrong = url_problem(url)
        if wrong is not None:
            problems.append(Problem(file, url_lines[index], f"sitemap.urls[{index}]", f"{shown(url)} {wrong}"))
    return SitemapDeclaration(
        urls=tuple(raw["urls"]),
        include=tuple(raw.get("include", defs["include"]["default"])),
        exclude=tuple(raw.get("exclude", defs["exclude"]["default"])),
        limit=raw.get("limit"),
        line=lines.line(("sitemap",)),
        url_lines=url_lines,
    )


def normal_lastmod(text: Optional[str]) -> Optional[str]:
    """A W3C datetime in one spelling (a time in UTC, ``Z``, seconds); None when it is none."""
    text = (text or "").strip()
    if not _W3C.fullmatch(text):
        return None
    try:
        if "T" not in text:
            # YYYY and YYYY-MM are checked as their first day ("2026" + "-01-01", "2026-05" + "-01").
            date.fromisoformat(text + "-01-01"[len(text) - 4:])
            return text
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds").replace("+00:00", "Z")


def select(declared: SitemapDeclaration, entries: Iterable[Entry]) -> Selection:
    """The targets of a set's urlset entries: normalised, matched on path and query by include/exclude,
    each once (its first lastmod), the first ``limit`` kept."""
    included, excluded = glob_matcher(declared.include), glob_matcher(declared.exclude)
    found = Selection()
    seen: set[str] = set()
    for entry in entries:
        try:
            url = normalize_url(entry.loc)
        except InvalidUrl:
            found.unusable.append(entry.loc)
            continue
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if url in seen or not included(path) or excluded(path):
            continue
        seen.add(url)
        if declared.limit is not None and len(found.urls) >= declared.limit:
            found.over_limit += 1
            continue
        found.urls.append(url)
        lastmod = normal_lastmod(entry.lastmod)
        if lastmod is not None:
            found.versions[url] = ContentVersion.of_lastmod(lastmod)
        elif entry.lastmod is not None and entry.lastmod.strip():
            found.bad_lastmod += 1
    return found


def read(url: str, session: Any, cache: dict[str, Any]) -> list[Entry]:
    """Every urlset entry ``url`` gives, following an index one level. SitemapFailed names the file."""
    top = _cached(cache, url, session)
    if top.kind == "urlset":
        return top.entries
    entries: list[Entry] = []
    for child in top.entries:
        try:
            listed = _cached(cache, urljoin(url, child.loc), session)
        except SitemapFailed as exc:
            raise SitemapFailed(f"lists sitemap {cut(child.loc)}, which {exc}") from None
        if listed.kind != "urlset":
            raise SitemapFailed(f"lists {cut(child.loc)}, another sitemap index; the protocol allows one level: list "
                                "its sitemaps in the first index")
        entries.extend(listed.entries)
    return entries


def _cached(cache: dict[str, Any], url: str, session: Any) -> SitemapFile:
    """One fetch and parse per URL per program run (two sets naming one sitemap read it once)."""
    if url not in cache:
        try:
            cache[url] = parse(fetch(session, url))
        except SitemapFailed as exc:
            cache[url] = exc
    found = cache[url]
    if isinstance(found, SitemapFailed):
        raise found
    return found


# -- the program's step -------------------------------------------------------------------------
def resolve_sitemaps(
    declarations: Sequence[PrefetchSetDeclaration],
    *,
    warn: Callable[[str], None] = lambda text: None,
    info: Callable[[str], None] = lambda text: None,
    session_factory: Callable[[], Any] = make_session,
) -> list[PrefetchSetDeclaration]:
    """Read every set's sitemaps; return the sets with their sitemap targets, or raise SitemapError naming
    each failure (every sitemap is tried first, so all problems show in one preview)."""
    if not any(decl.sitemap for decl in declarations):
        return list(declarations)
    session, cache = session_factory(), {}
    problems: list[Problem] = []
    resolved = [decl if decl.sitemap is None else _with_sitemap(decl, decl.sitemap, session, cache, problems, warn, info)
                for decl in declarations]
    if problems:
        raise SitemapError(problems)
    return resolved


def _with_sitemap(decl: PrefetchSetDeclaration, declared: SitemapDeclaration, session: Any, cache: dict[str, Any],
                  problems: list[Problem], warn: Callable[[str], None],
                  info: Callable[[str], None]) -> PrefetchSetDeclaration:
    """One set with its sitemap targets; what went wrong is added to ``problems`` (the set is then unused)."""
    entries: list[Entry] = []
    failures = len(problems)
    for index, url in enumerate(declared.urls):
        try:
            entries.extend(read(url, session, cache))
        except SitemapFailed as exc:
            line = declared.url_lines[index] if index < len(declared.url_lines) else declared.line
            problems.append(Problem(decl.source, line, f"sitemap.urls[{index}]",
                                    f"set {decl.name!r}, sitemap {cut(url)}: {exc}"))
    if len(problems) > failures:
        return decl
    found = select(declared, entries)
    _leave_out_refused(decl, found, warn)
    _warn_left_out(f"{decl.source}: set {decl.name!r}, sitemap {cut(declared.urls[0])}", declared, found, warn)
    if not found.urls:
        problems.append(Problem(decl.source, declared.line, "sitemap",
                                f"set {decl.name!r}: the sitemaps list no URL that matches (include "
                                f"{shown(list(declared.include))}, exclude {shown(list(declared.exclude))}); "
                                "check the URLs and globs (a set is never emptied by its sitemaps)"))
        return decl
    info(f"set {decl.name}: {len(found.urls)} targets from {len(declared.urls)} sitemap"
         f"{'s' if len(declared.urls) != 1 else ''}")
    return with_sitemap_targets(decl, found)


def _leave_out_refused(decl: PrefetchSetDeclaration, found: Selection, warn: Callable[[str], None]) -> None:
    """Leave out the URLs a destination's cloud would refuse (too long, another host), with a warning:
    declared targets are checked when the file is read, these only now."""
    for dest in decl.destinations:
        urls = list(decl.targets) + found.urls
        refused = cloud_problems(urls, cloud(dest.provider), dest.scope, lambda i: shown(urls[i], 60))
        gone = {index - len(decl.targets) for index, _ in refused if index >= len(decl.targets)}
        if gone:
            first = min(gone)
            example = next(message for index, message in refused if index - len(decl.targets) == first)
            warn(f"{decl.source}: set {decl.name!r}: {len(gone)} sitemap URLs left out because destination "
                 f"{dest.label} would refuse them, e.g. {shown(found.urls[first], 60)}: {example}")
            kept = [url for index, url in enumerate(found.urls) if index not in gone]
            found.versions = {url: found.versions[url] for url in kept if url in found.versions}
            found.urls = kept


def _warn_left_out(where: str, declared: SitemapDeclaration, found: Selection, warn: Callable[[str], None]) -> None:
    if found.unusable:
        warn(f"{where}: {len(found.unusable)} <loc> entries left out because they are no http(s) URL, e.g. "
             f"{shown(found.unusable[0])}")
    if found.over_limit:
        warn(f"{where}: {found.over_limit} matching URLs left out past sitemap.limit {declared.limit} (the first "
             f"{declared.limit} listed are kept)")
    if found.bad_lastmod:
        warn(f"{where}: {found.bad_lastmod} <lastmod> values are no W3C datetime (e.g. 2026-05-01 or "
             "2026-05-01T10:00:00+08:00) and were ignored: those URLs are not prefetched again when they change")


def with_sitemap_targets(decl: PrefetchSetDeclaration, found: Selection) -> PrefetchSetDeclaration:
    """The declaration with the sitemap URLs added as targets (a URL also declared or listed by the origin
    counts once; an origin object's ETag is its version before a lastmod)."""
    targets = list(decl.targets)
    seen = set(targets)
    targets.extend(url for url in found.urls if url not in seen)
    return replace(decl, targets=tuple(targets), content={**found.versions, **decl.content})

