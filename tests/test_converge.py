import io
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

import pytest

from components.clouds.base import CloudError
from components.clouds.history import HistoryCache
from components.clouds.quota_ledger import QuotaLedger
from components.model.policy import Policy
from components.model.quota import Quota
from components.model.status import ContentVersion, HistoryRow, OnChange, TargetState, TaskKind
from components.resource.converge import ShardSync, SubmitError
from components.resource.poller import CLOCK_MARGIN, narrow_window
from components.resource.submit_order import SubmitOrder
from components.resource.submitter import CLOCK_TOLERANCE, CONFIRM_DELAYS, REQUEST_LIFE
from components.resource.inputs import ShardInputs
from components.resource.outputs import build_outputs
from tests.fakes import FakeClock, FakeCloud

URLS = tuple(f"https://cdn.example.com/{i}.js" for i in range(10))


def make(cloud, clock, targets=URLS, wait="1m", freshness="24h"):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, freshness, wait)
    return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO())


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
def make_origin(cloud, clock, content, wait="1m", policy=Policy()):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, URLS, "24h", wait, content)
    return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), policy=policy)


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


def test_changed_prefetch_options_prefetch_every_target_once_again_and_no_purge():
    """Issue 20: a header added to an EdgeOne destination warms the variant it asks for, once."""
    clock = FakeClock()
    cloud = FakeCloud(clock)

    def sync(**options: Any) -> ShardSync:
        inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a", "mode": "default", **options}, URLS,
                             "24h", "1m")
        return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO())

    def outputs_of(done: ShardSync, result) -> dict:
        return build_outputs(done.inputs, result.plan, verified_at=clock(), submitted=result.submitted)

    first = sync(prefetchMediaSegments="off")  # "off" is the API's own default: no option declared
    plain = outputs_of(first, first.converge())
    brotli = {"headers": [{"name": "Accept-Encoding", "value": "br"}]}
    clock.now += timedelta(minutes=5)
    assert len(cloud.submits) == 1 and sync().converge(plain).plan.in_sync and len(cloud.submits) == 1
    second = sync(**brotli)
    again = outputs_of(second, second.converge(plain))
    assert cloud.submits[1] == list(URLS) and cloud.purger().submits == []
    clock.now += timedelta(minutes=5)
    assert sync(**brotli).converge(again).plan.in_sync and len(cloud.submits) == 2  # warm with them now


# -- ambiguous submit failures: re-read history, never submit twice (issue #5 item 3) --------------
class FlakyCloud(FakeCloud):
    """A fake cloud whose submits can fail after (executed) or before doing the work, whose new tasks
    can appear in history only a moment later, and whose reads can fail."""

    def __init__(self, clock, *, daily: int = 10_000, **kwargs):
        super().__init__(clock, **kwargs)
        self.daily = daily
        self.failures: dict[int, tuple[str, bool]] = {}  # submit call number -> (kind, executed)
        self.lag = 0.0                                   # seconds before a new task shows in history
        self.visible_from: dict[str, object] = {}
        self.calls = 0
        self.history_fails = 0                           # the next N history reads fail
        self.quota_calls = 0

    def quota(self):
        self.quota_calls += 1
        return Quota(self.batch, self.daily, self.available)

    def submit(self, urls):
        self.calls += 1
        kind, executed = self.failures.get(self.calls, (None, False))
        if kind and not executed:
            raise CloudError("fake", "Submit", "ClientNetworkError", "connection reset", kind=kind)
        result = super().submit(urls)
        self.visible_from[result.task_id] = self.clock() + timedelta(seconds=self.lag)
        if kind:
            raise CloudError("fake", "Submit", "ServerNetworkError", "502 Bad Gateway", kind=kind)
        return result

    def history(self, since, until):
        if self.history_fails:
            self.history_fails -= 1
            raise CloudError("fake", "History", "InternalError", "history unavailable", kind="transient")
        for obs in super().history(since, until):
            if self.clock() >= self.visible_from.get(obs.task_id, self.clock()):
                yield obs

    def per_url(self):
        return Counter(u for batch in self.submits for u in batch)


def flaky(clock, **kwargs):
    return FlakyCloud(clock, **kwargs)


@pytest.mark.parametrize("kind", ["transient", "malformed"])
def test_an_ambiguous_failure_that_was_accepted_is_found_in_history_and_not_sent_again(kind):
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {2: (kind, True)}
    result = make(cloud, clock).converge()
    assert cloud.per_url() == Counter(URLS)  # every target exactly once
    assert cloud.calls == 3
    assert [s["task_id"] for s in result.submitted] == ["task-1", "task-2", "task-3"]
    assert [s["count"] for s in result.submitted] == [4, 4, 2]
    assert result.plan.in_sync


def outputs_of(sync, result):
    """The outputs a converge or an observe leaves (what the next one gets as its prior outputs)."""
    return build_outputs(sync.inputs, result.plan, verified_at=sync.clock(), submitted=result.submitted,
                         unconfirmed=result.unconfirmed)


def held(result) -> set:
    return {u for u, s in result.plan.statuses.items()
            if s.state is TargetState.UNKNOWN and s.reason.startswith("submit unconfirmed")}


def test_an_ambiguous_failure_history_does_not_show_is_recorded_held_and_never_sent_again_in_that_up():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {2: ("transient", False)}
    sync = make(cloud, clock)
    result = sync.converge()
    assert cloud.submits == [list(URLS[:4])]  # batch 2 not re-sent, and nothing sent after it
    assert len(cloud.history_calls) >= 1 + len(CONFIRM_DELAYS)  # start + confirmation reads (+ polls)
    [attempt] = result.unconfirmed
    assert attempt.urls == URLS[4:8] and attempt.at == clock.start
    assert attempt.until - attempt.at >= REQUEST_LIFE and "ClientNetworkError" in attempt.error
    assert held(result) == set(URLS[4:8]) and not result.plan.in_sync
    assert {u for u, s in result.plan.statuses.items() if s.state is TargetState.MISSING} == set(URLS[8:])
    log = sync.log.getvalue()
    assert "may or may not have been accepted" in log and "history does not show them yet" in log
    assert "2 targets not sent in this up, since a submit is unconfirmed" in log
    outputs = outputs_of(sync, result)
    assert outputs["unconfirmed"] == [attempt.to_dict()]
    assert held(make(cloud, clock).observe(outputs)) == set(URLS[4:8])  # a refresh holds them too


