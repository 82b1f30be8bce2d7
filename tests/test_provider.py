import base64
import json
from datetime import datetime, timedelta, timezone

import dill
import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.model.policy import Policy
from components.model.quota import Quota
from components.plan.reconcile import make_plan
from components.plan.safety import RefusedChange, decide_quota
from components.provider import PrefetchProvider, check_inputs, resource_id
from components.resource.converge import SyncResult
from components.resource.inputs import ShardInputs
from components.resource.outputs import output_targets

INPUTS = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a", "mode": "default"},
                   ("https://a.example.com/x.js",), "24h", "10m")


def test_provider_pickles_by_reference_with_nothing_captured():
    blob = serialize_provider(PrefetchProvider())
    raw = base64.b64decode(blob)
    assert b"components.provider" in raw and len(blob) < 200  # by reference: module path + class name only
    assert isinstance(dill.loads(raw), PrefetchProvider)
    assert PrefetchProvider.serialize_as_secret_always is False


def test_configured_provider_does_not_carry_settings_into_a_new_pickle():
    provider = PrefetchProvider()
    provider.configure(ConfigureRequest(Config({"tencentcloud:secretId": "id", "tencentcloud:secretKey": "key-xyz"},
                                               "cdn-prefetch")))
    assert provider._settings.credentials_for("tencentcloud").secret_key == "key-xyz"
    assert b"key-xyz" not in base64.b64decode(serialize_provider(PrefetchProvider()))


def test_check_accepts_program_inputs():
    assert check_inputs(INPUTS.to_props()) == []


def test_check_reports_each_malformed_input():
    bad = {**INPUTS.to_props(), "destination": {"provider": "edgeone"}, "targets": ["a"], "wait": "soon"}
    assert {prop for prop, _ in check_inputs(bad)} == {"destination", "targets", "wait"}


def test_config_error_surfaces_as_a_check_failure_not_a_crash():
    provider = PrefetchProvider()
    provider.configure(ConfigureRequest(Config({"cdn-prefetch:endpoints": json.dumps({"edgeone": "ftp://x"})},
                                               "cdn-prefetch")))
    result = provider.check({}, INPUTS.to_props())
    assert [f.property for f in result.failures] == ["destination"]
    assert "cdn-prefetch:endpoints.edgeone" in result.failures[0].reason


def test_resource_id_is_stable_and_names_the_scope():
    assert resource_id(INPUTS) == "web/edgeone/mode=default,zone=zone-a"


# -- safety rails at the provider (issue #5 item 5) -----------------------------------------------
BIG = {f"https://a.example.com/{i}.js": "warm" for i in range(40)}


def props(targets, **policy):
    return {**INPUTS.to_props(), "destination": {**INPUTS.destination, **policy}, "targets": dict(targets)}


def configured(**config):
    provider = PrefetchProvider()
    provider.configure(ConfigureRequest(Config(config, "cdn-prefetch")))
    return provider


def test_an_update_dropping_most_targets_is_refused_before_any_cloud_call():
    provider = configured()
    provider._sync = lambda _props: pytest.fail("no cloud call may happen")  # noqa: E731
    with pytest.raises(RefusedChange, match="drops 30 of the set's 40 targets") as info:
        provider.update("id", props(BIG), props(list(BIG.items())[:10]))
    assert "set 'web' on edgeone zone zone-a" in str(info.value)


def test_the_preview_diff_warns_that_up_will_refuse(capsys):
    result = configured().diff("id", props(BIG), props(list(BIG.items())[:10]))
    assert result.changes is None  # the engine still shows the target-by-target diff
    err = capsys.readouterr().err
    assert err.startswith("warning: up will refuse this change: set 'web' on edgeone zone zone-a: this change drops 30")
    configured().diff("id", props(BIG), props(BIG))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("provider, news", [
    (configured(**{"cdn-prefetch:allowLargeChanges": "true"}), props(list(BIG.items())[:10])),
    (configured(), props(list(BIG.items())[:10], maxDropShare="0.8")),
])
def test_consent_lets_the_large_drop_through(provider, news):
    calls = []

    class Sync:
        inputs = ShardInputs.from_props(news)

        def converge(self, olds):
            calls.append(olds)
            raise RuntimeError("reached the cloud")

    provider._sync = lambda _props: Sync()
    with pytest.raises(RuntimeError, match="reached the cloud"):
        provider.update("id", props(BIG), news)
    assert calls


def test_a_bad_consent_value_is_a_check_failure():
    result = configured(**{"cdn-prefetch:allowLargeChanges": "sure"}).check({}, INPUTS.to_props())
    assert [f.property for f in result.failures] == ["destination"]
    assert "cdn-prefetch:allowLargeChanges must be true or false" in result.failures[0].reason


def test_policy_entries_are_checked_and_left_out_of_the_resource_id():
    assert {p for p, _ in check_inputs(props(BIG, maxQuotaShare="7"))} == {"destination"}
    assert check_inputs(props(BIG, maxQuotaShare="0.7", allowPartial="true")) == []
    with_policy = ShardInputs.from_props(props(BIG, maxQuotaShare="0.7", allowPartial="true"))
    assert resource_id(with_policy) == resource_id(INPUTS)


