"""SQLite persistence for the sandbox: tasks, rules, faults, settings, quota usage and the request log.

Everything lives in one file so that a test (or the CLI) can steer a sandbox running inside another
process, e.g. the one the Pulumi provider host starts, just by opening the same path. Every
operation opens its own short-lived connection: that is safe across threads and processes (WAL +
busy timeout) and keeps no state that could go stale between processes.

Task status is not stored: it is computed from time (`processing` until `finish`, then the outcome
fixed at creation), so progress needs no background worker and survives restarts for free.

The one thing a store keeps in memory is the ordered ids of a few history queries, so that the pages
of a long history cost a page each (sandbox/pages.py); each page checks them against the file first.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from array import array
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from fnmatch import fnmatchcase
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import faults as fault_kinds
from .faults import Fault
from .pages import MatchCache, Matches, TableState

OUTCOMES: tuple[str, ...] = ("success", "failed", "timeout", "canceled", "invalid", "unknown", "rejected")
"""What a rule can make of a target, in neutral words; each service renders them in its own vocabulary.

`invalid` = the origin answered 4xx/5xx; `unknown` = the cloud lost track (UCloud's `unknow`);
`rejected` = refused at submit time (EdgeOne: FailedList; CDN and UCloud: the whole call fails).
"""

SERVICES: tuple[str, ...] = ("teo", "cdn", "ucloud")
"""Names the sandbox uses for its emulated services: in the task table, the request log and rules."""

DEFAULT_FAILURES: dict[str, tuple[str, str]] = {
    # outcome -> (FailType, FailMessage); FailType values are the ones EdgeOne documents.
    "failed": ("originPullFailed", "origin returned HTTP 502"),
    "timeout": ("taskFailed", "prefetch timed out"),
    "canceled": ("taskFailed", "prefetch task canceled"),
    "invalid": ("originPullFailed", "origin returned HTTP 404"),
    "unknown": ("taskFailed", "prefetch status unknown"),
    "rejected": ("", "target rejected by a sandbox rule"),
}

BEIJING_OFFSET_SECONDS = 8 * 3600  # daily quotas reset at midnight UTC+8


@dataclass(frozen=True)
class _Setting:
    kind: Callable[[Any], float | int]
    default: float | int
    minimum: float
    help: str


SETTINGS: dict[str, _Setting] = {
    "progress_seconds": _Setting(float, 1.0, 0.0, "seconds a new task stays `processing`"),
    "prefetch_batch": _Setting(int, 1000, 1, "most targets accepted in one submit"),
    "prefetch_daily": _Setting(int, 10000, 0, "targets accepted per zone per Beijing-time day"),
    "rate_limit_per_second": _Setting(int, 20, 1, "requests per (secret id, service, action) per second"),
    "cdn_push_batch": _Setting(int, 500, 1, "most URLs in one Tencent CDN PushUrlsCache"),
    "cdn_push_daily_mainland": _Setting(int, 1000, 0, "CDN prefetch URLs per Beijing-time day, mainland"),
    "cdn_push_daily_overseas": _Setting(int, 1000, 0, "CDN prefetch URLs per Beijing-time day, overseas"),
    "cdn_history_days": _Setting(int, 30, 1, "days of CDN push history DescribePushTasks returns"),
    "ucloud_prefetch_interval": _Setting(float, 10.0, 0.0, "seconds between UCloud prefetch submits, per account"),
    "ucloud_prefetch_batch": _Setting(int, 1000, 1, "most URLs in one UCloud PrefetchNewUcdnDomainCache"),
    "ucloud_prefetch_daily": _Setting(int, 500, 0, "UCloud prefetch URLs per domain per Beijing-time day"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,            -- "teo", "cdn", "ucloud"
    scope TEXT NOT NULL,              -- what queries are per: ZoneId (teo), Area (cdn), PublicKey (ucloud)
    kind TEXT NOT NULL,               -- "prefetch" (room for "purge")
    job_id TEXT NOT NULL,
    target TEXT NOT NULL,
    host TEXT NOT NULL,               -- lowercase hostname of target, for domain filters
    created REAL NOT NULL,
    finish REAL NOT NULL,             -- `processing` until then, then `outcome`
    outcome TEXT NOT NULL,
    fail_type TEXT NOT NULL,
    fail_message TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'  -- service-specific fields (JSON)
);
CREATE INDEX IF NOT EXISTS tasks_by_scope ON tasks (service, scope, created);
-- History across scopes (a CDN query without Area): without this index every page scans and sorts
-- every row of the service. With the rowid it carries, it also yields ORDER BY created DESC, id DESC.
CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (service, created);
-- One task's rows (a TaskId / job-id filter), already in page order: without `created` here the planner
-- may walk tasks_by_time in order instead, to skip the sort, and scan the whole service for one task.
CREATE INDEX IF NOT EXISTS tasks_by_job_time ON tasks (service, job_id, created);
DROP INDEX IF EXISTS tasks_by_job;
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern TEXT NOT NULL,
    outcome TEXT NOT NULL,
    fail_type TEXT,
    fail_message TEXT,
    delay_seconds REAL,
    service TEXT                      -- NULL: every service, else only this one
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ucloud_domains (domain_id TEXT PRIMARY KEY, host TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL, scope TEXT NOT NULL, kind TEXT NOT NULL,  -- scope: ZoneId, area, host
    at REAL NOT NULL, count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_by_scope ON usage (service, scope, kind, at);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    service TEXT, action TEXT, method TEXT, secret_id TEXT,
    params TEXT,                      -- JSON of the decoded parameters, NULL if undecodable
    error_code TEXT, error_message TEXT,
    request_id TEXT NOT NULL,
    fault TEXT,                       -- kind of the fault that fired on this request, else NULL
    fault_id INTEGER,
    handled INTEGER NOT NULL DEFAULT 1  -- 0: a fault cut the request off before the API saw it
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    service TEXT, action TEXT,        -- NULL: any
    probability REAL NOT NULL,
    count INTEGER,                    -- most firings, NULL: unlimited
    executed INTEGER NOT NULL,
    delay_seconds REAL, status INTEGER, field TEXT,
    seed INTEGER NOT NULL,
    evaluated INTEGER NOT NULL DEFAULT 0,  -- draws so far: the position in the fault's random stream
    fired INTEGER NOT NULL DEFAULT 0
);
"""
_TASKS_VERSION = [
    # What a kept list of history ids (sandbox/pages.py) is checked against before each page: a token
    # naming this file's table and a count of the updates and deletes made to it, bumped by triggers
    # whoever writes (another process steering the same file, `age()`, a raw SQL edit). Inserts need
    # no count: ids only grow, so the rows inserted since a list was read are those above its last id.
    "CREATE TABLE IF NOT EXISTS tasks_version"
    " (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, changes INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO tasks_version (id, token, changes) VALUES (1, lower(hex(randomblob(16))), 0)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS tasks_version_{event.lower()} AFTER {event} ON tasks"
        " BEGIN UPDATE tasks_version SET changes = changes + 1; END"
        for event in ("UPDATE", "DELETE")
    ),
]
"""Statements run after _SCHEMA, one by one: trigger bodies hold `;`, which _SCHEMA is split on."""
_ID_CHUNK = 500
"""Ids per `IN (...)` when a page's rows are fetched by id (SQLite caps bound variables)."""
_REQUEST_COLUMNS_ADDED = {"fault": "TEXT", "fault_id": "INTEGER", "handled": "INTEGER NOT NULL DEFAULT 1"}
"""Request-log columns newer than the first db files: added in place when an older file is opened."""