def test_unconfirmed_targets_are_sent_once_history_read_after_the_request_life_still_shows_no_task():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {2: ("transient", False)}
    sync = make(cloud, clock)
    first = outputs_of(sync, sync.converge())
    clock.now += timedelta(minutes=1)  # within the request's life: only the never-sent targets go out
    second_sync = make(cloud, clock)
    second = second_sync.converge(first)
    assert cloud.submits[1:] == [list(URLS[8:])] and held(second) == set(URLS[4:8])
    refreshed = make(cloud, clock).observe(outputs_of(second_sync, second))  # a refresh carries the record on
    clock.now = second.unconfirmed[0].until
    last = make(cloud, clock)
    result = last.converge(outputs_of(last, refreshed))
    assert cloud.submits[2:] == [list(URLS[4:8])]
    assert cloud.per_url() == Counter(URLS) and result.plan.in_sync and result.unconfirmed == []
    assert "shows no task for 4 targets of the unconfirmed submit" in last.log.getvalue()


def test_a_submit_the_cloud_executes_after_the_confirmation_reads_is_found_by_the_next_up_not_sent_twice():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {1: ("transient", False)}
    sync = make(cloud, clock, targets=URLS[:4])
    first = sync.converge()
    assert held(first) == set(URLS[:4]) and cloud.submits == []
    clock.now += timedelta(seconds=60)
    FakeCloud.submit(cloud, list(URLS[:4]))  # the lost request runs now, 60 s after the client gave up
    clock.now += timedelta(seconds=5)  # and is done
    later = make(cloud, clock, targets=URLS[:4])
    result = later.converge(outputs_of(sync, first))
    assert cloud.per_url() == Counter(URLS[:4])  # exactly once
    assert result.plan.in_sync and result.unconfirmed == []
    assert [s["task_id"] for s in result.submitted] == ["task-1"]  # counted as submitted
    assert "history shows prefetch task task-1 holds 4 of these targets" in later.log.getvalue()


def test_a_task_that_shows_in_history_a_moment_late_is_still_found():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {1: ("transient", True)}
    cloud.lag = sum(CONFIRM_DELAYS[:2]) + 0.1  # visible only at the last confirmation read
    make(cloud, clock).converge()
    assert cloud.per_url() == Counter(URLS) and cloud.calls == 3


def test_only_the_targets_history_does_not_show_are_unconfirmed():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    # the cloud accepted part of the batch before failing: two of the four targets have a task
    real_submit = FakeCloud.submit

    def half_then_fail(urls):
        cloud.calls += 1
        if cloud.calls == 1:
            real_submit(cloud, urls[:2])
            raise CloudError("fake", "Submit", "ServerNetworkError", "504", kind="transient")
        return real_submit(cloud, urls)

    cloud.submit = half_then_fail
    result = make(cloud, clock).converge()
    assert cloud.submits == [list(URLS[:2])]
    assert result.submitted == [{"task_id": "task-1", "at": "2026-11-23T12:00:00Z", "count": 2}]
    assert [a.urls for a in result.unconfirmed] == [URLS[2:4]] and held(result) == set(URLS[2:4])
    assert result.unconfirmed[0].known == frozenset()  # the two had no task before


def test_when_history_cannot_be_read_after_an_ambiguous_failure_the_batch_is_unconfirmed_and_nothing_more_sent():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {2: ("transient", True)}
    sync = make(cloud, clock)
    real_confirm = sync.prefetch.submitter._confirm

    def failing_confirm(*args):
        cloud.history_fails = 1
        return real_confirm(*args)

    sync.prefetch.submitter._confirm = failing_confirm
    result = sync.converge()
    assert cloud.calls == 2 and held(result) == set(URLS[4:8])
    assert "history could not be read" in sync.log.getvalue()
    # the next up finds task-2 (accepted despite the error) and submits only batch 3
    make(cloud, clock).converge(outputs_of(sync, result))
    assert cloud.per_url() == Counter(URLS)


def test_a_clear_refusal_is_not_treated_as_ambiguous():
    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {2: ("invalid", False)}
    with pytest.raises(SubmitError, match="batch 2 of 3 failed"):
        make(cloud, clock).converge()
    assert len(cloud.history_calls) == 1  # no confirmation reads: the cloud said no


def test_a_failed_progress_poll_does_not_fail_the_up():
    clock = FakeClock()
    cloud = flaky(clock)
    sync = make(cloud, clock)
    real_wait_history = cloud.history
    polls = []

    def history(since, until):
        polls.append(since)
        if len(polls) == 2:  # the first poll after the submit
            raise CloudError("fake", "History", "RequestLimitExceeded", "throttled", kind="throttled")
        return real_wait_history(since, until)

    cloud.history = history
    result = sync.converge()
    assert result.plan.in_sync and len(cloud.submits) == 1
    assert "reading progress failed" in sync.log.getvalue()


# -- quota: partial submission and the share rail (issue #5 item 5) ------------------------------
def make_with(cloud, clock, policy, targets=URLS):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", "1m")
    return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), policy=policy)


def test_with_allow_partial_up_submits_what_fits_never_warmed_first_and_reports_the_rest():
    clock = FakeClock()
    cloud = flaky(clock, available=6, daily=100)
    for url in URLS[:5]:  # warm long ago: expired now
        cloud.add_row(url, TargetState.WARM, clock() - timedelta(days=2))
    sync = make_with(cloud, clock, Policy(allow_partial=True))
    result = sync.converge()
    assert [u for b in cloud.submits for u in b] == list(URLS[5:]) + [URLS[0]]  # 5 missing, then 1 expired
    assert result.quota.to_output() == {"needed": 10, "available": 6, "daily": 100, "submit": 6, "not_submitted": 4,
                                        "allow_partial": True, "refused": ""}
    assert ("warning: set web on fake: 10 targets need a prefetch but only 6 of today's quota are left: submitting 6 "
            "(allowPartial); 4 not submitted") in sync.log.getvalue()
    assert {s.state for u, s in result.plan.statuses.items() if u in URLS[1:5]} == {TargetState.EXPIRED}


