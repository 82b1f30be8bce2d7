"""History pages cut from kept id lists (sandbox/pages.py): every answer is what plain SQL gives.

The reference is the statement pair the store ran for every page before lists were kept (COUNT(*),
then LIMIT/OFFSET), read with the original row conversion. Lists must never outlive a change that
alters an answer: a matching insert, an update or delete from any connection, or (status filters)
time passing a task's finish.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

from sandbox import SandboxStore, tencent, ucloud_wire
from sandbox import edgeone as teo
from sandbox import history as history_module
from sandbox import tasks as tasks_module
from sandbox import tencent_cdn as cdn
from sandbox import ucloud as ucdn
from sandbox.pages import CACHED_QUERIES
from sandbox.store import NewTask, StoredTask, task_query

OUTCOMES = ("success", "failed", "invalid", "timeout", "unknown", "canceled")
LIMIT = 4
UCLOUD_OUTCOMES = [("success",), ("success", "unknown"), OUTCOMES, ("success",), ("unknown", "success"), OUTCOMES]
"""Per UCloud task: all success, some unknown, some failed (its aggregate: success, unknow, failure)."""


@pytest.fixture
def store(tmp_path) -> SandboxStore:
    store = SandboxStore(tmp_path / "pages.db")
    _fill(store)
    return store


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every read of a full id list, by query key."""
    seen: list[tuple] = []
    original = history_module._read_matches

    def counting(db: sqlite3.Connection, query: Any, state: Any, now: float) -> Any:
        seen.append(query.key)
        return original(db, query, state, now)

    monkeypatch.setattr(history_module, "_read_matches", counting)
    return seen


def _submit(store: SandboxStore, service: str, scope: str, job: str, created: float, count: int,
            spread: float = 3.0, outcomes: tuple[str, ...] = OUTCOMES) -> None:
    tasks = [NewTask(f"https://{'a' if i % 3 else 'b'}.example.com/{job}/{i}.js", "a.example.com" if i % 3 else
                     "b.example.com", created + 0.5 + spread * i / count, outcomes[i % len(outcomes)])
             for i in range(count)]
    store.create_tasks(service, scope, job, tasks, now=created)


def _fill(store: SandboxStore) -> None:
    """Several submits per scope, two at the same second (ties: later insert first), finishes spread out."""
    for i, created in enumerate([1000.0, 1000.0, 1001.5, 1003.0, 1010.25, 1020.0]):
        _submit(store, "teo", "zone-a", f"ja{i}", created, 7)
        _submit(store, "teo", "zone-b", f"jb{i}", created + 0.1, 3)
        _submit(store, "cdn", ("mainland", "overseas", "global")[i % 3], f"c{i}", created, 5)
        _submit(store, "ucloud", "pk", f"u{i}", created, 4 + i % 3, spread=12.0, outcomes=UCLOUD_OUTCOMES[i])


def uncached(store: SandboxStore, service: str, scope: str | None, *, now: float, offset: int = 0,
             limit: int | None = None, **filters: Any) -> tuple[int, list[StoredTask]]:
    """What query_tasks answered before id lists were kept."""
    query = task_query(service, scope, now=now, offset=offset, limit=limit, **filters)
    with sqlite3.connect(store.path) as db:
        db.row_factory = sqlite3.Row
        total = int(db.execute(query.count_sql, query.args).fetchone()[0])
        rows = db.execute(query.page_sql, query.page_args).fetchall()
    return total, [tasks_module._task(r) for r in rows]


def pages(store: SandboxStore, service: str, scope: str | None, *, now: float, **filters: Any) -> list:
    """Every page (and one past the end) of a query, as the store answers them."""
    total = store.query_tasks(service, scope, now=now, limit=LIMIT, **filters)[0]
    return [store.query_tasks(service, scope, now=now, offset=o, limit=LIMIT, **filters)
            for o in range(0, total + LIMIT + 1, LIMIT)]


def reference_pages(store: SandboxStore, service: str, scope: str | None, *, now: float, **filters: Any) -> list:
    total = uncached(store, service, scope, now=now, limit=LIMIT, **filters)[0]
    return [uncached(store, service, scope, now=now, offset=o, limit=LIMIT, **filters)
            for o in range(0, total + LIMIT + 1, LIMIT)]


QUERIES = {
    "teo zone window": ("teo", "zone-a", {"start": 1000, "end": 1015}),
    "teo zone, statuses": ("teo", "zone-a", {"start": 900, "end": 3000, "statuses": ["processing", "failed"]}),
    "teo zone, hosts": ("teo", "zone-a", {"start": 900, "end": 3000, "hosts": ["A.example.com"]}),
    "cdn across areas": ("cdn", None, {"start": 900}),
    "cdn one area": ("cdn", "global", {}),
    "cdn job ids": ("cdn", None, {"job_ids": ["c1", "c2", "c4"]}),
    "teo one target": ("teo", "zone-a", {"target": "https://a.example.com/ja2/1.js"}),
}


