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

from components.declare.schema import schema_view  # noqa: E402
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
    """What parse_document takes from the validator: path, keyword and message of every error it reports,
    path and keyword of the ones it skips."""
    validator = jsonschema.Draft202012Validator(schema or load_schema())
    return sorted((list(map(str, e.absolute_path)), str(e.validator),
                   "" if e.validator in SKIPPED_VALIDATORS else e.message) for e in validator.iter_errors(data))


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
    assert validator_errors(schema_view(data, load_schema())) == validator_errors(data)


def test_schema_view_cuts_only_a_list_the_item_rule_passes_whole():
    schema = load_schema()
    good = {"provider": "edgeone", "zone": "z", "targets": [f"https://a.example.com/{i}" for i in range(100)]}
    assert schema_view(good, schema)["targets"] == good["targets"][:1]
    assert schema_view(good, schema)["provider"] == "edgeone" and len(good["targets"]) == 100  # not mutated
    one_bad = {**good, "targets": good["targets"] + ["mailto:x@example.com"]}
    assert schema_view(one_bad, schema) is one_bad
    not_text = {**good, "targets": good["targets"] + [7]}
    assert schema_view(not_text, schema) is not_text


@pytest.mark.parametrize("extra", [{"maxItems": 3}, {"uniqueItems": True}, {"items": {"type": "string", "maxLength": 5}}])
def test_schema_view_validates_the_whole_list_when_the_schema_asks_more_than_it_checks(extra):
    schema = json.loads(json.dumps(load_schema()))
    schema["properties"]["targets"].update(extra)
    data = {"provider": "edgeone", "zone": "z", "targets": [f"https://a.example.com/{i}" for i in range(10)]}
    assert schema_view(data, schema) is data


@pytest.mark.parametrize("rule", [
    {"if": {"properties": {"targets": {"maxItems": 2}}}, "then": {"required": ["origin"]}},
    {"dependentSchemas": {"targets": {"required": ["zone"]}}},
    {"not": {"properties": {"targets": {"contains": {"const": "https://a.example.com/9"}}}}},
])
def test_schema_view_validates_the_whole_list_when_another_rule_of_the_schema_looks_at_targets(rule):
    schema = json.loads(json.dumps(load_schema()))
    schema.setdefault("allOf", []).append(rule)
    data = {"provider": "edgeone", "zone": "z", "targets": [f"https://a.example.com/{i}" for i in range(10)]}
    assert schema_view(data, schema) is data
    assert validator_errors(schema_view(data, schema), schema) == validator_errors(data, schema)
