"""History queries over the tasks table, one page at a time, newest first.

A page of a long history is cut from the query's matching ids, read once and kept between pages
(sandbox/pages.py says why and when a kept list still holds); the SQL is built apart
(`task_query`) so that a test can ask SQLite for its query plan.
"""

from __future__ import annotations

import json
import os
import sqlite3
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence, TypedDict

if TYPE_CHECKING:  # Python 3.11's typing; the annotations are never evaluated (``from __future__``)
    from typing import Unpack

from .database import Database
from .pages import MatchCache, Matches, TableState
from .tasks import TASK_FIELDS, StoredTask

_TASK_COLUMNS = ", ".join(TASK_FIELDS)
"""Rows read as plain tuples in this order convert without name lookups."""
_ID_CHUNK = 500
"""Ids per `IN (...)` when a page's rows are fetched by id (SQLite caps bound variables)."""


class TaskFilters(TypedDict, total=False):
    """What a history query may narrow by, named once for `query_tasks` and `task_query`; None: any."""

    start: int | None
    end: int | None
    job_id: str | None
    job_ids: Iterable[str] | None
    target: str | None
    target_contains: str | None
    statuses: Iterable[str] | None
    hosts: Iterable[str] | None
    account: str | None


class TaskHistory(Database):
    """Reads of task histories, with the ids of a few queries kept in memory between their pages."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        super().__init__(db_path)
        self._matches = MatchCache()  # history ids kept between the pages of one query

    def query_tasks(
        self,
        service: str,
        scope: str | None,
        *,
        now: float,
        offset: int = 0,
        limit: int | None = None,
        kind: str = "prefetch",
        **filters: Unpack[TaskFilters],
    ) -> tuple[int, list[StoredTask]]:
        """(total matching, one page) of `kind`'s history, newest first (ties: later insert first).

        `filters` (TaskFilters): `start`/`end` are whole Unix seconds, inclusive, compared with the
        creation time truncated to the second: what the API renders is what it filters on. `statuses`
        are the sandbox's own states (`processing` or an outcome); each service translates its
        vocabulary into them.
        A page of a longer history is cut from the query's ids, kept between pages (sandbox/pages.py).
        """
        offset = max(0, offset)  # as SQL's OFFSET and LIMIT read them
        limit = None if limit is not None and limit < 0 else limit
        query = task_query(service, scope, now=now, offset=offset, limit=limit, kind=kind, **filters)
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
        kind: str = "prefetch",
    ) -> list[tuple[Any, ...]]:
        """`columns` (names from TASK_FIELDS) of every matching task as plain tuples, in query_tasks' order.

        For answers that carry a whole history at once (UCloud's): building 100,000 StoredTasks cost
        more than reading the rows.
        """
        unknown = [c for c in columns if c not in TASK_FIELDS]
        if unknown or not columns:
            raise ValueError(f"columns must be among {', '.join(TASK_FIELDS)}; got {list(columns)!r}")
        query = task_query(service, scope, now=now, start=start, end=end, job_ids=job_ids, columns=columns, kind=kind)
        with self._connect() as db:
            db.row_factory = None
            return db.execute(query.page_sql, query.page_args).fetchall()


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
    offset: int = 0,
    limit: int | None = None,
    columns: Sequence[str] = TASK_FIELDS,
    kind: str = "prefetch",
    **filters: Unpack[TaskFilters],
) -> TaskQuery:
    """The SQL of `SandboxStore.query_tasks`, built apart so a test can ask SQLite for its query plan.

    `columns`: what `page_sql` selects (names from TASK_FIELDS; the default makes StoredTasks). `kind`:
    whose history ("prefetch" or "purge"); the two never mix, as the clouds keep them apart.
    """
    unknown = filters.keys() - TaskFilters.__annotations__.keys()
    if unknown:  # a misspelt filter must not silently match everything
        raise TypeError(f"unknown task filters: {', '.join(sorted(unknown))}")
    where: list[str] = ["service = ?", "kind = ?"]
    args: list[Any] = [service, kind]
    if scope is not None:
        where.append("scope = ?")
        args.append(scope)
    if (start := filters.get("start")) is not None:
        where.append("created >= ?")
        args.append(start)
    if (end := filters.get("end")) is not None:
        where.append("created < ?")
        args.append(end + 1)
    if (job_id := filters.get("job_id")) is not None:
        where.append("job_id = ?")
        args.append(job_id)
    if (job_ids := filters.get("job_ids")) is not None:
        wanted_jobs = list(job_ids)
        where.append(f"job_id IN ({_marks(wanted_jobs)})")
        args.extend(wanted_jobs)
    if (target := filters.get("target")) is not None:
        where.append("target = ?")
        args.append(target)
    if (part := filters.get("target_contains")) is not None:
        where.append("instr(target, ?) > 0")
        args.append(part)
    if (hosts := filters.get("hosts")) is not None:
        wanted_hosts = [h.lower() for h in hosts]
        where.append(f"host IN ({_marks(wanted_hosts)})")
        args.extend(wanted_hosts)
    if (account := filters.get("account")) is not None:  # whose tasks: a Cloud CDN history is an account's
        where.append("account = ?")
        args.append(account)
    timeless_where, timeless_args = " AND ".join(where), tuple(args)  # what does not depend on `now`
    bounds_sql = None
    wanted: list[str] = []
    if (statuses := filters.get("statuses")) is not None:
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


def _task_of(row: Sequence[Any]) -> StoredTask:
    """A task from a `_TASK_COLUMNS` tuple: a history page converts 1,000 of these per answer."""
    extra = row[12]
    return StoredTask(*row[:12], {} if not extra or extra == "{}" else json.loads(extra))