@pytest.mark.parametrize("name", QUERIES)
@pytest.mark.parametrize("now", [1004.0, 5000.0])
def test_every_page_is_the_uncached_answer(store: SandboxStore, reads: list, name: str, now: float) -> None:
    service, scope, filters = QUERIES[name]
    expected = reference_pages(store, service, scope, now=now, **filters)
    assert pages(store, service, scope, now=now, **filters) == expected
    assert expected[0][0] > 0 and expected[-1][1] == []  # the query finds rows, and the last page is past the end
    # A history longer than a page is read once for all of its pages; a shorter one is never kept.
    assert len(reads) == (1 if expected[0][0] > LIMIT else 1 + len(expected))  # (`pages` asks page 0 twice)


def test_one_list_serves_every_page_until_the_table_changes(store: SandboxStore, reads: list) -> None:
    for _ in range(2):
        assert pages(store, "teo", "zone-a", now=5000.0) == reference_pages(store, "teo", "zone-a", now=5000.0)
    assert len(reads) == 1
    # Offsets anywhere, in any order (a client fetching several pages at once), and other page sizes.
    for offset, limit in [(37, 1), (3, 50), (0, 42), (41, 1), (42, 1), (10, 0)]:
        got = store.query_tasks("teo", "zone-a", now=5000.0, offset=offset, limit=limit)
        assert got == uncached(store, "teo", "zone-a", now=5000.0, offset=offset, limit=limit)
    assert len(reads) == 1


def test_status_filters_follow_tasks_as_they_finish(store: SandboxStore, reads: list) -> None:
    """Status is computed from time: the matches of `processing` change whenever a finish passes."""
    query = {"start": 900, "end": 3000, "statuses": ["processing"]}
    finishes = sorted({t.finish for t in store.tasks("teo") if t.scope == "zone-a"})
    for now in [999.0, 1000.5, 1001.0, finishes[5], finishes[5] + 1e-9, finishes[20], 1011.0, 1030.0]:
        # Pages at successive times, as a reader sees them while its tasks progress.
        total = uncached(store, "teo", "zone-a", now=now, **query)[0]
        for offset in range(0, total + 1, LIMIT):
            got = store.query_tasks("teo", "zone-a", now=now, offset=offset, limit=LIMIT, **query)
            assert got == uncached(store, "teo", "zone-a", now=now, offset=offset, limit=LIMIT, **query), now

    reads.clear()
    first, second = finishes[5], finishes[6]
    assert uncached(store, "teo", "zone-a", now=first, **query)[0] > LIMIT
    for now in (first, (first + second) / 2):  # the same states at both times: one list serves
        assert pages(store, "teo", "zone-a", now=now, **query) == reference_pages(store, "teo", "zone-a", now=now,
                                                                                  **query)
    assert len(reads) == 1
    assert pages(store, "teo", "zone-a", now=second, **query) == reference_pages(store, "teo", "zone-a", now=second,
                                                                                 **query)
    assert len(reads) == 2  # a task finished: read again
    earlier = (first + second) / 2  # a reader whose clock is behind the list's: read for its own time
    assert pages(store, "teo", "zone-a", now=earlier, **query) == reference_pages(store, "teo", "zone-a",
                                                                                  now=earlier, **query)
    assert len(reads) == 3


def test_matching_inserts_are_seen_and_others_cost_nothing(store: SandboxStore, reads: list) -> None:
    window = {"start": 900, "end": 1500}
    first = store.query_tasks("teo", "zone-a", now=5000.0, limit=LIMIT, **window)
    assert first == uncached(store, "teo", "zone-a", now=5000.0, limit=LIMIT, **window)

    _submit(store, "teo", "zone-b", "elsewhere", 1200.0, 9)  # another zone
    _submit(store, "cdn", "mainland", "other-service", 1200.0, 9)
    _submit(store, "teo", "zone-a", "too-new", 1501.0, 9)  # after the window (a read's window is fixed)
    assert pages(store, "teo", "zone-a", now=5000.0, **window) == reference_pages(store, "teo", "zone-a", now=5000.0,
                                                                                 **window)
    assert len(reads) == 1

    _submit(store, "teo", "zone-a", "inside", 1005.0, 9)  # a submit the query finds: it moves every later row
    total, rows = store.query_tasks("teo", "zone-a", now=5000.0, offset=8, limit=LIMIT, **window)
    assert (total, rows) == uncached(store, "teo", "zone-a", now=5000.0, offset=8, limit=LIMIT, **window)
    assert total == first[0] + 9 and len(reads) == 2
    assert pages(store, "teo", "zone-a", now=5000.0, **window) == reference_pages(store, "teo", "zone-a", now=5000.0,
                                                                                 **window)
    assert len(reads) == 2


