import json
from pathlib import Path

import jsonschema
import pytest

from components.declare.declarations import load_sets
from components.declare.model import DeclarationError
from components.declare.schema import load_schema
from components.model import clouds as clouds_registry

GOOD = """\
provider: edgeone
zone: zone-abc123
targets:
  - https://static.example.com/a.js
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(folder: Path) -> list:
    with pytest.raises(DeclarationError) as info:
        load_sets(folder)
    return info.value.problems


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(load_schema())
    assert load_schema()["$schema"].endswith("2020-12/schema")


def test_valid_set_is_normalised_with_defaults(tmp_path):
    write(tmp_path, "site.yaml", GOOD + "  - HTTPS://Static.Example.com/a.js#top\n  - https://static.example.com/b.js\n")
    [decl] = load_sets(tmp_path)
    assert decl.name == "site"
    [dest] = decl.destinations
    assert (dest.provider, dest.scope, dest.label) == ("edgeone", {"zone": "zone-abc123", "mode": "default"},
                                                       "edgeone-zone-abc123")
    assert decl.targets == ("https://static.example.com/a.js", "https://static.example.com/b.js")
    [repeat] = decl.duplicates
    assert (repeat.path, repeat.line) == ("targets[1]", 5) and "the same URL as targets[0] (line 4)" in repeat.message
    assert (decl.freshness, decl.wait) == ("24h", "10m")


def test_json_declarations_are_accepted(tmp_path):
    write(tmp_path, "api.json", json.dumps({"name": "api", "provider": "edgeone", "zone": "zone-x1",
                                            "targets": ["https://api.example.com/v1/spec.json"], "wait": "0s"}))
    [decl] = load_sets(tmp_path)
    assert decl.name == "api" and decl.wait == "0s"


@pytest.mark.parametrize("key, value, expected", [
    ("zone", "bad zone", "'bad zone' is not valid; expected the site's zone id, e.g. zone-2o0i4xfimj9g"),
    ("domainId", "abc", "'abc' is not valid; expected the accelerated domain's id, e.g. ucdn-abc123"),
])
def test_a_value_of_the_wrong_form_says_what_form_is_expected_in_plain_words(tmp_path, key, value, expected):
    """A key's description starts with which cloud takes it (``EdgeOne only: ...``): the message says only what
    the value should look like, and names keep their capitals (it once read ``expected edgeOne only: ...``)."""
    provider = {"zone": "edgeone", "domainId": "ucloud"}[key]
    write(tmp_path, "a.yaml", f"name: web\nprovider: {provider}\n{key}: {value}\n"
                              "targets: [https://static.example.com/a.js]\n")
    [problem] = problems_of(tmp_path)
    assert (problem.path, problem.line, problem.message) == (key, 3, expected)


def test_three_mistakes_give_three_messages_with_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", """\
provider: edgeone
zone: zone-abc123
targets:
  - https://static.example.com/a.js
  - ftp://static.example.com/b.js
freshness: 24 hours
colour: blue
""")
    problems = problems_of(tmp_path)
    assert len(problems) == 3
    by_path = {p.path: p for p in problems}
    assert set(by_path) == {"targets[1]", "freshness", "colour"}
    assert all(p.file == str(path) for p in problems)
    assert by_path["targets[1]"].line == 5 and "http" in by_path["targets[1]"].message
    assert by_path["freshness"].line == 6 and "24h" in by_path["freshness"].message
    assert by_path["colour"].line == 7 and "unknown key 'colour'" in by_path["colour"].message
    text = str(DeclarationError(problems))
    assert text.startswith("3 problems in prefetch-set declarations:")
    assert f"{path}:5: targets[1]:" in text and "Traceback" not in text


def test_problems_from_every_file_are_reported_together(tmp_path):
    write(tmp_path, "a.yaml", "provider: edgeone\ntargets: [https://x.example.com/]\n")
    write(tmp_path, "b.yaml", "provider: akamai\nzone: zone-a\ntargets: []\n")
    problems = problems_of(tmp_path)
    assert [(Path(p.file).name, p.path) for p in problems] == [("a.yaml", ""), ("b.yaml", "provider")]
    assert "missing required key 'zone'" in problems[0].message
    assert "use one of: edgeone, tencent-cdn, ucloud" in problems[1].message


def test_scope_keys_of_another_provider_are_refused(tmp_path):
    write(tmp_path, "x.yaml", GOOD + "area: overseas\n")
    [problem] = problems_of(tmp_path)
    assert problem.path == "area" and "does not apply" in problem.message and problem.line == 5


def test_the_schemas_scope_rules_refuse_exactly_the_keys_of_the_other_clouds():
    """Editors read the schema's scopeRules, the loader the registry: they say the same (one home, two readers)."""
    rules = {rule["if"]["properties"]["provider"]["const"]: rule["then"]
             for rule in load_schema()["$defs"]["scopeRules"]["allOf"]}
    every = {key for spec in clouds_registry.BUILT_IN for key in spec.scope_keys}  # an installed cloud has its own
    for spec in clouds_registry.BUILT_IN:
        refused = {key for key, value in rules[spec.key].get("properties", {}).items() if value is False}
        assert refused == every - set(spec.scope_keys), spec.key


def test_yaml_syntax_error_names_the_line(tmp_path):
    write(tmp_path, "x.yaml", "provider: edgeone\ntargets:\n  - [unclosed\n")
    [problem] = problems_of(tmp_path)
    assert problem.line is not None and "not valid YAML" in problem.message


def test_duplicate_yaml_keys_are_an_error_not_silently_last_wins(tmp_path):
    write(tmp_path, "x.yaml", GOOD + "zone: zone-other\n")
    [problem] = problems_of(tmp_path)
    assert problem.path == "zone" and problem.line == 5 and "appears twice" in problem.message


