from dataclasses import replace
from datetime import datetime, timedelta, timezone

from components.model.status import (ContentVersion, HistoryRow, TargetState, TargetStatus, options_token, short_etag,
                                     split_version, version_token)
from components.plan.reconcile import OTHER_OPTIONS, assess, latest_by_url, make_plan

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)
A, B, C, D = (f"https://cdn.example.com/{x}.js" for x in "abcd")


def obs(url, state, minutes_ago, task="t1", reason=None, finished_after=1):
    created = NOW - timedelta(minutes=minutes_ago)
    return HistoryRow(url, task, state, created, created + timedelta(minutes=finished_after), reason, state.value)


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
    result = make_plan([A, B, C, D, "https://cdn.example.com/new.js"], rows, now=NOW, freshness=DAY)
    assert result.to_submit == (C, "https://cdn.example.com/new.js")  # an unknown outcome is not a failure
    assert result.in_flight == [B]
    assert not result.in_sync
    assert {s.url for s in result.drifted} == {B, C, D, "https://cdn.example.com/new.js"}


def test_an_unknown_outcome_is_drift_never_submitted_on_a_guess_and_due_again_once_older_than_freshness():
    rows = [obs(A, TargetState.UNKNOWN, 23 * 60), obs(B, TargetState.UNKNOWN, 25 * 60)]
    result = make_plan([A, B], rows, now=NOW, freshness=DAY)
    assert result.statuses[A].state is TargetState.UNKNOWN and not result.in_sync
    assert result.statuses[B].state is TargetState.EXPIRED
    assert result.statuses[B].reason == "status unknown (unknown) and older than 24h"
    assert result.to_submit == (B,)


def test_all_warm_is_in_sync_with_nothing_to_submit():
    result = make_plan([A, B], [obs(A, TargetState.WARM, 5), obs(B, TargetState.WARM, 5)], now=NOW, freshness=DAY)
    assert result.in_sync and result.to_submit == ()


def test_describe_says_status_reason_task_and_time_in_plain_words():
    status = TargetStatus(A, TargetState.TIMED_OUT, "j1", NOW, "taskFailed: prefetch timed out")
    assert status.describe() == "timed out: taskFailed: prefetch timed out (task j1, 2026-11-23T12:00:00Z)"
    assert TargetStatus(A, TargetState.WARM, "j1", NOW).describe() == "warm"
    assert TargetStatus(A, TargetState.MISSING, reason="never submitted").describe() == "missing: never submitted"
    odd = TargetStatus(A, TargetState.UNKNOWN, "j2", NOW, None, "Paused")
    assert "'Paused'" in odd.describe()


# -- content drift (origin-derived targets) -------------------------------------------------------
OLD, NEW = ContentVersion("9b2cf535d3e1", 10), ContentVersion("4f1e2d3c4b5a", 12)


def with_etag(observation, etag):
    return replace(observation, content=etag)


def test_success_for_another_etag_is_stale_and_resubmitted():
    rows = [with_etag(obs(A, TargetState.WARM, 10), OLD.etag), with_etag(obs(B, TargetState.WARM, 10), NEW.etag)]
    result = make_plan([A, B, C], rows, now=NOW, freshness=DAY, content={A: NEW, B: NEW})
    assert result.statuses[A].state is TargetState.STALE
    assert result.statuses[A].reason == ("origin changed since last prefetch: etag 9b2cf535d3e1 was prefetched, "
                                         "the origin now has etag 4f1e2d3c4b5a")
    assert result.statuses[A].content == OLD.etag  # what the CDN holds, recorded as is
    assert result.statuses[B].state is TargetState.WARM and result.statuses[B].content == NEW.etag
    assert result.to_submit == (A, C)  # C is a URL target: unchanged rules
    assert TargetState.STALE.needs_submit and not TargetState.STALE.in_flight


def test_stale_takes_precedence_over_expired_and_never_over_in_flight_or_failed():
    rows = [with_etag(obs(A, TargetState.WARM, 25 * 60), OLD.etag),
            with_etag(obs(B, TargetState.RUNNING, 1), OLD.etag),
            with_etag(obs(C, TargetState.FAILED, 10), OLD.etag)]
    result = assess([A, B, C], rows, now=NOW, freshness=DAY, content={A: NEW, B: NEW, C: NEW})
    assert [result[u].state for u in (A, B, C)] == [TargetState.STALE, TargetState.RUNNING, TargetState.FAILED]


def test_a_task_without_an_etag_record_counts_for_the_current_content_and_records_it():
    # e.g. submitted by an `up` that died before saving state: the same rule as a URL target's success
    result = assess([A], [obs(A, TargetState.WARM, 10)], now=NOW, freshness=DAY, content={A: NEW})
    assert result[A].state is TargetState.WARM and result[A].content == NEW.etag


