"""The sandbox's one SQLite file: its schema, in-place upgrades of older files, and connections.

Everything lives in one file so that a test (or the CLI) can steer a sandbox running inside another
process, e.g. the one the Pulumi provider host starts, just by opening the same path. Every
operation takes a connection of its own for its duration: safe across threads and processes (WAL +
busy timeout; each read or write transaction sees what other processes committed before it). The
connections are kept open between operations (a pool per store, per process): opening one was a
quarter of the sandbox's CPU on a submit of 1,000 URLs (about six connections a request). The schema
is kept here whole, for every table, so that one place says what a file holds.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

from .keys import SANDBOX_SECRET_ID

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,            -- "teo", "cdn", "ucloud"
    scope TEXT NOT NULL,              -- what queries are per: ZoneId (teo), Area (cdn), PublicKey (ucloud)
    kind TEXT NOT NULL,               -- "prefetch" or "purge": each kind has its own history
    job_id TEXT NOT NULL,
    target TEXT NOT NULL,
    host TEXT NOT NULL,               -- lowercase hostname of target, for domain filters
    created REAL NOT NULL,
    finish REAL NOT NULL,             -- `processing` until then, then `outcome`
    outcome TEXT NOT NULL,
    fail_type TEXT NOT NULL,
    fail_message TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',  -- service-specific fields (JSON)
    account TEXT NOT NULL DEFAULT ''  -- who submitted it: a SecretId (teo, cdn) or PublicKey (ucloud)
);
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern TEXT NOT NULL,
    outcome TEXT NOT NULL,
    fail_type TEXT,
    fail_message TEXT,
    delay_seconds REAL,
    service TEXT,                     -- NULL: every service, else only this one
    kind TEXT DEFAULT 'prefetch'      -- the tasks it steers: "prefetch", "purge", NULL: both
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ucloud_domains (domain_id TEXT PRIMARY KEY, host TEXT NOT NULL);
-- Which account owns what (sandbox/accounts.py): an EdgeOne ZoneId, a Cloud CDN domain, a UCloud DomainId.
CREATE TABLE IF NOT EXISTS owners (
    service TEXT NOT NULL, resource TEXT NOT NULL,
    account TEXT NOT NULL,            -- a SecretId (teo, cdn) or PublicKey (ucloud)
    PRIMARY KEY (service, resource)
);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL, scope TEXT NOT NULL, kind TEXT NOT NULL,  -- scope: ZoneId, area, host
    at REAL NOT NULL, count INTEGER NOT NULL,
    account TEXT NOT NULL DEFAULT ''  -- who spent it (a CDN area's quota is per account)
);
CREATE INDEX IF NOT EXISTS usage_by_scope ON usage (service, scope, kind, at);
-- The edge cache model (sandbox/edge.py): what the origin served when (a log, so a task finishing at
-- t caches the version of t), the cache TTL per host, and URL prefixes whose versions are the ETags
-- of an S3-compatible origin's objects (loopback only).
CREATE TABLE IF NOT EXISTS origin_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL, version TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS origin_versions_by_url ON origin_versions (url, at);
CREATE TABLE IF NOT EXISTS rate_hits (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_hits_by_key ON rate_hits (key, at);
CREATE TABLE IF NOT EXISTS edge_ttls (host TEXT PRIMARY KEY, seconds REAL NOT NULL);
CREATE TABLE IF NOT EXISTS s3_origins (
    prefix TEXT PRIMARY KEY,          -- a URL prefix, e.g. https://static.example.com/static/
    endpoint TEXT NOT NULL, bucket TEXT NOT NULL, key_prefix TEXT NOT NULL, region TEXT NOT NULL
);
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
TASK_INDEXES: dict[str, tuple[str, ...]] = {
    # A kind's history per scope (EdgeOne zone, CDN area, UCloud account).
    "tasks_by_scope": ("service", "kind", "scope", "created"),
    # History across scopes (a CDN query without Area): without this index every page scans and sorts
    # every row of the service. With the rowid it carries, it also yields ORDER BY created DESC, id DESC.
    "tasks_by_time": ("service", "kind", "created"),
    # One task's rows (a TaskId / job-id filter), already in page order: without `created` here the planner
    # may walk tasks_by_time in order instead, to skip the sort, and scan the whole service for one task.
    "tasks_by_job_time": ("service", "kind", "job_id", "created"),
    # One URL's tasks of every kind, for the edge cache model (sandbox/edge.py).
    "tasks_by_target": ("target", "service"),
}
"""The tasks table's indexes. `kind` follows `service` in each, so a purge history never walks prefetch
rows (and the reverse). Files written before a column was added get the index rebuilt when opened."""
_DROPPED_INDEXES = ("tasks_by_job",)
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
_REQUEST_COLUMNS_ADDED = {"fault": "TEXT", "fault_id": "INTEGER", "handled": "INTEGER NOT NULL DEFAULT 1"}
"""Request-log columns newer than the first db files: added in place when an older file is opened."""
_ACCOUNT_BACKFILL = {
    "tasks": "UPDATE tasks SET account = CASE service WHEN 'ucloud' THEN scope ELSE ? END",
    "usage": "UPDATE usage SET account = ? WHERE service = 'cdn'",
}
"""Files written before accounts: their rows become `keys.default_account`'s, so that the default
account's history and quota stay what they were (only a CDN area's usage is counted per account)."""


def _index_tasks(db: sqlite3.Connection) -> None:
    """Create TASK_INDEXES, rebuilding any an older file has with other columns."""
    for name in _DROPPED_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    for name, columns in TASK_INDEXES.items():
        have = tuple(row[2] for row in db.execute(f"PRAGMA index_info({name})"))
        if have == columns:
            continue
        if have:
            db.execute(f"DROP INDEX {name}")
        db.execute(f"CREATE INDEX {name} ON tasks ({', '.join(columns)})")


IDLE_CONNECTIONS = 8  # kept open per store: the server's busy threads and a test's steering calls


class Database:
    """One SQLite file, created or brought up to date when opened; the table classes build on it."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(db_path)
        self._idle: list[sqlite3.Connection] = []  # open connections no operation holds now
        self._idle_lock = threading.Lock()
        self._idle_pid = os.getpid()  # a forked child opens its own: SQLite connections do not survive fork
        self._forked: list[sqlite3.Connection] = []  # a parent's, in a forked child: left alone
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
            if "kind" not in columns:  # rules written before purges steered prefetches only
                db.execute("ALTER TABLE rules ADD COLUMN kind TEXT DEFAULT 'prefetch'")
            _index_tasks(db)
            columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
            for column, declaration in _REQUEST_COLUMNS_ADDED.items():
                if column not in columns:
                    db.execute(f"ALTER TABLE requests ADD COLUMN {column} {declaration}")
            for table, backfill in _ACCOUNT_BACKFILL.items():
                if "account" not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN account TEXT NOT NULL DEFAULT ''")
                    db.execute(backfill, (SANDBOX_SECRET_ID,))
            db.execute("COMMIT")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation: from the pool, back to it afterwards unless the operation
        failed or left a transaction open (then closed: the next one starts clean)."""
        db = self._checkout()
        try:
            yield db
        except BaseException:
            db.close()
            raise
        if db.in_transaction:
            db.close()
            return
        db.row_factory = sqlite3.Row  # an operation may have asked for plain tuples
        with self._idle_lock:
            if self._idle_pid == os.getpid() and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(db)
                return
        db.close()

    def _checkout(self) -> sqlite3.Connection:
        with self._idle_lock:
            if self._idle_pid != os.getpid():
                # A forked child: the parent's connections are neither used nor closed here (SQLite: a
                # connection must not be carried across fork), only kept from being freed.
                self._forked.extend(self._idle)
                self._idle, self._idle_pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

    def close(self) -> None:
        """Close the idle connections (the store stays usable: the next operation opens one)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for db in idle:
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