@pytest.mark.parametrize("change", ["age from another store", "raw update", "raw delete", "reset and refill"])
def test_changes_by_any_connection_are_seen(store: SandboxStore, reads: list, change: str) -> None:
    query = {"start": 1000, "end": 1015}
    assert pages(store, "teo", "zone-a", now=1004.0, **query) == reference_pages(store, "teo", "zone-a", now=1004.0,
                                                                                **query)
    if change == "age from another store":  # e.g. a test steering the provider host's sandbox
        SandboxStore(store.path).age(5)
    elif change == "raw update":
        with sqlite3.connect(store.path) as db:
            db.execute("UPDATE tasks SET outcome = 'failed', finish = 1001 WHERE job_id = 'ja2'")
    elif change == "raw delete":
        with sqlite3.connect(store.path) as db:
            db.execute("DELETE FROM tasks WHERE job_id = 'ja1' AND target LIKE '%/3.js'")
    else:
        store.reset()
        _fill(store)  # new rows, new ids, the same shape
    after = pages(store, "teo", "zone-a", now=1004.0, **query)
    assert after == reference_pages(store, "teo", "zone-a", now=1004.0, **query)
    assert len(reads) == 2


def test_kept_lists_are_few(store: SandboxStore, reads: list) -> None:
    for end in range(1003, 1003 + 3 * CACHED_QUERIES):  # distinct windows, each longer than a page
        assert store.query_tasks("teo", "zone-a", now=5000.0, end=end, limit=LIMIT)[0] > LIMIT
    assert len(store._matches) == CACHED_QUERIES
    store.query_tasks("teo", "zone-a", now=5000.0, job_id="ja1", limit=LIMIT)  # 7 rows: more than a page
    store.query_tasks("teo", "zone-b", now=5000.0, job_id="jb1", limit=LIMIT)  # 3 rows: one page, not kept
    assert len(store._matches) == CACHED_QUERIES
    assert store.query_tasks("teo", "zone-a", now=5000.0, end=1003, limit=LIMIT)[0] > 0
    assert len(reads) == 3 * CACHED_QUERIES + 3  # the oldest window was dropped: read again


def test_concurrent_pages_of_a_new_query_read_it_once(store: SandboxStore, reads: list,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    counting = history_module._read_matches

    def slow(*args: Any) -> Any:  # a long read (100,000 ids): every other page arrives meanwhile
        time.sleep(0.2)
        return counting(*args)

    monkeypatch.setattr(history_module, "_read_matches", slow)
    total = uncached(store, "cdn", None, now=5000.0)[0]
    offsets = list(range(0, total, LIMIT))
    start = threading.Barrier(len(offsets))
    answers: dict[int, Any] = {}

    def page(offset: int) -> None:
        start.wait()
        answers[offset] = store.query_tasks("cdn", None, now=5000.0, offset=offset, limit=LIMIT)

    threads = [threading.Thread(target=page, args=(o,)) for o in offsets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {o: uncached(store, "cdn", None, now=5000.0, offset=o, limit=LIMIT) for o in offsets}
    assert len(reads) == 1


def test_a_new_row_is_checked_alone(store: SandboxStore) -> None:
    """Whether rows inserted since a list was read match it is asked of those rows only (the rowid
    range above the list's last id), not of the whole history."""
    query = task_query("cdn", None, now=5000.0, start=900)
    with sqlite3.connect(store.path) as db:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + query.inserted_sql, (10, *query.timeless_args))]
    assert plan == ["SEARCH tasks USING INTEGER PRIMARY KEY (rowid>?)"]


# ----- the services' answers ----------------------------------------------------------------------