def test_set_names_must_be_unique_across_files(tmp_path):
    write(tmp_path, "a.yaml", "name: web\n" + GOOD)
    write(tmp_path, "b.yaml", "name: web\n" + GOOD)
    [problem] = problems_of(tmp_path)
    assert "also used by" in problem.message and problem.file.endswith("b.yaml")


def test_missing_folder_and_empty_folder_say_what_to_do(tmp_path):
    [missing] = problems_of(tmp_path / "nope")
    assert "does not exist" in missing.message and "cdn-prefetch:setsDir" in missing.message
    [empty] = problems_of(tmp_path)
    assert "no prefetch sets found" in empty.message


def test_document_that_is_not_a_mapping(tmp_path):
    write(tmp_path, "x.yaml", "- https://a.example.com/\n")
    [problem] = problems_of(tmp_path)
    assert "must be a mapping" in problem.message and problem.line == 1


def test_provider_not_yet_shipped_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(clouds_registry, "_REGISTRY", {"edgeone": clouds_registry.cloud("edgeone")})
    monkeypatch.setattr(clouds_registry, "_PLUGINS_LOADED", True)
    write(tmp_path, "x.yaml", "provider: ucloud\ndomainId: ucdn-abc\ntargets: [https://a.example.com/x]\n")
    [problem] = problems_of(tmp_path)
    assert "not available in this version" in problem.message and problem.line == 1


def test_example_set_in_the_repo_is_valid():
    sets = load_sets(Path(__file__).resolve().parent.parent / "prefetch-sets")
    assert sets and all(s.targets for s in sets)


def test_several_destinations_for_one_set(tmp_path):
    write(tmp_path, "multi.yaml", """\
destinations:
  - provider: edgeone
    zone: zone-abc123
  - provider: tencent-cdn
    area: overseas
    parseM3U8: true
    headers: [{name: X-Warm, value: "1"}]
  - provider: ucloud
    domainId: ucdn-abc
targets: [https://static.example.com/a.js]
""")
    [decl] = load_sets(tmp_path)
    assert [d.label for d in decl.destinations] == ["edgeone-zone-abc123", "tencent-cdn-overseas", "ucloud-ucdn-abc"]
    assert decl.destinations[1].scope == {"area": "overseas", "parseM3U8": True,
                                          "headers": [{"name": "X-Warm", "value": "1"}]}


def test_destination_problems_name_the_list_item(tmp_path):
    path = write(tmp_path, "multi.yaml", """\
destinations:
  - provider: edgeone
    zone: zone-abc123
  - provider: edgeone
    zone: zone-abc123
    area: global
targets: [https://static.example.com/a.js]
""")
    [problem] = problems_of(tmp_path)
    assert (problem.line, problem.path) == (6, "destinations[1].area")
    assert "does not apply to provider edgeone" in problem.message


def test_prefetch_options_are_taken_by_the_cloud_that_has_them(tmp_path):
    """Issue 20: EdgeOne headers, encodeUrl and prefetchMediaSegments; Cloud CDN layer."""
    write(tmp_path, "opts.yaml", """\
destinations:
  - provider: edgeone
    zone: zone-abc123
    headers: [{name: Accept-Encoding, value: br}]
    encodeUrl: false
    prefetchMediaSegments: "on"
  - provider: tencent-cdn
    area: mainland
    layer: middle
targets: [https://static.example.com/live.m3u8]
""")
    [decl] = load_sets(tmp_path)
    assert decl.destinations[0].scope == {"zone": "zone-abc123", "mode": "default", "encodeUrl": False,
                                          "headers": [{"name": "Accept-Encoding", "value": "br"}],
                                          "prefetchMediaSegments": "on"}
    assert decl.destinations[1].scope == {"area": "mainland", "layer": "middle", "parseM3U8": False}


@pytest.mark.parametrize("destination, path, words", [
    ("{provider: tencent-cdn, area: mainland, prefetchMediaSegments: 'on'}", "destinations[0].prefetchMediaSegments",
     "key 'prefetchMediaSegments' does not apply to provider tencent-cdn; remove it"),
    ("{provider: ucloud, domainId: ucdn-abc, encodeUrl: true}", "destinations[0].encodeUrl",
     "key 'encodeUrl' does not apply to provider ucloud; remove it"),
    ("{provider: ucloud, domainId: ucdn-abc, headers: [{name: X-A, value: '1'}]}", "destinations[0].headers",
     "key 'headers' does not apply to provider ucloud; remove it"),
    ("{provider: edgeone, zone: zone-a, layer: middle}", "destinations[0].layer",
     "key 'layer' does not apply to provider edgeone; remove it"),
    ("{provider: edgeone, zone: zone-a, prefetchMediaSegments: yes}", "destinations[0].prefetchMediaSegments",
     "True is not allowed; use one of: on, off"),
    ("{provider: edgeone, zone: zone-a, encodeUrl: 'yes'}", "destinations[0].encodeUrl", "expected boolean, got text"),
    ("{provider: edgeone, zone: zone-a, headers: [{name: Accept Encoding, value: br}]}",
     "destinations[0].headers[0].name", "'Accept Encoding' is not valid; expected a header name (an RFC 9110 token"),
    ("{provider: tencent-cdn, headers: [{name: X-A, value: \"a\\nb\"}]}", "destinations[0].headers[0].value",
     "is not valid; expected the header's value: printable ASCII"),
    ("{provider: tencent-cdn, layer: edge}", "destinations[0].layer", "'edge' is not allowed; use one of: middle"),
])
def test_a_prefetch_option_on_a_cloud_without_it_or_with_a_bad_value_is_a_located_error(tmp_path, destination,
                                                                                          path, words):
    write(tmp_path, "opts.yaml", f"destinations:\n  - {destination}\ntargets: [https://static.example.com/a.js]\n")
    [problem] = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.path) == (str(tmp_path / "opts.yaml"), 2, path)
    assert words in problem.message