@dataclass(frozen=True)
class Rule:
    """A steering rule: targets matching `pattern` (fnmatch, case-sensitive) get `outcome`.

    Rules are global (whichever cloud prefetches the URL) unless `service` names one cloud, so a
    test can make one URL fail on one cloud only.
    """

    id: int
    pattern: str
    outcome: str
    fail_type: str | None
    fail_message: str | None
    delay_seconds: float | None
    service: str | None = None

    def matches(self, url: str) -> bool:
        return fnmatchcase(url, self.pattern)

    def applies(self, url: str, service: str | None) -> bool:
        """Matches `url`, and is global or scoped to `service`."""
        return (self.service is None or self.service == service) and self.matches(url)

    def failure(self) -> tuple[str, str]:
        """(FailType, FailMessage) for this outcome: the rule's own, else the outcome's default."""
        default_type, default_message = DEFAULT_FAILURES.get(self.outcome, ("", ""))
        return (
            default_type if self.fail_type is None else self.fail_type,
            default_message if self.fail_message is None else self.fail_message,
        )


def pick_rule(rules: Sequence[Rule], url: str, service: str | None = None) -> Rule | None:
    """The rule deciding `url` on `service`: the most recently added match wins (so a rule can override).

    Rules scoped to another service are skipped; with `service=None` only global rules count.
    """
    for rule in sorted(rules, key=lambda r: r.id, reverse=True):
        if rule.applies(url, service):
            return rule
    return None


@dataclass(frozen=True)
class NewTask:
    """One task row to insert; everything about its future is decided at submit time."""

    target: str
    host: str
    finish: float
    outcome: str
    fail_type: str = ""
    fail_message: str = ""
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredTask:
    id: int
    service: str
    scope: str
    kind: str
    job_id: str
    target: str
    host: str
    created: float
    finish: float
    outcome: str
    fail_type: str
    fail_message: str
    extra: dict[str, Any]

    def status(self, now: float) -> str:
        return "processing" if now < self.finish else self.outcome

    def updated(self, now: float) -> float:
        """Finish time once finished, else creation time (nothing has changed yet)."""
        return self.finish if now >= self.finish else self.created

    def progress(self, now: float) -> int:
        """Percent done: rises linearly with time while processing (at most 99), 100 once finished."""
        return task_progress(self.created, self.finish, now)