def test_without_allow_partial_a_short_quota_submits_nothing():
    clock = FakeClock()
    cloud = flaky(clock, available=6, daily=100)
    with pytest.raises(SubmitError, match="10 targets need a prefetch but only 6 of today's 100") as info:
        make_with(cloud, clock, Policy()).converge()
    assert "allowPartial: true" in str(info.value) and cloud.submits == []


def test_submitting_more_than_the_allowed_share_of_the_daily_quota_needs_consent():
    clock = FakeClock()
    cloud = flaky(clock, daily=16)
    with pytest.raises(SubmitError, match="would submit 10 targets, 62% of the daily prefetch quota of 16") as info:
        make_with(cloud, clock, Policy()).converge()
    assert "safety: {maxQuotaShare: 0.63}" in str(info.value) and cloud.submits == []
    make_with(cloud, clock, Policy(max_quota_share=0.63)).converge()
    assert len(cloud.submits) == 1


def test_the_stack_config_consent_lifts_the_share_rail():
    clock = FakeClock()
    cloud = flaky(clock, daily=10)
    make_with(cloud, clock, Policy(allow_large_changes=True)).converge()
    assert cloud.per_url() == Counter(URLS)


def test_observe_with_quota_check_warns_what_up_will_do_and_calls_quota_only_when_needed():
    clock = FakeClock()
    cloud = flaky(clock, available=8, daily=100)
    sync = make_with(cloud, clock, Policy())
    seen = sync.observe(check_quota=True)
    assert seen.quota.needed == 10 and seen.quota.submit == 0
    assert sync.log.getvalue() == ("warning: set web on fake: 10 targets need a prefetch but only 8 of today's quota "
                                   "are left: up will submit nothing (add 'allowPartial: true' to the set to submit "
                                   "the 8 that fit)\n")
    assert cloud.submits == []
    partial = make_with(cloud, clock, Policy(allow_partial=True))
    assert partial.observe(check_quota=True).quota.submit == 8
    assert "up will submit 8 and leave 2 for after the quota resets (allowPartial)" in partial.log.getvalue()

    cloud.available = 100
    make_with(cloud, clock, Policy()).converge()
    calls = cloud.quota_calls
    assert make_with(cloud, clock, Policy()).observe(check_quota=True).quota is None  # all warm: no quota call
    assert cloud.quota_calls == calls
    assert make(cloud, clock).observe().quota is None  # the drift report's observe never asks


def test_observe_survives_a_failing_quota_call():
    clock = FakeClock()
    cloud = flaky(clock)

    def broken():
        raise CloudError("fake", "Quota", "InternalError", "boom", kind="transient")

    cloud.quota = broken
    sync = make_with(cloud, clock, Policy())
    assert sync.observe(check_quota=True).quota is None
    assert "could not read the prefetch quota" in sync.log.getvalue()


def test_long_waits_print_progress_lines_with_counts_and_time_left():
    clock = FakeClock()
    cloud = FakeCloud(clock, finish_after=100)
    cloud.outcomes = {URLS[0]: TargetState.FAILED}
    sync = make(cloud, clock, wait="5m")
    sync.converge()
    lines = [line for line in sync.log.getvalue().splitlines() if " submitted: " in line]
    assert len(lines) >= 2, "a wait of 100 s reports progress at least every 30 s"
    assert lines[0].startswith("set web on fake: 10 submitted: 0 warm, 0 failed, 10 running; ")
    lefts = [int(line.rsplit("; ", 1)[1].split("s left")[0]) for line in lines]
    assert lefts == sorted(lefts, reverse=True) and lefts[0] < 300
    assert all(line.count(",") == 2 for line in lines)


def test_progress_lines_count_finished_targets_as_warm_or_failed():
    clock = FakeClock()
    cloud = FakeCloud(clock, finish_after=50)
    cloud.outcomes = {URLS[0]: TargetState.FAILED}
    sync = make(cloud, clock, wait="5m")
    sync.converge()
    lines = [line for line in sync.log.getvalue().splitlines() if " submitted: " in line]
    assert any(" 9 warm, 1 failed, 0 running; " in line for line in lines), lines


# -- the shared history read (history.py): one read per scope for every set and shard on it -------------
class SharedCloud(FlakyCloud):
    """A fake cloud whose history every adapter of the same zone shares."""

    def history_key(self):
        return ("fake", "zone-a")


def shared(cloud, clock, targets, cache, wait="1m"):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", wait)
    return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), history=cache)


def test_two_sets_on_one_scope_refresh_with_one_history_read():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock), HistoryCache()
    for url in URLS:
        cloud.add_row(url, TargetState.WARM, clock() - timedelta(hours=1))
    first = shared(cloud, clock, URLS[:5], cache).observe()
    clock.now += timedelta(seconds=10)
    second = shared(cloud, clock, URLS[5:], cache).observe()
    assert len(cloud.history_calls) == 1
    assert first.plan.in_sync and second.plan.in_sync
    assert list(first.plan.statuses) == list(URLS[:5]) and list(second.plan.statuses) == list(URLS[5:])


def test_a_refresh_after_the_freshness_of_a_shared_read_reads_again():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock), HistoryCache()
    shared(cloud, clock, URLS, cache).observe()
    clock.now += timedelta(seconds=31)
    shared(cloud, clock, URLS, cache).observe()
    assert len(cloud.history_calls) == 2


