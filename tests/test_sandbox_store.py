"""SandboxStore: rules, settings, quota accounting and concurrency on one SQLite file."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from sandbox import SandboxStore
from sandbox.store import NewTask, QuotaExceeded, beijing_day_bounds, pick_rule


@pytest.fixture
def store(tmp_path) -> SandboxStore:
    return SandboxStore(tmp_path / "store.db")


def test_rules_latest_wins_and_defaults(store: SandboxStore) -> None:
    store.add_rule("https://a.example.com/*", "failed")
    store.add_rule("*.js", "timeout", delay_seconds=2)
    store.add_rule("*/keep.js", "success")
    rules = store.rule_objects()
    assert pick_rule(rules, "https://a.example.com/x.css").outcome == "failed"  # type: ignore[union-attr]
    assert pick_rule(rules, "https://a.example.com/x.js").outcome == "timeout"  # type: ignore[union-attr]
    assert pick_rule(rules, "https://a.example.com/keep.js").outcome == "success"  # type: ignore[union-attr]
    assert pick_rule(rules, "https://b.example.com/x.css") is None
    assert pick_rule(rules, "HTTPS://A.EXAMPLE.COM/x.css") is None  # case-sensitive, like URLs
    assert rules[0].failure() == ("originPullFailed", "origin returned HTTP 502")
    assert rules[1].failure() == ("taskFailed", "prefetch timed out")
    assert [r["pattern"] for r in store.rules()] == ["https://a.example.com/*", "*.js", "*/keep.js"]
    assert store.rules()[1]["delay_seconds"] == 2
    store.clear_rules()
    assert store.rules() == []


@pytest.mark.parametrize(
    "args, kwargs",
    [(("", "failed"), {}), (("*", "broken"), {}), (("*", "success"), {"fail_type": "x"}),
     (("*", "failed"), {"delay_seconds": -1}), (("*", "failed"), {"delay_seconds": float("nan")})],
)
def test_bad_rules_are_refused(store: SandboxStore, args: tuple[str, str], kwargs: dict) -> None:
    with pytest.raises(ValueError):
        store.add_rule(*args, **kwargs)
    assert store.rules() == []


def test_settings_defaults_types_and_validation(store: SandboxStore) -> None:
    assert store.settings() == {"progress_seconds": 1.0, "prefetch_batch": 1000, "prefetch_daily": 10000,
                                "rate_limit_per_second": 20, "cdn_push_batch": 500,
                                "cdn_push_daily_mainland": 1000, "cdn_push_daily_overseas": 1000,
                                "cdn_history_days": 30, "cdn_history_max_limit": 1000,
                                "cdn_history_over_limit": "refuse", "ucloud_prefetch_interval": 10.0,
                                "ucloud_prefetch_batch": 1000, "ucloud_prefetch_daily": 500,
                                "purge_batch": 1000, "purge_daily": 10000, "cdn_purge_batch": 1000,
                                "cdn_purge_daily_mainland": 10000, "cdn_purge_daily_overseas": 10000,
                                "ucloud_refresh_batch": 30, "ucloud_refresh_daily": 700,
                                "ucloud_refresh_dir_daily": 20, "ucloud_refresh_interval": 0.0,
                                "edge_ttl_seconds": 86400.0}
    store.set_setting("progress_seconds", "0.25")
    store.set_setting("prefetch_batch", "2000")
    store.set_setting("prefetch_daily", 0)
    assert store.get_setting("progress_seconds") == 0.25
    assert store.get_setting("prefetch_batch") == 2000 and isinstance(store.get_setting("prefetch_batch"), int)
    store.set_setting("cdn_history_over_limit", "cap")
    assert store.get_setting("cdn_history_over_limit") == "cap"
    for key, value in (("nope", 1), ("prefetch_batch", "1.5"), ("prefetch_batch", 0), ("rate_limit_per_second", True),
                       ("progress_seconds", -1), ("prefetch_daily", "lots"), ("cdn_history_over_limit", "drop"),
                       ("cdn_history_over_limit", 1), ("cdn_history_max_limit", 0)):
        with pytest.raises(ValueError):
            store.set_setting(key, value)
    assert store.get_setting("prefetch_batch") == 2000 and store.get_setting("cdn_history_over_limit") == "cap"


def test_beijing_day_bounds() -> None:
    # 2024-01-01 15:59:59 UTC is 23:59:59 in Beijing; one second later is the next Beijing day.
    late = datetime(2024, 1, 1, 15, 59, 59, tzinfo=timezone.utc).timestamp()
    start, end = beijing_day_bounds(late)
    assert start == datetime(2023, 12, 31, 16, tzinfo=timezone.utc).timestamp() and end == late + 1
    assert beijing_day_bounds(late + 1)[0] == end


def _tasks(n: int, finish: float = 0.0) -> list[NewTask]:
    return [NewTask(f"https://x.example.com/{i}", "x.example.com", finish, "success") for i in range(n)]


def test_daily_quota_is_atomic_across_threads(store: SandboxStore) -> None:
    now = datetime.now(timezone.utc).timestamp()
    refused: list[QuotaExceeded] = []

    def submit(i: int) -> None:
        try:
            store.create_tasks("teo", "zone-a", f"job{i}", _tasks(3), now=now, daily_limit=10)
        except QuotaExceeded as exc:
            refused.append(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.used_today("teo", "zone-a", now=now) == 9  # 3 submits fit; never 12
    assert len(refused) == 5 and len(store.tasks()) == 9


def test_status_is_computed_from_time_and_age_shifts_it(store: SandboxStore) -> None:
    store.create_tasks("teo", "zone-a", "j", [NewTask("https://x/1", "x", 1100.0, "failed", "taskFailed", "m")],
                       now=1000.0)
    (task,) = store.tasks()
    assert (task.status(1099.9), task.updated(1099.9)) == ("processing", 1000.0)
    assert (task.status(1100.0), task.updated(1100.0)) == ("failed", 1100.0)
    store.age(50)
    (task,) = store.tasks()
    assert (task.created, task.finish) == (950.0, 1050.0)
    with pytest.raises(ValueError):
        store.age(-1)


def test_query_order_paging_and_inclusive_seconds(store: SandboxStore) -> None:
    store.create_tasks("teo", "zone-a", "j1", _tasks(3), now=1000.5)
    store.create_tasks("teo", "zone-a", "j2", _tasks(2), now=2000.0)
    store.create_tasks("teo", "zone-b", "j3", _tasks(1), now=2000.0)
    total, rows = store.query_tasks("teo", "zone-a", now=3000.0, limit=2, offset=1)
    assert total == 5 and [(r.job_id, r.id) for r in rows] == [("j2", 4), ("j1", 3)]
    # CreateTime renders as whole seconds, so [1000, 1000] includes a task created at 1000.5.
    assert store.query_tasks("teo", "zone-a", now=3000.0, start=1000, end=1000)[0] == 3
    assert store.query_tasks("teo", "zone-a", now=3000.0, start=1001, end=1999)[0] == 0


def test_reset_keeps_settings(store: SandboxStore) -> None:
    store.set_setting("prefetch_daily", 7)
    store.add_rule("*", "failed")
    store.create_tasks("teo", "zone-a", "j", _tasks(2), now=1000.0, daily_limit=7)
    store.log_request(service="teo", action="X", params={}, error_code=None, request_id="r")
    store.reset()
    assert (store.tasks(), store.rules(), store.requests()) == ([], [], [])
    assert store.used_today("teo", "zone-a", now=1000.0) == 0
    assert store.get_setting("prefetch_daily") == 7


def test_another_process_sees_and_steers_the_same_file(store: SandboxStore) -> None:
    code = (
        "import sys; from sandbox import SandboxStore; s = SandboxStore(sys.argv[1]); "
        "s.add_rule('*/x', 'timeout'); s.set_setting('progress_seconds', 5); print(len(s.tasks()))"
    )
    store.create_tasks("teo", "zone-a", "j", _tasks(2), now=1000.0)
    out = subprocess.run([sys.executable, "-c", code, store.path], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.stdout.strip() == "2"
    assert [r["outcome"] for r in store.rules()] == ["timeout"]
    assert store.get_setting("progress_seconds") == 5.0


def test_rules_can_be_scoped_to_one_service(store: SandboxStore) -> None:
    store.add_rule("*/x.js", "failed")
    store.add_rule("*/x.js", "invalid", service="cdn")
    store.add_rule("*/x.js", "unknown", service="ucloud")
    rules = store.rule_objects()
    url = "https://a.example.com/x.js"
    assert [getattr(pick_rule(rules, url, s), "outcome") for s in ("teo", "cdn", "ucloud", None)] == [
        "failed", "invalid", "unknown", "failed"]
    assert [r["service"] for r in store.rules()] == [None, "cdn", "ucloud"]
    assert rules[1].failure() == ("originPullFailed", "origin returned HTTP 404")
    with pytest.raises(ValueError, match="service"):
        store.add_rule("*", "failed", service="aws")


def test_old_files_gain_the_rule_service_column(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the rules table as the first sandbox release wrote it
        db.execute("CREATE TABLE rules (id INTEGER PRIMARY KEY AUTOINCREMENT, pattern TEXT NOT NULL,"
                   " outcome TEXT NOT NULL, fail_type TEXT, fail_message TEXT, delay_seconds REAL)")
        db.execute("INSERT INTO rules (pattern, outcome) VALUES ('*/old', 'failed')")
    store = SandboxStore(path)
    assert [(r["pattern"], r["service"]) for r in store.rules()] == [("*/old", None)]
    assert store.add_rule("*/new", "timeout", service="teo").service == "teo"


def test_charges_last_submit_and_interval(store: SandboxStore) -> None:
    from sandbox.store import Charge, SubmitTooSoon

    assert store.last_submit("ucloud", "pk") is None
    store.create_tasks("ucloud", "pk", "T1", _tasks(3), now=1000.0,
                       charges=[Charge("a.example.com", 2, 5), Charge("b.example.com", 1, 5)], min_interval=10)
    assert store.last_submit("ucloud", "pk") == 1000.0
    assert (store.used_today("ucloud", "a.example.com", now=1000.0),
            store.used_today("ucloud", "b.example.com", now=1000.0)) == (2, 1)
    with pytest.raises(SubmitTooSoon) as soon:
        store.create_tasks("ucloud", "pk", "T2", _tasks(1), now=1004.0, min_interval=10)
    assert soon.value.retry_after == pytest.approx(6.0)
    with pytest.raises(QuotaExceeded) as info:
        store.create_tasks("ucloud", "pk", "T3", _tasks(4), now=1010.0, charges=[Charge("a.example.com", 4, 5)])
    assert (info.value.scope, info.value.used, info.value.limit) == ("a.example.com", 2, 5)
    store.create_tasks("ucloud", "other-pk", "T4", _tasks(1), now=1004.0, min_interval=10)  # per scope
    assert len(store.tasks("ucloud")) == 4
    store.age(10)
    assert store.last_submit("ucloud", "pk") == 990.0


def test_ucloud_domains_are_configuration(store: SandboxStore) -> None:
    store.add_ucloud_domain("ucdn-a", "Static.Example.com")
    store.add_ucloud_domain("ucdn-b", "b.example.com")
    store.add_ucloud_domain("ucdn-b", "c.example.com")  # re-pointed
    assert store.ucloud_domains() == {"ucdn-a": "static.example.com", "ucdn-b": "c.example.com"}
    assert store.ucloud_domain_host("ucdn-zzz") is None
    for bad in (("", "a.example.com"), ("ucdn-x", ""), ("ucdn-x", "http://a.example.com/")):
        with pytest.raises(ValueError):
            store.add_ucloud_domain(*bad)
    store.reset()
    assert store.ucloud_domain_host("ucdn-a") == "static.example.com"


def test_progress_rises_then_reaches_100() -> None:
    from sandbox.store import StoredTask

    task = StoredTask(1, "cdn", "mainland", "prefetch", "j", "u", "h", 1000.0, 1010.0, "failed", "", "", {})
    assert [task.progress(t) for t in (1000.0, 1002.5, 1009.99, 1010.0)] == [0, 25, 99, 100]


# ----- history query plans -------------------------------------------------------------------------
# What each service asks for: EdgeOne per zone, CDN without Area (the adapter's query: `global` rows
# warm either area) and with it, and one task by id (the naive strategy, the adapters' confirmations).
HISTORY_QUERIES = {
    "cdn without Area": (("cdn", None), {"start": 900, "end": 3000}, "tasks_by_time"),
    "cdn without Area or window": (("cdn", None), {}, "tasks_by_time"),
    "teo zone": (("teo", "zone-a"), {"start": 900, "end": 3000}, "tasks_by_scope"),
    "cdn TaskId": (("cdn", None), {"job_id": "j1"}, "tasks_by_job_time"),
    "teo job-id in a zone": (("teo", "zone-a"), {"job_id": "j1"}, "tasks_by_job_time"),
}


def _plan(path: str, sql: str, args: tuple) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args)]


def _fill(store: SandboxStore) -> None:
    for i, (service, scope) in enumerate([("cdn", "mainland"), ("cdn", "overseas"), ("teo", "zone-a"),
                                          ("teo", "zone-b")] * 3):
        store.create_tasks(service, scope, f"j{i % 4}", _tasks(5), now=1000.0 + 100 * (i // 4))


@pytest.mark.parametrize("name", HISTORY_QUERIES)
def test_history_pages_read_an_index_in_page_order(store: SandboxStore, name: str) -> None:
    from sandbox.store import task_query

    (service, scope), query, index = HISTORY_QUERIES[name]
    _fill(store)
    built = task_query(service, scope, now=5000.0, offset=1000, limit=1000, **query)
    page = _plan(store.path, built.page_sql, built.page_args)
    count = _plan(store.path, built.count_sql, built.args)
    # One index search, no scan of the table, no sort: a page costs its own rows, not the whole history.
    assert len(page) == 1 and page[0].startswith("SEARCH tasks USING INDEX " + index + " ("), page
    assert len(count) == 1 and count[0].startswith("SEARCH tasks USING "), count
    assert not any("SCAN" in step or "TEMP B-TREE" in step for step in page + count), (page, count)


def test_existing_files_gain_the_history_indexes_with_the_same_answers(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "before.db"
    store = SandboxStore(path)
    _fill(store)
    with sqlite3.connect(path) as db:  # the indexes as the sandbox wrote them before tasks_by_time
        db.execute("DROP INDEX tasks_by_time")
        db.execute("DROP INDEX tasks_by_job_time")
        db.execute("CREATE INDEX tasks_by_job ON tasks (service, job_id)")
    queries = [("cdn", None, {}), ("cdn", None, {"start": 1100, "end": 1200}), ("cdn", "mainland", {}),
               ("cdn", None, {"job_id": "j1"}), ("teo", "zone-b", {"offset": 3, "limit": 4})]
    before = [store.query_tasks(service, scope, now=5000.0, **kw) for service, scope, kw in queries]
    from sandbox.store import task_query

    across = task_query("cdn", None, now=5000.0, start=900, end=3000, limit=1000)
    # The slow plan the benchmark met: every row of the service, scanned or sorted for each page.
    assert any("SCAN" in step or "TEMP B-TREE" in step for step in _plan(str(path), across.page_sql, across.page_args))

    reopened = SandboxStore(path)  # what `python -m sandbox` or a test does with an existing file
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"tasks_by_scope", "tasks_by_time", "tasks_by_job_time"} <= indexes and "tasks_by_job" not in indexes
    assert [reopened.query_tasks(service, scope, now=5000.0, **kw) for service, scope, kw in queries] == before
    # Newest first across both areas; the two submits at t=1200 tie, and the later insert comes first.
    assert before[0][0] == 30 and [r.id for r in before[0][1][:6]] == [50, 49, 48, 47, 46, 45]
