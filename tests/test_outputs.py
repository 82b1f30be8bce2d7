import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema

from components.model.status import ContentVersion, HistoryRow, TargetState
from components.plan.reconcile import make_plan
from components.resource.audit import audit_entry
from components.resource.inputs import ShardInputs, desired_value, parse_desired, targets_digest
from components.resource.outputs import DRIFTED_LIST_LIMIT, build_outputs, prior_observations, refreshed_inputs

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
A, B, C = (f"https://cdn.example.com/{x}.js" for x in "abc")
INPUTS = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a", "mode": "default"}, (A, B, C), "24h", "10m")


def sample_plan():
    rows = [HistoryRow(A, "j1", TargetState.WARM, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4)),
            HistoryRow(B, "j1", TargetState.FAILED, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4),
                        "originPullFailed: origin returned HTTP 502")]
    return make_plan(INPUTS.targets, rows, now=NOW, freshness=timedelta(hours=24))


def test_inputs_mark_every_target_warm_as_the_desired_state():
    assert INPUTS.to_props()["targets"] == {A: "warm", B: "warm", C: "warm"}
    assert ShardInputs.from_props(INPUTS.to_props()) == INPUTS
    shuffled = {**INPUTS.to_props(), "targets": {C: "warm", A: "warm", B: "warm"}}
    assert ShardInputs.from_props(shuffled).targets == (A, B, C)  # gRPC Structs keep no order


def test_refreshed_inputs_differ_from_desired_only_at_drifted_targets():
    live = refreshed_inputs(INPUTS, sample_plan())
    desired = INPUTS.to_props()
    changed = {k for k in desired["targets"] if live["targets"][k] != desired["targets"][k]}
    assert changed == {B, C}
    assert live["targets"][B] == "failed: originPullFailed: origin returned HTTP 502 (task j1, 2026-11-23T11:56:00Z)"
    assert live["targets"][C] == "missing: never submitted"
    assert {k: v for k, v in live.items() if k != "targets"} == {k: v for k, v in desired.items() if k != "targets"}


def test_outputs_summarise_counts_ratio_and_drift():
    outs = build_outputs(INPUTS, sample_plan(), verified_at=NOW, submitted=[{"task_id": "j1", "at": "x", "count": 3}])
    summary = outs["summary"]
    assert summary["total"] == 3 and summary["counts"]["warm"] == 1 and summary["counts"]["failed"] == 1
    assert summary["counts"]["missing"] == 1 and summary["warm_ratio"] == 0.3333 and summary["in_sync"] is False
    assert summary["verified_at"] == "2026-11-23T12:00:00Z"
    assert summary["digest"] == targets_digest([C, A, B])
    assert [d["url"] for d in outs["drifted"]] == [B, C] and outs["drifted_total"] == 2
    assert outs["observed"][B][:2] == ["failed", "j1"] and C not in outs["observed"]


def test_drift_list_is_bounded_but_the_total_is_not():
    targets = tuple(f"https://cdn.example.com/{i}" for i in range(DRIFTED_LIST_LIMIT + 5))
    inputs = ShardInputs("big", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", "0s")
    outs = build_outputs(inputs, make_plan(targets, [], now=NOW, freshness=timedelta(hours=1)), verified_at=NOW, submitted=[])
    assert len(outs["drifted"]) == DRIFTED_LIST_LIMIT and outs["drifted_total"] == DRIFTED_LIST_LIMIT + 5


def test_prior_observations_round_trip_and_skip_garbage():
    outs = build_outputs(INPUTS, sample_plan(), verified_at=NOW, submitted=[])
    outs["observed"]["https://junk"] = ["not-a-state", "x", "y"]
    prior = {o.url: o for o in prior_observations(outs)}
    assert set(prior) == {A, B}
    assert prior[B].state is TargetState.FAILED and prior[B].task_id == "j1"


def test_audit_entry_collects_every_task_id_once():
    outs = build_outputs(INPUTS, sample_plan(), verified_at=NOW,
                         submitted=[{"task_id": "j1", "at": "t", "count": 2}, {"task_id": "j0", "at": "t", "count": 1}])
    entry = audit_entry(outs)
    assert entry["provider"] == "edgeone" and entry["scope"] == {"zone": "zone-a", "mode": "default"}
    assert entry["task_ids"] == ["j1", "j0"]


def test_the_audit_entry_records_the_prefetch_options_as_the_outputs_schema_describes_them():
    """Issue 20: the options each prefetch was sent with are in the audit record (schemas/stack-outputs.schema.json)."""
    options = {"headers": [{"name": "Accept-Encoding", "value": "br"}], "encodeUrl": False,
               "prefetchMediaSegments": "on"}
    inputs = ShardInputs("web", {**INPUTS.destination, **options}, INPUTS.targets, "24h", "10m")
    entry = audit_entry(build_outputs(inputs, sample_plan(), verified_at=NOW, submitted=[]))
    assert entry["scope"] == {"zone": "zone-a", "mode": "default", **options}
    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "stack-outputs.schema.json").read_text())
    scope = jsonschema.Draft202012Validator(schema["$defs"]["destination"]["properties"]["scope"])
    assert scope.is_valid(entry["scope"])
    assert not scope.is_valid({**entry["scope"], "prefetchMediaSegments": "yes"})
    assert not scope.is_valid({**entry["scope"], "headers": [{"name": "X-A"}]})