def test_a_submit_of_one_set_is_seen_by_the_next_set_with_the_same_url():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock, finish_after=600), HistoryCache()
    shared(cloud, clock, URLS[:1], cache).observe()  # the shared read, before anything was submitted
    shared(cloud, clock, URLS[:1], cache, wait="0s").converge()
    seen = shared(cloud, clock, URLS[:2], cache).observe().plan.statuses  # same URL, another set
    assert seen[URLS[0]].state is TargetState.RUNNING and seen[URLS[0]].task_id == "task-1"
    assert len(cloud.submits) == 1


def test_a_submit_for_other_urls_leaves_the_shared_read_valid_for_a_shard_without_them():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock), HistoryCache()
    shared(cloud, clock, URLS, cache).observe()
    reads = len(cloud.history_calls)
    shared(cloud, clock, URLS[:5], cache, wait="0s").converge()  # the first read is shared; submits 5
    assert len(cloud.history_calls) == reads
    shared(cloud, clock, URLS[5:], cache, wait="0s").converge()  # the other shard: its URLs were not submitted
    assert len(cloud.history_calls) == reads
    assert [len(b) for b in cloud.submits] == [5, 5]


def test_polls_sharing_the_cache_still_see_the_tasks_finish():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock, finish_after=20), HistoryCache()
    result = shared(cloud, clock, URLS, cache).converge()
    assert result.plan.in_sync
    alone = FakeCloud(FakeClock(), finish_after=20)
    make(alone, alone.clock).converge()
    assert len(cloud.history_calls) == len(alone.history_calls)  # every poll read anew, as without the cache


def test_confirmation_after_an_ambiguous_submit_never_uses_the_shared_read():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock, batch=4), HistoryCache()
    cloud.failures = {2: ("transient", False)}
    shared(cloud, clock, URLS, cache).converge()
    assert cloud.per_url() == Counter(URLS[:4])  # batch 2 unconfirmed, nothing more sent
    # [start - 5 min, now + 5 min]: only confirmation reads look past now
    confirm_reads = [c for c in cloud.history_calls if timedelta(minutes=10) <= c[1] - c[0] < timedelta(hours=1)]
    assert len(confirm_reads) == len(CONFIRM_DELAYS)  # each confirmation read went to the cloud


def test_a_failing_shared_read_fails_the_refresh_and_is_not_kept():
    clock = FakeClock()
    cloud, cache = SharedCloud(clock), HistoryCache()
    cloud.history_fails = 1
    with pytest.raises(CloudError, match="history unavailable"):
        shared(cloud, clock, URLS, cache).observe()
    assert shared(cloud, clock, URLS, cache).observe().plan.statuses[URLS[0]].state is TargetState.MISSING


# -- the quota ledger (quota.py): shards of one set spend one quota reading ----------------------------------
def shard_sync(cloud, clock, targets, ledger, policy=Policy(max_quota_share=1.0)):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", "0s")
    return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), policy=policy,
                           history=HistoryCache(), quota=ledger)


def test_shards_of_a_set_read_the_quota_once_and_never_submit_beyond_it():
    clock = FakeClock()
    cloud, ledger = SharedCloud(clock, available=6), QuotaLedger()
    shard_sync(cloud, clock, URLS[:5], ledger).converge()
    with pytest.raises(SubmitError, match="only 1 of today's"):
        shard_sync(cloud, clock, URLS[5:], ledger).converge()
    assert cloud.quota_calls == 1
    assert [len(batch) for batch in cloud.submits] == [5]  # the second shard sent nothing the quota could not take


def test_the_quota_share_rail_counts_the_sets_other_shards():
    clock = FakeClock()
    cloud, ledger = SharedCloud(clock, available=10_000), QuotaLedger()
    policy = Policy(max_quota_share=0.0008)  # 8 of the fake's daily 10,000
    shard_sync(cloud, clock, URLS[:5], ledger, policy).converge()
    with pytest.raises(SubmitError, match="would submit 10 targets \\(with the 5 its other shards submitted"):
        shard_sync(cloud, clock, URLS[5:], ledger, policy).converge()
    assert [len(batch) for batch in cloud.submits] == [5]


# -- shards on one scope converging at different moments share their reads both ways -------------------------
class TurnClock(FakeClock):
    """Fake time for several converges in threads that run one at a time: a thread that sleeps
    hands the turn to the one that wakes first, and the clock jumps to its wake time. As if they
    ran at once, deterministic, and without real waiting."""

    def __init__(self):
        super().__init__()
        self._cond = threading.Condition()
        self._wakes: dict[int, tuple[datetime, int]] = {}  # job -> (wake time, order of sleeping)
        self._turn: Optional[int] = None
        self._order = 0
        self._local = threading.local()

    def run(self, jobs: Sequence[tuple[float, Callable[[], Any]]]) -> list[Any]:
        """Run each (start delay in seconds, job); returns each job's result or exception."""
        results: list[Any] = [None] * len(jobs)
        for n, (delay, _) in enumerate(jobs):
            self._wakes[n] = (self.now + timedelta(seconds=delay), n)
        self._order = len(jobs)

        def body(n: int, job: Callable[[], Any]) -> None:
            self._local.job = n
            with self._cond:
                assert self._cond.wait_for(lambda: self._turn == n, 10)
            try:
                results[n] = job()
            except Exception as exc:  # noqa: BLE001 - the test looks at it
                results[n] = exc
            finally:
                with self._cond:
                    self._hand_over()

        threads = [threading.Thread(target=body, args=(n, job)) for n, (_, job) in enumerate(jobs)]
        for thread in threads:
            thread.start()
        with self._cond:
            self._hand_over()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
        return results

    def sleep(self, seconds: float) -> None:
        job = self._local.job
        with self._cond:
            self._order += 1
            self._wakes[job] = (self.now + timedelta(seconds=seconds), self._order)
            self._hand_over()
            assert self._cond.wait_for(lambda: self._turn == job, 10)

    def _hand_over(self) -> None:
        """The turn to the job that wakes first (the lock is held)."""
        self._turn = None
        if self._wakes:
            job = min(self._wakes, key=self._wakes.__getitem__)
            self.now = max(self.now, self._wakes.pop(job)[0])
            self._turn = job
        self._cond.notify_all()