def test_the_same_destination_twice_is_an_error(tmp_path):
    write(tmp_path, "multi.yaml", "destinations:\n  - {provider: edgeone, zone: zone-a}\n"
                                  "  - {provider: edgeone, zone: zone-a}\ntargets: [https://a.example.com/x]\n")
    [problem] = problems_of(tmp_path)
    assert "edgeone-zone-a is listed twice" in problem.message and problem.path == "destinations[1]"


@pytest.mark.parametrize("text, words", [
    ("targets: [https://a.example.com/x]\n", "missing the CDN destination"),
    ("provider: edgeone\nzone: zone-a\ndestinations: [{provider: edgeone, zone: zone-b}]\n"
     "targets: [https://a.example.com/x]\n", "not both"),
])
def test_provider_and_destinations_are_exclusive(tmp_path, text, words):
    write(tmp_path, "x.yaml", text)
    problems = problems_of(tmp_path)
    assert any(words in p.message for p in problems)


# -- origin ---------------------------------------------------------------------------------------
ORIGIN = """\
name: assets
provider: edgeone
zone: zone-abc123
origin:
  endpoint: http://127.0.0.1:9000/
  region: eu-west-1
  bucket: site-assets
  prefix: static/
  include: ["*.js", "*.css"]
  exclude: ["*.map"]
  publicBaseUrl: HTTPS://Static.Example.com/
  credentials:
    config: assets
  mustNotBeEmpty: true
"""


def test_a_set_may_be_an_origin_bucket_instead_of_targets(tmp_path):
    write(tmp_path, "assets.yaml", ORIGIN)
    [decl] = load_sets(tmp_path)
    assert decl.targets == () and decl.content == {}
    origin = decl.origin
    assert (origin.endpoint, origin.region, origin.bucket, origin.prefix) == (
        "http://127.0.0.1:9000", "eu-west-1", "site-assets", "static/")
    assert (origin.include, origin.exclude, origin.public_base_url) == (("*.js", "*.css"), ("*.map",),
                                                                        "https://static.example.com")
    assert (origin.credentials_config, origin.profile, origin.must_not_be_empty, origin.line) == ("assets", None, True, 4)
    assert origin.describe() == "origin s3://site-assets/static/ at http://127.0.0.1:9000 (region eu-west-1)"


def test_origin_defaults(tmp_path):
    write(tmp_path, "a.yaml", GOOD + "origin: {bucket: b, publicBaseUrl: 'https://cdn.example.com/files'}\n")
    [decl] = load_sets(tmp_path)
    origin = decl.origin
    assert (origin.endpoint, origin.region, origin.prefix, origin.include, origin.exclude) == (None, None, "", ("*",), ())
    assert (origin.addressing_style, origin.must_not_be_empty) == ("auto", False)
    assert origin.public_base_url == "https://cdn.example.com/files" and decl.targets == (
        "https://static.example.com/a.js",)
    assert origin.describe() == "origin s3://b/ on AWS S3"


def test_a_set_needs_targets_or_an_origin(tmp_path):
    write(tmp_path, "x.yaml", "provider: edgeone\nzone: zone-abc123\n")
    [problem] = problems_of(tmp_path)
    assert problem.line == 1 and "add 'targets'" in problem.message and "an 'origin'" in problem.message


def test_origin_mistakes_name_the_nested_key_and_line(tmp_path):
    write(tmp_path, "x.yaml", """\
provider: edgeone
zone: zone-abc123
origin:
  bucket: b
  publicBaseUrl: ftp://cdn.example.com
  include: []
  colour: blue
  credentials: {profile: p, config: c}
""")
    problems = {p.path: p for p in problems_of(tmp_path)}
    assert set(problems) == {"origin.publicBaseUrl", "origin.include", "origin.colour"}
    assert problems["origin.publicBaseUrl"].line == 5
    assert problems["origin.include"].line == 6
    colour = problems["origin.colour"]
    assert colour.line == 7 and "unknown key 'colour'" in colour.message and "publicBaseUrl" in colour.message
    assert "prefetch-sets" not in colour.message and "destinations" not in colour.message  # the origin's own keys


def test_origin_missing_bucket_says_what_it_is(tmp_path):
    write(tmp_path, "x.yaml", GOOD + "origin: {publicBaseUrl: 'https://cdn.example.com'}\n")
    [problem] = problems_of(tmp_path)
    assert problem.path == "origin" and problem.line == 5
    assert problem.message.startswith("missing required key 'bucket': Bucket name")


def test_profile_and_config_credentials_are_exclusive(tmp_path):
    write(tmp_path, "x.yaml", GOOD + "origin: {bucket: b, publicBaseUrl: 'https://c.example.com', "
                                     "credentials: {profile: p, config: c}}\n")
    [problem] = problems_of(tmp_path)
    assert problem.path == "origin.credentials" and "not both" in problem.message


@pytest.mark.parametrize("where", ["origin.credentials", "origin", ""])
def test_secret_values_are_never_accepted_in_a_declaration_nor_echoed(tmp_path, where):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    origin = {"bucket": "b", "publicBaseUrl": "https://c.example.com"}
    doc = {"provider": "edgeone", "zone": "zone-abc123", "targets": ["https://a.example.com/x"], "origin": origin}
    holder = {"origin.credentials": origin.setdefault("credentials", {}), "origin": origin, "": doc}[where]
    holder["secretAccessKey"] = secret
    write(tmp_path, "x.json", json.dumps(doc))
    [problem] = problems_of(tmp_path)
    assert "never accepted" in problem.message and "cdn-prefetch:originCredentials" in problem.message
    assert secret not in str(DeclarationError([problem]))


