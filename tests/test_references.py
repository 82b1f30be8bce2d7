"""Issue #8, part 2: a declaration names its EdgeOne zone by site name and its Tencent CDN scope by
domain; the program resolves both with pulumi-tencentcloud's own data sources.

``FakeTencentCloud`` (tests/fakes.py) answers the data sources' invokes (``Mocks.call`` / the
engine's ``invoke`` hook) the way pulumi-tencentcloud would.
"""

from __future__ import annotations

import pytest

from components.declare.declarations import load_sets, parse_file
from components.declare.model import DeclarationError
from components.declare.references import (
    CDN_DOMAINS_TOKEN,
    ZONES_TOKEN,
    TencentCloudLookup,
    UnresolvedReference,
    resolve_cdn_domain,
    resolve_references,
    resolve_zone_name,
)
from tests.fakes import ZONE_ID, FakeTencentCloud, cdn_domain, run_program, write, zone
from tests.stacks import Stack


class FakeLookup(TencentCloudLookup):
    """The lookup with the invokes answered by a FakeTencentCloud directly (no Pulumi runtime needed)."""

    def __init__(self, cloud: FakeTencentCloud):
        super().__init__()
        self.cloud = cloud

    def zones(self, field: str, value: str):
        from components.declare.references import zone_of

        answer = self.cloud(type("Args", (), {"token": ZONES_TOKEN,
                                              "args": {"filters": [{"name": field, "values": [value]}]}}))
        return [zone_of({_snake(k): v for k, v in z.items()}) for z in answer["zones"]]

    def cdn_domains(self, domain: str):
        from components.declare.references import cdn_domain_of

        answer = self.cloud(type("Args", (), {"token": CDN_DOMAINS_TOKEN, "args": {"domain": domain}}))
        return [cdn_domain_of(d) for d in answer["domainLists"]]


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


TARGETS = ["https://static.example.com/index.html"]


# ------------------------------------------------------------------------------------------
# Declarations: the keys, their rules and their locations
# ------------------------------------------------------------------------------------------


def test_zone_name_is_a_reference_with_its_line(tmp_path):
    path = write(tmp_path, "web.yaml", {"provider": "edgeone", "zoneName": "example.com", "targets": TARGETS})
    decl, problems = parse_file(path)
    assert problems == []
    [dest] = decl.destinations
    assert dest.scope == {"zoneName": "example.com", "mode": "default"}
    [ref] = decl.references
    assert (ref.destination, ref.key, ref.value, ref.line, ref.path) == (0, "zoneName", "example.com", 2, "zoneName")
    assert decl.preflight == "warn"


def test_domain_is_a_reference_and_leaves_the_area_to_it(tmp_path):
    path = write(tmp_path, "cdn.yaml", {"destinations": [{"provider": "tencent-cdn", "domain": "static.example.com"}],
                                        "targets": TARGETS, "preflight": "error"})
    decl, problems = parse_file(path)
    assert problems == [] and decl.preflight == "error"
    [dest] = decl.destinations
    assert "area" not in dest.scope and dest.scope["domain"] == "static.example.com"
    [ref] = decl.references
    assert ref.path == "destinations[0].domain" and ref.line == 3


@pytest.mark.parametrize("doc, path, words", [
    ({"provider": "edgeone", "zone": ZONE_ID, "zoneName": "example.com"}, "zoneName", "not both"),
    ({"provider": "edgeone", "domain": "static.example.com", "zone": ZONE_ID}, "domain", "does not apply"),
    ({"provider": "tencent-cdn", "zoneName": "example.com"}, "zoneName", "does not apply"),
    ({"provider": "ucloud", "domainId": "ucdn-a", "domain": "a.example.com"}, "domain", "does not apply"),
    ({"provider": "edgeone", "zoneName": "not a name"}, "zoneName", "not valid"),
    ({"provider": "edgeone", "zone": ZONE_ID, "preflight": "maybe"}, "preflight", "use one of: warn, error, off"),
])
def test_reference_keys_are_checked(tmp_path, doc, path, words):
    write(tmp_path, "x.yaml", {**doc, "targets": TARGETS})
    with pytest.raises(DeclarationError) as caught:
        load_sets(tmp_path)
    assert [p.path for p in caught.value.problems] == [path]
    assert words in caught.value.problems[0].message


def test_edgeone_still_needs_a_zone_or_a_zone_name(tmp_path):
    write(tmp_path, "x.yaml", {"provider": "edgeone", "targets": TARGETS})
    with pytest.raises(DeclarationError) as caught:
        load_sets(tmp_path)
    [problem] = caught.value.problems
    assert "missing required key 'zone'" in problem.message and "zoneName" in problem.message


