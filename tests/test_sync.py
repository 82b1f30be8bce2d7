import io
from datetime import timedelta

import pytest

from components.records import SetInputs, build_outputs
from components.status import ContentVersion, TargetState
from components.sync import DestinationSync, SubmitError
from tests.fakes import FakeClock, FakeCloud

URLS = tuple(f"https://cdn.example.com/{i}.js" for i in range(10))


def make(cloud, clock, targets=URLS, wait="1m", freshness="24h"):
    inputs = SetInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, freshness, wait)
    return DestinationSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO())


def test_first_converge_submits_everything_and_waits_until_warm():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    result = make(cloud, clock).converge()
    assert cloud.submits == [list(URLS)]
    assert result.plan.in_sync
    assert [t.task_id for t in result.new_tasks] == ["task-1"]
    assert result.submitted == [{"task_id": "task-1", "at": "2026-11-23T12:00:00Z", "count": 10}]


def test_second_converge_submits_only_what_drifted():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    cloud.outcomes = {URLS[1]: TargetState.FAILED, URLS[2]: TargetState.TIMED_OUT}
    first = make(cloud, clock).converge()
    assert {s.url: s.state for s in first.plan.drifted} == {URLS[1]: TargetState.FAILED, URLS[2]: TargetState.TIMED_OUT}
    cloud.outcomes = {}
    second = make(cloud, clock).converge(build_outputs(make(cloud, clock).inputs, first.plan,
                                                       verified_at=clock(), submitted=first.submitted))
    assert cloud.submits[1] == [URLS[1], URLS[2]]
    assert second.plan.in_sync
    assert [s["task_id"] for s in second.submitted] == ["task-1", "task-2"]  # never forgotten


def test_running_task_is_not_submitted_again():
    clock = FakeClock()
    cloud = FakeCloud(clock, finish_after=3600)
    first = make(cloud, clock, wait="0s").converge()
    assert first.plan.statuses[URLS[0]].state is TargetState.QUEUED
    second = make(cloud, clock, wait="0s").converge()
    assert len(cloud.submits) == 1
    assert second.plan.statuses[URLS[0]].state is TargetState.RUNNING


def test_batches_follow_the_live_batch_size():
    clock = FakeClock()
    cloud = FakeCloud(clock, batch=4)
    make(cloud, clock).converge()
    assert [len(b) for b in cloud.submits] == [4, 4, 2]


def test_more_than_the_remaining_quota_is_refused_before_anything_is_submitted():
    clock = FakeClock()
    cloud = FakeCloud(clock, available=9)
    with pytest.raises(SubmitError, match="10 targets need a prefetch but only 9") as info:
        make(cloud, clock).converge()
    assert cloud.submits == []
    assert "nothing was submitted" in str(info.value)


def test_failure_in_a_later_batch_says_what_was_and_was_not_submitted():
    clock = FakeClock()
    cloud = FakeCloud(clock, batch=4)
    cloud.fail_submit_call = 2
    with pytest.raises(SubmitError) as info:
        make(cloud, clock).converge()
    message = str(info.value)
    assert "batch 2 of 3 failed" in message and "backend exploded" in message
    assert "4 targets (task ids: task-1)" in message and "not submitted: 6" in message
    # the next converge finds task-1 in history and submits only the other 6
    cloud.fail_submit_call = None
    make(cloud, clock).converge()
    assert [u for batch in cloud.submits[1:] for u in batch] == list(URLS[4:])


def test_targets_rejected_at_submit_are_failures_not_successes():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    cloud.rejects = {URLS[3]: "domain not in zone"}
    result = make(cloud, clock).converge()
    status = result.plan.statuses[URLS[3]]
    assert status.state is TargetState.FAILED
    assert "rejected at submit: domain not in zone" in status.reason
    assert not result.plan.in_sync


def test_wait_deadline_leaves_slow_tasks_running_and_polls_with_backoff():
    clock = FakeClock()
    cloud = FakeCloud(clock, finish_after=600)
    result = make(cloud, clock, wait="30s").converge()
    assert {s.state for s in result.plan.statuses.values()} == {TargetState.RUNNING}
    assert clock() - timedelta(seconds=30) >= cloud.history_calls[0][1] - timedelta(seconds=1)
    polls = len(cloud.history_calls) - 1
    assert 3 <= polls <= 6  # 1+2+4+8+15 s, not one poll per second


def test_success_older_than_the_history_window_is_remembered_as_expired_not_missing():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    sync = make(cloud, clock, targets=URLS[:1], freshness="1h")
    first = sync.converge()
    outputs = build_outputs(sync.inputs, first.plan, verified_at=clock(), submitted=first.submitted)
    cloud.rows.clear()  # the cloud's history no longer holds the task
    clock.now += timedelta(days=3)
    seen = sync.observe(outputs).plan.statuses[URLS[0]]
    assert seen.state is TargetState.EXPIRED and seen.task_id == "task-1"


def test_history_is_read_over_freshness_plus_margin():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    make(cloud, clock, freshness="48h").observe()
    since, until = cloud.history_calls[0]
    assert until - since == timedelta(hours=72)


# -- origin-derived targets: content drift -------------------------------------------------------
def make_origin(cloud, clock, content, wait="1m"):
    inputs = SetInputs("web", {"provider": "edgeone", "zone": "zone-a"}, URLS, "24h", wait, content)
    return DestinationSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO())


def test_changed_origin_content_resubmits_exactly_the_changed_targets():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    v1 = {u: ContentVersion("aaaaaaaaaaaa", 10) for u in URLS}
    first_sync = make_origin(cloud, clock, v1)
    first = first_sync.converge()
    outputs = build_outputs(first_sync.inputs, first.plan, verified_at=clock(), submitted=first.submitted)
    assert {record[4] for record in outputs["observed"].values()} == {"aaaaaaaaaaaa"}

    clock.now += timedelta(minutes=5)
    v2 = {**v1, **{u: ContentVersion("bbbbbbbbbbbb", 11) for u in URLS[2:5]}}
    seen = make_origin(cloud, clock, v2).observe(outputs)
    assert {u for u, s in seen.plan.statuses.items() if s.state is TargetState.STALE} == set(URLS[2:5])

    second_sync = make_origin(cloud, clock, v2)
    second = second_sync.converge(outputs)
    assert cloud.submits[1] == list(URLS[2:5])
    assert second.plan.in_sync
    after = build_outputs(second_sync.inputs, second.plan, verified_at=clock(), submitted=second.submitted)
    assert {u: r[4] for u, r in after["observed"].items() if r[4] == "bbbbbbbbbbbb"}.keys() == set(URLS[2:5])

    third = make_origin(cloud, clock, v2).converge(after)
    assert len(cloud.submits) == 2 and third.plan.in_sync  # nothing new


def test_a_task_still_running_for_old_content_is_not_submitted_again_until_it_ends():
    clock = FakeClock()
    cloud = FakeCloud(clock, finish_after=600)
    v1 = {u: ContentVersion("aaaaaaaaaaaa", 10) for u in URLS}
    sync = make_origin(cloud, clock, v1, wait="0s")
    first = sync.converge()
    outputs = build_outputs(sync.inputs, first.plan, verified_at=clock(), submitted=first.submitted)
    v2 = {u: ContentVersion("bbbbbbbbbbbb", 11) for u in URLS}
    make_origin(cloud, clock, v2, wait="0s").converge(outputs)
    assert len(cloud.submits) == 1
    clock.now += timedelta(minutes=11)
    later = make_origin(cloud, clock, v2, wait="0s").observe(outputs)
    assert {s.state for s in later.plan.statuses.values()} == {TargetState.STALE}