# -- URLs: equivalence, what the clouds take, origin endpoints (issue 17) -------------------------
def test_equivalent_targets_are_one_target_and_each_repeat_is_a_located_warning(tmp_path):
    write(tmp_path, "site.yaml", GOOD + """\
  - https://static.example.com/%7euser/./a%2ejs/../b.js
  - https://static.example.com/~user/b.js
  - https://Static.Example.com:443/%7Euser/b.js#x
  - https://static.example.com/a.js
""")
    [decl] = load_sets(tmp_path)
    assert decl.targets == ("https://static.example.com/a.js", "https://static.example.com/~user/b.js")
    assert [(p.path, p.line) for p in decl.duplicates] == [("targets[2]", 6), ("targets[3]", 7), ("targets[4]", 8)]
    assert decl.duplicates[1].message == (
        "'https://Static.Example.com:443/%7Euser/b.js#x' is the same URL as targets[1] (line 5) once normalised "
        "(RFC 3986): https://static.example.com/~user/b.js counts once; remove one of them")
    assert decl.duplicates[2].message.startswith("repeats targets[0] (line 4): https://static.example.com/a.js")


def test_the_duplicates_warning_names_five_repeats_and_counts_the_rest(tmp_path):
    path = write(tmp_path, "site.yaml", GOOD + "  - https://static.example.com/a.js\n" * 7)
    [decl] = load_sets(tmp_path)
    lines = decl.duplicates_warning().splitlines()
    assert lines[0] == f"{path}: 7 duplicate targets collapsed, each kept once:"
    assert lines[1] == f"  - {path}:5: targets[1]: repeats targets[0] (line 4): https://static.example.com/a.js " \
                       "counts once; remove one of them"
    assert len(lines) == 7 and lines[-1] == "  - ...and 2 more"


def test_an_internationalised_target_is_kept_in_the_form_the_clouds_take(tmp_path):
    write(tmp_path, "site.yaml", GOOD + "  - https://Bücher.example/café.js?q=ü\n")
    [decl] = load_sets(tmp_path)
    assert decl.targets[1] == "https://xn--bcher-kva.example/caf%C3%A9.js?q=%C3%BC"


@pytest.mark.parametrize("raw, words", [
    ("https://static.example.com/a\u0000.js", "contains a control character (U+0000) at character 29; remove it"),
    ("https://static.example.com/a\u202e.js", "contains an invisible formatting character (U+202E)"),
    ("https://static.example.com/a\u00a0.js", "contains whitespace (U+00A0) at character 29; percent-encode it"),
    ("https://xn--a.\u00fc.example/", "not a valid internationalised domain name"),
    ("https://*.example.com/a.js", "is not a host name"),
])
def test_targets_no_cloud_takes_are_located_errors(tmp_path, raw, words):
    path = write(tmp_path, "x.json", json.dumps({"provider": "edgeone", "zone": "zone-abc123",
                                                 "targets": ["https://static.example.com/ok.js", raw]}))
    [problem] = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.path) == (str(path), 1, "targets[1]") and words in problem.message


def test_urls_too_long_for_a_destination_s_cloud_are_located_errors_naming_it(tmp_path):
    long_url = "https://static.example.com/" + "a" * 8100
    write(tmp_path, "x.yaml", f"""\
destinations:
  - {{provider: edgeone, zone: zone-abc123}}
  - {{provider: tencent-cdn, area: mainland}}
targets:
  - https://static.example.com/ok.js
  - {long_url}
""")
    [problem] = problems_of(tmp_path)
    assert (problem.path, problem.line) == ("targets[1]", 6)
    assert problem.message.startswith("destination tencent-cdn-mainland: 'https://static.example.com/aaaa")
    assert "is 8,127 characters long once normalised; Tencent Cloud CDN takes URLs of at most 8,000" in problem.message
    assert len(str(problem)) < 400  # the URL is cut in the message
    write(tmp_path, "x.yaml", f"provider: edgeone\nzone: zone-abc123\ntargets: [{long_url}]\n")
    [decl] = load_sets(tmp_path)  # EdgeOne takes 8,192
    assert decl.targets == (long_url,)


def test_hosts_outside_the_edgeone_site_named_by_zone_name_are_located_errors(tmp_path):
    write(tmp_path, "x.yaml", """\
provider: edgeone
zoneName: example.com
targets:
  - https://static.example.com/a.js
  - https://example.org/b.js
origin: {bucket: b, publicBaseUrl: 'https://cdn.example.net/files'}
""")
    problems = problems_of(tmp_path)
    assert [(p.path, p.line) for p in problems] == [("targets[1]", 5), ("origin.publicBaseUrl", 6)]
    assert problems[0].message.startswith("destination edgeone-example.com: host example.org is not example.com or "
                                          "below it")


def test_a_ucloud_destination_takes_one_host_its_origin_included(tmp_path):
    write(tmp_path, "x.yaml", """\
provider: ucloud
domainId: ucdn-abc123
targets:
  - https://static.example.com/a.js
  - http://static.example.com/b.js
  - https://img.example.com/c.png
origin: {bucket: b, publicBaseUrl: 'https://files.example.com'}
""")
    problems = problems_of(tmp_path)
    assert [(p.path, p.line) for p in problems] == [("targets[2]", 6), ("origin.publicBaseUrl", 7)]
    assert "host img.example.com differs from static.example.com (targets[0])" in problems[0].message
    assert "must start with http(s)://<that domain>/" in problems[0].message


