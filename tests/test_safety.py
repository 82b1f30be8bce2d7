"""The safety rails and partial submission as pure decisions (components/plan/safety.py)."""

import pytest
import yaml

from components.declare.declarations import parse_document
from components.model.policy import CONFIG_KEY, Policy, parse_consent, policy_entries, policy_problems
from components.model.quota import Quota
from components.plan.safety import MIN_TARGETS_FOR_DROP_RAIL, check_drop, decide_quota

WHERE = "set 'web' on edgeone zone zone-x"
TARGETS = [f"https://cdn.example.com/{i}.js" for i in range(40)]


def test_everything_fits():
    decision = decide_quota(60, Quota(1000, 200, 150), Policy(), WHERE)
    assert (decision.submit, decision.not_submitted, decision.refusal, decision.short) == (60, 0, None, False)
    assert decision.preview_warnings("x") == [] and decision.up_warnings("x") == []


@pytest.mark.parametrize("noun, verb", [("prefetch", "submit"), ("purge", "purge")])
def test_a_quota_the_cloud_did_not_report_submits_everything_and_says_so_in_the_preview(noun, verb):
    """Nothing to judge a share or a shortage against (EdgeOne's null quota): the cloud refuses what exceeds it."""
    decision = decide_quota(60_000, Quota.unreported((2000, 100)), Policy(), WHERE, spent=10, noun=noun)
    assert (decision.submit, decision.refusal, decision.short, decision.share_exceeded) == (60_000, None, False, False)
    assert (decision.batch, decision.smaller_batches) == (2000, (100,))
    quota = "purge quota" if noun == "purge" else "quota"
    assert decision.preview_warnings("set web") == [
        f"warning: set web: the cloud did not report today's {quota}: up will {verb} all 60000 targets that need "
        "it, and the cloud refuses what exceeds its quota"]
    assert decision.up_warnings("set web") == []
    assert decision.to_output() == {"needed": 60_000, "available": None, "daily": None, "submit": 60_000,
                                    "not_submitted": 0, "allow_partial": False, "refused": ""}


def test_short_quota_refuses_with_the_numbers_and_the_ways_out():
    decision = decide_quota(60, Quota(1000, 200, 50), Policy(), WHERE)
    assert decision.submit == 0 and decision.not_submitted == 60
    assert decision.refusal == (
        "set 'web' on edgeone zone zone-x: 60 targets need a prefetch but only 50 of today's 200 prefetch quota are "
        "left; nothing was submitted. Wait for the quota to reset, raise it with the cloud, split the set, or add "
        "'allowPartial: true' to the set's declaration to submit the 50 that fit now and the rest after the reset.")
    assert decision.preview_warnings("set web on edgeone zone zone-x") == [
        "warning: set web on edgeone zone zone-x: 60 targets need a prefetch but only 50 of today's quota are left: "
        "up will submit nothing (add 'allowPartial: true' to the set to submit the 50 that fit)"]


def test_no_quota_left_at_all_suggests_no_partial_submission():
    decision = decide_quota(5, Quota(1000, 200, 0), Policy(), WHERE)
    assert decision.refusal.endswith("raise it with the cloud, or split the set.")
    assert decision.preview_warnings("w")[0].endswith("up will submit nothing")


def test_allow_partial_submits_what_fits():
    decision = decide_quota(60, Quota(1000, 200, 50), Policy(allow_partial=True), WHERE)
    assert (decision.submit, decision.not_submitted, decision.refusal) == (50, 10, None)
    assert decision.preview_warnings("w") == [
        "warning: w: 60 targets need a prefetch but only 50 of today's quota are left: up will submit 50 and leave 10 "
        "for after the quota resets (allowPartial)"]
    assert decision.up_warnings("w") == [
        "warning: w: 60 targets need a prefetch but only 50 of today's quota are left: submitting 50 (allowPartial); "
        "10 not submitted, an up after the quota resets submits them"]
    assert decision.to_output() == {"needed": 60, "available": 50, "daily": 200, "submit": 50, "not_submitted": 10,
                                    "allow_partial": True, "refused": ""}