# -- origin-derived targets: the content marker in inputs and the ETag in outputs -----------------
V1, V2 = ContentVersion("9b2cf535d3e1", 2048), ContentVersion("4f1e2d3c4b5a", 2100)
ORIGIN_INPUTS = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, (A, B, C), "24h", "10m", {A: V1, B: V1})


def test_origin_targets_desire_warm_with_their_content_and_url_targets_plain_warm():
    props = ORIGIN_INPUTS.to_props()
    assert props["targets"] == {A: "warm (etag 9b2cf535d3e1, 2048 bytes)", B: "warm (etag 9b2cf535d3e1, 2048 bytes)",
                                C: "warm"}
    assert ShardInputs.from_props(props) == ORIGIN_INPUTS
    assert parse_desired(desired_value(V2)) == (V2, None) and parse_desired("warm") == (None, None)
    assert parse_desired("failed: origin returned HTTP 502 (task j1, 2026-11-23T11:56:00Z)") == (None, None)


def test_outputs_record_the_etag_each_task_was_for_and_read_it_back():
    rows = [HistoryRow(A, "j1", TargetState.WARM, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4),
                        content=V1.etag)]
    outs = build_outputs(ORIGIN_INPUTS, make_plan(ORIGIN_INPUTS.targets, rows, now=NOW, freshness=timedelta(hours=24),
                                             content=ORIGIN_INPUTS.content), verified_at=NOW, submitted=[])
    assert outs["observed"][A] == ["warm", "j1", "2026-11-23T11:56:00Z", "", V1.etag]
    assert outs["summary"]["counts"]["stale"] == 0 and outs["summary"]["counts"]["missing"] == 2
    [prior] = prior_observations(outs)
    assert (prior.url, prior.task_id, prior.content) == (A, "j1", V1.etag)


def test_refresh_keeps_the_desired_value_of_a_warm_origin_target_and_words_a_stale_one():
    # State says the origin had V2 when last deployed, but the last success was for V1: stale.
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, (A, B), "24h", "10m", {A: V2, B: V1})
    rows = [HistoryRow(u, "j1", TargetState.WARM, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4),
                        content=V1.etag) for u in (A, B)]
    live = refreshed_inputs(inputs, make_plan(inputs.targets, rows, now=NOW, freshness=timedelta(hours=24),
                                         content=inputs.content))
    assert live["targets"][B] == "warm (etag 9b2cf535d3e1, 2048 bytes)"
    assert live["targets"][A] == ("stale: origin changed since last prefetch: etag 9b2cf535d3e1 was prefetched, the "
                                  "origin now has etag 4f1e2d3c4b5a (task j1, 2026-11-23T11:56:00Z)")
    # an old stale record is re-judged from its ETag, not kept as a verdict
    outs = build_outputs(inputs, make_plan(inputs.targets, rows, now=NOW, freshness=timedelta(hours=24),
                                      content=inputs.content), verified_at=NOW, submitted=[])
    assert outs["observed"][A][0] == "stale"
    assert {o.url: o.state for o in prior_observations(outs)} == {A: TargetState.WARM, B: TargetState.WARM}