def task_progress(created: float, finish: float, now: float) -> int:
    """StoredTask.progress from the two times alone, for answers built from plain rows."""
    if now >= finish:
        return 100
    span = finish - created
    return max(0, min(99, int(100 * (now - created) / span))) if span > 0 else 0


TASK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StoredTask))
"""The tasks table's columns, in StoredTask's field order."""
_TASK_COLUMNS = ", ".join(TASK_FIELDS)
"""Rows read as plain tuples in this order convert without name lookups."""


@dataclass(frozen=True)
class Charge:
    """Quota one submit spends: `count` targets against `scope`'s daily `limit` (None: uncapped)."""

    scope: str
    count: int
    limit: int | None = None


class QuotaExceeded(Exception):
    """Raised by create_tasks when the submit would pass the daily limit; nothing was written."""

    def __init__(self, used: int, requested: int, limit: int, scope: str | None = None) -> None:
        where = f" for {scope}" if scope is not None else ""
        super().__init__(f"daily quota exceeded{where}: {used} used + {requested} requested > {limit}")
        self.used, self.requested, self.limit, self.scope = used, requested, limit, scope


class SubmitTooSoon(Exception):
    """Raised by create_tasks when the scope submitted less than `min_interval` ago; nothing was written."""

    def __init__(self, last: float, retry_after: float) -> None:
        super().__init__(f"the previous submit was {last!r}; retry in {retry_after:.3f} s")
        self.last, self.retry_after = last, retry_after


def beijing_day_bounds(now: float) -> tuple[float, float]:
    """[start, end) of the UTC+8 calendar day containing `now`, as Unix seconds."""
    day = math.floor((now + BEIJING_OFFSET_SECONDS) / 86400)
    start = day * 86400 - BEIJING_OFFSET_SECONDS
    return float(start), float(start + 86400)