class SlowSubmits(SharedCloud):
    """Each submit takes 0.1 s, during which the other shards go on (their submits, their polls)."""

    def submit(self, urls):
        self.clock.sleep(0.1)
        return super().submit(urls)


def test_shards_that_started_at_different_moments_share_their_polls_both_ways():
    clock = TurnClock()
    cloud, cache, ledger = SlowSubmits(clock, batch=1, finish_after=2), HistoryCache(), QuotaLedger()

    def shard(targets):
        inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", "1m")
        sync = ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), history=cache,
                               quota=ledger)
        # Submitting at the same time, as shards under different limits do (resource/submit_order.py lines
        # up shards under one limit; waiting in it on real time would stop this clock's turns).
        sync.prefetch.submitter.order = SubmitOrder()
        return sync.converge

    # Shard A starts first but submits 8 targets, one a call (done at 0.8 s); shard B starts 0.05 s later and is
    # done submitting at 0.25 s, so B polls first (at 1.25 s), over a window that starts after A's (A started
    # earlier). Registered as polling, A's window is covered by B's read, and B's by A's later on.
    first, second = clock.run([(0.0, shard(URLS[:8])), (0.05, shard(URLS[8:]))])
    assert first.plan.in_sync and second.plan.in_sync  # each saw its tasks finish
    assert cloud.per_url() == Counter(URLS)  # each target submitted once
    start = FakeClock().now
    # One first read for both (B's window lies in A's), then one read per poll round: B's at 1.25 s serves A's
    # poll at 1.8 s (both still running), the one at 3.25 s serves A at 3.8 s (all finished).
    assert cloud.history_calls[1:] == [(start - timedelta(minutes=5), start + timedelta(seconds=1.25)),
                                       (start - timedelta(minutes=5), start + timedelta(seconds=3.25))]
    assert len(cloud.history_calls) == 3


def test_refreshes_whose_clocks_were_read_seconds_apart_share_one_read_both_ways():
    cloud, cache = SharedCloud(FakeClock()), HistoryCache()
    base = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    for url in URLS[:5] + URLS[6:]:
        cloud.add_row(url, TargetState.WARM, base - timedelta(hours=1))
    # In the floored part of the shared window, just before B's own window starts (freshness 24h + the 1-day
    # margin, from B's clock): a read of B's own window would not show it, so B must not see it either.
    cloud.add_row(URLS[5], TargetState.WARM, base + timedelta(seconds=1) - timedelta(hours=48), "old")

    def set_at(targets, seconds):
        clock = FakeClock(base + timedelta(seconds=seconds))
        inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", "1m")
        return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), history=cache)

    a = set_at(URLS[:5], 7).observe()  # A read its clock later than B, but reads first
    b = set_at(URLS[5:], 3).observe()
    assert cloud.history_calls == [(base - timedelta(hours=48), base + timedelta(seconds=7))]  # one read, floored
    assert a.plan.in_sync
    assert b.plan.statuses[URLS[5]].state is TargetState.MISSING  # not EXPIRED: the old row is not B's
    assert {s.state for u, s in b.plan.statuses.items() if u != URLS[5]} == {TargetState.WARM}


# -- polls narrowed to our own start on the cloud's clock (issue #6: a later shard reads its own rows) ----
class SkewedCloud(SharedCloud):
    """A shared fake cloud whose clock runs ``behind`` seconds behind ours when it stamps new tasks."""

    behind = 0.0

    def submit(self, urls):
        result = super().submit(urls)
        stamped = self.clock() - timedelta(seconds=self.behind)
        self.rows = [(u, t, stamped if t == result.task_id else c, o) for u, t, c, o in self.rows]
        return result


def poll_windows(cloud, after):
    """The ``since`` of every history read made after call number ``after`` that looked back less than a day."""
    return [since for since, until in cloud.history_calls[after:] if until - since < timedelta(days=1)]


def test_narrow_window_is_the_wide_one_until_the_clock_is_known_then_our_start_on_the_clouds_clock():
    start = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    wide = start - CLOCK_TOLERANCE
    assert narrow_window(start, wide, None) == wide
    assert narrow_window(start, wide, timedelta(seconds=-1)) == start - timedelta(seconds=1) - CLOCK_MARGIN
    # A cloud ahead of us: its rows are stamped after our start anyway; a window past our "now" would be empty.
    assert narrow_window(start, wide, timedelta(seconds=30)) == start - CLOCK_MARGIN
    # A cloud further behind than the tolerance (its signatures bound no clock): from our start on its clock.
    assert narrow_window(start, wide, timedelta(hours=-1)) == start - timedelta(hours=1) - CLOCK_MARGIN


def test_the_clock_cache_keeps_the_least_evidence_per_scope():
    cache, clock = HistoryCache(), FakeClock()
    scoped, unscoped = SharedCloud(clock), FakeCloud(clock)
    assert cache.clock_floor(scoped) is None
    cache.learn_clock(scoped, timedelta(seconds=2))
    cache.learn_clock(scoped, timedelta(seconds=-1))
    cache.learn_clock(scoped, timedelta(seconds=5))
    assert cache.clock_floor(scoped) == timedelta(seconds=-1)
    cache.learn_clock(unscoped, timedelta(0))  # no scope key: shared with no one, kept for no one
    assert cache.clock_floor(unscoped) is None
    cache.clear()
    assert cache.clock_floor(scoped) is None