# -- the compact ``observed`` of large sets ------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from components.resource.outputs import COMPACT_OBSERVED_ABOVE, OBSERVED_ENCODING, compact_observed, observed_records

record_values = st.lists(st.sampled_from(["warm", "failed", "j1", "j2", "2026-11-23T11:56:00Z", "", "why, *-"]),
                         min_size=4, max_size=5)


@settings(max_examples=300, deadline=None)
@given(urls=st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=40), data=st.data())
def test_compact_observed_round_trips_any_records(urls, data):
    records = {u: data.draw(record_values) for u in urls if data.draw(st.booleans())}
    outputs = {"targets": dict.fromkeys(urls, "warm"), "observed": compact_observed(records, sorted(urls))}
    assert outputs["observed"]["encoding"] == OBSERVED_ENCODING
    assert observed_records(outputs) == records


def big_set(count=COMPACT_OBSERVED_ABOVE + 44):
    """Two tasks' worth of warm targets, a failed one, and targets never submitted."""
    urls = tuple(f"https://cdn.example.com/{i:04d}.js" for i in range(count))
    rows = [HistoryRow(u, "j1" if i < count // 2 else "j2", TargetState.WARM, NOW - timedelta(minutes=5),
                        NOW - timedelta(minutes=4)) for i, u in enumerate(urls[:-10])]
    rows.append(HistoryRow(urls[7], "j3", TargetState.FAILED, NOW - timedelta(minutes=3), NOW - timedelta(minutes=2),
                            "originPullFailed: origin returned HTTP 502"))
    inputs = ShardInputs("big", {"provider": "edgeone", "zone": "zone-a"}, urls, "24h", "10m")
    return inputs, make_plan(urls, rows, now=NOW, freshness=timedelta(hours=24))


def test_large_sets_record_observations_compactly_and_read_back_the_same():
    inputs, large = big_set()
    outs = build_outputs(inputs, large, verified_at=NOW, submitted=[{"task_id": "j1", "at": "t", "count": 150}])
    observed = outs["observed"]
    assert observed["encoding"] == OBSERVED_ENCODING
    assert len(observed["records"]) == 3  # j1 warm, j2 warm, j3 failed: each stored once
    readable = observed_records(outs)
    assert len(readable) == len(inputs.targets) - 10  # the 10 never submitted have no record
    assert readable[inputs.targets[7]] == ["failed", "j3", "2026-11-23T11:58:00Z",
                                           "originPullFailed: origin returned HTTP 502"]
    assert readable[inputs.targets[0]] == ["warm", "j1", "2026-11-23T11:56:00Z", ""]
    prior = {o.url: o for o in prior_observations(outs)}
    assert set(prior) == set(readable)
    assert prior[inputs.targets[7]].state is TargetState.FAILED and prior[inputs.targets[-11]].task_id == "j2"
    assert audit_entry(outs)["task_ids"] == ["j1", "j3", "j2"]
    # the reader sorts the targets itself, whatever order the lines (or an old state's map) come in
    shuffled = {**outs, "target_lines": "\n".join(reversed(outs["target_lines"].split("\n")))}
    assert observed_records(shuffled) == readable
    old_state = {k: v for k, v in outs.items() if k != "target_lines"}
    old_state["targets"] = dict.fromkeys(reversed(inputs.targets), "warm")  # a Struct keeps no order
    assert observed_records(old_state) == readable
    assert {o.url: o for o in prior_observations(old_state)} == prior


def test_compact_and_readable_forms_give_the_same_prior_observations():
    inputs, large = big_set()
    outs = build_outputs(inputs, large, verified_at=NOW, submitted=[])
    readable = {**outs, "observed": observed_records(outs)}
    assert sorted(prior_observations(readable), key=lambda o: o.url) == \
        sorted(prior_observations(outs), key=lambda o: o.url)


def test_sets_up_to_the_threshold_keep_the_readable_map():
    inputs, small = big_set(COMPACT_OBSERVED_ABOVE)
    observed = build_outputs(inputs, small, verified_at=NOW, submitted=[])["observed"]
    assert "encoding" not in observed and observed[inputs.targets[0]][:2] == ["warm", "j1"]


