"""One sitemap file, fetched and read: requests (timeouts, retries, redirects checked hop by hop), gzip, the
sitemap protocol's per-file limits, and XML parsed by defusedxml with DTDs refused (no entity expansion, no
external entity). Its errors say what is wrong with the file; declare/sitemap.py names the set and the URL."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urljoin, urlsplit

from .origin import metadata_reason
from ..model.shown import cut
from ..model.urls import InvalidUrl, host_of, normalize_url

MAX_URLS = 50_000                 # per file: <url> entries of a urlset, <sitemap> entries of an index
MAX_BYTES = 50 * 1024 * 1024      # per file, uncompressed (52,428,800 bytes)
MAX_REDIRECTS = 5
MAX_RETRIES = 2                   # connection errors and 429/5xx answers, with backoff
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0  # seconds
USER_AGENT = "cdn-prefetch (sitemap reader)"
_CHUNK = 8192  # read size: a gzip Content-Encoding inflates one chunk to at most ~8 MB before it is counted
_NS = re.compile(r"^\{[^}]*\}")


class SitemapFailed(Exception):
    """One sitemap file could not be fetched or read; the message says why and what to do."""


@dataclass(frozen=True)
class Entry:
    """One ``<loc>`` of a file, with its ``<lastmod>`` as written (or None)."""

    loc: str
    lastmod: Optional[str]


@dataclass(frozen=True)
class SitemapFile:
    kind: str  # "urlset" | "sitemapindex"
    entries: list[Entry]


def url_problem(url: str) -> Optional[str]:
    """What is wrong with a sitemap URL (declared, listed by an index, or a redirect's target), or None:
    not http(s), credentials in it, or a cloud instance-metadata address (declare/origin.py)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "is not an http:// or https:// URL"
    if "@" in parts.netloc:
        return "carries credentials (user:password@ before the host); a sitemap is read without any"
    try:
        reason = metadata_reason(host_of(normalize_url(url)))
    except InvalidUrl as exc:
        return str(exc)
    return f"names a host that {reason}, where a cloud serves instance credentials; refused" if reason else None


def parse(body: bytes) -> SitemapFile:
    """A sitemap or sitemap index from its (uncompressed) XML; SitemapFailed saying what is wrong."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SitemapFailed(f"declares a DTD or entities ({type(exc).__name__}), which a sitemap never needs: "
                            "refused, so that no entity is expanded (billion laughs) or fetched (external entity)") \
            from None
    except ParseError as exc:
        raise SitemapFailed(f"is not well-formed XML ({exc}); fix the sitemap, or the URL if it serves another "
                            "page") from None
    kind = _local(root.tag)
    child = {"urlset": "url", "sitemapindex": "sitemap"}.get(kind)
    if child is None:
        raise SitemapFailed(f"is not a sitemap: its root element is <{cut(kind, 40)}>, not <urlset> or <sitemapindex>")
    items = [item for item in root if _local(item.tag) == child]
    if len(items) > MAX_URLS:
        raise SitemapFailed(f"lists {len(items):,} <{child}> entries, more than the {MAX_URLS:,} the sitemap protocol "
                            "allows in one file; split it into several sitemaps listed by a sitemap index")
    return SitemapFile(kind, [Entry((_text(item, "loc") or "").strip(), _text(item, "lastmod")) for item in items])


def _local(tag: Any) -> str:
    return _NS.sub("", tag) if isinstance(tag, str) else ""


def _text(item: Any, name: str) -> Optional[str]:
    for part in item:
        if _local(part.tag) == name:
            return part.text
    return None


def decompressed(body: bytes, limit: int = 0) -> bytes:
    """``body``, gunzipped if it is gzip (by its magic bytes), refused past ``limit`` bytes (MAX_BYTES)."""
    limit = limit or MAX_BYTES
    if body[:2] != b"\x1f\x8b":
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise SitemapFailed(f"is not valid gzip ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit, "once decompressed")
    if not inflater.eof:
        raise SitemapFailed("is a truncated gzip file")
    return out


def _too_large(limit: int, how: str) -> SitemapFailed:
    return SitemapFailed(f"is larger than {limit:,} bytes {how}, the most the sitemap protocol allows in one file; "
                         "split it into several sitemaps listed by a sitemap index")


def make_session() -> Any:
    """A requests session: connection errors and 429/5xx answers retried with backoff (MAX_RETRIES), never a
    Retry-After sleep; redirects are followed by ``fetch``, hop by hop."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(total=MAX_RETRIES, connect=MAX_RETRIES, read=MAX_RETRIES, status=MAX_RETRIES, redirect=0,
                  backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",),
                  raise_on_status=False, respect_retry_after_header=False)  # a hostile Retry-After: no sleeping a day
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=retry))
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"})
    return session


def fetch(session: Any, url: str) -> bytes:
    """One sitemap file's XML (decompressed, at most MAX_BYTES); SitemapFailed with a plain reason."""
    import requests

    current = url
    for _ in range(MAX_REDIRECTS + 1):
        wrong = url_problem(current)
        if wrong is not None:
            raise SitemapFailed(f"redirects to {cut(current)}, which {wrong}" if current != url else wrong)
        try:
            with session.get(current, stream=True, allow_redirects=False,
                             timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as answer:
                if answer.is_redirect and answer.headers.get("location"):
                    current = urljoin(current, answer.headers["location"])
                    continue
                if answer.status_code != 200:
                    raise SitemapFailed(f"answered HTTP {answer.status_code} {cut(answer.reason or '', 60)}; check "
                                        "the URL, and that the site serves its sitemap there")
                body = bytearray()
                for chunk in answer.iter_content(_CHUNK):
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise _too_large(MAX_BYTES, "as served")
            return decompressed(bytes(body))
        except requests.exceptions.ConnectionError as exc:
            tries = f"{MAX_RETRIES + 1} attempt{'s' if MAX_RETRIES else ''}"
            raise SitemapFailed(f"cannot be reached after {tries} ({_reason(exc)}); check the URL and that the site "
                                "is up") from None
        except requests.exceptions.Timeout:
            raise SitemapFailed(f"did not answer within {READ_TIMEOUT:.0f} s; check the site") from None
        except requests.exceptions.RequestException as exc:
            raise SitemapFailed(f"could not be read ({_reason(exc)})") from None
    raise SitemapFailed(f"redirects more than {MAX_REDIRECTS} times")


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests error, e.g. ``[Errno 111] Connection refused``."""
    text = str(exc)
    found = re.findall(r"(\[Errno [^\]]+\][^'\")\]]*|Connection refused|Name or service not known)", text)
    return cut(found[-1].strip() if found else text, 160)