def test_read_records_the_quota_outlook_in_the_outputs():
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    result = SyncResult(make_plan(INPUTS.targets, [], now=now, freshness=timedelta(hours=24)), [], now,
                        quota=decide_quota(1, Quota(10, 10, 0), Policy(), "w"))

    class Sync:
        inputs = INPUTS

        def observe(self, prior, check_quota):
            assert check_quota
            return result

    provider = configured()
    provider._sync = lambda _props: Sync()
    outs = provider.read("id", INPUTS.to_props()).outs
    assert outs["quota"] == {"needed": 1, "available": 0, "daily": 10, "submit": 0, "not_submitted": 1,
                             "allow_partial": False, "refused": result.quota.refusal}


def test_values_unknown_during_a_preview_are_not_judged():
    news = {**INPUTS.to_props(), "destination": {"provider": "edgeone", "zone": Unknown(), "mode": "default"},
            "wait": Unknown()}
    assert check_inputs(news) == []
    assert check_inputs({**INPUTS.to_props(), "targets": Unknown()}) == []
    assert {p for p, _ in check_inputs({**news, "freshness": "soon"})} == {"freshness"}


# -- outputs without the targets map, and shards (issue #6) ---------------------------------------
from components.plan import shards  # noqa: E402
from components.resource.inputs import TARGET_LINES, target_lines  # noqa: E402


def as_new_outputs(props_):
    """Outputs as build_outputs writes them now: the targets as ``target_lines``, no map."""
    outs = {k: v for k, v in props_.items() if k != "targets"}
    outs[TARGET_LINES] = target_lines(props_["targets"], {})
    return outs


def test_resource_id_of_a_shard_names_it():
    sharded = ShardInputs(INPUTS.set, INPUTS.destination, INPUTS.targets, "24h", "10m", shard=(3, 16))
    assert resource_id(sharded) == "web/edgeone/mode=default,zone=zone-a/shard-3-of-16"


def test_check_judges_the_shard():
    assert check_inputs({**INPUTS.to_props(), "shard": {"index": 3.0, "count": 16.0}}) == []  # doubles on the wire
    for bad in ({"index": 16, "count": 16}, {"index": "1", "count": 2}, {"count": 2}, "1/2"):
        problems = check_inputs({**INPUTS.to_props(), "shard": bad})
        assert [p for p, _ in problems] == ["shard"] and problems[0][1].startswith("shard must")
    assert check_inputs({**INPUTS.to_props(), "shard": Unknown()}) == []
    assert check_inputs({**INPUTS.to_props(), "shard": {"index": Unknown(), "count": 2}}) == []
    result = configured().check({}, {**INPUTS.to_props(), "shard": {"index": -1, "count": 2}})
    assert [f.property for f in result.failures] == ["shard"]


@pytest.mark.parametrize("targets", [{"https://a.example.com/x\ty.js": "warm"}, {"https://a.example.com/\n": "warm"},
                                     {"https://a.example.com/x.js": "warm\n"}, {"": "warm"}])
def test_check_refuses_targets_the_output_lines_could_not_hold(targets):
    assert [p for p, _ in check_inputs({**INPUTS.to_props(), "targets": targets})] == ["targets"]


def test_the_drop_rail_reads_old_outputs_in_either_form():
    for olds in (props(BIG), as_new_outputs(props(BIG))):
        with pytest.raises(RefusedChange, match="drops 30 of the set's 40 targets"):
            configured().update("id", olds, props(list(BIG.items())[:10]))


def test_unreadable_old_targets_mean_no_rail(capsys):
    broken = {k: v for k, v in as_new_outputs(props(BIG)).items() if k != TARGET_LINES}
    assert configured()._drop_refusal(output_targets(broken), props({})) is None
    assert configured()._drop_refusal(output_targets({**broken, TARGET_LINES: 7}), props({})) is None
    configured().diff("id", broken, props({}))
    assert capsys.readouterr().err == ""


MANY = [f"https://a.example.com/{i}.js" for i in range(200)]


def sharded(urls, index, count):
    return {**props(dict.fromkeys(urls, "warm")), "shard": {"index": index, "count": count}}


def test_targets_that_moved_to_a_new_shard_are_not_drops(capsys):
    # The set grew fourfold: the old unsplit resource becomes shard 0 of 4 and keeps about a
    # quarter; the rest moved to shards 1-3 (still declared).
    stay = [u for u in MANY if shards.shard_of(u, 4) == 0]
    assert 25 < len(stay) < 75
    provider = configured()
    old_targets = output_targets(as_new_outputs(props(dict.fromkeys(MANY, "warm"))))
    assert provider._drop_refusal(old_targets, sharded(stay, 0, 4)) is None
    provider.diff("id", as_new_outputs(props(dict.fromkeys(MANY, "warm"))), sharded(stay, 0, 4))
    assert capsys.readouterr().err == ""
    # the same removal, judged as an unsplit set, would be a large drop
    assert provider._drop_refusal(old_targets, props(dict.fromkeys(stay, "warm")))