def test_a_compact_form_that_does_not_fit_its_targets_is_no_evidence():
    inputs, large = big_set()
    outs = build_outputs(inputs, large, verified_at=NOW, submitted=[])
    index = outs["observed"]["index"]
    for broken in ({**outs["observed"], "index": index + ",0"}, {**outs["observed"], "index": "0*x"},
                   {**outs["observed"], "index": "99*300"}, {**outs["observed"], "index": "-1*300"},
                   {**outs["observed"], "records": "junk"}, {**outs["observed"], "index": None}):
        assert prior_observations({**outs, "observed": broken}) == []
        assert observed_records({**outs, "observed": broken}) == {}
    assert prior_observations({k: v for k, v in outs.items() if k != "target_lines"}) == []
    assert observed_records({**outs, "target_lines": outs["target_lines"] + "\nhttps://cdn.example.com/x"}) == {}


def test_compact_state_is_small():
    inputs, large = big_set(10_000)
    outs = build_outputs(inputs, large, verified_at=NOW, submitted=[])
    assert len(json.dumps(outs["observed"])) < 500  # a few records and a run-length index, not 10,000 entries


# -- outputs carry the targets as one string, ``target_lines`` (issue #6) ---------------------------

import pytest  # noqa: E402

from components.resource.inputs import TARGET_LINES, parse_shard, target_lines
from components.resource.outputs import output_targets, prior_contents  # noqa: E402


def test_outputs_carry_the_targets_as_sorted_lines_and_no_map():
    outs = build_outputs(INPUTS, sample_plan(), verified_at=NOW, submitted=[])
    assert "targets" not in outs and outs[TARGET_LINES] == f"{A}\n{B}\n{C}"
    assert {k: outs[k] for k in ("set", "destination", "freshness", "wait")} == \
        {k: v for k, v in INPUTS.to_props().items() if k != "targets"}
    assert "shard" not in outs
    assert output_targets(outs) == INPUTS.to_props()["targets"]


def test_an_origin_target_line_names_its_desired_content_after_a_tab():
    assert target_lines([C, B, A], ORIGIN_INPUTS.content) == (
        f"{A}\twarm (etag 9b2cf535d3e1, 2048 bytes)\n{B}\twarm (etag 9b2cf535d3e1, 2048 bytes)\n{C}")
    outs = build_outputs(ORIGIN_INPUTS, make_plan(ORIGIN_INPUTS.targets, [], now=NOW, freshness=timedelta(hours=24),
                                             content=ORIGIN_INPUTS.content), verified_at=NOW, submitted=[])
    assert output_targets(outs) == ORIGIN_INPUTS.to_props()["targets"]
    assert ShardInputs.from_props(outs) == ORIGIN_INPUTS


@pytest.mark.parametrize("inputs", [INPUTS, ORIGIN_INPUTS, ShardInputs("e", {"provider": "edgeone", "zone": "z"},
                                                                      (), "24h", "0s")])
def test_inputs_read_back_from_inputs_new_outputs_and_old_outputs_alike(inputs):
    new_outputs = build_outputs(inputs, make_plan(inputs.targets, [], now=NOW, freshness=timedelta(hours=1),
                                             content=inputs.content), verified_at=NOW, submitted=[])
    old_outputs = {**{k: v for k, v in new_outputs.items() if k != TARGET_LINES}, **inputs.to_props()}
    for props in (inputs.to_props(), new_outputs, old_outputs):
        assert ShardInputs.from_props(props) == inputs
        assert output_targets(props) == inputs.to_props()["targets"]
    assert output_targets({"set": "x"}) is None and output_targets({TARGET_LINES: 7}) is None
    with pytest.raises(KeyError):
        ShardInputs.from_props({k: v for k, v in new_outputs.items() if k != TARGET_LINES})


