"""The edge cache model: which version of a URL each cloud's edge would serve, derived from task history.

What the vendors document (cdn-apis.md §9): a prefetch fills the edge with what the origin serves
when it runs; it does not replace a copy that has not expired; a purge evicts the copy; a copy
expires after the cache TTL. Tasks finish lazily (a task is `processing` until its `finish` time,
then has the outcome fixed when it was created), so the edge is not kept up to date by a worker:
it is replayed from the URL's finished tasks, in order of finish, whenever it is asked for
(`SandboxStore.edge`). Nothing here runs in the background, and `age()` moves it all together.

- Origin versions are a log per URL (`set_origin_version`): a prefetch finishing at t caches the
  version the origin had at t. A URL never set has version `DEFAULT_VERSION`. URLs under a prefix
  mapped to an S3-compatible bucket (`add_s3_origin`) have their object's ETag as version: it is
  read when a prefetch of the URL is submitted (and logged then), and read live for "now".
- The TTL is per host (`set_cache_ttl`), else the setting `edge_ttl_seconds` (default one day); a
  copy's expiry uses the TTL as set when it is asked for.
- One edge per cloud (`teo`, `cdn`, `ucloud`): EdgeOne zones, CDN areas and UCloud accounts are not
  told apart, nor are http and https. A UCloud `dir` refresh evicts every URL under it.
- User requests are not modelled: a URL with no servable copy is a miss, answered from the origin.
"""

from __future__ import annotations

import math
import sqlite3
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from .origin import S3Origin, origin_of, read_versions
from .steering import SERVICES, Steering

DEFAULT_VERSION = "v1"
"""The version of a URL whose origin version was never set (and that no S3 origin maps)."""
_CHUNK = 400
"""URLs per `IN (...)` (SQLite caps bound variables)."""


@dataclass(frozen=True)
class TaskSummary:
    """One task of a URL, as the edge view names it."""

    kind: str
    job_id: str
    status: str  # `processing` or the outcome (success, failed, timeout, ...)
    created: float
    finish: float


@dataclass(frozen=True)
class EdgeCopy:
    """What one cloud's edge holds for one URL at one moment.

    `version` is the cached copy it would serve, None when there is none (never cached, purged, or
    expired); `cached_at`/`expires_at`/`cached_by` describe the copy cached since the last purge, even
    an expired one (None after a purge).
    `origin` is the origin's version at that moment; `serves` is what a request gets: the copy, else
    (a miss) the origin's version.
    """

    url: str
    service: str | None
    version: str | None
    cached_at: float | None
    expires_at: float | None
    cached_by: str | None
    origin: str
    last_prefetch: TaskSummary | None = None
    last_purge: TaskSummary | None = None

    @property
    def serves(self) -> str:
        return self.version if self.version is not None else self.origin

    @property
    def current(self) -> bool:
        """A request would get the origin's current version."""
        return self.serves == self.origin