def test_target_messages_never_quote_userinfo(tmp_path):
    write(tmp_path, "a.yaml", GOOD + "  - ftp://alice:hunter2-secret@static.example.com/b.js\n")  # the schema's
    write(tmp_path, "b.yaml", GOOD + "  - https://alice:hunter2-secret@static.example.com/c d.js\n")  # ours
    text = str(DeclarationError(problems_of(tmp_path)))
    assert "a.yaml:5: targets[1]: 'ftp://***@static.example.com/b.js' is not valid" in text
    assert "hunter2" not in text and "https://***@static.example.com/c d.js" in text


def test_an_origin_endpoint_with_credentials_is_a_located_error_pointing_to_origin_credentials(tmp_path):
    path = write(tmp_path, "x.yaml", ORIGIN.replace("http://127.0.0.1:9000/", "http://AKIA1:wJalrSECRET@minio:9000"))
    [problem] = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.path) == (str(path), 5, "origin.endpoint")
    assert "carries credentials" in problem.message and "cdn-prefetch:originCredentials" in problem.message
    assert "wJalr" not in str(problem) and "AKIA1" not in str(problem)


@pytest.mark.parametrize("endpoint", ["http://169.254.169.254", "http://[fe80::1]:9000", "http://100.100.100.200",
                                      "http://metadata.google.internal", "http://2852039166/"])
def test_an_origin_endpoint_at_a_metadata_address_needs_allow_link_local(tmp_path, endpoint):
    write(tmp_path, "x.yaml", ORIGIN.replace("http://127.0.0.1:9000/", endpoint))
    [problem] = problems_of(tmp_path)
    assert (problem.path, problem.line) == ("origin.endpoint", 5)
    assert "instance metadata" in problem.message and "origin.allowLinkLocal: true" in problem.message
    write(tmp_path, "x.yaml", ORIGIN.replace("http://127.0.0.1:9000/", endpoint) + "  allowLinkLocal: true\n")
    [decl] = load_sets(tmp_path)
    assert decl.origin.allow_link_local is True


# ------------------------------------------------------------------------------------------
# Issue #6: a declaration of 100,000 targets is read in one libyaml parse, and the schema
# validator is spared the 100,000 items that the schema's own item rule already decides.
# (Their cost is measured by bench/program_bench.py; these tests hold the results equal.)
# ------------------------------------------------------------------------------------------

import yaml  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st

from components.declare.schema import bounded_lists, schema_view, validation_errors  # noqa: E402
from components.declare.yaml_source import parse_yaml

YAML_SAMPLES = [
    GOOD,
    GOOD + "freshness: 2h\nwait: 0s\n",
    '{"provider": "edgeone", "zone": "z-1", "targets": ["https://a.example.com/x"]}',
    "provider: edgeone\nzone: z\ntargets: [https://a.example.com/, 3, null, {k: v}]\norigin:\n  bucket: b\n",
    "",
    "# only a comment\n",
    "- a\n- b\n",
    "provider: edgeone\nprovider: ucloud\n",
    "a: &x 1\nb: *x\nc: yes\nd: off\ne: 2026-11-23\n",
    # merge keys: one mapping, several (the first listed wins), an explicit key beside them (it wins), nested
    "a: &x {k: 1, j: 2}\nb: {<<: *x, k: 3}\nc: {<<: [*x, {k: 5, m: 6}], z: 0}\nd: &y {<<: *x}\ne: {<<: *y, =: 9}\n",
]
LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if getattr(yaml, "__with_libyaml__", False) else [])


def lines_of(node):
    """Every node's kind, value (scalars) and 1-based line, depth first."""
    if node is None:
        return []
    out = [(type(node).__name__, node.value if isinstance(node, yaml.ScalarNode) else None, node.start_mark.line + 1)]
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out += lines_of(key) + lines_of(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += lines_of(item)
    return out


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("text", YAML_SAMPLES)
def test_one_parse_gives_what_safe_load_and_compose_give(text, loader):
    data, node = parse_yaml(text, loader)
    assert data == yaml.safe_load(text)
    assert lines_of(node) == lines_of(yaml.compose(text, Loader=yaml.SafeLoader))


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("text, line", [
    ("provider: edgeone\ntargets:\n  - [unclosed\n", 4),
    ("provider: edgeone\nzone: a: b\n", 2),
    ("a:\n  - x\n b: 2\n", 3),
    ("a: 1\n\tb: 2\n", 2),
])
def test_one_parse_raises_the_yaml_error_at_the_line_either_loader_names(text, line, loader):
    """libyaml words its problems differently from the pure-Python loader; the line the user is sent to is the same."""
    with pytest.raises(yaml.YAMLError) as info:
        parse_yaml(text, loader)
    assert info.value.problem_mark.line + 1 == line
    with pytest.raises(yaml.YAMLError) as pure:
        yaml.safe_load(text)
    assert pure.value.problem_mark.line == info.value.problem_mark.line


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
def test_one_parse_refuses_a_second_document_as_safe_load_does(loader):
    with pytest.raises(yaml.YAMLError):
        parse_yaml("a: 1\n---\nb: 2\n", loader)  # one set per file


def test_a_large_set_reports_the_bad_target_with_its_line_and_index(tmp_path):
    urls = [f"https://static.example.com/{i}.js" for i in range(5000)]
    urls[3210] = "static.example.com/no-scheme.js"
    write(tmp_path, "big.yaml", "provider: edgeone\nzone: zone-abc123\ntargets:\n" + "".join(f"  - {u}\n" for u in urls))
    problems = problems_of(tmp_path)
    assert {(p.path, p.line) for p in problems} == {("targets[3210]", 3 + 3210 + 1)}
    assert all("http" in p.message for p in problems)


# parse_document reports every error but these on its own terms (their messages quote the whole document).
SKIPPED_VALIDATORS = ("allOf", "anyOf", "if", None, "false", "oneOf", "$ref")


def validator_errors(data, schema=None):
    """What parse_document takes from the plain validator: path, keyword and message of every error it
    reports, path and keyword of the ones it skips."""
    return described(jsonschema.Draft202012Validator(schema or load_schema()).iter_errors(data))


def described(errors):
    return sorted((list(map(str, e.absolute_path)), str(e.validator),
                   "" if e.validator in SKIPPED_VALIDATORS else e.message) for e in errors)


TARGET_ITEMS = st.one_of(
    st.sampled_from(["https://a.example.com/x.js", "HTTP://b.example.com/", "http://", "ftp://c.example.com/",
                     "https//d.example.com/", " https://e.example.com/", "", "https://f.example.com/\u00e9"]),
    st.text(max_size=12), st.integers(), st.none(), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))


