from datetime import datetime, timedelta, timezone

from components.model.status import HistoryRow, TargetState, TargetStatus, TaskKind
from components.plan.reconcile import Plan, make_plan
from components.plan.unconfirmed import Attempt, hold, prior_attempts, settle

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
A, B, C = (f"https://cdn.example.com/{x}.js" for x in "abc")
SENT = Attempt(TaskKind.PREFETCH, NOW, NOW + timedelta(minutes=8), (A, B), frozenset({"old"}), "Submit failed: 502")


def row(url, task, state=TargetState.WARM, minutes_ago=1):
    created = NOW - timedelta(minutes=minutes_ago)
    return HistoryRow(url, task, state, created, created)


def test_an_attempt_reads_back_as_written_and_an_unreadable_entry_is_no_evidence():
    entry = SENT.to_dict()
    assert entry == {"kind": "prefetch", "at": "2026-11-23T12:00:00Z", "until": "2026-11-23T12:08:00Z",
                     "targets": [A, B], "known": ["old"], "error": "Submit failed: 502"}
    assert Attempt.from_dict(entry) == SENT
    broken = [{"kind": "prefetch"}, {**entry, "targets": [A, 5]}, {**entry, "kind": "warm-up"}, "x", None]
    assert prior_attempts({"unconfirmed": [*broken, entry]}) == [SENT]
    assert prior_attempts({"unconfirmed": "junk"}) == [] and prior_attempts(None) == []


def test_a_task_not_known_when_the_submit_was_sent_settles_its_target_the_rest_waits_for_the_requests_life():
    rows = [row(A, "old", minutes_ago=60), row(A, "late"), row(B, "old", minutes_ago=60)]
    settled = settle([SENT], {TaskKind.PREFETCH: rows}, NOW + timedelta(minutes=1), [A, B])
    assert settled.found == {TaskKind.PREFETCH: [row(A, "late")]}
    assert [a.urls for a in settled.pending] == [(B,)] and settled.expired == []
    after_life = settle([SENT], {TaskKind.PREFETCH: rows}, SENT.until, [A, B])
    assert after_life.pending == [] and [a.urls for a in after_life.expired] == [(B,)]


def test_only_rows_of_the_attempts_kind_count_and_targets_no_longer_declared_are_dropped():
    purge = Attempt(TaskKind.PURGE, NOW, NOW + timedelta(minutes=8), (A, B), frozenset())
    settled = settle([purge], {TaskKind.PREFETCH: [row(A, "prefetch")], TaskKind.PURGE: None}, NOW, [A])
    assert settled.found == {} and [a.urls for a in settled.pending] == [(A,)]


def test_held_targets_are_unknown_neither_submitted_nor_purged_and_keep_the_task_on_record():
    plan = make_plan([A, B, C], [row(A, "old", TargetState.FAILED), row(C, "running", TargetState.RUNNING)],
                     now=NOW, freshness=timedelta(hours=24))
    held = hold(plan, [SENT])
    assert held.to_submit == () and list(held.statuses) == [A, B, C]
    status = held.statuses[A]
    assert (status.state, status.task_id, status.at) == (TargetState.UNKNOWN, "old", plan.statuses[A].at)
    assert status.describe().startswith("unknown: submit unconfirmed: the answer to the submit at "
                                        "2026-11-23T12:00:00Z was lost (Submit failed: 502); not sent again before "
                                        "a read of history after 2026-11-23T12:08:00Z")
    assert held.statuses[B].state is TargetState.UNKNOWN and held.statuses[B].task_id is None
    assert held.statuses[C] == plan.statuses[C]  # in flight: nothing to hold
    purged = TargetStatus(A, TargetState.PURGED, "purge-1", NOW, None, None, "@r2", "prefetch-1")
    kept = hold(Plan({A: purged}, (A,)), [SENT]).statuses[A]
    assert (kept.task_id, kept.content) == ("prefetch-1", "@r2")  # the prefetch the purge follows, and its version
