"""Issue #8, part 3: preflight warns (or fails the preview) when a target's domain cannot be prefetched.

Pure checks first, then through the program under mocks (data sources answered by Mocks.call),
then one preview through tests/engine.py, whose diagnostics are what the CLI would print.
"""

from __future__ import annotations

import pulumi
import pytest

from components.declare.references import CDN_DOMAINS_TOKEN, ZONES_TOKEN, CdnDomain, Zone
from components.engine.args import PrefetchSetArgs
from components.engine.prefetch_set import PrefetchSet
from components.engine.preflight import (
    PreflightError,
    check_mode,
    domain_findings,
    endpoints_overridden,
    hosts_of,
    parent_wildcard,
    zone_findings,
)
from components.program import main
from tests.engine import EngineError
from tests.fakes import ZONE_ID, FakeTencentCloud, cdn_domain, run_program, write, zone
from tests.stacks import PROJECT, AuditedEngine

HOST = "static.example.com"
URLS = [f"https://{HOST}/index.html", f"https://{HOST}/app.js"]


# ------------------------------------------------------------------------------------------
# Pure checks
# ------------------------------------------------------------------------------------------


def test_hosts_and_wildcards():
    assert hosts_of(["https://B.example.com/x", "http://a.example.com:8080/y", "https://b.example.com/z"]) == [
        "a.example.com", "b.example.com"]
    assert parent_wildcard("a.b.example.com") == "*.b.example.com" and parent_wildcard("example.com") is None
    assert check_mode(None, "x") == "warn" and check_mode(False, "x") == "off"
    with pytest.raises(ValueError, match="preflight 'loud' is not valid"):
        check_mode("loud", "x")


@pytest.mark.parametrize("area, domain, expected", [
    ("mainland", CdnDomain(HOST, "online", "mainland"), []),
    ("overseas", CdnDomain(HOST, "online", "global"), []),
    ("global", CdnDomain(HOST, "online", "global"), []),
    ("mainland", CdnDomain(HOST, "offline", "mainland"),
     [f"{HOST} is not online at Tencent Cloud CDN (status offline); prefetching it fails with "
      "ResourceUnavailable.CdnHostIsNotOnline"]),
    ("overseas", CdnDomain(HOST, "online", "mainland"),
     [f"{HOST} is accelerated in mainland only, but the set prefetches in overseas; change the set's area, or the "
      "domain's acceleration area"]),
    ("global", CdnDomain(HOST, "processing", "overseas"),
     [f"{HOST} is not online at Tencent Cloud CDN (status processing); prefetching it fails with "
      "ResourceUnavailable.CdnHostIsNotOnline",
      f"{HOST} is accelerated in overseas only, but the set prefetches in global (both areas); change the set's "
      "area, or the domain's acceleration area"]),
    ("mainland", CdnDomain("*.example.com", "offline", "mainland"),
     [f"{HOST} (domain *.example.com) is not online at Tencent Cloud CDN (status offline); prefetching it fails "
      "with ResourceUnavailable.CdnHostIsNotOnline"]),
])
def test_cdn_findings(area, domain, expected):
    assert domain_findings(HOST, area, [domain]) == expected


def test_cdn_domain_not_in_the_account():
    [finding] = domain_findings(HOST, "mainland", [])
    assert finding.startswith(f"{HOST} is not a Tencent Cloud CDN domain of this account")


def test_edgeone_findings():
    site = Zone(ZONE_ID, "example.com", type="partial", status="active")
    assert zone_findings(ZONE_ID, [HOST, "example.com"], [site]) == []
    assert zone_findings(ZONE_ID, [HOST], []) == [
        f"EdgeOne zone {ZONE_ID} is not visible to these credentials (teo.get_zones found none); prefetching on it "
        "fails"]
    paused = Zone(ZONE_ID, "example.com", paused=True, status="deactivated", type="full")
    assert zone_findings(ZONE_ID, ["cdn.other.org"], [paused]) == [
        f"EdgeOne zone {ZONE_ID} (example.com) is paused; prefetch tasks fail until it is enabled again",
        f"EdgeOne zone {ZONE_ID} (example.com) is blocked (status deactivated); prefetch tasks fail",
        f"cdn.other.org is not in EdgeOne zone {ZONE_ID} (example.com): the zone only accelerates example.com and "
        "names below it",
    ]
    assert zone_findings(ZONE_ID, ["any.host.org"], [Zone(ZONE_ID, "", type="noDomainAccess")]) == []


def test_endpoints_overridden_reads_the_stack_config():
    seen: dict = {}
    run = run_program(lambda: seen.update(clouds=endpoints_overridden()),
                      config={"cdn-prefetch:endpoints": {"edgeone": "sandbox"}})
    assert run.error is None and seen["clouds"] == {"edgeone"}
    run = run_program(lambda: seen.update(clouds=endpoints_overridden()))
    assert seen["clouds"] == set()


# ------------------------------------------------------------------------------------------
# Through the program (YAML) and the typed API, under mocks
# ------------------------------------------------------------------------------------------


def _cdn_set(folder, **extra):
    write(folder, "cdn.yaml", {"name": "cdn", "provider": "tencent-cdn", "area": "mainland", "targets": URLS, **extra})