DESTINATIONS = st.sampled_from([
    {"provider": "edgeone", "zone": "zone-abc123"}, {"provider": "edgeone"}, {"zone": "zone-abc123"},
    {"provider": "tencent-cdn", "area": "mainland"}, {"provider": "ucloud", "domainId": "ucdn-x"},
    {"provider": "edgeone", "zone": "zone-abc123", "area": "overseas"}, {"provider": "akamai", "zone": "z"},
    {"destinations": [{"provider": "edgeone", "zone": "zone-abc123"}]}, {"destinations": "no"},
    {"provider": "edgeone", "zone": "zone-abc123", "origin": {"bucket": "b"}}, {},
])


@settings(max_examples=400, deadline=None)
@given(st.lists(TARGET_ITEMS, max_size=8), DESTINATIONS)
def test_schema_view_changes_no_error_of_the_validator(targets, destination):
    data = {**destination, "targets": targets}
    assert described(validation_errors(data)) == validator_errors(data)


def test_schema_view_hands_over_the_first_target_and_the_ones_the_item_rule_fails():
    schema = load_schema()
    good = {"provider": "edgeone", "zone": "z", "targets": [f"https://a.example.com/{i}" for i in range(100)]}
    view, kept = schema_view(good, schema)
    assert view["targets"] == good["targets"][:1] and kept == [0]
    assert view["provider"] == "edgeone" and len(good["targets"]) == 100  # not mutated
    bad = {**good, "targets": good["targets"][:50] + ["mailto:x@example.com"] + good["targets"][50:] + [7]}
    view, kept = schema_view(bad, schema)
    assert view["targets"] == [good["targets"][0], "mailto:x@example.com", 7] and kept == [0, 50, 101]
    assert [(list(e.absolute_path), e.instance) for e in validation_errors(bad) if e.absolute_path[0] == "targets"] \
        == [(["targets", 50], "mailto:x@example.com"), (["targets", 101], 7)]


@pytest.mark.parametrize("extra", [{"maxItems": 3}, {"uniqueItems": True}, {"items": {"type": "string", "maxLength": 5}}])
def test_schema_view_validates_the_whole_list_when_the_schema_asks_more_than_it_checks(extra):
    schema = json.loads(json.dumps(load_schema()))
    schema["properties"]["targets"].update(extra)
    data = {"provider": "edgeone", "zone": "z", "targets": [f"https://a.example.com/{i}" for i in range(10)]}
    assert schema_view(data, schema) == (data, None)


@pytest.mark.parametrize("rule", [
    {"if": {"properties": {"targets": {"maxItems": 2}}}, "then": {"required": ["origin"]}},
    {"dependentSchemas": {"targets": {"required": ["zone"]}}},
    {"not": {"properties": {"targets": {"contains": {"const": "https://a.example.com/9"}}}}},
])
def test_schema_view_validates_the_whole_list_when_another_rule_of_the_schema_looks_at_targets(rule):
    schema = json.loads(json.dumps(load_schema()))
    schema.setdefault("allOf", []).append(rule)
    data = {"provider": "edgeone", "zone": "z", "targets": [f"https://a.example.com/{i}" for i in range(10)]}
    assert schema_view(data, schema) == (data, None)
    assert described(validation_errors(data, schema)) == validator_errors(data, schema)


# ------------------------------------------------------------------------------------------
# Issue #17: a declaration is read with bounded work whatever it holds (aliases, merge keys,
# nesting, size); messages quote values cut and without userinfo; a link out of the sets
# folder is refused; durations have maxima.
# ------------------------------------------------------------------------------------------

import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from datetime import timedelta  # noqa: E402

from components.declare.model import MAX_PROBLEMS  # noqa: E402
from components.declare.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES  # noqa: E402
from components.model.durations import LONGEST, parse_duration  # noqa: E402
from components.model.shown import cut  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HEAD = "provider: edgeone\nzone: zone-abc123\ntargets: [https://a.example.com/x]\n"


