from datetime import datetime, timedelta, timezone

from components.reconcile import assess, latest_by_url, plan
from components.status import Observation, TargetState, TargetStatus

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)
A, B, C, D = (f"https://cdn.example.com/{x}.js" for x in "abcd")


def obs(url, state, minutes_ago, task="t1", reason=None, finished_after=1):
    created = NOW - timedelta(minutes=minutes_ago)
    return Observation(url, task, state, created, created + timedelta(minutes=finished_after), reason, state.value)


def test_newest_task_decides_per_url():
    rows = [obs(A, TargetState.FAILED, 60, "old"), obs(A, TargetState.WARM, 30, "new"),
            obs(B, TargetState.WARM, 60, "old"), obs(B, TargetState.FAILED, 30, "new")]
    latest = latest_by_url(rows)
    assert latest[A].task_id == "new" and latest[A].state is TargetState.WARM
    assert latest[B].task_id == "new" and latest[B].state is TargetState.FAILED


def test_each_declared_target_gets_a_verdict_and_other_urls_are_ignored():
    rows = [obs(A, TargetState.WARM, 10), obs(B, TargetState.TIMED_OUT, 10, reason="taskFailed"),
            obs("https://other.example.com/x", TargetState.FAILED, 5)]
    result = assess([A, B, C], rows, now=NOW, freshness=DAY)
    assert list(result) == [A, B, C]
    assert result[A].state is TargetState.WARM
    assert result[B].state is TargetState.TIMED_OUT and result[B].reason == "taskFailed"
    assert result[C].state is TargetState.MISSING and result[C].task_id is None


def test_success_older_than_freshness_is_expired():
    rows = [obs(A, TargetState.WARM, 25 * 60), obs(B, TargetState.WARM, 23 * 60)]
    result = assess([A, B], rows, now=NOW, freshness=DAY)
    assert result[A].state is TargetState.EXPIRED
    assert "24h" in result[A].reason
    assert result[B].state is TargetState.WARM


def test_plan_submits_exactly_the_drifted_and_never_what_is_in_flight():
    rows = [obs(A, TargetState.WARM, 10), obs(B, TargetState.RUNNING, 1), obs(C, TargetState.FAILED, 10),
            obs(D, TargetState.UNKNOWN, 10)]
    result = plan([A, B, C, D, "https://cdn.example.com/new.js"], rows, now=NOW, freshness=DAY)
    assert result.to_submit == (C, D, "https://cdn.example.com/new.js")
    assert result.in_flight == [B]
    assert not result.in_sync
    assert {s.url for s in result.drifted} == {B, C, D, "https://cdn.example.com/new.js"}


def test_all_warm_is_in_sync_with_nothing_to_submit():
    result = plan([A, B], [obs(A, TargetState.WARM, 5), obs(B, TargetState.WARM, 5)], now=NOW, freshness=DAY)
    assert result.in_sync and result.to_submit == ()


def test_describe_says_status_reason_task_and_time_in_plain_words():
    status = TargetStatus(A, TargetState.TIMED_OUT, "j1", NOW, "taskFailed: prefetch timed out")
    assert status.describe() == "timed out: taskFailed: prefetch timed out (task j1, 2026-11-23T12:00:00Z)"
    assert TargetStatus(A, TargetState.WARM, "j1", NOW).describe() == "warm"
    assert TargetStatus(A, TargetState.MISSING, reason="never submitted").describe() == "missing: never submitted"
    odd = TargetStatus(A, TargetState.UNKNOWN, "j2", NOW, None, "Paused")
    assert "'Paused'" in odd.describe()