def test_a_later_up_polls_from_its_own_start_not_five_minutes_before_it():
    clock = FakeClock()
    cloud, cache = SkewedCloud(clock, finish_after=3), HistoryCache()
    first_calls = len(cloud.history_calls)
    assert shared(cloud, clock, URLS[:5], cache).converge().plan.in_sync
    first_start = FakeClock().now
    assert poll_windows(cloud, first_calls) and set(poll_windows(cloud, first_calls)) == {first_start - CLOCK_TOLERANCE}
    assert cache.clock_floor(cloud) == timedelta(0)  # the fake stamps a task when its submit returns

    clock.now += timedelta(seconds=40)
    second_start, calls = clock(), len(cloud.history_calls)
    second = shared(cloud, clock, URLS[5:], cache).converge()
    assert second.plan.in_sync and [len(b) for b in cloud.submits] == [5, 5]
    assert set(poll_windows(cloud, calls)) == {second_start - CLOCK_MARGIN}  # the first up's rows not read again


def test_a_narrow_poll_that_shows_a_pending_target_no_row_goes_back_to_the_wide_window():
    clock = FakeClock()
    cloud, cache = SkewedCloud(clock, finish_after=3), HistoryCache()
    shared(cloud, clock, URLS[:5], cache).converge()
    assert cache.clock_floor(cloud) == timedelta(0)
    cloud.behind = 60.0  # the cloud's clock was set back a minute: the learnt offset is now wrong
    clock.now += timedelta(seconds=40)
    second_start, calls = clock(), len(cloud.history_calls)
    second = shared(cloud, clock, URLS[5:], cache).converge()
    windows = poll_windows(cloud, calls)
    assert windows[0] == second_start - CLOCK_MARGIN  # narrow: the rows, stamped a minute back, are not in it
    assert set(windows[1:]) == {second_start - CLOCK_TOLERANCE} and windows[1:]  # then wide, and found there
    assert second.plan.in_sync and [len(b) for b in cloud.submits] == [5, 5]  # nothing submitted twice
    assert cache.clock_floor(cloud) == timedelta(seconds=-60)  # and the clock is learnt again



# -- a cloud clock far from ours, which no signature bounds (issue #17): learnt from our own tasks, by id ------
class OffsetCloud(SharedCloud):
    """A shared fake cloud whose clock is ``offset`` from ours: it stamps and filters on its own clock, and
    reads tasks by id (``task_rows``) whatever their time."""

    offset = timedelta(0)

    def history(self, since, until):
        self.reads.append((since, until))
        for row in super().history(since - self.offset, until - self.offset):
            yield self._skewed(row)

    def task_rows(self, task_ids):
        self.by_id.append(list(task_ids))
        rows = [row for row in super().history(datetime.min.replace(tzinfo=timezone.utc), self.clock())
                if row.task_id in task_ids]
        return [self._skewed(row) for row in rows]

    def _skewed(self, row):
        return HistoryRow(row.url, row.task_id, row.state, row.created + self.offset,
                          row.updated and row.updated + self.offset, row.reason, row.raw_status)


def offset_cloud(clock, offset, **kwargs):
    cloud = OffsetCloud(clock, **kwargs)
    cloud.offset, cloud.reads, cloud.by_id = offset, [], []
    return cloud


def test_a_cloud_clock_half_an_hour_behind_is_learnt_from_our_first_task_and_polls_see_our_rows():
    clock = FakeClock()
    cloud, cache = offset_cloud(clock, -timedelta(minutes=30), finish_after=3), HistoryCache()
    result = shared(cloud, clock, URLS, cache).converge()
    assert result.plan.in_sync  # warm in this up: the polls looked where the cloud stamps our tasks
    assert cloud.by_id == [["task-1"]]  # one read by id, right after the first submit
    assert cache.clock_floor(cloud) == -timedelta(minutes=30)
    polls = [since for since, until in cloud.reads[1:]]
    assert polls and set(polls) == {clock.start - timedelta(minutes=30) - CLOCK_MARGIN}


def test_a_cloud_clock_behind_ours_does_not_hide_a_later_batch_executed_despite_an_error():
    clock = FakeClock()
    cloud, cache = offset_cloud(clock, -timedelta(minutes=30), batch=4, finish_after=3), HistoryCache()
    cloud.failures = {2: ("transient", True)}
    result = shared(cloud, clock, URLS, cache).converge()
    assert cloud.per_url() == Counter(URLS) and result.unconfirmed == [] and result.plan.in_sync


# -- purge, then prefetch -------------------------------------------------------------------------
def make_release(cloud, clock, revision, wait="1m", policy=Policy(), targets=URLS):
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", wait, revision=revision)
    return ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), policy=policy)


def converged(sync, prior=None):
    result = sync.converge(prior)
    return result, outputs_of(sync, result)


RELEASE = Policy(max_purge_share=1.0)  # a release that changes every target: consented in the set


def test_a_steady_set_never_reads_the_purge_history():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    assert make_release(cloud, clock, "r1").observe(outputs).plan.in_sync
    assert cloud.purger().history_calls == [] and cloud.purger().submits == []


def test_a_revision_bump_purges_every_target_then_prefetches_each_once_its_purge_is_done():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    seen = make_release(cloud, clock, "r2").observe(outputs).plan
    assert set(seen.to_purge) == set(URLS) and seen.to_submit == ()
    sync = make_release(cloud, clock, "r2", policy=RELEASE)
    result, after = converged(sync, outputs)
    purger = cloud.purger()
    assert [u for batch in purger.submits for u in batch] == list(URLS)
    assert [u for batch in cloud.submits[1:] for u in batch] == list(URLS)  # each prefetched once, after
    first_prefetch = min(row[2] for row in cloud.rows if row[1] != "task-1")
    assert all(created < first_prefetch for _, _, created, _ in purger.rows)
    assert result.plan.in_sync
    assert {s.get("kind") for s in after["submitted"]} == {None, "purge"}
    assert {r[4] for r in after["observed"].values()} == {"@r2"}
    third, _ = converged(make_release(cloud, clock, "r2", policy=RELEASE), after)
    assert third.plan.in_sync and len(purger.submits) == 1 and len(cloud.submits) == 2