def test_a_changed_sitemap_lastmod_is_stale_like_a_changed_etag():
    before, after = ContentVersion.of_lastmod("2026-05-01"), ContentVersion.of_lastmod("2026-05-02")
    rows = [with_etag(obs(A, TargetState.WARM, 10), before.etag), with_etag(obs(B, TargetState.WARM, 10), before.etag)]
    plan = make_plan([A, B], rows, now=NOW, freshness=DAY, content={A: after, B: before}, purges=[])
    assert plan.to_purge == (A,) and plan.to_submit == () and plan.statuses[B].state is TargetState.WARM
    assert plan.statuses[A].reason == ("the sitemap's lastmod changed since last prefetch: it now says 2026-05-02; "
                                       "purge, then prefetch")


def test_stale_is_described_in_plain_words():
    status = TargetStatus(A, TargetState.STALE, "j1", NOW, "origin changed since last prefetch: etag a was "
                          "prefetched, the origin now has etag b", None, "a")
    assert status.describe() == ("stale: origin changed since last prefetch: etag a was prefetched, the origin now "
                                 "has etag b (task j1, 2026-11-23T12:00:00Z)")


def test_short_etag_keeps_12_hex_digits_of_a_hash_and_digests_anything_else():
    assert short_etag('"9B2CF535D3E1A8F3C0A6E4C2D1B0A9F8"') == "9b2cf535d3e1"
    assert short_etag('"d41d8cd98f00b204e9800998ecf8427e-3"') == "d41d8cd98f00"
    assert short_etag('W/"9b2cf535d3e1a8f3c0a6e4c2d1b0a9f8"') == "9b2cf535d3e1"
    # not a hash (e.g. <mtime>-<size>): its first 12 characters could be shared by two versions
    one, two = short_etag('"5f3a1b2c-1a2b"'), short_etag('"5f3a1b2c-1a2c"')
    assert one != two and len(one) == 12 and one.startswith("h")
    assert ContentVersion.of('"9b2cf535d3e1a8f3c0a6e4c2d1b0a9f8"', 2048).marker == "etag 9b2cf535d3e1, 2048 bytes"


def test_a_success_exactly_freshness_old_is_still_warm_and_a_microsecond_more_is_expired():
    finished = NOW - DAY
    on_edge = HistoryRow(A, "t1", TargetState.WARM, finished - timedelta(minutes=1), finished)
    past = HistoryRow(B, "t1", TargetState.WARM, finished - timedelta(minutes=1), finished - timedelta(microseconds=1))
    result = assess([A, B], [on_edge, past], now=NOW, freshness=DAY)
    assert result[A].state is TargetState.WARM
    assert result[B].state is TargetState.EXPIRED and result[B].reason == "last warmed more than 24h ago"


def test_one_pass_over_targets_and_rows_for_a_large_set():
    """Observations may be a one-shot iterator (the shared history hands each caller its own rows)."""
    urls = [f"https://cdn.example.com/{n}.js" for n in range(20_000)]
    rows = iter(obs(u, TargetState.WARM if n % 2 else TargetState.FAILED, 10) for n, u in enumerate(urls))
    result = make_plan(urls, rows, now=NOW, freshness=DAY)
    assert len(result.statuses) == 20_000 and len(result.to_submit) == 10_000
    assert list(result.statuses) == urls


# -- purge, then prefetch (sets that purge changed content) -------------------------------------------
def purge(url, state, minutes_ago, task="p1", reason=None):
    return obs(url, state, minutes_ago, task, reason)


def test_a_revision_change_makes_every_target_stale_and_due_for_purge_not_prefetch():
    rows = [with_etag(obs(A, TargetState.WARM, 60), "@r41"), with_etag(obs(B, TargetState.WARM, 60), "@r41")]
    plan = make_plan([A, B, C], rows, now=NOW, freshness=DAY, revision="r42", purges=[])
    assert plan.to_purge == (A, B) and plan.to_submit == (C,)  # C was never prefetched: simply prefetched
    assert plan.statuses[A].state is TargetState.STALE
    assert plan.statuses[A].reason == ("revision r41 was prefetched, the set now declares revision r42; "
                                       "purge, then prefetch")
    assert plan.statuses[A].content == "@r41"  # what the edge may still hold: recorded until the purge is done


def test_without_purges_a_changed_target_is_prefetched_again_as_before():
    rows = [with_etag(obs(A, TargetState.WARM, 60), "@r41")]
    plan = make_plan([A], rows, now=NOW, freshness=DAY, revision="r42")  # onChange: prefetch
    assert plan.to_submit == (A,) and plan.to_purge == ()


def test_the_state_of_a_purge_after_the_last_prefetch_decides_what_comes_next():
    rows = [with_etag(obs(u, TargetState.WARM, 60), OLD.etag) for u in (A, B, C, D)]
    purges = [purge(A, TargetState.RUNNING, 5), purge(B, TargetState.WARM, 5),
              purge(C, TargetState.FAILED, 5, reason="origin refused"), purge(D, TargetState.WARM, 90, task="p0")]
    plan = make_plan([A, B, C, D], rows, now=NOW, freshness=DAY, content=dict.fromkeys((A, B, C, D), NEW),
                     purges=purges)
    states = {u: s.state for u, s in plan.statuses.items()}
    assert states == {A: TargetState.PURGING, B: TargetState.PURGED, C: TargetState.PURGE_FAILED,
                      D: TargetState.STALE}  # D's purge is older than its last prefetch: no evidence
    assert plan.to_submit == (B,) and plan.to_purge == (C, D) and plan.in_flight == [A]
    assert plan.statuses[B].task_id == "p1" and plan.statuses[B].prefetch_task == "t1"
    assert plan.statuses[B].describe().startswith("purged, prefetch due (task p1")
    assert plan.statuses[C].describe().startswith("purge failed: origin refused (task p1")


