"""Issue #8, part 1: the typed PrefetchSet API (and the YAML path it shares), under pulumi.runtime.set_mocks.

Programs run under mocks with ``run_program`` (tests/fakes.py), which records every RegisterResource
request as the engine would receive it: inputs *with unknowns kept*, dependencies, property dependencies.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

import dill
import pulumi
import pulumi.runtime
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.declare.declarations import load_sets
from components.engine.args import PrefetchSetArgs
from components.engine.prefetch_set import PrefetchSet, ShardResource
from components.engine.spec import PROGRAM_SOURCE, PrefetchSetError, normalize_targets
from components.model.status import TargetState, TargetStatus, parse_time
from components.plan import shards
from components.plan.reconcile import Plan
from components.provider import PrefetchProvider, check_inputs
from components.resource.audit import audit_entry, drifted_targets, merge_shard_entries, set_summary
from components.resource.inputs import ShardInputs, targets_digest
from components.resource.outputs import DRIFTED_LIST_LIMIT, build_outputs
from tests.fakes import DOMAIN_TYPE, ZONE_ID, ZONE_TYPE, FakeTencentCloud, cdn_domain, no_unknowns, run_program, write

URLS = ["https://Static.Example.com/index.html", "https://static.example.com/assets/app.js#top",
        "https://static.example.com/index.html"]
NORMALISED = ["https://static.example.com/index.html", "https://static.example.com/assets/app.js"]


def no_preflight(**args: Any) -> PrefetchSetArgs:
    return PrefetchSetArgs(preflight="off", **args)  # type: ignore[typeddict-item]


# ------------------------------------------------------------------------------------------
# Typed API: same inputs as the YAML path
# ------------------------------------------------------------------------------------------


def test_typed_set_registers_exactly_what_the_yaml_set_does(tmp_path):
    (tmp_path / "web.yaml").write_text(
        "name: web\nprovider: edgeone\nzone: zone-2o0i4xfimj9g\nfreshness: 12h\nwait: 2m\npreflight: off\ntargets:\n"
        + "".join(f"  - {u}\n" for u in URLS))
    [decl] = load_sets(tmp_path)

    yaml_run = run_program(lambda: PrefetchSet.from_declaration(decl))
    typed_run = run_program(lambda: PrefetchSet("web", no_preflight(
        targets=URLS, provider="edgeone", zone=ZONE_ID, freshness="12h", wait="2m")))
    assert yaml_run.error is None and typed_run.error is None, (yaml_run.error, typed_run.error)
    from_yaml, typed = yaml_run.dynamic(f"web-edgeone-{ZONE_ID}"), typed_run.dynamic(f"web-edgeone-{ZONE_ID}")
    expected = ShardInputs.from_declaration(decl, decl.destinations[0]).to_props()
    for reg in (from_yaml, typed):
        assert {k: v for k, v in reg.inputs.items() if k != "__provider"} == expected
        assert reg.parent.endswith("cdnprefetch:index:PrefetchSet::web")
    assert list(expected["targets"]) == NORMALISED
    assert typed_run.warnings() == ["PrefetchSet 'web': 1 duplicate targets collapsed "
                                    "(e.g. https://static.example.com/index.html)"]


def test_typed_targets_keep_first_occurrences_in_order_and_every_later_duplicate():
    urls = ["https://b.example.com/1", "HTTPS://B.example.com/1", "https://a.example.com/2",
            "https://b.example.com/1#frag", "https://a.example.com/2", "https://c.example.com/3"]
    targets, duplicates = normalize_targets("web", urls)
    assert targets == ["https://b.example.com/1", "https://a.example.com/2", "https://c.example.com/3"]
    assert duplicates == ["https://b.example.com/1", "https://b.example.com/1", "https://a.example.com/2"]


def test_older_call_with_a_declaration_still_works(tmp_path):
    (tmp_path / "web.yaml").write_text("provider: ucloud\ndomainId: ucdn-abc\ntargets: [https://a.example.com/x]\n")
    [decl] = load_sets(tmp_path)
    run = run_program(lambda: PrefetchSet(decl, pulumi.ResourceOptions()))
    assert run.error is None and run.dynamic("web-ucloud-ucdn-abc")


def test_every_argument_accepts_outputs(tmp_path):
    def program() -> None:
        out = pulumi.Output.from_input
        PrefetchSet("web", PrefetchSetArgs(
            targets=out([out(URLS[0]), URLS[1]]), provider="tencent-cdn", area=out("overseas"),
            parse_m3u8=out(True), headers=[{"name": "X-Warm", "value": out("1")}], freshness=out("1h"),
            wait=out("0s"), description=out("from outputs"), preflight=out("off")))

    run = run_program(program)
    assert run.error is None, run.error
    reg = run.dynamic("web-tencent-cdn")  # the area is an Output, so the label is the provider alone
    assert reg.inputs["destination"] == {"provider": "tencent-cdn", "area": "overseas", "parseM3U8": True,
                                         "headers": [{"name": "X-Warm", "value": "1"}]}
    assert reg.inputs["targets"] == {NORMALISED[0]: "warm", NORMALISED[1]: "warm"}
    assert (reg.inputs["freshness"], reg.inputs["wait"]) == ("1h", "0s")


def test_several_destinations_with_labels():
    def program() -> None:
        zone = pulumi.Output.from_input(ZONE_ID)
        PrefetchSet("multi", PrefetchSetArgs(targets=URLS[:1], preflight="off", destinations=[
            {"provider": "edgeone", "zone": zone, "label": "site"},
            {"provider": "ucloud", "domain_id": "ucdn-abc", "project_id": "org-1"},
        ]))

    run = run_program(program)
    assert run.error is None, run.error
    assert run.dynamic("multi-site").inputs["destination"]["zone"] == ZONE_ID
    assert run.dynamic("multi-ucloud-ucdn-abc").inputs["destination"] == {
        "provider": "ucloud", "domainId": "ucdn-abc", "projectId": "org-1"}


# ------------------------------------------------------------------------------------------
# Inputs from other resources: dependencies and unknowns
# ------------------------------------------------------------------------------------------


def _site_program(targets: Any = None) -> Callable[[], None]:
    def program() -> None:
        import tencentcloud_iac_pulumi as tencentcloud

        zone = tencentcloud.teo.Zone("site", zone_name="example.com", type="partial", area="overseas", plan_id="p")
        domain = tencentcloud.teo.AccelerationDomain(
            "static", zone_id=zone.id, domain_name="static.example.com",
            origin_info={"origin_type": "IP_DOMAIN", "origin": "origin.example.com"})
        PrefetchSet("site", PrefetchSetArgs(targets=targets or URLS, provider="edgeone", zone=zone.id),
                    pulumi.ResourceOptions(depends_on=[domain]))
    return program


def test_zone_id_flows_in_and_depends_on_reaches_the_dynamic_resource():
    run = run_program(_site_program(), invoke=lambda args: {"zones": []})
    assert run.error is None, run.error
    domain, zone = run.of_type(DOMAIN_TYPE), run.of_type(ZONE_TYPE)
    reg = run.dynamic("site-edgeone")
    assert reg.inputs["destination"] == {"provider": "edgeone", "zone": ZONE_ID, "mode": "default"}
    assert domain.urn in reg.dependencies and zone.urn in reg.dependencies
    assert reg.property_dependencies["destination"] == [zone.urn]


def test_unknown_zone_id_in_a_new_stack_preview_plans_a_create():
    calls: list = []
    run = run_program(_site_program(), preview=True, zone_id=None, invoke=lambda a: calls.append(a) or {})
    assert run.error is None, run.error
    reg = run.dynamic("site-edgeone")
    assert isinstance(reg.inputs["destination"]["zone"], Unknown)  # an unknown is sent, never read
    assert reg.inputs["destination"]["provider"] == "edgeone"
    # Only the zone is unknown: the targets (and everything else) are shown in the preview.
    assert reg.inputs["targets"] == {url: "warm" for url in NORMALISED}
    assert no_unknowns({k: v for k, v in reg.inputs.items() if k != "destination"})
    assert calls == []  # preflight cannot check an unknown zone, so it does not ask
    assert run.of_type(DOMAIN_TYPE).urn in reg.dependencies


def test_provider_check_accepts_the_planned_inputs_when_known():
    run = run_program(_site_program(), invoke=lambda args: {"zones": []})
    reg = run.dynamic("site-edgeone")
    assert check_inputs({k: v for k, v in reg.inputs.items() if k != "__provider"}) == []


def test_provider_check_accepts_an_unknown_zone_during_preview():
    # What the engine's Check gets in the preview of a new stack: the zone is pulumi.output.Unknown.
    run = run_program(_site_program(), preview=True, zone_id=None)
    news = run.dynamic("site-edgeone").inputs
    assert check_inputs({k: v for k, v in news.items() if k != "__provider"}) == []
    checked = PrefetchProvider().check({}, dict(news))
    assert checked.failures == [] and isinstance(checked.inputs["destination"]["zone"], Unknown)


def test_provider_is_pickled_by_reference():
    run = run_program(_site_program(), invoke=lambda args: {"zones": []})
    blob = run.dynamic("site-edgeone").inputs["__provider"]
    blob = blob["value"] if rpc.is_rpc_secret(blob) else blob
    raw = base64.b64decode(blob)
    assert b"components.provider" in raw and b"PrefetchProvider" in raw and len(blob) < 400
    assert type(dill.loads(raw)).__module__ == "components.provider"


# ------------------------------------------------------------------------------------------
# Clear errors, naming the set
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, args, words", [
    ("web", {"targets": ["ftp://static.example.com/a.js"], "provider": "edgeone", "zone": ZONE_ID},
     "PrefetchSet 'web': 1 invalid target:\n  - targets[0]: 'ftp://static.example.com/a.js' is not an http(s) URL"),
    ("web", {"targets": "https://a.example.com/", "provider": "edgeone", "zone": ZONE_ID},
     "targets must be a list of URLs"),
    ("web", {"targets": URLS, "provider": "edgeone"}, "zone is required for provider edgeone"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": "example.com"},
     "PrefetchSet 'web': zone = 'example.com' is not valid; EdgeOne only: the site's zone id"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "area": "mainland"},
     "area does not apply to provider edgeone"),
    ("web", {"targets": URLS, "provider": "tencent-cdn", "prefetch_media_segments": "on"},
     "prefetch_media_segments does not apply to provider tencent-cdn"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "prefetch_media_segments": "yes"},
     "PrefetchSet 'web': prefetch_media_segments = 'yes' is not valid; use one of: on, off"),
    ("web", {"targets": URLS, "provider": "akamai"}, "provider = 'akamai' is not valid"),
    ("web", {"targets": URLS}, "missing the CDN destination"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "destinations": []}, "not both"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "freshness": "1 day"},
     "PrefetchSet 'web': freshness: '1 day' is not a duration"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "wait": "25h"},
     "PrefetchSet 'web': wait: '25h' is longer than 24h, the longest allowed here"),  # the schema's maxDuration
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "freshness": "366d"},
     "PrefetchSet 'web': freshness: '366d' is longer than 365d"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "zones": "x"}, "unknown argument 'zones'"),
    ("web", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID, "preflight": "loud"},
     "preflight 'loud' is not valid"),
    ("Web Site", {"targets": URLS, "provider": "edgeone", "zone": ZONE_ID}, "PrefetchSet name 'Web Site' is not valid"),
    ("web", {"targets": URLS, "destinations": [{"provider": "edgeone", "zone": ZONE_ID, "label": "a"},
                                               {"provider": "ucloud", "domain_id": "ucdn-x", "label": "a"}]},
     "two destinations are both named 'a'"),
    ("web", {"targets": ["https://a.example.com/1", "https://b.example.com/2"], "provider": "ucloud",
             "domain_id": "ucdn-x"},
     "PrefetchSet 'web': 1 target a destination's cloud would refuse:\n  - 'https://b.example.com/2': destination "
     "ucloud-ucdn-x: host b.example.com differs from a.example.com ('https://a.example.com/1')"),
    ("web", {"targets": ["https://a.example.com/" + "x" * 8000], "provider": "tencent-cdn"},
     "destination tencent-cdn-mainland: 'https://a.example.com/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'… (8,022 "
     "characters) is 8,022 characters long once normalised; Tencent Cloud CDN takes URLs of at most 8,000"),
])
def test_bad_plain_arguments_fail_at_once_with_the_set_named(name, args, words):
    with pytest.raises(PrefetchSetError) as caught:
        PrefetchSet(name, args)  # checked before anything is registered: no runtime needed
    assert words in str(caught.value)
    assert isinstance(caught.value, pulumi.RunError)  # the CLI prints it without a traceback


def test_bad_target_from_an_output_fails_the_run_with_the_same_message():
    run = run_program(lambda: PrefetchSet("web", PrefetchSetArgs(
        targets=pulumi.Output.from_input(["https://ok.example.com/", "mailto:x@example.com"]),
        provider="edgeone", zone=ZONE_ID, preflight="off")))
    assert isinstance(run.error, PrefetchSetError)
    # "x@" reads as userinfo: redacted, as a password would be
    assert ("PrefetchSet 'web': 1 invalid target:\n  - targets[1]: 'mailto:***@example.com' is not an http(s) URL"
            in str(run.error))


def test_bad_zone_from_an_output_fails_the_run():
    run = run_program(lambda: PrefetchSet("web", PrefetchSetArgs(
        targets=URLS, provider="edgeone", zone=pulumi.Output.from_input("site_id"))))
    assert isinstance(run.error, PrefetchSetError) and "zone = 'site_id' is not valid" in str(run.error)


# ------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------


def _outputs(total_warm: int, drifted: list) -> Callable[[dict], dict]:
    def outputs(state: dict) -> dict:
        counts = {"warm": total_warm, "failed": len(drifted)}
        return {"summary": {"version": 1, "total": total_warm + len(drifted), "counts": counts,
                            "warm_ratio": 0.5, "in_sync": not drifted, "verified_at": "2026-11-23T10:00:00Z",
                            "digest": "sha256:x"},
                "drifted": drifted, "drifted_total": len(drifted), "submitted": [{"task_id": "t1", "at": "x",
                                                                                  "count": 2}],
                "observed": {}}
    return outputs


def test_typed_outputs_summarise_every_destination():
    failed = {"url": NORMALISED[1], "state": "failed", "status": "failed: x", "reason": "x", "task_id": "t1",
              "at": "2026-11-23T10:00:00Z"}
    seen: dict = {}

    def program() -> None:
        made = PrefetchSet("web", PrefetchSetArgs(targets=URLS, preflight="off", description="d", destinations=[
            {"provider": "edgeone", "zone": ZONE_ID}, {"provider": "ucloud", "domain_id": "ucdn-abc"}]))
        pulumi.Output.all(made.summary, made.drifted, made.drifted_total, made.in_sync, made.audit).apply(
            lambda values: seen.update(zip(("summary", "drifted", "total", "in_sync", "audit"), values)))

    run = run_program(program, outputs=_outputs(1, [failed]))
    assert run.error is None, run.error
    assert seen["summary"]["total"] == 4 and seen["summary"]["counts"]["warm"] == 2
    assert seen["summary"]["counts"]["failed"] == 2 and seen["summary"]["in_sync"] is False
    assert seen["summary"]["destinations"] == 2 and seen["summary"]["verified_at"] == "2026-11-23T10:00:00Z"
    assert seen["drifted"] == [{"destination": f"edgeone-{ZONE_ID}", **failed}, {"destination": "ucloud-ucdn-abc",
                                                                                 **failed}]
    assert seen["total"] == 2 and seen["in_sync"] is False
    assert seen["audit"]["source"] == PROGRAM_SOURCE and seen["audit"]["targets"] == 2
    assert [d["provider"] for d in seen["audit"]["destinations"]] == ["edgeone", "ucloud"]


def test_summary_of_nothing_yet():
    assert set_summary([None]) == {"total": 0, "counts": set_summary([])["counts"], "warm_ratio": 1.0,
                                   "in_sync": False, "destinations": 0, "verified_at": ""}
    assert drifted_targets(["a"], [None]) == []


def test_destination_still_takes_set_inputs():
    assert issubclass(ShardResource, pulumi.dynamic.Resource)


# ------------------------------------------------------------------------------------------
# Shards: a large plain set is several resources per destination, reported as one destination
# ------------------------------------------------------------------------------------------

MANY = [f"https://static.example.com/assets/{i:03d}.js" for i in range(300)]
FAILING = set(MANY[::2])  # 150 drifted targets: more than one destination's drifted list holds
AT = parse_time("2026-11-23T10:00:00Z")


def _plan(urls: list, failing: set = FAILING) -> Plan:
    return Plan({url: TargetStatus(url, TargetState.FAILED, "t-fail", AT, "origin returned HTTP 502")
                 if url in failing else TargetStatus(url, TargetState.WARM, "t-warm", AT) for url in urls})


def _entry(urls: list, verified_at: str = "2026-11-23T10:05:00Z", submitted: list = ()) -> dict:
    """records.audit_entry of what the provider outputs for a resource holding ``urls``."""
    inputs = ShardInputs("web", {"provider": "edgeone", "zone": ZONE_ID}, tuple(sorted(urls)), "24h", "2m")
    return audit_entry(build_outputs(inputs, _plan(sorted(urls)), verified_at=parse_time(verified_at),
                                     submitted=list(submitted)))


def test_merged_shards_are_the_entry_one_unsharded_resource_would_give():
    parts = shards.split(MANY, 4)
    times = ["2026-11-23T10:05:00Z", "2026-11-23T10:01:00Z", "2026-11-23T10:09:00Z", "2026-11-23T10:03:00Z"]
    merged = merge_shard_entries([_entry(part, at) for part, at in zip(parts, times)], targets_digest(MANY))
    whole = _entry(MANY, "2026-11-23T10:01:00Z")  # verified as of its least recently verified shard
    assert {**merged, "task_ids": None} == {**whole, "task_ids": None}
    assert sorted(merged["task_ids"]) == sorted(whole["task_ids"])  # in shard order, each once
    assert len(merged["drifted"]) == DRIFTED_LIST_LIMIT and merged["drifted_total"] == len(FAILING)
    assert merged["summary"]["counts"]["warm"] == 150 and merged["summary"]["warm_ratio"] == 0.5
    # Each shard's own digest covers its part; the merged one covers the whole set.
    assert all(_entry(part)["summary"]["digest"] != merged["summary"]["digest"] for part in parts)


def test_merged_shards_are_in_sync_only_when_every_shard_is():
    parts = shards.split(MANY, 2)
    warm = [audit_entry(build_outputs(
        ShardInputs("web", {"provider": "edgeone", "zone": ZONE_ID}, tuple(sorted(part)), "24h", "2m"),
        _plan(sorted(part), failing=set()), verified_at=AT, submitted=[])) for part in parts]
    merged = merge_shard_entries(warm, targets_digest(MANY))
    assert merged["summary"]["in_sync"] is True and merged["summary"]["warm_ratio"] == 1.0
    assert merged["drifted"] == [] and merged["drifted_total"] == 0
    half = merge_shard_entries([warm[0], _entry(parts[1])], targets_digest(MANY))
    assert half["summary"]["in_sync"] is False and half["summary"]["total"] == len(MANY)


def test_merged_submits_are_in_time_order_and_task_ids_listed_once():
    first = _entry(MANY[:2], submitted=[{"task_id": "t-b", "at": "2026-11-23T10:02:00Z", "count": 2}])
    second = _entry(MANY[2:4], submitted=[{"task_id": "t-a", "at": "2026-11-23T10:01:00Z", "count": 2},
                                          {"task_id": "t-c", "at": "2026-11-23T10:03:00Z", "count": 1}])
    merged = merge_shard_entries([first, second], targets_digest(MANY[:4]))
    assert [s["task_id"] for s in merged["submitted"]] == ["t-a", "t-b", "t-c"]
    assert merged["task_ids"] == ["t-b", "t-fail", "t-warm", "t-a", "t-c"]


def test_one_shard_is_its_entry_unchanged_and_a_shard_without_outputs_means_not_reported():
    entry = _entry(MANY)
    assert merge_shard_entries([entry], targets_digest(MANY)) == entry
    blank = audit_entry({"destination": {"provider": "edgeone", "zone": ZONE_ID}})
    merged = merge_shard_entries([entry, blank], targets_digest(MANY))
    assert merged["summary"] == {}
    assert set_summary([merged["summary"]])["destinations"] == 0
    with pytest.raises(ValueError):
        merge_shard_entries([], targets_digest(MANY))


def _provider_outputs(state: dict) -> dict:
    """What the provider would output for the registered inputs: half the targets failed, one task per resource."""
    inputs = ShardInputs.from_props(state)
    shard = state.get("shard") or {"index": 0}
    task = {"task_id": f"t-{state['destination']['provider']}-{int(shard['index'])}",
            "at": "2026-11-23T10:00:00Z", "count": len(inputs.targets)}
    outputs = build_outputs(inputs, _plan(list(inputs.targets)), verified_at=AT, submitted=[task])
    return {key: outputs[key] for key in ("observed", "submitted", "summary", "drifted", "drifted_total")}


def _two_destination_set(seen: dict) -> Callable[[], None]:
    def program() -> None:
        made = PrefetchSet("web", PrefetchSetArgs(targets=MANY, preflight="off", destinations=[
            {"provider": "edgeone", "zone": ZONE_ID}, {"provider": "ucloud", "domain_id": "ucdn-abc"}]))
        seen["resources"] = made.destinations
        pulumi.Output.all(made.summary, made.drifted, made.drifted_total, made.audit).apply(
            lambda values: seen.update(zip(("summary", "drifted", "total", "audit"), values)))
    return program


def test_a_large_plain_set_registers_one_resource_per_shard_and_reports_per_destination(monkeypatch):
    monkeypatch.setattr(shards, "SHARD_TARGETS", 40)  # 300 targets: 8 shards per destination
    seen: dict = {}
    run = run_program(_two_destination_set(seen), outputs=_provider_outputs)
    assert run.error is None, run.error
    assert len(run.dynamics()) == 16 and len(seen["resources"]) == 16
    for base in (f"web-edgeone-{ZONE_ID}", "web-ucloud-ucdn-abc"):
        registered = [run.dynamic(base if k == 0 else f"{base}-shard-{k}") for k in range(8)]
        placed: list = []
        for index, reg in enumerate(registered):
            assert reg.inputs["shard"] == {"index": index, "count": 8}
            assert all(shards.shard_of(url, 8) == index for url in reg.inputs["targets"])
            assert set(reg.inputs["targets"].values()) == {"warm"}
            placed.extend(reg.inputs["targets"])
        assert sorted(placed) == MANY  # every target in exactly one shard

    # The outputs are per destination, as for an unsharded set: sharding does not show in them.
    audit = seen["audit"]
    assert audit["targets"] == 300 and len(audit["destinations"]) == 2
    for entry in audit["destinations"]:
        assert entry["summary"]["total"] == 300 and entry["summary"]["counts"]["failed"] == 150
        assert entry["summary"]["digest"] == targets_digest(MANY)
        assert entry["drifted_total"] == 150 and len(entry["drifted"]) == DRIFTED_LIST_LIMIT
        assert len(entry["submitted"]) == 8 and sum(s["count"] for s in entry["submitted"]) == 300
    assert seen["summary"]["destinations"] == 2 and seen["summary"]["total"] == 600
    assert seen["total"] == 300 and len(seen["drifted"]) == 2 * DRIFTED_LIST_LIMIT

    unsharded: dict = {}
    monkeypatch.setattr(shards, "SHARD_TARGETS", 8192)
    run = run_program(_two_destination_set(unsharded), outputs=_provider_outputs)
    assert run.error is None and len(run.dynamics()) == 2
    assert all("shard" not in reg.inputs for reg in run.dynamics())
    for merged, whole in zip(audit["destinations"], unsharded["audit"]["destinations"]):
        assert {k: v for k, v in merged.items() if k not in ("submitted", "task_ids")} == \
               {k: v for k, v in whole.items() if k not in ("submitted", "task_ids")}
    assert seen["summary"] == unsharded["summary"] and seen["drifted"] == unsharded["drifted"]


def test_targets_from_an_output_stay_one_resource_and_the_set_is_told(monkeypatch):
    monkeypatch.setattr(shards, "SHARD_TARGETS", 1)
    run = run_program(lambda: PrefetchSet("web", no_preflight(
        targets=pulumi.Output.from_input(URLS), provider="edgeone", zone=ZONE_ID)))
    assert run.error is None, run.error
    [reg] = run.dynamics()
    assert reg.name == f"web-edgeone-{ZONE_ID}" and "shard" not in reg.inputs
    assert sorted(reg.inputs["targets"]) == sorted(NORMALISED)
    assert [w for w in run.warnings() if "kept in one resource" in w] == [
        "PrefetchSet 'web': 2 targets given as an Output are kept in one resource per destination (a set is split "
        "into shards of about 1 targets only when its targets are a plain list); pass a plain list to shard it"]


def test_preflight_checks_a_sharded_destination_once_and_holds_back_every_shard(tmp_path, monkeypatch):
    from components.program import main

    monkeypatch.setattr(shards, "SHARD_TARGETS", 2)  # 6 targets: 4 shards
    urls = [f"https://static.example.com/{i}.js" for i in range(6)]
    write(tmp_path, "cdn.yaml", {"name": "cdn", "provider": "tencent-cdn", "area": "mainland", "targets": urls})
    cloud = FakeTencentCloud(domains=[cdn_domain("static.example.com", status="offline")])
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert run.error is None, run.error
    assert len(run.dynamics()) == 4 and len(run.warnings()) == 1  # one warning per destination, not per shard
    assert len(cloud.calls) == 1

    write(tmp_path, "cdn.yaml", {"name": "cdn", "provider": "tencent-cdn", "area": "mainland", "targets": urls,
                                 "preflight": "error"})
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert "preflight failed for prefetch set 'cdn'" in str(run.error)
    assert run.dynamics() == []  # no shard went ahead of the check


def test_the_program_warns_of_each_repeated_target_at_its_line(tmp_path):
    from components.program import main

    urls = ["https://static.example.com/a.js", "https://STATIC.example.com/%61.js", "https://static.example.com/b.js"]
    write(tmp_path, "web.yaml", {"name": "web", "provider": "edgeone", "zone": ZONE_ID, "preflight": "off",
                                 "targets": urls})
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, preview=True)
    assert run.error is None, run.error
    [warning] = run.warnings()
    assert warning.startswith(f"{tmp_path / 'web.yaml'}: 1 duplicate targets collapsed, each kept once:\n  - ")
    assert ("web.yaml:7: targets[1]: 'https://STATIC.example.com/%61.js' is the same URL as targets[0] (line 6) "
            "once normalised (RFC 3986)") in warning