def test_offline_domain_warns_in_the_preview_and_the_set_is_still_planned(tmp_path):
    _cdn_set(tmp_path)
    cloud = FakeTencentCloud(domains=[cdn_domain(HOST, status="offline")])
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert run.error is None, run.error
    assert run.warnings() == [
        f"preflight: prefetch set 'cdn' ({tmp_path / 'cdn.yaml'}) on tencent-cdn-mainland: {HOST} is not online at "
        "Tencent Cloud CDN (status offline); prefetching it fails with ResourceUnavailable.CdnHostIsNotOnline"]
    assert run.dynamic("cdn-tencent-cdn-mainland")
    assert cloud.calls == [(CDN_DOMAINS_TOKEN, {"domain": HOST})]  # one lookup per host, not per target


def test_preflight_error_fails_the_preview_and_registers_nothing(tmp_path):
    _cdn_set(tmp_path, preflight="error", area="overseas")
    cloud = FakeTencentCloud(domains=[cdn_domain(HOST, status="offline", area="mainland")])
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert isinstance(run.error, PreflightError) and isinstance(run.error, pulumi.RunError)
    assert str(run.error) == (
        f"preflight failed for prefetch set 'cdn' ({tmp_path / 'cdn.yaml'}) on tencent-cdn-overseas:\n"
        f"  - {HOST} is not online at Tencent Cloud CDN (status offline); prefetching it fails with "
        "ResourceUnavailable.CdnHostIsNotOnline\n"
        f"  - {HOST} is accelerated in mainland only, but the set prefetches in overseas; change the set's area, or "
        "the domain's acceleration area\n"
        "Fix the domain first, or set the set's preflight to warn (or off) to go ahead anyway.")
    assert run.dynamics() == []


@pytest.mark.parametrize("extra, config", [
    ({"preflight": "off"}, {}),
    ({}, {"cdn-prefetch:endpoints": {"tencent-cdn": "sandbox"}}),  # not the real cloud: nothing to check there
])
def test_preflight_off_or_not_the_real_cloud_asks_nothing(tmp_path, extra, config):
    _cdn_set(tmp_path, **extra)
    cloud = FakeTencentCloud(domains=[cdn_domain(HOST, status="offline")])
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path), **config}, invoke=cloud, preview=True)
    assert run.error is None and run.warnings() == [] and cloud.calls == []


def test_a_failing_data_source_is_a_warning_or_an_error(tmp_path):
    _cdn_set(tmp_path)
    cloud = FakeTencentCloud(failure="[TencentCloudSDKError] Code=UnauthorizedOperation")
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert run.error is None, run.error
    assert run.warnings() == [
        f"preflight: prefetch set 'cdn' ({tmp_path / 'cdn.yaml'}) on tencent-cdn-mainland: could not check the "
        f"domains: cdn.get_domains({HOST}) failed: invoke of tencentcloud:Cdn/getDomains:getDomains failed: "
        "[TencentCloudSDKError] Code=UnauthorizedOperation ()"]  # the SDK adds the failure's (property)
    assert run.dynamic("cdn-tencent-cdn-mainland")
    _cdn_set(tmp_path, preflight="error")
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert isinstance(run.error, PreflightError) and "could not check the domains" in str(run.error)


def test_wildcard_domain_serves_its_hosts(tmp_path):
    _cdn_set(tmp_path)
    cloud = FakeTencentCloud(domains=[cdn_domain("*.example.com")])
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert run.error is None and run.warnings() == []
    assert [p["domain"] for _, p in cloud.calls] == [HOST, "*.example.com"]


def test_typed_set_on_a_paused_zone_warns_on_the_component():
    cloud = FakeTencentCloud(zones=[zone(ZONE_ID, "example.com", paused=True)])
    run = run_program(lambda: PrefetchSet("site", PrefetchSetArgs(
        targets=URLS + ["https://elsewhere.org/x"], provider="edgeone", zone=pulumi.Output.from_input(ZONE_ID))),
        invoke=cloud)
    assert run.error is None, run.error
    assert run.warnings() == [
        f"preflight: prefetch set 'site' on edgeone: EdgeOne zone {ZONE_ID} (example.com) is paused; prefetch tasks "
        "fail until it is enabled again",
        f"preflight: prefetch set 'site' on edgeone: elsewhere.org is not in EdgeOne zone {ZONE_ID} (example.com): the "
        "zone only accelerates example.com and names below it",
    ]
    assert cloud.calls == [(ZONES_TOKEN, {"filters": [{"name": "zone-id", "values": [ZONE_ID]}]})]


# ------------------------------------------------------------------------------------------
# Through the engine stand-in: the preview's diagnostics, and a failed preview
# ------------------------------------------------------------------------------------------


def test_engine_preview_shows_the_warning_and_plans_the_create(tmp_path):
    _cdn_set(tmp_path)
    cloud = FakeTencentCloud(domains=[cdn_domain(HOST, status="offline")])
    engine = AuditedEngine(PROJECT, {"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud)
    result = engine.preview()
    assert result.step("cdn-tencent-cdn-mainland").op == "create"
    warnings = [m for s, m in result.diagnostics if s == "warning"]
    assert len(warnings) == 1 and "is not online at Tencent Cloud CDN (status offline)" in warnings[0]

    write(tmp_path, "cdn.yaml", {"name": "cdn", "provider": "tencent-cdn", "targets": URLS, "preflight": "error"})
    with pytest.raises(EngineError) as caught:
        engine.preview()
    assert isinstance(caught.value.program_error, PreflightError)
    assert caught.value.message.startswith("preflight failed for prefetch set 'cdn'")
    assert engine.state == {}
