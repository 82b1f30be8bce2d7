"""The tasks table and the daily quota its rows spend: what a submit writes, and its checks.

Task status is not stored: it is computed from time (`processing` until `finish`, then the outcome
fixed at creation), so progress needs no background worker and survives restarts for free.
Reading a history is `sandbox.history`'s job.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, fields
from typing import Any, Sequence

from .database import Database
from .keys import default_account

BEIJING_OFFSET_SECONDS = 8 * 3600  # daily quotas reset at midnight UTC+8


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


@dataclass(frozen=True)
class Charge:
    """Quota one submit spends: `count` targets against `scope`'s daily `limit` (None: uncapped).

    `kind`: the quota it is counted in, when not the tasks' own kind (UCloud's directory refreshes
    have a quota of their own, "purge_dir"). `account`: the quota is that account's own in `scope`
    (a Cloud CDN area); None: the scope's, whoever spends it (a zone, a UCloud domain).
    """

    scope: str
    count: int
    limit: int | None = None
    kind: str | None = None
    account: str | None = None


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


class TaskTable(Database):
    """Writes to the tasks and usage tables, and the plain reads beside them."""

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
        account: str | None = None,
    ) -> None:
        """Insert tasks and charge them to today's quota, atomically.

        By default the whole submit is charged to `scope` against `daily_limit`; `charges` replaces
        that when quota is kept elsewhere (a CDN `global` push spends both areas, UCloud counts per
        host). Raises QuotaExceeded (writing nothing) if any limit would be passed, and SubmitTooSoon
        if `scope` created tasks less than `min_interval` seconds ago: two concurrent submits can
        never both squeeze under a limit. `account` (who submits; None: `default_account`) is recorded
        on the tasks and the usage.
        """
        if account is None:
            account = default_account(service, scope)
        if charges is None:
            charges = [Charge(scope, len(tasks), daily_limit)]
        with self._write() as db:
            if min_interval:
                last = self._last_submit(db, service, scope, kind)
                if last is not None and now - last < min_interval:
                    raise SubmitTooSoon(last, min_interval - (now - last))
            for charge in charges:
                if charge.limit is not None and charge.count:
                    used = self._used_today(db, service, charge.scope, charge.kind or kind, now, charge.account)
                    if used + charge.count > charge.limit:
                        raise QuotaExceeded(used, charge.count, charge.limit, charge.scope)
            db.executemany(
                "INSERT INTO tasks (service, scope, kind, job_id, target, host, created, finish, outcome,"
                " fail_type, fail_message, extra, account) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (service, scope, kind, job_id, t.target, t.host, now, t.finish, t.outcome,
                     t.fail_type, t.fail_message, json.dumps(t.extra or {}), account)
                    for t in tasks
                ],
            )
            db.executemany(
                "INSERT INTO usage (service, scope, kind, at, count, account) VALUES (?,?,?,?,?,?)",
                [(service, c.scope, c.kind or kind, now, c.count, account) for c in charges if c.count],
            )

    def last_submit(self, service: str, scope: str, *, kind: str = "prefetch") -> float | None:
        """Creation time of `scope`'s newest task (its last accepted submit), or None."""
        with self._connect() as db:
            return self._last_submit(db, service, scope, kind)

    @staticmethod
    def _last_submit(db: sqlite3.Connection, service: str, scope: str, kind: str) -> float | None:
        row = db.execute(
            "SELECT MAX(created) FROM tasks WHERE service = ? AND scope = ? AND kind = ?", (service, scope, kind)
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def used_today(self, service: str, scope: str, *, now: float, kind: str = "prefetch",
                   account: str | None = None) -> int:
        """Targets charged to `scope` during the current Beijing-time (UTC+8) day (by `account` only, if named)."""
        with self._connect() as db:
            return self._used_today(db, service, scope, kind, now, account)

    @staticmethod
    def _used_today(db: sqlite3.Connection, service: str, scope: str, kind: str, now: float,
                    account: str | None = None) -> int:
        start, end = beijing_day_bounds(now)
        sql = ("SELECT COALESCE(SUM(count), 0) FROM usage"
               " WHERE service = ? AND scope = ? AND kind = ? AND at >= ? AND at < ?")
        args: tuple[object, ...] = (service, scope, kind, start, end)
        if account is not None:
            sql, args = sql + " AND account = ?", (*args, account)
        return int(db.execute(sql, args).fetchone()[0])

    def tasks(self, service: str | None = None, *, kind: str | None = None) -> list[StoredTask]:
        """Every task row in insertion order, of one service and kind if named (for tests and debugging)."""
        where = [(column, value) for column, value in (("service", service), ("kind", kind)) if value is not None]
        sql = "SELECT * FROM tasks" + (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else "")
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY id", [v for _, v in where]).fetchall()
        return [_task(r) for r in rows]

    def age(self, seconds: float) -> None:
        """Pretend `seconds` have passed for existing tasks and quota usage (no sleeping in tests).

        Every service's rows move together; UCloud's last-submit time is derived from its tasks,
        so it moves too, and so does the log of origin versions (the edge model reads them together).
        """
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
        with self._write() as db:
            db.execute("UPDATE tasks SET created = created - ?, finish = finish - ?", (seconds, seconds))
            db.execute("UPDATE usage SET at = at - ?", (seconds,))
            db.execute("UPDATE origin_versions SET at = at - ?", (seconds,))


def _task(r: sqlite3.Row) -> StoredTask:
    return StoredTask(
        id=r["id"], service=r["service"], scope=r["scope"], kind=r["kind"], job_id=r["job_id"],
        target=r["target"], host=r["host"], created=r["created"], finish=r["finish"],
        outcome=r["outcome"], fail_type=r["fail_type"], fail_message=r["fail_message"],
        extra=json.loads(r["extra"] or "{}"),
    )