def alias_bomb(levels: int = 9, fan: int = 10) -> str:
    """Under 1 KB: each level lists the one before ``fan`` times, so the last stands for fan**levels values."""
    lines = [f"headers: &l0 [{', '.join(['x'] * fan)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 9, fan: int = 10) -> str:
    """The same with merge keys: PyYAML's constructor would copy fan**levels key/value pairs."""
    lines = [f"m0: &m0 {{{', '.join(f'k{i}: {i}' for i in range(fan))}}}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * fan)}]}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# name -> (text, line, path, what the message says); line None: the file as a whole
HOSTILE = {
    "alias bomb": (alias_bomb(), 5, "l4[9]", f"brings the file past {MAX_VALUES:,} values"),
    "merge bomb": (merge_bomb(), 5, "m4.<<[4]", f"brings the file past {MAX_VALUES:,} values"),
    "recursive alias": ("targets: &t [https://a.example.com/, *t]\n", 1, "targets[1]", "inside the value it names"),
    "flow depth 30,000": (HEAD + "headers: " + "[" * 30_000 + "]" * 30_000 + "\n", 4, "headers" + "[0]" * (MAX_DEPTH - 1),
                          f"nest more than {MAX_DEPTH} deep"),
    "flow depth 100,000": ("x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", 1, "x" + ".a" * (MAX_DEPTH - 1),
                           f"nest more than {MAX_DEPTH} deep"),
    "block depth 100,000": ("- " * 100_000 + "x\n", 1, "[0]" * MAX_DEPTH, f"nest more than {MAX_DEPTH} deep"),
    "indented depth 1,000": ("".join(" " * i + "a:\n" for i in range(1_000)) + " " * 1_000 + "1\n", MAX_DEPTH + 1,
                             "a" + ".a" * (MAX_DEPTH - 1), f"nest more than {MAX_DEPTH} deep"),
    "a number of 5,000 digits": (HEAD + "pace: {batchSize: " + "9" * 5_000 + "}\n", 4, "",
                                 "a number of 5,000 characters"),
    "a file over the size limit": (HEAD + "#" * MAX_FILE_BYTES + "\n", None, "", "larger than 16 MiB"),
}

CHILD = """
import json, resource, sys
from pathlib import Path
from components.declare.declarations import load_sets
from components.declare.model import DeclarationError
out = {}
for folder in sys.argv[1:]:
    try:
        load_sets(folder)
        out[folder] = []
    except DeclarationError as error:
        out[folder] = [(p.line, p.path, p.message) for p in error.problems]
print(json.dumps(out))
"""


def test_hostile_files_are_refused_at_the_line_quickly_and_in_little_memory(tmp_path):
    """In a child process: PyYAML's composer crashes it at depth 30,000 and the bombs expand to 10**9 values,
    so a regression kills the child or runs out of its time (60 s) or memory (1 GB), and fails here."""
    folders = {}
    for index, (name, (text, *_)) in enumerate(HOSTILE.items()):
        folders[name] = tmp_path / str(index)
        folders[name].mkdir()
        (folders[name] / "set.yaml").write_text(text, encoding="utf-8")
    assert len(alias_bomb().encode()) < 1024 and len(merge_bomb().encode()) < 1024
    child = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, folders.values())], capture_output=True, text=True, timeout=60,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30)))
    assert child.returncode == 0, child.stderr[-2000:]
    found = json.loads(child.stdout)
    for name, (_, line, path, says) in HOSTILE.items():
        [(got_line, got_path, message)] = found[str(folders[name])]
        assert (got_line, got_path, says in message) == (line, cut(path, 120), True), (name, got_line, got_path,
                                                                                        message)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 200, peak_mb


def test_merge_keys_merge_and_a_key_beside_them_overrides_without_appearing_twice(tmp_path):
    write(tmp_path, "m.yaml", """\
destinations:
  - &cdn {provider: tencent-cdn, area: mainland, userAgent: warmer/1}
  - {<<: *cdn, area: overseas}
  - <<: [{area: global}, *cdn]
targets: [https://a.example.com/x]
""")
    [decl] = load_sets(tmp_path)
    assert [(d.scope["area"], d.scope["userAgent"]) for d in decl.destinations] == [
        ("mainland", "warmer/1"), ("overseas", "warmer/1"), ("global", "warmer/1")]


def test_a_key_a_merge_brings_is_located_where_it_is_written(tmp_path):
    write(tmp_path, "m.yaml", """\
destinations:
  - &eo {provider: edgeone,
         zone: not-a-zone}
  - {<<: *eo, mode: edge}
targets: [https://a.example.com/x]
""")
    problems = problems_of(tmp_path)
    assert {(p.path, p.line) for p in problems} == {("destinations[0].zone", 3), ("destinations[1].zone", 3)}


def test_a_duplicate_key_in_an_aliased_mapping_is_reported_once(tmp_path):
    write(tmp_path, "d.yaml", """\
provider: tencent-cdn
headers:
  - &h {name: X-A, value: "1",
        name: X-B}
  - *h
targets: [https://a.example.com/x]
""")
    [problem] = problems_of(tmp_path)
    assert (problem.path, problem.line, "appears twice" in problem.message) == ("headers[0].name", 4, True)


@pytest.mark.parametrize("value, says", [("!!int abc", "'abc' cannot be read as int"),
                                         ("!!bool maybe", "'maybe' cannot be read as bool"),
                                         ("!!timestamp 2026-13-45", "'2026-13-45' cannot be read as timestamp"),
                                         ("!!float ''", "'' cannot be read as float")])
def test_an_explicit_tag_a_value_does_not_fit_is_a_located_error(tmp_path, value, says):
    write(tmp_path, "t.yaml", HEAD + f"wait: {value}\n")
    [problem] = problems_of(tmp_path)
    assert problem.line == 4 and says in problem.message and "not valid YAML" in problem.message


def test_messages_quote_long_values_cut(tmp_path):
    long_key = "k" * 100_000  # an explicit key (?): an implicit one may not be longer than 1,024 characters
    write(tmp_path, "l.yaml", HEAD + "description: " + "d" * 1_000_000 + f"\n? {long_key}\n: 1\nrevision: [{'1, ' * 5000}1]\n")
    problems = {p.line: p for p in problems_of(tmp_path)}
    assert set(problems) == {4, 5, 7}
    assert "(1,000,000 characters) is too long: at most 500 characters" in problems[4].message
    assert "(100,000 characters)" in problems[5].path and "(100,000 characters)" in problems[5].message
    assert problems[7].message.startswith("expected string, got a list")
    assert all(len(str(p)) < 800 for p in problems.values()), [len(str(p)) for p in problems.values()]