# ------------------------------------------------------------------------------------------
# Resolution
# ------------------------------------------------------------------------------------------


def test_zone_name_resolves_to_the_zone_id_and_nothing_else_changes(tmp_path):
    write(tmp_path, "by-name.yaml", {"name": "web", "provider": "edgeone", "zoneName": "example.com",
                                     "targets": TARGETS})
    [by_name] = resolve_references(load_sets(tmp_path), FakeLookup(FakeTencentCloud()))
    (tmp_path / "by-name.yaml").unlink()
    write(tmp_path, "by-id.yaml", {"name": "web", "provider": "edgeone", "zone": ZONE_ID, "targets": TARGETS})
    [by_id] = load_sets(tmp_path)
    # Same destination, same resource name: switching between zone and zoneName changes nothing.
    assert by_name.destinations == by_id.destinations and by_name.references == ()
    assert by_name.destinations[0].label == f"edgeone-{ZONE_ID}"


def test_sets_without_references_are_not_looked_up(tmp_path):
    write(tmp_path, "x.yaml", {"provider": "edgeone", "zone": ZONE_ID, "targets": TARGETS})
    cloud = FakeTencentCloud()
    decls = load_sets(tmp_path)
    assert resolve_references(decls, FakeLookup(cloud)) == decls and cloud.calls == []


def test_domain_resolves_to_its_area_unless_the_set_gives_one(tmp_path):
    cloud = FakeTencentCloud(domains=[cdn_domain("static.example.com", area="overseas")])
    write(tmp_path, "a.yaml", {"provider": "tencent-cdn", "domain": "static.example.com", "targets": TARGETS})
    write(tmp_path, "b.yaml", {"provider": "tencent-cdn", "domain": "static.example.com", "area": "mainland",
                               "targets": TARGETS})
    a, b = resolve_references(load_sets(tmp_path), FakeLookup(cloud))
    assert a.destinations[0].scope["area"] == "overseas" and "domain" not in a.destinations[0].scope
    assert b.destinations[0].scope["area"] == "mainland"  # preflight says whether the domain serves it


def test_zone_name_matching_nothing_or_several_zones_names_the_set_and_line(tmp_path):
    cloud = FakeTencentCloud(zones=[zone("zone-aaa1", "shop.example.com", aliasZoneName="blue"),
                                    zone("zone-bbb2", "shop.example.com", aliasZoneName="green")])
    write(tmp_path, "none.yaml", {"name": "none", "description": "x", "provider": "edgeone",
                                  "zoneName": "example.org", "targets": ["https://static.example.org/"]})
    write(tmp_path, "two.yaml", {"name": "two", "provider": "edgeone", "zoneName": "shop.example.com",
                                 "targets": ["https://shop.example.com/"]})
    with pytest.raises(DeclarationError) as caught:
        resolve_references(load_sets(tmp_path), FakeLookup(cloud))
    text = str(caught.value)
    assert text.startswith("2 problems in prefetch-set declarations:")
    assert f"{tmp_path / 'none.yaml'}:4: zoneName: set 'none': no EdgeOne zone named 'example.org'" in text
    assert f"{tmp_path / 'two.yaml'}:3: zoneName: set 'two': 'shop.example.com' names 2 EdgeOne zones" in text
    assert "zone-aaa1 (shop.example.com, alias blue)" in text and "zone-bbb2" in text


def test_similar_names_from_the_api_filter_do_not_count():
    cloud = FakeTencentCloud(zones=[zone("zone-aaa1", "example.com"), zone("zone-bbb2", "cdn.example.com")],
                             fuzzy_names=True)
    assert resolve_zone_name("example.com", FakeLookup(cloud)).zone_id == "zone-aaa1"


def test_domain_matching_nothing_or_several_is_an_error():
    lookup = FakeLookup(FakeTencentCloud(domains=[cdn_domain("a.example.com"), cdn_domain("a.example.com")]))
    with pytest.raises(UnresolvedReference, match="matches 2 Tencent Cloud CDN domains"):
        resolve_cdn_domain("a.example.com", lookup)
    with pytest.raises(UnresolvedReference, match="no Tencent Cloud CDN domain 'b.example.com'"):
        resolve_cdn_domain("b.example.com", lookup)


def test_two_destinations_resolving_to_one_zone_are_refused(tmp_path):
    write(tmp_path, "x.yaml", {"destinations": [{"provider": "edgeone", "zone": ZONE_ID},
                                                {"provider": "edgeone", "zoneName": "example.com"}],
                               "targets": TARGETS})
    with pytest.raises(DeclarationError, match=r"x.yaml:5: destinations\[1\].zoneName: .*destinations\[0\] and "
                                               r"destinations\[1\] are both edgeone-zone-2o0i4xfimj9g"):
        resolve_references(load_sets(tmp_path), FakeLookup(FakeTencentCloud()))