def test_a_failed_purge_is_drift_its_prefetch_waits_and_the_next_up_retries_only_the_purge():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    cloud.purger().outcomes[URLS[3]] = TargetState.FAILED
    result, after = converged(make_release(cloud, clock, "r2", policy=RELEASE), outputs)
    assert result.plan.statuses[URLS[3]].state is TargetState.PURGE_FAILED
    assert URLS[3] not in [u for batch in cloud.submits[1:] for u in batch]
    assert after["drifted"][0]["status"].startswith("purge failed")
    del cloud.purger().outcomes[URLS[3]]
    clock.now += timedelta(minutes=5)
    again, _ = converged(make_release(cloud, clock, "r2", policy=RELEASE), after)
    assert cloud.purger().submits[-1] == [URLS[3]] and cloud.submits[-1] == [URLS[3]]
    assert again.plan.in_sync


def test_when_the_wait_ends_during_the_purge_the_next_up_prefetches_without_purging_again():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    result, after = converged(make_release(cloud, clock, "r2", wait="0s", policy=RELEASE), outputs)
    assert {s.state for s in result.plan.statuses.values()} == {TargetState.PURGING}
    assert len(cloud.submits) == 1  # no prefetch before its purge is done
    clock.now += timedelta(minutes=5)
    seen = make_release(cloud, clock, "r2").observe(after).plan
    assert {s.state for s in seen.statuses.values()} == {TargetState.PURGED} and seen.to_purge == ()
    final, _ = converged(make_release(cloud, clock, "r2", policy=RELEASE), after)
    assert len(cloud.purger().submits) == 1 and [u for b in cloud.submits[1:] for u in b] == list(URLS)
    assert final.plan.in_sync


def test_purges_an_earlier_up_left_running_are_waited_for_then_prefetched_without_purging_again():
    """The earlier up's host died (or its wait ended) right after the purge submit: the next up, started
    while those purges still run, finds them in the purge history, waits, then prefetches."""
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    cloud.purger().finish_after = 60.0
    converged(make_release(cloud, clock, "r2", wait="0s", policy=RELEASE), outputs)
    clock.now += timedelta(seconds=20)  # the purges still run
    sync = make_release(cloud, clock, "r2", policy=RELEASE)
    result, _ = converged(sync, outputs)  # the state the dead host never saved: the old outputs
    assert "10 of 10 targets wait for a purge an earlier up submitted, then a prefetch" in sync.log.getvalue()
    assert len(cloud.purger().submits) == 1
    assert [u for b in cloud.submits[1:] for u in b] == list(URLS)
    assert result.plan.in_sync


class SlowPurges(FakeCloud):
    """Purge submits that take 20 s each (UCloud's pace is one per 10 s): they outlast a short wait."""

    def submit(self, urls):
        self.clock.now += timedelta(seconds=20)
        return super().submit(urls)


def test_when_the_purge_submits_outlast_the_wait_one_look_still_prefetches_what_they_cleared():
    clock = FakeClock()
    cloud = FakeCloud(clock, batch=5)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    purger = cloud._purger = SlowPurges(clock, batch=5, kind=TaskKind.PURGE, finish_after=10.0)
    clock.now += timedelta(minutes=5)
    sync = make_release(cloud, clock, "r2", wait="30s", policy=RELEASE)
    result, after = converged(sync, outputs)
    # The plan's read, then one look after the wait was over (none before: the submits used it up).
    assert len(purger.submits) == 2 and len(purger.history_calls) == 2
    # The first purge was done by then (10 s after its submit), its targets are prefetched in this up; the
    # second was still running: its targets wait for the next up, said so.
    assert [u for b in cloud.submits[2:] for u in b] == purger.submits[0]  # r1 took two submits
    states = {u: s.state for u, s in result.plan.statuses.items()}
    assert {states[u] for u in purger.submits[0]} == {TargetState.RUNNING}  # looked at once too, not warm yet
    assert {states[u] for u in purger.submits[1]} == {TargetState.PURGING}
    assert len(after["drifted"]) == len(URLS)


def test_a_purge_confirmed_done_from_history_after_an_ambiguous_submit_is_followed_by_its_prefetch():
    clock = FakeClock()
    cloud = FakeCloud(clock, batch=100)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    purger = cloud._purger = FlakyCloud(clock, batch=100, kind=TaskKind.PURGE, finish_after=0.0)
    purger.failures = {1: ("transient", True)}  # the only purge submit: done by the cloud, its answer lost
    clock.now += timedelta(minutes=5)
    result, _ = converged(make_release(cloud, clock, "r2", policy=RELEASE), outputs)
    assert purger.per_url() == Counter(URLS) and purger.calls == 1
    assert [u for b in cloud.submits[1:] for u in b] == list(URLS)
    assert result.plan.in_sync


def test_purging_more_than_the_set_allows_is_refused_before_anything_is_sent():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    sync = make_release(cloud, clock, "r2")
    sync.observe(outputs, check_quota=True)
    assert "warning: up will refuse to purge" in sync.log.getvalue()
    with pytest.raises(SubmitError, match=r"purge 10 of the set's 10 targets .*maxPurgeShare: 1"):
        make_release(cloud, clock, "r2").converge(outputs)
    assert cloud.purger().submits == [] and len(cloud.submits) == 1
    consent = Policy(allow_large_changes=True)
    assert make_release(cloud, clock, "r2", policy=consent).converge(outputs).plan.in_sync


def test_the_purge_quota_share_is_a_rail_of_its_own():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    v1 = {u: ContentVersion("aaaaaaaaaaaa", 10) for u in URLS}
    first = make_origin(cloud, clock, v1)
    result = first.converge()
    outputs = build_outputs(first.inputs, result.plan, verified_at=clock(), submitted=result.submitted)
    cloud.purger().quota = lambda: Quota(100, 8, 8)  # a small daily purge quota
    clock.now += timedelta(minutes=5)
    v2 = {**v1, **{u: ContentVersion("bbbbbbbbbbbb", 11) for u in URLS[:5]}}  # half the set: the share rail holds
    with pytest.raises(SubmitError, match=r"purge 5 targets, 62% of the daily purge quota of 8.*maxPurgeShare: 0.63"):
        make_origin(cloud, clock, v2).converge(outputs)
    assert cloud.purger().submits == [] and len(cloud.submits) == 1
    assert make_origin(cloud, clock, v2, policy=Policy(max_purge_share=0.7)).converge(outputs).plan.in_sync
    assert cloud.purger().submits == [list(URLS[:5])]