def test_more_than_the_share_of_the_daily_quota_is_refused_without_consent():
    decision = decide_quota(600, Quota(1000, 1000, 1000), Policy(), WHERE)
    assert decision.submit == 0 and decision.share_exceeded
    assert decision.refusal == (
        "set 'web' on edgeone zone zone-x: this up would submit 600 targets, 60% of the daily prefetch quota of 1000, "
        "more than the 50% one change may use without consent; nothing was submitted. If this is intended, add "
        "'safety: {maxQuotaShare: 0.6}' (or more, up to 1) to the set's declaration, or consent once for every set "
        f"with `pulumi config set {CONFIG_KEY} true` (remove it after the up with `pulumi config rm {CONFIG_KEY}`).")
    assert "up will submit nothing (consent: 'safety: {maxQuotaShare: 0.6}'" in decision.preview_warnings("w")[0]
    assert decide_quota(600, Quota(1000, 1000, 1000), Policy(max_quota_share=0.6), WHERE).submit == 600
    assert decide_quota(600, Quota(1000, 1000, 1000), Policy(allow_large_changes=True), WHERE).submit == 600
    assert decide_quota(500, Quota(1000, 1000, 1000), Policy(), WHERE).submit == 500  # exactly half is fine


def test_the_suggested_share_is_enough_despite_float_noise():
    decision = decide_quota(29, Quota(1000, 100, 100), Policy(max_quota_share=0.2), WHERE)
    assert "maxQuotaShare: 0.29}" in decision.refusal
    assert decide_quota(29, Quota(1000, 100, 100), Policy(max_quota_share=0.29), WHERE).submit == 29


def test_partial_submission_is_still_held_to_the_share_rail():
    decision = decide_quota(60, Quota(1000, 100, 80), Policy(allow_partial=False, max_quota_share=0.5), WHERE)
    assert decision.refusal and decision.submit == 0  # 60 > 50 of 100
    partial = decide_quota(200, Quota(1000, 100, 80), Policy(allow_partial=True), WHERE)
    assert partial.share_exceeded and "would submit 80 targets, 80%" in partial.refusal
    assert [w for w in partial.preview_warnings("w") if "up will submit nothing (consent" in w]


def test_dropping_more_than_half_the_targets_is_refused_without_consent():
    check = check_drop(TARGETS, TARGETS[:10], Policy(), WHERE)
    assert (check.total, check.dropped) == (40, 30)
    assert check.refusal.startswith("set 'web' on edgeone zone zone-x: this change drops 30 of the set's 40 targets "
                                    "(75%), more than the 50% one change may drop without consent; nothing was changed")
    assert "safety: {maxDropShare: 0.75}" in check.refusal and f"pulumi config set {CONFIG_KEY} true" in check.refusal
    assert check_drop(TARGETS, TARGETS[:10], Policy(max_drop_share=0.75), WHERE).refusal is None
    assert check_drop(TARGETS, TARGETS[:10], Policy(allow_large_changes=True), WHERE).refusal is None
    assert check_drop(TARGETS, TARGETS[:20], Policy(), WHERE).refusal is None  # exactly half
    assert check_drop(TARGETS, TARGETS[:10] + ["https://cdn.example.com/new.js"] * 50, Policy(), WHERE).refusal


def test_small_sets_and_additions_are_never_held_by_the_drop_rail():
    small = TARGETS[:MIN_TARGETS_FOR_DROP_RAIL - 1]
    assert check_drop(small, small[:1], Policy(), WHERE).refusal is None
    assert check_drop(TARGETS[:10], TARGETS, Policy(), WHERE).refusal is None
    assert check_drop([], TARGETS, Policy(), WHERE).refusal is None


def test_policy_travels_as_text_in_the_destination_and_back():
    entries = policy_entries(True, {"maxQuotaShare": 0.8, "maxDropShare": 1})
    assert entries == {"allowPartial": "true", "maxQuotaShare": "0.8", "maxDropShare": "1"}
    assert policy_entries(False, {}) == {}
    policy = Policy.from_destination({"provider": "edgeone", **entries}, allow_large_changes=True)
    assert policy == Policy(max_quota_share=0.8, max_drop_share=1.0, allow_partial=True, allow_large_changes=True)
    assert Policy.from_destination({"provider": "edgeone"}) == Policy()