# ------------------------------------------------------------------------------------------
# Through the program, with the data sources answered by Mocks.call
# ------------------------------------------------------------------------------------------


def test_program_resolves_references_through_the_data_sources(tmp_path):
    sets = tmp_path / "sets"
    sets.mkdir()
    write(sets, "web.yaml", {"name": "web", "provider": "edgeone", "zoneName": "example.com", "targets": TARGETS})
    write(sets, "cdn.yaml", {"name": "cdn", "provider": "tencent-cdn", "domain": "static.example.com",
                             "targets": TARGETS})
    cloud = FakeTencentCloud(domains=[cdn_domain("static.example.com", area="global")])
    from components.program import main

    run = run_program(main, config={"cdn-prefetch:setsDir": str(sets)}, invoke=cloud, preview=True)
    assert run.error is None, run.error
    web = run.dynamic("web-edgeone-" + ZONE_ID)
    assert web.inputs["destination"] == {"provider": "edgeone", "zone": ZONE_ID, "mode": "default"}
    cdn = run.dynamic("cdn-tencent-cdn-global")
    assert cdn.inputs["destination"] == {"provider": "tencent-cdn", "area": "global", "parseM3U8": False}
    # One getZones per reference (and one for EdgeOne preflight, by zone id), one getDomains per lookup name.
    assert cloud.tokens().count(ZONES_TOKEN) == 2
    assert [p for t, p in cloud.calls if t == ZONES_TOKEN][0] == {"filters": [{"name": "zone-name",
                                                                             "values": ["example.com"]}]}
    # The lookup is shared: the domain resolved for the reference is not asked for again by preflight.
    assert cloud.tokens().count(CDN_DOMAINS_TOKEN) == 1


def test_program_reports_an_unresolved_reference_as_a_run_error(tmp_path):
    import pulumi

    from components.program import main
    write(tmp_path, "web.yaml", {"name": "web", "provider": "edgeone", "zoneName": "example.org",
                                 "targets": ["https://static.example.org/"]})
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=FakeTencentCloud(), preview=True)
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error).startswith("1 problem in prefetch-set declarations:")
    assert f"web.yaml:3: zoneName: set 'web': no EdgeOne zone named 'example.org'" in str(run.error)
    assert run.dynamics() == []  # nothing registered


# ------------------------------------------------------------------------------------------
# End to end: the engine stand-in, the real provider host, the sandbox
# ------------------------------------------------------------------------------------------


def test_zone_name_set_is_prefetched_on_the_resolved_zone(tmp_path, sandbox):
    stack = Stack(tmp_path, sandbox)
    cloud = FakeTencentCloud()
    stack.engine.invoke = cloud  # the data sources' answers (Mocks.call)
    urls = [f"https://static.example.com/{i}.js" for i in range(3)]
    stack.declare(urls, destinations=[{"provider": "edgeone", "zoneName": "example.com"}], wait="0s")
    preview = stack.engine.preview()
    assert preview.step(f"web-edgeone-{ZONE_ID}").op == "create"
    stack.engine.up()
    [submit] = sandbox.store.requests(action="CreatePrefetchTask")
    assert submit["params"]["ZoneId"] == ZONE_ID and sorted(submit["params"]["Targets"]) == urls
    # The sandbox endpoint is not the real cloud: preflight asked nothing; only the reference was looked up.
    assert set(cloud.tokens()) == {ZONES_TOKEN}
    # Writing the zone id instead changes nothing at all.
    stack.declare(urls, destinations=[{"provider": "edgeone", "zone": ZONE_ID}], wait="0s")
    assert [s.op for s in stack.engine.preview(refresh=False).steps] == ["same"]


def test_a_failing_data_source_is_a_problem_naming_the_set(tmp_path):
    import pulumi

    from components.program import main
    write(tmp_path, "web.yaml", {"name": "web", "provider": "edgeone", "zoneName": "example.com", "targets": TARGETS})
    cloud = FakeTencentCloud(failure="[TencentCloudSDKError] Code=AuthFailure.SecretIdNotFound")
    run = run_program(main, config={"cdn-prefetch:setsDir": str(tmp_path)}, invoke=cloud, preview=True)
    assert type(run.error) is pulumi.RunError  # the declarations' message, not the invoke's exception
    assert ("web.yaml:3: zoneName: set 'web': could not look up 'example.com': teo.get_zones(zone-name example.com) "
            "failed: invoke of tencentcloud:Teo/getZones:getZones failed: [TencentCloudSDKError] "
            "Code=AuthFailure.SecretIdNotFound") in str(run.error)