def test_a_shard_is_in_inputs_and_outputs_only_when_the_set_is_split():
    sharded = ShardInputs("web", INPUTS.destination, INPUTS.targets, "24h", "10m", shard=(3, 16))
    props = sharded.to_props()
    assert props["shard"] == {"index": 3, "count": 16} and "shard" not in INPUTS.to_props()
    assert build_outputs(sharded, sample_plan(), verified_at=NOW, submitted=[])["shard"] == {"index": 3, "count": 16}
    # numbers cross gRPC as doubles
    assert ShardInputs.from_props({**props, "shard": {"index": 3.0, "count": 16.0}}) == sharded
    assert refreshed_inputs(sharded, sample_plan())["shard"] == {"index": 3, "count": 16}


@pytest.mark.parametrize("bad", [{"index": 4, "count": 4}, {"index": -1, "count": 4}, {"index": 1.5, "count": 4},
                                 {"index": True, "count": 2}, {"index": 0}, {"index": 0, "count": 2, "x": 1},
                                 "0/2", [0, 2]])
def test_a_malformed_shard_is_refused(bad):
    with pytest.raises(ValueError, match="shard must"):
        parse_shard(bad)
    with pytest.raises(ValueError):
        ShardInputs.from_props({**INPUTS.to_props(), "shard": bad})


def test_outputs_of_a_large_set_hold_one_line_per_target_not_a_map():
    inputs, large = big_set(10_000)
    outs = build_outputs(inputs, large, verified_at=NOW, submitted=[])
    assert len(outs[TARGET_LINES]) == sum(len(u) + 1 for u in inputs.targets) - 1
    assert len(json.dumps(outs)) < len(json.dumps(outs[TARGET_LINES])) + 5_000


def _older(prior, moment):
    return sorted((o for o in prior if o.created < moment), key=lambda o: (o.url, o.task_id))


def test_prior_observations_older_than_a_time_are_exactly_the_older_records():
    inputs, large = big_set()  # records j1/j2 at 11:56, j3 at 11:58
    for outs in (build_outputs(inputs, large, verified_at=NOW, submitted=[]),
                 build_outputs(INPUTS, sample_plan(), verified_at=NOW, submitted=[])):  # compact and readable
        everything = prior_observations(outs)
        for moment in (NOW - timedelta(hours=1), NOW - timedelta(minutes=4), NOW - timedelta(minutes=2), NOW):
            assert sorted(prior_observations(outs, older_than=moment), key=lambda o: (o.url, o.task_id)) == \
                _older(everything, moment)
    assert len(prior_observations(build_outputs(inputs, large, verified_at=NOW, submitted=[]),
                                  older_than=NOW - timedelta(minutes=3))) == len(inputs.targets) - 11  # j1, j2


class _TargetsUntouchable(dict):
    """Outputs whose targets may not be read: proves a cheap path never parses 100,000 URLs."""

    def get(self, key, default=None):
        assert key not in ("targets", TARGET_LINES), f"read {key}"
        return super().get(key, default)


def test_no_record_old_enough_or_no_etag_means_the_targets_are_never_read():
    inputs, large = big_set()
    outs = _TargetsUntouchable(build_outputs(inputs, large, verified_at=NOW, submitted=[]))
    assert prior_observations(outs, older_than=NOW - timedelta(hours=1)) == []
    assert prior_contents(outs) == {}
    with pytest.raises(AssertionError, match="read target"):
        prior_observations(outs, older_than=NOW)  # some are older: then it must read them


def test_prior_contents_are_the_etags_prior_observations_carry():
    rows = [HistoryRow(u, "j1", TargetState.WARM, NOW - timedelta(minutes=5), NOW - timedelta(minutes=4),
                        content=V1.etag) for u in (A, B)]
    urls = tuple(f"https://cdn.example.com/{i:04d}.js" for i in range(COMPACT_OBSERVED_ABOVE + 1)) + (A, B)
    for targets in ((A, B, C), urls):  # readable and compact
        inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, targets, "24h", "10m", {A: V1, B: V1})
        outs = build_outputs(inputs, make_plan(targets, rows, now=NOW, freshness=timedelta(hours=24),
                                          content=inputs.content), verified_at=NOW, submitted=[])
        assert prior_contents(outs) == {(A, "j1"): V1.etag, (B, "j1"): V1.etag} == \
            {(o.url, o.task_id): o.content for o in prior_observations(outs) if o.content}