def test_bad_policy_values_are_reported_and_never_loosen_the_rails():
    bad = {"maxQuotaShare": "2", "maxDropShare": "none", "allowPartial": "yes"}
    assert len(policy_problems(bad)) == 3
    assert Policy.from_destination(bad) == Policy()
    assert policy_problems({"maxQuotaShare": "0.3", "allowPartial": "false"}) == []


@pytest.mark.parametrize("value, expected", [(None, False), ("true", True), ("false", False), (" True ", True)])
def test_stack_config_consent(value, expected):
    assert parse_consent(value) is expected


def test_stack_config_consent_must_be_true_or_false():
    with pytest.raises(ValueError, match=f"{CONFIG_KEY} must be true or false"):
        parse_consent("yes please")


# -- the declaration keys -------------------------------------------------------------------------
def parse(text):
    return parse_document(yaml.safe_load(text), yaml.compose(text), file="web.yaml", default_name="web")


BASE = "provider: edgeone\nzone: zone-abc\ntargets: [https://cdn.example.com/a.js]\n"


def test_declared_policy_reaches_every_destination_input_and_nothing_else_changes():
    decl, problems = parse(BASE + "allowPartial: true\nsafety:\n  maxQuotaShare: 0.8\n")
    assert problems == []
    assert decl.allow_partial is True and decl.safety == {"maxQuotaShare": 0.8}
    [dest] = decl.destinations
    assert dest.scope == {"zone": "zone-abc", "mode": "default"}  # the cloud scope is untouched
    assert dest.as_dict() == {"provider": "edgeone", "zone": "zone-abc", "mode": "default", "allowPartial": "true",
                              "maxQuotaShare": "0.8"}
    plain, _ = parse(BASE)
    assert plain.destinations[0].as_dict() == {"provider": "edgeone", "zone": "zone-abc", "mode": "default"}


def test_bad_policy_keys_are_declaration_problems():
    _, problems = parse(BASE + "allowPartial: maybe\nsafety:\n  maxDropShare: 1.5\n  maxQuota: 1\n")
    assert sorted(p.path for p in problems) == ["allowPartial", "safety.maxDropShare", "safety.maxQuota"]


# -- the drop rail on a shard of a split set (issue #6) --------------------------------------------
from components.plan.shards import shard_of  # noqa: E402

MANY = [f"https://cdn.example.com/{i}.js" for i in range(400)]


def test_targets_moved_to_another_shard_are_neither_drops_nor_part_of_the_base():
    # 400 targets grew into 2 shards: shard 1's targets left the old resource (now shard 0) but are declared.
    mine = [u for u in MANY if shard_of(u, 2) == 0]
    check = check_drop(MANY, mine, Policy(), WHERE, shard=(0, 2))
    assert (check.dropped, check.moved, check.total, check.refusal) == (0, len(MANY) - len(mine), len(mine), None)
    # judged as an unsplit set, the same removal is a refused drop
    assert check_drop(MANY, mine, Policy(max_drop_share=0.3), WHERE).refusal is not None


def test_a_real_drop_from_a_shard_is_judged_against_what_the_shard_keeps():
    mine = [u for u in MANY if shard_of(u, 2) == 0]
    kept = mine[: len(mine) * 4 // 10]  # 60% of the shard's own targets dropped, as the set grew
    check = check_drop(MANY, kept, Policy(), WHERE, shard=(0, 2))
    assert (check.dropped, check.total) == (len(mine) - len(kept), len(mine))
    assert check.refusal.startswith(f"{WHERE}: this change drops {check.dropped} of this shard's {len(mine)} targets")
    # against all 400 old targets the same drop would have passed under the 50% rule
    assert check.dropped < len(MANY) // 2
    assert check_drop(MANY, kept, Policy(max_drop_share=0.7), WHERE, shard=(0, 2)).refusal is None