class SandboxStore:
    """All sandbox state in one SQLite file; every method is safe to call from any thread/process."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(db_path)
        self._matches = MatchCache()  # history ids kept between the pages of one query
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent in the file; readers never block writers
            db.execute("BEGIN IMMEDIATE")
            # executescript() would commit on its own; run the statements inside our transaction.
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                db.execute(statement)
            for statement in _TASKS_VERSION:
                db.execute(statement)
            # Files written before rules could be scoped to a service: add the column in place.
            columns = {row[1] for row in db.execute("PRAGMA table_info(rules)")}
            if "service" not in columns:
                db.execute("ALTER TABLE rules ADD COLUMN service TEXT")
            columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
            for column, declaration in _REQUEST_COLUMNS_ADDED.items():
                if column not in columns:
                    db.execute(f"ALTER TABLE requests ADD COLUMN {column} {declaration}")
            db.execute("COMMIT")

    def __repr__(self) -> str:
        return f"SandboxStore({self.path!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (IMMEDIATE), so read-check-write is atomic."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ----- rules ---------------------------------------------------------------------------------

    def add_rule(
        self,
        pattern: str,
        outcome: str,
        *,
        fail_type: str | None = None,
        fail_message: str | None = None,
        delay_seconds: float | None = None,
        service: str | None = None,
    ) -> Rule:
        """Steer targets matching `pattern`; later-added rules win over earlier ones.

        `service` ("teo", "cdn", "ucloud") limits the rule to that cloud; None applies it everywhere.
        """
        if service is not None and service not in SERVICES:
            raise ValueError(f"service must be one of {', '.join(SERVICES)} (or None for all); got {service!r}")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty fnmatch glob, e.g. '*/broken/*'")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}")
        if outcome == "success" and (fail_type is not None or fail_message is not None):
            raise ValueError("fail_type/fail_message make no sense with outcome 'success'")
        if delay_seconds is not None:
            delay_seconds = float(delay_seconds)
            if not math.isfinite(delay_seconds) or delay_seconds < 0:
                raise ValueError(f"delay_seconds must be a finite number >= 0; got {delay_seconds!r}")
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO rules (pattern, outcome, fail_type, fail_message, delay_seconds, service)"
                " VALUES (?,?,?,?,?,?)",
                (pattern, outcome, fail_type, fail_message, delay_seconds, service),
            )
            rule_id = int(cur.lastrowid or 0)
        return Rule(rule_id, pattern, outcome, fail_type, fail_message, delay_seconds, service)

    def clear_rules(self) -> None:
        """Forget every rule. Existing tasks keep the outcome they were created with."""
        with self._write() as db:
            db.execute("DELETE FROM rules")

    def rule_objects(self) -> list[Rule]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM rules ORDER BY id").fetchall()
        return [
            Rule(r["id"], r["pattern"], r["outcome"], r["fail_type"], r["fail_message"], r["delay_seconds"],
                 r["service"])
            for r in rows
        ]

    def rules(self) -> list[dict[str, Any]]:
        """Rules in the order they were added (the last matching one wins)."""
        return [asdict(r) for r in self.rule_objects()]

    # ----- faults --------------------------------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        *,
        service: str | None = None,
        action: str | None = None,
        probability: float = 1.0,
        count: int | None = None,
        executed: bool = False,
        delay_seconds: float | None = None,
        seed: int | None = None,
        status: int | None = None,
        field: str | None = None,
    ) -> int:
        """Make matching requests fail like `kind` (see `sandbox.faults`); returns the fault's id.

        `service`/`action` scope it (None = any). It fires with `probability`, at most `count` times;
        its draws come from `seed` and a counter kept here, so the same seed and the same request
        sequence give the same firings (seed None: a random one, shown by `faults()`). `executed`
        (http_5xx, slow, reset) performs the action before failing. `delay_seconds`: slow's sleep
        (default 35) or clock_skew's offset (default 600). `status`: http_5xx's code (default 502).
        `field`: the dotted path missing_field/null_field hits (default: one per action).
        """
        values = fault_kinds.normalize(
            kind, service=service, action=action, probability=probability, count=count, executed=executed,
            delay_seconds=delay_seconds, status=status, field=field, seed=seed, services=SERVICES,
        )
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO faults (kind, service, action, probability, count, executed, delay_seconds,"
                " status, field, seed) VALUES (:kind, :service, :action, :probability, :count, :executed,"
                " :delay_seconds, :status, :field, :seed)",
                values,
            )
            return int(cur.lastrowid or 0)

    def add_chaos(
        self,
        throttle: float = 0.3,
        server_error: float = 0.05,
        reset: float = 0.02,
        executed_share: float = 0.5,
        seed: int = 0,
    ) -> list[int]:
        """A background of everyday failures on every service; returns the ids of the faults added.

        `throttle`, `server_error` (HTTP 502) and `reset` are shares of all requests (the stored
        probabilities compensate for earlier faults winning); `executed_share` of the server errors
        and resets happen after the action ran (ambiguous), the rest before (clean).
        """
        plan = fault_kinds.chaos_plan(
            throttle=throttle, server_error=server_error, reset=reset, executed_share=executed_share, seed=seed,
        )
        return [self.add_fault(**spec) for spec in plan]

    def clear_faults(self) -> None:
        """Forget every fault (the request log keeps what they did)."""
        with self._write() as db:
            db.execute("DELETE FROM faults")

    def fault_objects(self) -> list[Fault]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM faults ORDER BY id").fetchall()
        return [_fault(r) for r in rows]

    def faults(self) -> list[dict[str, Any]]:
        """Faults in evaluation (insertion) order, with their counters `evaluated` and `fired`."""
        return [asdict(f) for f in self.fault_objects()]

    def trigger_fault(self, service: str | None, action: str | None) -> Fault | None:
        """The fault to inject into one request to (`service`, `action`), or None.

        Matching faults are drawn in insertion order until one fires; every draw advances that
        fault's counter, atomically with the decision, so concurrent requests (from any process)
        never exceed a `count` and a run replays identically. Without a matching fault (the common
        case) this is one read and no write.
        """
        if not any(f.matches(service, action) for f in self.fault_objects()):
            return None
        with self._write() as db:
            rows = db.execute("SELECT * FROM faults ORDER BY id").fetchall()
            for fault in (_fault(r) for r in rows):
                if not fault.matches(service, action):
                    continue
                fired = fault_kinds.fires(fault.seed, fault.evaluated, fault.probability)
                db.execute(
                    "UPDATE faults SET evaluated = evaluated + 1, fired = fired + ? WHERE id = ?",
                    (int(fired), fault.id),
                )
                if fired:
                    return Fault(**{**asdict(fault), "evaluated": fault.evaluated + 1, "fired": fault.fired + 1})
        return None

    # ----- settings ------------------------------------------------------------------------------

    def set_setting(self, key: str, value: Any) -> None:
        """Set one of SETTINGS; strings are accepted (the CLI passes them). ValueError if invalid."""
        spec = SETTINGS.get(key)
        if spec is None:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        converted = _convert(key, spec, value)
        with self._write() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(converted)),
            )

    def get_setting(self, key: str) -> float | int:
        spec = SETTINGS.get(key)
        if spec is None:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        with self._connect() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return spec.default if row is None else spec.kind(json.loads(row["value"]))

    def settings(self) -> dict[str, float | int]:
        """Every setting with its effective value (defaults included)."""
        with self._connect() as db:
            stored = {r["key"]: json.loads(r["value"]) for r in db.execute("SELECT key, value FROM settings")}
        return {k: (s.kind(stored[k]) if k in stored else s.default) for k, s in SETTINGS.items()}

    # ----- UCloud domains ------------------------------------------------------------------------

    def add_ucloud_domain(self, domain_id: str, host: str) -> None:
        """Declare a UCloud DomainId and its hostname (GetUcdnDomainPrefetchRefreshState needs it).

        UCloud quotas are per domain while URLs only name a host, so this is the link between the two.
        Adding an existing id re-points it. Domains are configuration: `reset()` keeps them.
        """
        if not isinstance(domain_id, str) or not domain_id.strip():
            raise ValueError("domain_id must be a non-empty string, e.g. 'ucdn-abc123'")
        if not isinstance(host, str) or not host.strip() or "/" in host or " " in host.strip():
            raise ValueError(f"host must be a bare hostname such as 'static.example.com'; got {host!r}")
        with self._write() as db:
            db.execute(
                "INSERT INTO ucloud_domains (domain_id, host) VALUES (?, ?) "
                "ON CONFLICT(domain_id) DO UPDATE SET host = excluded.host",
                (domain_id.strip(), host.strip().lower()),
            )

    def ucloud_domains(self) -> dict[str, str]:
        """DomainId -> hostname, sorted by DomainId."""
        with self._connect() as db:
            rows = db.execute("SELECT domain_id, host FROM ucloud_domains ORDER BY domain_id").fetchall()
        return {r["domain_id"]: r["host"] for r in rows}

    def ucloud_domain_host(self, domain_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT host FROM ucloud_domains WHERE domain_id = ?", (domain_id,)).fetchone()
        return None if row is None else str(row["host"])

    # ----- tasks and quota -----------------------------------------------------------------------

    def create_tasks(
        self,
        service: str,
        scope: str,
        job_id: str,
        tasks: Sequence[NewTask],
        *,
        now: float,
        daily_limit: int | None = None,
        kind: str = "prefetch",
        charges: Sequence[Charge] | None = None,
        min_interval: float | None = None,
    ) -> None:
        """Insert tasks and charge them to today's quota, atomically.

        By default the whole submit is charged to `scope` against `daily_limit`; `charges` replaces
        that when quota is kept elsewhere (a CDN `global` push spends both areas, UCloud counts per
        host). Raises QuotaExceeded (writing nothing) if any limit would be passed, and SubmitTooSoon
        if `scope` created tasks less than `min_interval` seconds ago: two concurrent submits can
        never both squeeze under a limit.
        """
        if charges is None:
            charges = [Charge(scope, len(tasks), daily_limit)]
        with self._write() as db:
            if min_interval:
                row = db.execute(
                    "SELECT MAX(created) FROM tasks WHERE service = ? AND scope = ? AND kind = ?",
                    (service, scope, kind),
                ).fetchone()
                if row[0] is not None and now - float(row[0]) < min_interval:
                    raise SubmitTooSoon(float(row[0]), min_interval - (now - float(row[0])))
            for charge in charges:
                if charge.limit is not None and charge.count:
                    used = self._used_today(db, service, charge.scope, kind, now)
                    if used + charge.count > charge.limit:
                        raise QuotaExceeded(used, charge.count, charge.limit, charge.scope)
            db.executemany(
                "INSERT INTO tasks (service, scope, kind, job_id, target, host, created, finish, outcome,"
                " fail_type, fail_message, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (service, scope, kind, job_id, t.target, t.host, now, t.finish, t.outcome,
                     t.fail_type, t.fail_message, json.dumps(t.extra or {}))
                    for t in tasks
                ],
            )
            db.executemany(
                "INSERT INTO usage (service, scope, kind, at, count) VALUES (?,?,?,?,?)",
                [(service, c.scope, kind, now, c.count) for c in charges if c.count],
            )

    def last_submit(self, service: str, scope: str, *, kind: str = "prefetch") -> float | None:
        """Creation time of `scope`'s newest task (its last accepted submit), or None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT MAX(created) FROM tasks WHERE service = ? AND scope = ? AND kind = ?", (service, scope, kind)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def used_today(self, service: str, scope: str, *, now: float, kind: str = "prefetch") -> int:
        """Targets charged to `scope` during the current Beijing-time (UTC+8) day."""
        with self._connect() as db:
            return self._used_today(db, service, scope, kind, now)

    @staticmethod
    def _used_today(db: sqlite3.Connection, service: str, scope: str, kind: str, now: float) -> int:
        start, end = beijing_day_bounds(now)
        row = db.execute(
            "SELECT COALESCE(SUM(count), 0) FROM usage"
            " WHERE service = ? AND scope = ? AND kind = ? AND at >= ? AND at < ?",
            (service, scope, kind, start, end),
        ).fetchone()
        return int(row[0])

    def query_tasks(
        self,
        service: str,
        scope: str | None,
        *,
        now: float,
        start: int | None = None,
        end: int | None = None,
        job_id: str | None = None,
        job_ids: Iterable[str] | None = None,
        target: str | None = None,
        statuses: Iterable[str] | None = None,
        hosts: Iterable[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[StoredTask]]:
        """(total matching, one page), newest first (ties: later insert first).

        `start`/`end` are whole Unix seconds, inclusive, compared with the creation time truncated
        to the second: what the API renders is what it filters on. `statuses` are the sandbox's own
        states (`processing` or an outcome); each service translates its vocabulary into them.
        A page of a longer history is cut from the query's ids, kept between pages (sandbox/pages.py).
        """
        offset = max(0, offset)  # as SQL's OFFSET and LIMIT read them
        limit = None if limit is not None and limit < 0 else limit
        query = task_query(service, scope, now=now, start=start, end=end, job_id=job_id, job_ids=job_ids,
                           target=target, statuses=statuses, hosts=hosts, offset=offset, limit=limit)
        with self._connect() as db:
            db.row_factory = None  # plain tuples, in `_TASK_COLUMNS` order
            if limit is None:  # everything at once (UCloud's history): one ordered read, nothing to skip
                rows = db.execute(query.page_sql, query.page_args).fetchall()
                total = len(rows) if offset == 0 else int(db.execute(query.count_sql, query.args).fetchone()[0])
                return total, [_task_of(r) for r in rows]
            db.execute("BEGIN")  # one snapshot: the table state checked, the ids and the rows agree
            state = _table_state(db)
            ids = self._kept_ids(db, query, state, now)
            if ids is None:
                with self._matches.building:
                    ids = self._kept_ids(db, query, state, now)  # a concurrent page may have read it meanwhile
                    if ids is None:
                        matches = _read_matches(db, query, state, now)
                        ids = matches.ids
                        if len(ids) > limit:  # one page or less needs no keeping (and must not evict those that do)
                            self._matches.put(query.key, matches)
            page = ids[offset:offset + limit]
            rows = _rows_by_id(db, page)
            db.execute("COMMIT")
        if len(rows) != len(page):  # cannot happen while the table state is kept right; never answer wrong
            self._matches.forget(query.key)
            with self._connect() as db:
                db.row_factory = None
                total = int(db.execute(query.count_sql, query.args).fetchone()[0])
                rows = db.execute(query.page_sql, query.page_args).fetchall()
            return total, [_task_of(r) for r in rows]
        return len(ids), [_task_of(r) for r in rows]

    def _kept_ids(self, db: sqlite3.Connection, query: TaskQuery, state: TableState, now: float) -> array | None:
        """The kept ids of `query` if they answer it in `db`'s snapshot at `now`, else None."""
        kept = self._matches.get(query.key)
        if kept is None:
            return None
        holds = kept.holds(state, now)
        if holds is None and state.last_id - kept.state.last_id > len(kept.ids):
            holds = False  # checking that many new rows would cost more than reading the list again
        if holds is None:  # rows were inserted since: the list holds if none of them match
            holds = db.execute(query.inserted_sql, (kept.state.last_id, *query.timeless_args)).fetchone() is None
            if holds:
                self._matches.put(query.key, Matches(kept.ids, state, kept.since, kept.until))  # check once
        return kept.ids if holds else None

    def task_values(
        self,
        service: str,
        scope: str | None,
        columns: Sequence[str],
        *,
        now: float,
        start: int | None = None,
        end: int | None = None,
        job_ids: Iterable[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """`columns` (names from TASK_FIELDS) of every matching task as plain tuples, in query_tasks' order.

        For answers that carry a whole history at once (UCloud's): building 100,000 StoredTasks cost
        more than reading the rows.
        """
        unknown = [c for c in columns if c not in TASK_FIELDS]
        if unknown or not columns:
            raise ValueError(f"columns must be among {', '.join(TASK_FIELDS)}; got {list(columns)!r}")
        query = task_query(service, scope, now=now, start=start, end=end, job_ids=job_ids, columns=columns)
        with self._connect() as db:
            db.row_factory = None
            return db.execute(query.page_sql, query.page_args).fetchall()

    def tasks(self, service: str | None = None) -> list[StoredTask]:
        """Every task row in insertion order (for tests and debugging)."""
        with self._connect() as db:
            if service is None:
                rows = db.execute("SELECT * FROM tasks ORDER BY id").fetchall()
            else:
                rows = db.execute("SELECT * FROM tasks WHERE service = ? ORDER BY id", (service,)).fetchall()
        return [_task(r) for r in rows]

    def age(self, seconds: float) -> None:
        """Pretend `seconds` have passed for existing tasks and quota usage (no sleeping in tests).

        Every service's rows move together; UCloud's last-submit time is derived from its tasks,
        so it moves too.
        """
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
        with self._write() as db:
            db.execute("UPDATE tasks SET created = created - ?, finish = finish - ?", (seconds, seconds))
            db.execute("UPDATE usage SET at = at - ?", (seconds,))

    # ----- request log ---------------------------------------------------------------------------

    def log_request(
        self,
        *,
        service: str | None,
        action: str | None,
        params: Any,
        error_code: str | None,
        request_id: str,
        error_message: str | None = None,
        method: str | None = None,
        secret_id: str | None = None,
        at: float | None = None,
        fault: str | None = None,
        fault_id: int | None = None,
        handled: bool = True,
    ) -> None:
        """Record one request. `fault`/`fault_id`: what was injected; `handled=False`: a fault cut the
        request off before the API saw it (so `error_code` is None although nothing was performed)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO requests (at, service, action, method, secret_id, params, error_code,"
                " error_message, request_id, fault, fault_id, handled) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    time.time() if at is None else at, service, action, method, secret_id,
                    None if params is None else json.dumps(params, ensure_ascii=False, default=str),
                    error_code, error_message, request_id, fault, fault_id, int(handled),
                ),
            )

    def requests(self, action: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
        """The request log in arrival order: time, service, action, params, error_code, request_id,
        fault (the kind injected, else None), fault_id and handled (False: cut off by a fault)."""
        where: list[str] = []
        args: list[Any] = []
        if action is not None:
            where.append("action = ?")
            args.append(action)
        if service is not None:
            where.append("service = ?")
            args.append(service)
        sql = "SELECT * FROM requests" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [
            {
                "id": r["id"],
                "time": r["at"],
                "service": r["service"],
                "action": r["action"],
                "method": r["method"],
                "secret_id": r["secret_id"],
                "params": None if r["params"] is None else json.loads(r["params"]),
                "error_code": r["error_code"],
                "error_message": r["error_message"],
                "request_id": r["request_id"],
                "fault": r["fault"],
                "fault_id": r["fault_id"],
                "handled": bool(r["handled"]),
            }
            for r in rows
        ]

    def clear_requests(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM requests")

    def reset(self) -> None:
        """Drop tasks, rules, faults, quota usage and the log. Settings and UCloud domains are kept (configuration)."""
        with self._write() as db:
            for table in ("tasks", "rules", "faults", "usage", "requests"):
                db.execute(f"DELETE FROM {table}")


@dataclass(frozen=True)
class TaskQuery:
    """The statements behind one history page.

    `count_sql` + `page_sql`: the total count, then the page itself (newest first). `ids_sql`: the ids
    of every match in page order, read once for all pages of the query. `bounds_sql`: with a status
    filter, the finish times around `now` between which the matches stay the same (else None).
    `inserted_sql` (args: a last id, then `timeless_args`): is a row above that id a match, status
    aside? It walks the table from that id (NOT INDEXED), so it costs the rows inserted since.
    `key` names the query whatever its page and time: the filter SQL and its arguments but `now`.
    """

    count_sql: str
    page_sql: str
    args: tuple[Any, ...]
    page_args: tuple[Any, ...]
    ids_sql: str = ""
    bounds_sql: str | None = None
    bounds_args: tuple[Any, ...] = ()
    inserted_sql: str = ""
    timeless_args: tuple[Any, ...] = ()
    key: tuple[Any, ...] = ()


def task_query(
    service: str,
    scope: str | None,
    *,
    now: float,
    start: int | None = None,
    end: int | None = None,
    job_id: str | None = None,
    job_ids: Iterable[str] | None = None,
    target: str | None = None,
    statuses: Iterable[str] | None = None,
    hosts: Iterable[str] | None = None,
    offset: int = 0,
    limit: int | None = None,
    columns: Sequence[str] = TASK_FIELDS,
) -> TaskQuery:
    """The SQL of `SandboxStore.query_tasks`, built apart so a test can ask SQLite for its query plan.

    `columns`: what `page_sql` selects (names from TASK_FIELDS; the default makes StoredTasks).
    """
    where: list[str] = ["service = ?"]
    args: list[Any] = [service]
    if scope is not None:
        where.append("scope = ?")
        args.append(scope)
    if start is not None:
        where.append("created >= ?")
        args.append(start)
    if end is not None:
        where.append("created < ?")
        args.append(end + 1)
    if job_id is not None:
        where.append("job_id = ?")
        args.append(job_id)
    if job_ids is not None:
        wanted_jobs = list(job_ids)
        where.append(f"job_id IN ({_marks(wanted_jobs)})")
        args.extend(wanted_jobs)
    if target is not None:
        where.append("target = ?")
        args.append(target)
    if hosts is not None:
        wanted_hosts = [h.lower() for h in hosts]
        where.append(f"host IN ({_marks(wanted_hosts)})")
        args.extend(wanted_hosts)
    timeless_where, timeless_args = " AND ".join(where), tuple(args)  # what does not depend on `now`
    bounds_sql = None
    wanted: list[str] = []
    if statuses is not None:
        wanted = list(statuses)
        where.append(f"(CASE WHEN finish > ? THEN 'processing' ELSE outcome END) IN ({_marks(wanted)})")
        args.extend([now, *wanted])
        # Statuses change only when a row's finish passes: the last finish at or before `now` and
        # the first after it bound the times at which this filter matches the same rows.
        bounds_sql = ("SELECT MAX(CASE WHEN finish <= ? THEN finish END), MIN(CASE WHEN finish > ? THEN finish END)"
                      f" FROM tasks WHERE {timeless_where}")
    sql_where = " AND ".join(where)
    return TaskQuery(
        f"SELECT COUNT(*) FROM tasks WHERE {sql_where}",
        f"SELECT {', '.join(columns)} FROM tasks WHERE {sql_where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
        tuple(args),
        (*args, -1 if limit is None else limit, offset),
        ids_sql=f"SELECT id FROM tasks WHERE {sql_where} ORDER BY created DESC, id DESC",
        bounds_sql=bounds_sql,
        bounds_args=(now, now, *timeless_args),
        inserted_sql=f"SELECT 1 FROM tasks NOT INDEXED WHERE id > ? AND {timeless_where} LIMIT 1",
        timeless_args=timeless_args,
        key=(sql_where, timeless_args, tuple(wanted)),
    )


def _table_state(db: sqlite3.Connection) -> TableState:
    token, changes = db.execute("SELECT token, changes FROM tasks_version WHERE id = 1").fetchone()
    last_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM tasks").fetchone()[0]
    return TableState(str(token), int(changes), int(last_id))


def _read_matches(db: sqlite3.Connection, query: TaskQuery, state: TableState, now: float) -> Matches:
    """Every id `query` matches, in page order, and (status filter) the times they hold for."""
    ids = array("q", [row[0] for row in db.execute(query.ids_sql, query.args)])
    if query.bounds_sql is None:
        return Matches(ids, state)
    since, until = db.execute(query.bounds_sql, query.bounds_args).fetchone()
    return Matches(ids, state, since, until)


def _rows_by_id(db: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The task rows (as `_TASK_COLUMNS` tuples) of `ids`, in that order; a missing id is left out."""
    found: dict[int, tuple[Any, ...]] = {}
    if ids and max(ids) - min(ids) == len(ids) - 1:  # every id of a range (one submit's rows): walk it
        found = {row[0]: row for row in db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id BETWEEN ? AND ?", (min(ids), max(ids)))}
    else:
        for index in range(0, len(ids), _ID_CHUNK):
            chunk = list(ids[index:index + _ID_CHUNK])
            for row in db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id IN ({_marks(chunk)})", chunk):
                found[row[0]] = row
    return [found[i] for i in ids if i in found]


def _marks(values: Sequence[Any]) -> str:
    """SQL placeholders for an IN list; an empty list matches nothing."""
    return ",".join("?" * len(values)) if values else "NULL"


def _convert(key: str, spec: _Setting, value: Any) -> float | int:
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number; got {value!r}") from None
    if not math.isfinite(number) or number < spec.minimum:
        raise ValueError(f"{key} must be >= {spec.minimum:g}; got {value!r}")
    if spec.kind is int:
        if number != int(number):
            raise ValueError(f"{key} must be a whole number; got {value!r}")
        return int(number)
    return number


def _fault(r: sqlite3.Row) -> Fault:
    return Fault(
        id=r["id"], kind=r["kind"], service=r["service"], action=r["action"], probability=r["probability"],
        count=r["count"], executed=bool(r["executed"]), delay_seconds=r["delay_seconds"], status=r["status"],
        field=r["field"], seed=r["seed"], evaluated=r["evaluated"], fired=r["fired"],
    )


def _task(r: sqlite3.Row) -> StoredTask:
    return StoredTask(
        id=r["id"], service=r["service"], scope=r["scope"], kind=r["kind"], job_id=r["job_id"],
        target=r["target"], host=r["host"], created=r["created"], finish=r["finish"],
        outcome=r["outcome"], fail_type=r["fail_type"], fail_message=r["fail_message"],
        extra=json.loads(r["extra"] or "{}"),
    )


def _task_of(row: Sequence[Any]) -> StoredTask:
    """A task from a `_TASK_COLUMNS` tuple: a history page converts 1,000 of these per answer."""
    extra = row[12]
    return StoredTask(*row[:12], {} if not extra or extra == "{}" else json.loads(extra))