def test_messages_never_show_userinfo(tmp_path):
    password = "pa55-w0rd-x"
    write(tmp_path, "u.yaml", "\n".join([
        "provider: edgeone", "zone: zone-abc123",
        f"targets: ['https://alice:{password}@a.example.com/a b', 'ftp://bob:{password}@a.example.com/']",
        f"origin: {{bucket: b, publicBaseUrl: 'https://carol:{password}@c.example.com/?q'}}",
        f"'https://dave:{password}@d.example.com/': 1", f"'//erin:{password}@e.example.com': 2", ""]))
    problems = problems_of(tmp_path)
    assert {p.line for p in problems} == {3, 4, 5, 6}
    text = str(DeclarationError(problems))
    assert password not in text and text.count("***@") >= 5, text


def test_a_file_lists_at_most_so_many_problems_and_says_there_are_more(tmp_path):
    for name, bad in (("schema.yaml", "ftp://a.example.com/"), ("urls.yaml", "https://")):
        folder = tmp_path / name
        folder.mkdir()
        write(folder, name, HEAD.replace("targets: [https://a.example.com/x]\n", "targets:\n")
              + f"  - {bad}\n" * (3 * MAX_PROBLEMS))
        problems = problems_of(folder)
        assert len(problems) == MAX_PROBLEMS + 1 and "more problems than the 50 listed" in problems[-1].message
        assert [p.line for p in problems[:-1]] == list(range(4, 4 + MAX_PROBLEMS))


def test_a_link_out_of_the_sets_folder_is_refused_naming_it(tmp_path):
    sets, elsewhere = tmp_path / "sets", tmp_path / "elsewhere"
    sets.mkdir()
    elsewhere.mkdir()
    write(elsewhere, "secret.yaml", GOOD)
    (sets / "out.yaml").symlink_to(elsewhere / "secret.yaml")
    (sets / "gone.yml").symlink_to(elsewhere / "missing.yaml")
    (sets / "sub").mkdir()
    write(sets / "sub", "in.yaml", "name: inside\n" + GOOD)
    (sets / "in.yaml").symlink_to(Path("sub") / "in.yaml")
    problems = problems_of(sets)
    assert sorted(Path(p.file).name for p in problems) == ["gone.yml", "out.yaml"]
    assert all("outside the sets folder" in p.message for p in problems)
    os.remove(sets / "out.yaml")
    os.remove(sets / "gone.yml")
    (tmp_path / "via-link").symlink_to(sets)  # a sets folder that is itself a link is followed
    assert [s.name for s in load_sets(tmp_path / "via-link")] == ["inside"]


@pytest.mark.parametrize("key, longest", [("freshness", "365d"), ("wait", "24h"), ("pace", "1h")])
def test_durations_are_accepted_up_to_their_maximum_and_refused_past_it(tmp_path, key, longest):
    def line(value):
        return f"pace: {{pause: {value}}}\n" if key == "pace" else f"{key}: {value}\n"
    write(tmp_path, "at.yaml", "name: at\n" + HEAD + line(longest))
    assert [s.name for s in load_sets(tmp_path)] == ["at"]
    for past in (format_past(longest), "9" * 30 + "d"):
        write(tmp_path, "at.yaml", HEAD + line(past))
        [problem] = problems_of(tmp_path)
        assert (problem.line, problem.path) == (4, "pace.pause" if key == "pace" else key)
        assert f"is too long: at most {longest}" in problem.message


def format_past(longest):
    return f"{int(parse_duration(longest).total_seconds()) + 1}s"


def test_every_duration_maximum_of_the_schema_is_within_the_longest_duration():
    found = []

    def walk(node):
        if isinstance(node, dict):
            found.extend([node["maxDuration"]] if "maxDuration" in node else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema())
    assert sorted(found) == ["1h", "24h", "365d"]
    assert max(parse_duration(m) for m in found) == LONGEST == timedelta(days=365)


def test_the_validator_sees_a_long_list_or_many_unknown_keys_cut_and_reports_the_same_first_problems():
    """13,000 destinations cost jsonschema 5 s, and 70,000 unknown keys a message naming each: it is handed
    maxItems + 1 items and MAX_PROBLEMS + 1 unknown keys, and finds what it finds in the whole."""
    header = {"name": "X-A", "value": "1"}
    data = {"destinations": [{"provider": "tencent-cdn", "headers": [header] * 40, "zone": 1}] * 30,
            "targets": ["https://a.example.com/x"], **{f"k{i}": i for i in range(200)}}
    view = bounded_lists(data, load_schema())
    assert len(view["destinations"]) == 11 and len(view["destinations"][0]["headers"]) == 21
    assert len(view) == 2 + MAX_PROBLEMS + 1 and len(data) == 202 and len(data["destinations"]) == 30
    whole = {(tuple(path), keyword) for path, keyword, _ in validator_errors(data)}
    seen = {(tuple(path), keyword) for path, keyword, _ in described(validation_errors(data))}
    assert seen <= whole and ("destinations",) in {path for path, keyword in seen if keyword == "maxItems"}
    assert {path for path, keyword in seen if keyword == "maxItems"} == {
        ("destinations",), *(("destinations", str(i), "headers") for i in range(11))}
    assert {path[:2] for path, _ in seen if path[-1:] == ("zone",)} == {("destinations", str(i)) for i in range(11)}
