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
                                "rate_limit_per_second": 20}
    store.set_setting("progress_seconds", "0.25")
    store.set_setting("prefetch_batch", "2000")
    store.set_setting("prefetch_daily", 0)
    assert store.get_setting("progress_seconds") == 0.25
    assert store.get_setting("prefetch_batch") == 2000 and isinstance(store.get_setting("prefetch_batch"), int)
    for key, value in (("nope", 1), ("prefetch_batch", "1.5"), ("prefetch_batch", 0), ("rate_limit_per_second", True),
                       ("progress_seconds", -1), ("prefetch_daily", "lots")):
        with pytest.raises(ValueError):
            store.set_setting(key, value)
    assert store.get_setting("prefetch_batch") == 2000


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