def test_a_real_drop_in_a_shard_is_still_refused():
    stay = [u for u in MANY if shards.shard_of(u, 2) == 0]
    kept = stay[: len(stay) // 4]  # most of what stays in shard 0 is dropped too
    olds = as_new_outputs(props(dict.fromkeys(MANY, "warm")))
    provider = configured()
    provider._sync = lambda _props: pytest.fail("no cloud call may happen")  # noqa: E731
    with pytest.raises(RefusedChange) as info:
        provider.update("id", olds, sharded(kept, 0, 2))
    dropped = len(stay) - len(kept)
    assert f"set 'web' (shard 0 of 2) on edgeone zone zone-a: this change drops {dropped} of this shard's " \
           f"{len(stay)} targets" in str(info.value)


# -- read leaves the inputs alone when they already are what it would write (issue #6) --------------
from components.model.status import HistoryRow, TargetState  # noqa: E402
from components.provider import INPUTS_SHOW_DRIFT  # noqa: E402

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
URL = INPUTS.targets[0]


def read_with(state, old_outputs):
    """provider.read over a fake sync whose history shows the one target in ``state``."""
    rows = [] if state is None else [HistoryRow(URL, "task-1", state, NOW - timedelta(minutes=5),
                                                 NOW - timedelta(minutes=4), None, None)]
    result = SyncResult(make_plan(INPUTS.targets, rows, now=NOW, freshness=timedelta(hours=24)), [], NOW)

    class Sync:
        inputs = INPUTS

        def observe(self, prior, check_quota):
            return result

    provider = configured()
    provider._sync = lambda _props: Sync()
    return provider.read("id", old_outputs)


def test_create_and_update_record_that_the_inputs_in_state_are_the_desired_ones():
    class Sync:
        inputs = INPUTS

        def converge(self, prior=None):
            return SyncResult(make_plan(INPUTS.targets, [], now=NOW, freshness=timedelta(hours=24)), [], NOW)

    provider = configured()
    provider._sync = lambda _props: Sync()
    assert provider.create(INPUTS.to_props()).outs[INPUTS_SHOW_DRIFT] is False
    assert provider.update("id", INPUTS.to_props(), INPUTS.to_props()).outs[INPUTS_SHOW_DRIFT] is False


def test_a_refresh_without_drift_keeps_the_desired_inputs_the_engine_already_has():
    after_up = {**INPUTS.to_props(), INPUTS_SHOW_DRIFT: False}
    result = read_with(TargetState.WARM, after_up)
    assert result.inputs is None  # the engine keeps its inputs: exactly what would have been written
    assert result.outs[INPUTS_SHOW_DRIFT] is False


def test_drift_is_always_written_into_the_inputs():
    after_up = {**INPUTS.to_props(), INPUTS_SHOW_DRIFT: False}
    result = read_with(TargetState.FAILED, after_up)
    assert result.inputs["targets"][URL].startswith("failed")
    assert result.outs[INPUTS_SHOW_DRIFT] is True


def test_after_drift_the_next_refresh_without_drift_writes_the_desired_inputs_back():
    after_drift = {**INPUTS.to_props(), INPUTS_SHOW_DRIFT: True}
    result = read_with(TargetState.WARM, after_drift)
    assert result.inputs is not None and result.inputs["targets"] == {URL: "warm"}
    assert result.outs[INPUTS_SHOW_DRIFT] is False


def test_old_state_without_the_flag_always_gets_inputs():
    result = read_with(TargetState.WARM, INPUTS.to_props())
    assert result.inputs is not None and result.inputs["targets"] == {URL: "warm"}


def test_a_preview_says_when_the_prefetch_options_changed_and_what_up_does(capsys):
    """Issue 20: an option change shows in the preview; up prefetches every target again (no purge)."""
    old = props(BIG, headers=[{"name": "Accept-Encoding", "value": "gzip"}])
    configured().diff("id", old, props(BIG, headers=[{"name": "Accept-Encoding", "value": "br"}],
                                       prefetchMediaSegments="on"))
    assert capsys.readouterr().err == ("set 'web' on edgeone zone zone-a: prefetch options changed (headers, "
                                       "prefetchMediaSegments): up prefetches every target again with them (no "
                                       "purge: the content did not change)\n")
    configured().diff("id", old, props(BIG, headers=[{"name": "Accept-Encoding", "value": "gzip"}],
                                       prefetchMediaSegments="off"))  # "off" is what not sending it means
    assert capsys.readouterr().err == ""


def test_read_runs_with_the_garbage_collector_paused_and_resumes_it():
    import gc

    seen = []

    class Sync:
        inputs = INPUTS

        def observe(self, prior, check_quota):
            seen.append(gc.isenabled())
            return SyncResult(make_plan(INPUTS.targets, [], now=NOW, freshness=timedelta(hours=24)), [], NOW)

    provider = configured()
    provider._sync = lambda _props: Sync()
    was = gc.isenabled()
    gc.enable()
    try:
        provider.read("id", INPUTS.to_props())
        assert seen == [False] and gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