def _as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store answer history as it did before lists were kept."""
    def query_tasks(self: SandboxStore, service: str, scope: str | None, **kwargs: Any) -> Any:
        return uncached(self, service, scope, **kwargs)

    monkeypatch.setattr(SandboxStore, "query_tasks", query_tasks)


def _teo_pages(store: SandboxStore, now: float) -> list[dict]:
    answers = []
    for offset in range(0, 40, 3):
        params = {"ZoneId": "zone-a", "StartTime": "1970-01-01T00:16:00Z", "EndTime": "1970-01-01T00:18:00Z",
                  "Offset": offset, "Limit": 3}
        answers.append(teo.describe_prefetch_tasks(tencent.Params(params), tencent.Context(store, now, "r")))
    return answers


def _cdn_pages(store: SandboxStore, now: float) -> list[dict]:
    answers = []
    for offset in range(0, 36, 5):
        params = {"StartTime": "1970-01-01 08:16:00", "EndTime": "1970-01-01 08:18:00", "Offset": offset, "Limit": 5}
        answers.append(cdn.describe_push_tasks(tencent.Params(params), tencent.Context(store, now, "r")))
    return answers


@pytest.mark.parametrize("now", [1002.0, 1011.0, 5000.0])
def test_edgeone_and_cdn_answers_are_unchanged(store: SandboxStore, monkeypatch: pytest.MonkeyPatch,
                                               now: float) -> None:
    kept = _teo_pages(store, now), _cdn_pages(store, now)
    _as_before(monkeypatch)
    assert kept == (_teo_pages(store, now), _cdn_pages(store, now))
    assert kept[0][0]["TotalCount"] == 42 and kept[1][0]["TotalCount"] == 30


def _reference_ucloud(store: SandboxStore, now: float, begin: int, end: int, status: str | None,
                      offset: int, limit: int) -> dict[str, Any]:
    """DescribeNewUcdnPrefetchCacheTask as the sandbox built it from StoredTasks, before plain rows."""
    def url_status(row: StoredTask) -> str:
        if now >= row.finish:
            return ucdn.REPORTED_STATUS.get(row.outcome, "unknow")
        return "wait" if now - row.created < ucdn.WAIT_FRACTION * (row.finish - row.created) else "process"

    def task_status(rows: list[StoredTask]) -> str:
        if any(now < r.finish for r in rows):
            created, last = rows[0].created, max(r.finish for r in rows)
            return "wait" if now - created < ucdn.WAIT_FRACTION * (last - created) else "process"
        finals = {url_status(r) for r in rows}
        return next((s for s in ("failure", "unknow") if s in finals), "success")

    _, rows = store.query_tasks("ucloud", "pk", now=now, start=begin, end=end)
    grouped: dict[str, list[StoredTask]] = {}
    for row in rows:
        grouped.setdefault(row.job_id, []).append(row)
    tasks = []
    for task_id, task_rows in grouped.items():
        task_rows.reverse()
        aggregate = task_status(task_rows)
        if status is not None and aggregate != status:
            continue
        tasks.append({"TaskId": task_id, "CreateTime": int(task_rows[0].created), "Status": aggregate,
                      "UrlLists": [{"Url": r.target, "CreateTime": int(r.created),
                                    "FinishTime": int(r.finish) if now >= r.finish else 0,
                                    "Status": url_status(r), "Progress": r.progress(now)} for r in task_rows]})
    page = tasks[offset:offset + limit] if limit else tasks[offset:]
    return {"TotalCount": len(tasks), "TaskList": page}


@pytest.mark.parametrize("now", [1000.2, 1004.0, 1013.0, 5000.0])
@pytest.mark.parametrize("status", [None, "wait", "process", "success", "failure", "unknow"])
def test_ucloud_answers_are_unchanged(store: SandboxStore, now: float, status: str | None) -> None:
    for offset, limit in [(0, 0), (1, 2), (4, 0), (9, 1)]:
        params = {"BeginTime": "1000", "EndTime": "1015", "Offset": str(offset), "Limit": str(limit)}
        if status is not None:
            params["Status"] = status
        got = ucdn.describe_new_ucdn_prefetch_cache_task(ucloud_wire.Params(params), ucloud_wire.Context(store, now, "pk", "r"))
        assert got == _reference_ucloud(store, now, 1000, 1015, status, offset, limit)


def test_ucloud_statuses_are_all_met(store: SandboxStore) -> None:
    """The comparison above covers every task status somewhere (else it would prove little)."""
    met = set()
    for now in (1000.2, 1004.0, 1013.0, 5000.0):
        answer = _reference_ucloud(store, now, 1000, 1015, None, 0, 0)
        met |= {t["Status"] for t in answer["TaskList"]}
    assert met == {"wait", "process", "success", "failure", "unknow"}


def test_task_values_names_only_task_columns(store: SandboxStore) -> None:
    rows = store.task_values("ucloud", "pk", ucdn.URL_COLUMNS, now=5000.0, start=1000, end=1000)
    assert rows == [(t.job_id, t.target, t.created, t.finish, t.outcome)
                    for t in uncached(store, "ucloud", "pk", now=5000.0, start=1000, end=1000)[1]]
    for bad in ([], ["target", "1; DROP TABLE tasks"], ["nope"]):
        with pytest.raises(ValueError):
            store.task_values("ucloud", "pk", bad, now=5000.0)