@settings(max_examples=200, deadline=None)
@given(urls=st.lists(st.text(alphabet=st.characters(blacklist_characters="\t\n\r"), min_size=1, max_size=6),
                     unique=True, max_size=40), data=st.data())
def test_lines_and_the_old_map_give_the_same_order_to_the_compact_form(urls, data):
    records = {u: data.draw(record_values) for u in urls if data.draw(st.booleans())}
    observed = compact_observed(records, sorted(urls))
    old = {"targets": dict.fromkeys(urls, "warm"), "observed": observed}
    new = {TARGET_LINES: target_lines(urls, {}), "observed": observed}
    assert observed_records(old) == observed_records(new) == records


# -- revisions and purges --------------------------------------------------------------------------
from components.resource.outputs import SubmittedTask, prior_contents  # noqa: E402
from components.model.status import TaskKind  # noqa: E402


@pytest.mark.parametrize("content,revision", [(None, "r42"), (V1, "r42"), (V1, None), (None, "build 7 (hotfix)"),
                                             (ContentVersion.of_lastmod("2026-05-01T10:00:00Z"), None),
                                             (ContentVersion.of_lastmod("2026-05"), "r1; (x)")])
def test_a_revision_travels_in_every_desired_value_and_reads_back(content, revision):
    value = desired_value(content, revision)
    assert parse_desired(value) == (content, revision)
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, ("https://a.example/x",), "24h", "1m",
                         {"https://a.example/x": content} if content else {}, revision=revision)
    assert ShardInputs.from_props(inputs.to_props()) == inputs
    assert ShardInputs.from_props(inputs.output_props()) == inputs
    assert desired_value(None, "r42") == "warm (revision r42)"


def test_a_purge_state_records_the_purge_and_keeps_the_version_of_the_prefetch_it_follows():
    url = "https://a.example/x"
    rows = [HistoryRow(url, "t1", TargetState.WARM, NOW - timedelta(hours=1), content="@r1")]
    purges = [HistoryRow(url, "p1", TargetState.RUNNING, NOW - timedelta(minutes=1))]
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": "zone-a"}, (url,), "24h", "1m", revision="r2")
    plan = make_plan(inputs.targets, rows, now=NOW, freshness=timedelta(hours=24), revision="r2", purges=purges)
    outputs = build_outputs(inputs, plan, verified_at=NOW, submitted=[SubmittedTask("p1", NOW, 1, TaskKind.PURGE)
                                                                       .to_dict()])
    assert outputs["observed"][url] == ["purging", "p1", "2026-11-23T11:59:00Z", "", "@r1", "t1"]
    assert outputs["submitted"] == [{"task_id": "p1", "at": "2026-11-23T12:00:00Z", "count": 1, "kind": "purge"}]
    # read back: the purge is no prefetch row, and the prefetch it follows is still known to be for r1
    assert prior_observations(outputs) == []
    assert prior_contents(outputs) == {(url, "t1"): "@r1"}
    assert outputs["summary"]["counts"]["purging"] == 1


def test_a_change_note_says_what_the_up_does_about_a_changed_version():
    from components.resource.inputs import change_note

    old, new = desired_value(V1, "r41"), desired_value(V2, "r42")
    assert change_note(old, new, purges=True) == \
        f"stale (etag {V1.etag}⇒{V2.etag}); revision r41⇒r42: purge, then prefetch"
    assert change_note(desired_value(None, "r41"), desired_value(None, "r42"), purges=False) == \
        "revision r41⇒r42: prefetch again (onChange: prefetch)"
    assert change_note("warm", desired_value(None, "r1"), purges=True) == "revision (none)⇒r1: purge, then prefetch"
    lastmod = ContentVersion.of_lastmod
    assert change_note(desired_value(lastmod("2026-05-01")), desired_value(lastmod("2026-05-02T08:00:00Z")),
                       purges=True) == "stale (lastmod 2026-05-01⇒2026-05-02T08:00:00Z): purge, then prefetch"
    assert desired_value(lastmod("2026-05-01")) == "warm (lastmod 2026-05-01)"
    assert change_note(old, old, purges=True) is None
    assert change_note("warm", desired_value(V2), purges=True) is None  # no old version to compare
    assert change_note(desired_value(V1, "r41"), desired_value(V1), purges=True) is None  # a revision removed