def test_pacing_caps_the_batch_and_pauses_between_submits():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    sleeps: list[float] = []
    sync = make_release(cloud, clock, None, policy=Policy(pace_batch_size=4, pace_pause=7.0))
    sync.prefetch.submitter.sleep = lambda s: (sleeps.append(s), clock.sleep(s))
    sync.converge()
    assert [len(b) for b in cloud.submits] == [4, 4, 2] and sleeps.count(7.0) == 2


@pytest.mark.parametrize("executed", [True, False])
def test_an_ambiguous_purge_submit_is_confirmed_from_the_purge_history_or_held_until_its_life_ends(executed):
    clock = FakeClock()
    cloud = FakeCloud(clock, batch=4)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    purger = cloud._purger = FlakyCloud(clock, batch=4, kind=TaskKind.PURGE)
    purger.failures = {2: ("transient", executed)}
    clock.now += timedelta(minutes=5)
    sync = make_release(cloud, clock, "r2", policy=RELEASE)
    result, after = converged(sync, outputs)
    assert "submitting purge batch 2 of 3 on fake may or may not have been accepted" in sync.log.getvalue()
    if not executed:  # unconfirmed: held, and nothing more sent (neither purges nor prefetches)
        assert purger.calls == 2 and len(cloud.submits) == 3
        assert [a.kind for a in result.unconfirmed] == [TaskKind.PURGE]
        statuses = result.plan.statuses
        assert {u for u in URLS if (statuses[u].reason or "").startswith("purge unconfirmed")} == set(URLS[4:8])
        clock.now = result.unconfirmed[0].until  # the lost request's life is over: the next up decides
        result, _ = converged(make_release(cloud, clock, "r2", policy=RELEASE), after)
    assert purger.per_url() == Counter(URLS)  # every target purged exactly once
    assert purger.calls == (3 if executed else 4)
    assert Counter(u for batch in cloud.submits[3:] for u in batch) == Counter(URLS)  # after the first up's 3
    assert result.plan.in_sync


def test_a_prefetch_after_a_purge_whose_answer_was_lost_keeps_the_old_version_on_record_until_it_is_sent():
    clock = FakeClock()
    cloud = flaky(clock, batch=10)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    cloud.failures = {2: ("transient", False)}  # the prefetch that follows the purge: its answer is lost
    clock.now += timedelta(minutes=5)
    first, after = converged(make_release(cloud, clock, "r2", policy=RELEASE), outputs)
    assert len(cloud.purger().submits) == 1 and cloud.per_url() == Counter(URLS)
    assert {r[1] for r in after["observed"].values()} == {"task-1"}  # r1's prefetch, still on record
    clock.now = first.unconfirmed[0].until
    result, _ = converged(make_release(cloud, clock, "r2", policy=RELEASE), after)
    assert cloud.per_url() == Counter(URLS * 2) and len(cloud.purger().submits) == 1  # prefetched, not purged again
    assert result.plan.in_sync

def test_on_change_prefetch_prefetches_changed_targets_without_purging():
    clock = FakeClock()
    cloud = FakeCloud(clock)
    _, outputs = converged(make_release(cloud, clock, "r1"))
    clock.now += timedelta(minutes=5)
    result, _ = converged(make_release(cloud, clock, "r2", policy=Policy(on_change=OnChange.PREFETCH)), outputs)
    assert cloud.purger().submits == [] and cloud.purger().history_calls == []
    assert cloud.submits[1] == list(URLS) and result.plan.in_sync


def test_a_progress_sink_hears_each_batch_and_every_poll_instead_of_the_plain_lines():
    clock = FakeClock()
    cloud = FakeCloud(clock, finish_after=100)
    cloud.outcomes = {URLS[0]: TargetState.FAILED}
    heard = []
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, URLS, "24h", "5m")
    sync = ShardSync(cloud, inputs, clock=clock, sleep=clock.sleep, log=io.StringIO(), on_progress=heard.append)
    sync.converge()
    sending, waiting = [p for p in heard if not p.waiting], [p for p in heard if p.waiting]
    assert [(p.submitted, p.total) for p in sending] == [(10, 10)]  # one batch of the ten
    assert len(waiting) >= 3 and all(p.total == 10 == p.done + p.failed + p.running for p in waiting)
    assert (waiting[0].running, waiting[-1].done, waiting[-1].failed, waiting[-1].running) == (10, 9, 1, 0)
    assert " submitted: " not in sync.log.getvalue()  # the display shows it; no plain line besides


def test_a_steady_refresh_reconciles_once_and_plans_what_the_full_plan_would(monkeypatch):
    # A set that purges on change plans once without purge rows to find changed targets; when none
    # changed, that plan is the plan (a second reconcile of 100,000 targets cost ~0.1 s per refresh).
    import components.resource.converge as converge_module
    from components.plan.reconcile import make_plan
    from components.plan.unconfirmed import hold

    clock = FakeClock()
    cloud = flaky(clock, batch=4)
    cloud.failures = {2: ("transient", False)}  # an unconfirmed submit: the refresh holds its targets
    sync = make(cloud, clock)
    outputs = outputs_of(sync, sync.converge())
    calls = []
    monkeypatch.setattr(converge_module, "make_plan", lambda *a, **kw: calls.append(kw) or make_plan(*a, **kw))
    refresh = make(cloud, clock)
    seen = refresh.observe(outputs)
    assert len(calls) == 1 and calls[0]["purges"] == []
    observations, _, _ = refresh._history_with_prior(clock(), outputs)
    plain = hold(make_plan(refresh.inputs.targets, observations, now=clock(), freshness=refresh.freshness, purges=[]),
                 seen.unconfirmed)
    assert seen.plan == plain and held(seen) == set(URLS[4:8])