def test_a_timed_out_or_unrecognised_purge_is_a_failed_purge_with_its_reason():
    rows = [with_etag(obs(u, TargetState.WARM, 60), "@r1") for u in (A, B)]
    purges = [purge(A, TargetState.TIMED_OUT, 5), replace(purge(B, TargetState.UNKNOWN, 5), raw_status="Paused")]
    plan = make_plan([A, B], rows, now=NOW, freshness=DAY, revision="r2", purges=purges)
    assert plan.statuses[A].reason == "purge timed out" and "'Paused'" in plan.statuses[B].reason
    assert plan.to_purge == (A, B)


def test_a_prefetch_after_the_purge_decides_again_and_matches_the_new_version():
    rows = [with_etag(obs(A, TargetState.WARM, 60), "@r1"), with_etag(obs(A, TargetState.FAILED, 2, "t2"), "@r2")]
    plan = make_plan([A], rows, now=NOW, freshness=DAY, revision="r2", purges=[purge(A, TargetState.WARM, 5)])
    assert plan.statuses[A].state is TargetState.FAILED and plan.to_submit == (A,) and plan.to_purge == ()


def test_no_revision_declared_or_no_record_of_one_changes_nothing():
    rows = [with_etag(obs(A, TargetState.WARM, 60), "@r1"), obs(B, TargetState.WARM, 60)]
    assert make_plan([A, B], rows, now=NOW, freshness=DAY, purges=[]).in_sync  # revision removed: no purge
    plan = make_plan([A, B], rows, now=NOW, freshness=DAY, revision="r2", purges=[])
    assert plan.to_purge == (A,)  # B's task has no record: taken to be for the current revision
    assert plan.statuses[B].content == "@r2"


def test_etag_and_revision_changes_are_both_named():
    rows = [with_etag(obs(A, TargetState.WARM, 60), f"{OLD.etag}@r1")]
    plan = make_plan([A], rows, now=NOW, freshness=DAY, content={A: NEW}, revision="r2", purges=[])
    assert "etag 9b2cf535d3e1 was prefetched" in plan.statuses[A].reason and "revision r1" in plan.statuses[A].reason


# -- prefetch options (issue 20): another variant at the edge is due for a prefetch, never a purge ------------
def test_a_success_made_with_other_prefetch_options_is_due_for_a_prefetch_not_a_purge():
    brotli = options_token({"headers": [{"name": "Accept-Encoding", "value": "br"}]})
    gzip = options_token({"headers": [{"name": "Accept-Encoding", "value": "gzip"}]})
    rows = [with_etag(obs(A, TargetState.WARM, 10), version_token(OLD.etag, None, gzip)),
            with_etag(obs(B, TargetState.WARM, 10), version_token(None, None, brotli)),
            obs(C, TargetState.WARM, 10),  # recorded without options: made without them
            with_etag(obs(D, TargetState.WARM, 10), version_token(OLD.etag, None, gzip))]
    plan = make_plan([A, B, C, D], rows, now=NOW, freshness=DAY, content={A: OLD, D: NEW}, options=brotli, purges=[])
    states = {u: plan.statuses[u].state for u in (A, B, C, D)}
    assert states == {A: TargetState.EXPIRED, B: TargetState.WARM, C: TargetState.EXPIRED, D: TargetState.STALE}
    assert plan.statuses[A].reason == OTHER_OPTIONS
    assert (plan.to_submit, plan.to_purge) == ((A, C), (D,))  # changed content still purges first
    assert split_version(plan.statuses[A].content) == (OLD.etag, None, gzip)  # what the edge holds, kept
    # without options declared, a success made with some is due again (back to the plain variant)
    assert assess([B], rows, now=NOW, freshness=DAY)[B].state is TargetState.EXPIRED
    assert assess([C], rows, now=NOW, freshness=DAY)[C].state is TargetState.WARM


def test_version_tokens_keep_etag_options_and_revision_apart():
    digest = options_token({"layer": "middle"})
    assert len(digest) == 10 and digest != options_token({"layer": "middle", "parseM3U8": True})
    assert options_token({}) is None and version_token(None, None, None) is None
    assert version_token("9b2cf535d3e1", None) == "9b2cf535d3e1"  # the form records had before options
    for etag, revision in (("9b2cf535d3e1", None), (None, "r#4@2"), ("9b2cf535d3e1", "r42"), (None, None)):
        assert split_version(version_token(etag, revision, digest)) == (etag, revision, digest)
        assert split_version(version_token(etag, revision)) == (etag, revision, None)