class EdgeModel(Steering):
    """The origin_versions, edge_ttls and s3_origins tables, and the edge replayed from tasks."""

    # ----- the origin ----------------------------------------------------------------------------

    def set_origin_version(self, url: str, version: str, *, at: float | None = None) -> None:
        """From `at` (default now) on, the origin serves `version` for `url` (an exact URL)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http:// or https:// URL; got {url!r}")
        if not isinstance(version, str) or not version.strip():
            raise ValueError(f"version must be a non-empty string; got {version!r}")
        with self._write() as db:
            db.execute("INSERT INTO origin_versions (url, version, at) VALUES (?, ?, ?)",
                       (url, version.strip(), time.time() if at is None else float(at)))

    def origin_version(self, url: str, *, at: float | None = None) -> str:
        """The origin's version of `url` at `at` (None: now, read live from a mapped S3 origin)."""
        with self._connect() as db:
            return self._origin_versions(db, [url], at)[url]

    def origin_history(self, url: str) -> list[tuple[str, float]]:
        """(version, since) of `url` as logged, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT version, at FROM origin_versions WHERE url = ? ORDER BY at, id", (url,))
            return [(r["version"], r["at"]) for r in rows]

    def add_s3_origin(self, prefix: str, endpoint: str, bucket: str, key_prefix: str = "",
                      region: str = "us-east-1") -> S3Origin:
        """URLs starting with `prefix` have the ETag of object `key_prefix` + (the rest, decoded) of
        `bucket` at `endpoint` (loopback only) as version. Mappings are configuration: reset() keeps them."""
        origin = S3Origin(prefix, endpoint.rstrip("/"), bucket, key_prefix, region)
        with self._write() as db:
            db.execute("INSERT INTO s3_origins (prefix, endpoint, bucket, key_prefix, region) VALUES (?,?,?,?,?)"
                       " ON CONFLICT(prefix) DO UPDATE SET endpoint = excluded.endpoint, bucket = excluded.bucket,"
                       " key_prefix = excluded.key_prefix, region = excluded.region",
                       (origin.prefix, origin.endpoint, origin.bucket, origin.key_prefix, origin.region))
        return origin

    def s3_origins(self) -> list[S3Origin]:
        with self._connect() as db:
            rows = db.execute("SELECT prefix, endpoint, bucket, key_prefix, region FROM s3_origins ORDER BY prefix")
            return [S3Origin(*row) for row in rows]

    def clear_s3_origins(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM s3_origins")

    def snapshot_origins(self, urls: Iterable[str], now: float) -> None:
        """Log the S3 versions of the mapped `urls` at `now` (a prefetch of them was submitted).

        An unreadable origin is reported on stderr and logs nothing: the edge then reads the
        object as it is when asked.
        """
        origins = self.s3_origins()
        if not origins:
            return
        found: dict[str, str] = {}
        for origin, group in _grouped(origins, urls).items():
            try:
                found.update(read_versions(origin, group))
            except Exception as exc:  # noqa: BLE001 - any failure of the origin's server
                print(f"sandbox: cannot read origin s3://{origin.bucket} at {origin.endpoint}: {exc}", file=sys.stderr)
        if not found:
            return
        with self._write() as db:
            logged = self._logged(db, list(found), now)
            db.executemany("INSERT INTO origin_versions (url, version, at) VALUES (?, ?, ?)",
                           [(url, v, now) for url, v in found.items() if logged.get(url) != v])

    # ----- the TTL -------------------------------------------------------------------------------

    def set_cache_ttl(self, host: str, seconds: float) -> None:
        """How long `host`'s URLs stay cached after a prefetch fills the edge."""
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
        if not isinstance(host, str) or not host.strip() or "/" in host:
            raise ValueError(f"host must be a bare hostname such as 'static.example.com'; got {host!r}")
        with self._write() as db:
            db.execute("INSERT INTO edge_ttls (host, seconds) VALUES (?, ?)"
                       " ON CONFLICT(host) DO UPDATE SET seconds = excluded.seconds", (host.strip().lower(), seconds))

    def cache_ttl(self, host: str) -> float:
        """The TTL of `host` (its own, else the setting `edge_ttl_seconds`)."""
        return self.cache_ttls().get(host.lower(), float(self.get_setting("edge_ttl_seconds")))

    def cache_ttls(self) -> dict[str, float]:
        """The hosts with a TTL of their own."""
        with self._connect() as db:
            return {r["host"]: r["seconds"] for r in db.execute("SELECT host, seconds FROM edge_ttls ORDER BY host")}

    # ----- the edge ------------------------------------------------------------------------------

    def edge(self, url: str, service: str | None = None, *, now: float | None = None) -> EdgeCopy:
        """What `service`'s edge holds for `url` at `now` (default: now).

        `service` None: the one cloud that has tasks for the URL (ValueError if several do; none:
        nothing cached anywhere).
        """
        return self.edges([url], service, now=now)[url]

    def edges(self, urls: Sequence[str], service: str | None = None, *,
              now: float | None = None) -> dict[str, EdgeCopy]:
        """`edge` of many URLs at once (a few queries for all of them)."""
        if service is not None and service not in SERVICES:
            raise ValueError(f"service must be one of {', '.join(SERVICES)} (or None); got {service!r}")
        at = None if now is None else float(now)  # None: now, and mapped origins are read live
        now = time.time() if at is None else at
        wanted = list(dict.fromkeys(urls))
        with self._connect() as db:
            rows = self._url_tasks(db, wanted, service)
            origins = self._origin_versions(db, wanted, at)
            result = {}
            for url in wanted:
                services = sorted({r[0] for r in rows.get(url, [])})
                if service is None and len(services) > 1:
                    raise ValueError(f"{url} has tasks on {' and '.join(services)}: name the service")
                own = service or (services[0] if services else None)
                tasks = [r for r in rows.get(url, []) if r[0] == own]
                result[url] = self._replay(db, url, own, tasks, now, origins[url])
        return result

    def _replay(self, db: sqlite3.Connection, url: str, service: str | None, tasks: list[tuple[Any, ...]],
                now: float, origin: str) -> EdgeCopy:
        """The edge for `url` after its finished tasks, in order of finish (tasks: service, id, kind, job_id,
        created, finish, outcome)."""
        ttl = self.cache_ttl(urlsplit(url).hostname or "")
        version = cached_at = expires_at = cached_by = None
        last: dict[str, TaskSummary] = {}
        for _, _, kind, job_id, created, finish, outcome in sorted(tasks, key=lambda r: (r[5], r[1])):
            summary = TaskSummary(kind, job_id, "processing" if now < finish else outcome, created, finish)
            if kind not in last or (created, job_id) >= (last[kind].created, last[kind].job_id):
                last[kind] = summary
            if now < finish or outcome != "success":
                continue
            if kind == "purge":
                version = cached_at = expires_at = cached_by = None
            elif version is None or expires_at is None or expires_at <= finish:
                version = self._origin_versions(db, [url], finish)[url]
                cached_at, expires_at, cached_by = finish, finish + ttl, job_id
        if version is not None and expires_at is not None and expires_at <= now:
            version = None
        return EdgeCopy(url, service, version, cached_at, expires_at, cached_by, origin,
                        last.get("prefetch"), last.get("purge"))

    @staticmethod
    def _url_tasks(db: sqlite3.Connection, urls: list[str], service: str | None) -> dict[str, list[tuple]]:
        """url -> its tasks (service, id, kind, job_id, created, finish, outcome), UCloud directory
        refreshes above it included; the URL's http and https forms share them."""
        forms = {url: _schemes(url) for url in urls}
        dirs = {url: [d for form in forms[url] for d in _directories(form)] for url in urls}
        wanted = list({*(f for fs in forms.values() for f in fs), *(d for ds in dirs.values() for d in ds)})
        found: dict[str, list[tuple]] = {}
        for index in range(0, len(wanted), _CHUNK):
            chunk = wanted[index:index + _CHUNK]
            sql = ("SELECT target, service, id, kind, job_id, created, finish, outcome, extra FROM tasks"
                   f" WHERE target IN ({','.join('?' * len(chunk))})" + (" AND service = ?" if service else ""))
            for target, *row, extra in db.execute(sql, [*chunk, *([service] if service else [])]):
                found.setdefault(target, []).append((tuple(row), extra))
        result = {}
        for url in urls:
            tasks = [row for form in forms[url] for row, _ in found.get(form, [])]
            tasks += [row for d in dirs[url] for row, extra in found.get(d, [])
                      if row[2] == "purge" and '"dir"' in extra]
            result[url] = tasks
        return result

    def _origin_versions(self, db: sqlite3.Connection, urls: list[str], at: float | None) -> dict[str, str]:
        """url -> the origin's version at `at` (None: now, mapped URLs read live from S3).

        A mapped URL with nothing logged by `at` (its origin could not be read when a prefetch was
        submitted) is read live as well: the object as it is when asked.
        """
        if at is None:
            live = self._live_versions(db, urls)
            logged = self._logged(db, [u for u in urls if u not in live], time.time())
        else:
            logged = self._logged(db, urls, at)
            live = self._live_versions(db, [u for u in urls if u not in logged])
        return {url: live.get(url) or logged.get(url) or DEFAULT_VERSION for url in urls}

    @staticmethod
    def _live_versions(db: sqlite3.Connection, urls: list[str]) -> dict[str, str]:
        """url -> its object's ETag now, for the `urls` a mapped S3 origin holds."""
        if not urls:
            return {}
        origins = [S3Origin(*row) for row in db.execute(
            "SELECT prefix, endpoint, bucket, key_prefix, region FROM s3_origins")]
        live: dict[str, str] = {}
        for origin, group in _grouped(origins, urls).items():
            live.update(read_versions(origin, group))
        return live

    @staticmethod
    def _logged(db: sqlite3.Connection, urls: list[str], at: float) -> dict[str, str]:
        """url -> its latest logged version at or before `at` (URLs never logged are left out)."""
        found = {}
        for url in urls:
            row = db.execute("SELECT version FROM origin_versions WHERE url = ? AND at <= ? ORDER BY at DESC, id DESC"
                             " LIMIT 1", (url, at)).fetchone()
            if row is not None:
                found[url] = row[0]
        return found


def _grouped(origins: list[S3Origin], urls: Iterable[str]) -> dict[S3Origin, list[str]]:
    """The `urls` each mapping holds (URLs no mapping holds are left out)."""
    grouped: dict[S3Origin, list[str]] = {}
    for url in urls:
        if (origin := origin_of(origins, url)) is not None:
            grouped.setdefault(origin, []).append(url)
    return grouped


def _schemes(url: str) -> list[str]:
    """`url` and its twin in the other scheme (the edge does not tell http and https apart)."""
    for scheme, other in (("http://", "https://"), ("https://", "http://")):
        if url.startswith(scheme):
            return [url, other + url[len(scheme):]]
    return [url]


def _directories(url: str) -> list[str]:
    """The directory URLs above `url`: `https://h/a/b.js` -> [`https://h/`, `https://h/a/`]."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return []
    base = f"{parts.scheme}://{parts.netloc}/"
    segments = parts.path.lstrip("/").split("/")[:-1]
    above = [base + "".join(f"{s}/" for s in segments[:i]) for i in range(len(segments) + 1)]
    return [d for d in above if d != url]
