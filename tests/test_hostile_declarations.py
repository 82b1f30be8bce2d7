"""Every bad declaration gives clear problems, never a traceback (issue #5).

Hypothesis writes generated documents (known keys with junk values, unknown keys, wrong shapes,
raw text) to a file and loads it the way the program does.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.declare.declarations import load_sets, parse_file
from components.declare.model import DeclarationError, PrefetchSetDeclaration
from components.declare.yaml_source import MAX_DEPTH, MAX_VALUES

KEYS = ["name", "description", "provider", "zone", "mode", "area", "domainId", "projectId", "userAgent", "layer",
        "parseM3U8", "headers", "destinations", "targets", "origin", "freshness", "wait"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20), st.sampled_from(["edgeone", "tencent-cdn", "ucloud", "zone-abc", "24h", "0s",
                                                           "https://a.example.com/x.js", "ftp://x", "ucdn-a"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(KEYS + ["x", "Provider"]), inner,
                                                                       max_size=3)), max_leaves=8)
documents = st.one_of(st.dictionaries(st.sampled_from(KEYS + ["colour", "Targets"]), values, max_size=7), values)
EXAMPLES = 300


def assert_clean(path: Path, outcome) -> None:
    decl, problems = outcome
    if decl is not None:
        assert isinstance(decl, PrefetchSetDeclaration) and problems == []
        return
    assert problems, "an invalid declaration must say why"
    for problem in problems:
        assert problem.file == str(path) and problem.message and "Traceback" not in problem.message
        assert problem.line is None or problem.line >= 1


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, as_json=st.booleans())
def test_generated_documents_give_problems_not_exceptions(document, as_json):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("set.json" if as_json else "set.yaml")
        path.write_text(json.dumps(document) if as_json else yaml.safe_dump(document), encoding="utf-8")
        assert_clean(path, parse_file(path))
        try:
            load_sets(folder)
        except DeclarationError as error:
            assert str(error).splitlines()[0].endswith("in prefetch-set declarations:")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
                      st.sampled_from(["provider: [", "a: b: c", "- - -", "{", "targets: !!python/object:os.system x",
                                       "provider: edgeone\nprovider: ucloud\n", "\t bad indent", "? complex key", "?",
                                       "1: x", "provider: edgeone\ntargets: {2: 3}", "[? a]"])))
def test_raw_text_gives_problems_not_exceptions(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "set.yaml"
        path.write_text(text, encoding="utf-8")
        assert_clean(path, parse_file(path))


# -- valid declarations: a parser that refused everything would pass the tests above, not these -----------
# What the schema (schemas/prefetch-set.schema.json) documents: each provider's scope and its defaults,
# the URL spellings that name one target, the durations.
SCOPE_DEFAULTS = {"edgeone": {"mode": "default"}, "tencent-cdn": {"area": "mainland", "parseM3U8": False},
                  "ucloud": {}}
IDENTITY = {"edgeone": "zone", "tencent-cdn": "area", "ucloud": "domainId"}
set_names = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
# Each key's durations up to its maximum (maxDuration in the schema).
freshnesses = st.sampled_from(["0s", "90s", "15m", "24h", "7d", "1h30m", "2d12h", "365d", "8760h"])
waits = st.sampled_from(["0s", "90s", "15m", "1h30m", "24h", "1d"])
free_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
scopes = {
    "edgeone": st.fixed_dictionaries({"zone": st.from_regex(r"zone-[a-z0-9]{1,12}", fullmatch=True)},
                                     optional={"mode": st.sampled_from(["default", "edge"])}),
    "tencent-cdn": st.fixed_dictionaries({}, optional={"area": st.sampled_from(["mainland", "overseas", "global"]),
                                                       "parseM3U8": st.booleans(),
                                                       "userAgent": st.text("abcXYZ/1.0 ", min_size=1, max_size=20)}),
    "ucloud": st.fixed_dictionaries({"domainId": st.from_regex(r"ucdn-[A-Za-z0-9]{1,10}", fullmatch=True)},
                                    optional={"projectId": st.from_regex(r"org-[A-Za-z0-9]{1,10}", fullmatch=True)}),
}
destinations = st.one_of(*(scope.map(lambda s, p=provider: {"provider": p, **s}) for provider, scope in scopes.items()))
# (the one spelling a target is kept as, a spelling of it in the file); no dot segment: they are removed
paths = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_./", max_size=16).filter(
    lambda path: not {".", ".."} & set(path.split("/")))


@st.composite
def spelled_targets(draw, host: str) -> tuple[str, str]:
    canonical = f"https://{host}/{draw(paths)}"
    scheme, rest = canonical.split("://", 1)
    host, path = rest.split("/", 1)
    spelling = draw(st.sampled_from(["as is", "upper-case scheme and host", "fragment", "default port"]))
    written = {"as is": canonical, "upper-case scheme and host": f"{scheme.upper()}://{host.upper()}/{path}",
               "fragment": f"{canonical}#top", "default port": f"{scheme}://{host}:443/{path}"}[spelling]
    return canonical, written


@st.composite
def valid_declarations(draw) -> tuple[dict, dict]:
    """(a schema-valid document, what it must parse to)."""
    listed = draw(st.lists(destinations, min_size=1, max_size=3,
                           unique_by=lambda d: (d["provider"], d.get(IDENTITY[d["provider"]], "mainland"))))
    # one host: a UCloud destination takes URLs of its one domain only
    host = draw(st.sampled_from(["static.example.com", "img.example.org"]))
    targets = draw(st.lists(spelled_targets(host), min_size=1, max_size=8))
    document: dict = dict(listed[0]) if len(listed) == 1 and draw(st.booleans()) else {"destinations": listed}
    document["targets"] = [written for _, written in targets]
    optional = draw(st.fixed_dictionaries({}, optional={"name": set_names, "freshness": freshnesses, "wait": waits,
                                                        "description": free_text}))
    document.update(optional)
    kept = list(dict.fromkeys(canonical for canonical, _ in targets))
    expected = {
        "name": optional.get("name", "set"),  # the file is set.yaml / set.json
        "destinations": [{"provider": d["provider"], **SCOPE_DEFAULTS[d["provider"]],
                          **{k: v for k, v in d.items() if k != "provider"}} for d in listed],
        "targets": kept,
        "duplicates": len(targets) - len(kept),
        "freshness": optional.get("freshness", "24h"),
        "wait": optional.get("wait", "10m"),
        "description": optional.get("description", ""),
    }
    return document, expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=valid_declarations(), as_json=st.booleans())
def test_generated_valid_documents_parse_to_the_declared_set(case, as_json):
    document, expected = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("set.json" if as_json else "set.yaml")
        # JSON as an editor writes it: characters as they are (an escaped pair of surrogates, as json.dumps
        # writes a character beyond U+FFFF by default, is refused by the YAML loader that reads JSON too).
        path.write_text(json.dumps(document, ensure_ascii=False) if as_json else yaml.safe_dump(document),
                        encoding="utf-8")
        decl, problems = parse_file(path)
        assert problems == [] and decl is not None, [str(p) for p in problems]
        assert {
            "name": decl.name,
            "destinations": [d.as_dict() for d in decl.destinations],
            "targets": list(decl.targets),
            "duplicates": len(decl.duplicates),
            "freshness": decl.freshness,
            "wait": decl.wait,
            "description": decl.description,
        } == expected
        assert load_sets(folder) == [decl]


# -- issue #17: expansion, depth, size, odd keys and values, odd URLs -------------------------------------
# Raw YAML text: a valid set with hostile lines mixed in. Each must end in a declaration or in problems,
# each problem located and readable (never a traceback, never a value quoted whole, never a password).
# tests/test_declarations.py runs the extreme cases (depth 100,000, bombs of 10**9 values) in a child
# process; bench/hostile_declarations_bench.py measures 1,000 of these, time and memory each.
PASSWORD = "hunter2-pw"
READABLE = 1_000  # characters of one problem, file name and location included


def alias_chain(key: str, levels: int, fan: int) -> tuple[str, str]:
    """``key`` holds a list that repeats the one before ``fan`` times, ``levels`` deep: fan**levels values;
    with what the file must be refused for (or "")."""
    lines = [f"{key}: &a0 [{', '.join(['x'] * fan)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    sizes = [1 + fan]  # values each level stands for: its list and what it lists
    for _ in range(1, levels):
        sizes.append(1 + fan * sizes[-1])
    return "\n".join(lines), PAST_THE_LIMIT if len(BASE) * 2 + 1 + levels + sum(sizes) > MAX_VALUES else ""


def merge_chain(levels: int, fan: int) -> tuple[str, str]:
    lines = [f"m0: &m0 {{{', '.join(f'k{i}: {i}' for i in range(fan))}}}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * fan)}]}}" for i in range(1, levels)]
    sizes = [1 + 2 * fan]  # a mapping, its keys and values; then a mapping, its key <<, its list, what that lists
    for _ in range(1, levels):
        sizes.append(3 + fan * sizes[-1])
    return "\n".join(lines), PAST_THE_LIMIT if len(BASE) * 2 + 1 + levels + sum(sizes) > MAX_VALUES else ""


def nested(key: str, depth: int, shape: str) -> tuple[str, str]:
    text = {"flow list": "[" * depth + "]" * depth, "flow map": "{a: " * depth + "1" + "}" * depth,
            "block list": "\n" + "".join("  " * (i + 1) + "-\n" for i in range(depth - 1)) + "  " * depth + "- 1"}[shape]
    return f"{key}: {text}", TOO_DEEP if depth + 1 > MAX_DEPTH else ""  # + 1: the set's own mapping


PAST_THE_LIMIT, TOO_DEEP, RECURSIVE = "brings the file past", "nest more than", "inside the value it names"
small_or_huge = st.one_of(st.tuples(st.integers(1, 3), st.integers(1, 8)),
                          st.tuples(st.integers(7, 12), st.integers(8, 12)))
expansions = st.one_of(
    st.builds(lambda key, shape: alias_chain(key, *shape), st.sampled_from(["headers", "targets", "colour"]),
              small_or_huge),
    small_or_huge.map(lambda shape: merge_chain(*shape)),
    st.sampled_from([("colour: &r [1, *r]", RECURSIVE), ("headers: &r {a: *r}", RECURSIVE), ("x: *undefined", ""),
                     ("a: &d 1\nb: &d 2", ""), ("<<: 5", ""), ("<<: [1, 2]", ""),
                     ("<<: {targets: [https://b.example.com/]}", ""), ("=: 1", "")]))
depths = st.builds(nested, st.sampled_from(["headers", "colour", "destinations"]), st.integers(1, 300),
                   st.sampled_from(["flow list", "flow map", "block list"]))
odd_keys = st.sampled_from(["? [a, b]\n: 1", "1: x", "null: x", "'\\u0000': 1", "\"\\x01key\": 1", "? " + "k" * 3_000 +
                            "\n: 1", "true: 1", "2026-01-01: 1", "? {a: 1}\n: 2", "'': 1", f"'https://u:{PASSWORD}@k/': 1",
                            "Provider: edgeone", "targets : []", "PASSWORD: x", "secretAccessKey: abc"])
odd_values = st.builds(lambda key, value: f"{key}: {value}", st.sampled_from([
    "description", "wait", "freshness", "revision", "preflight", "allowPartial", "pace", "safety", "origin",
    "headers", "mode", "name", "colour"]), st.sampled_from([
        "!!int abc", "!!bool maybe", "!!float x", "!!timestamp 2026-99-99", "!!binary 'é'", "!!set {a}", "!!omap [a]",
        "!!python/object:os.system x", "9" * 5_000, "0b" + "1" * 5_000, "1:00" * 1_000, ".inf", "-.nan", "1e400",
        "~", "2026-11-23", "\"\\ud800\"", "\"\\x00\\x07\\x1b[31m\"", "'" + "d" * 20_000 + "'", "[" + "1, " * 3_000 + "1]",
        "{" + ", ".join(f"k{i}: {i}" for i in range(2_000)) + "}", "99999999999999999999d", "366d", "25h", "0s",
        "{pause: 2h}", "{pause: 99999999999999999999999s}", "{batchSize: 0}", "{maxQuotaShare: 1e400}",
        f"{{bucket: b, publicBaseUrl: 'https://u:{PASSWORD}@c.example.com/ x'}}",
        f"{{bucket: b, publicBaseUrl: 'https://c.example.com', endpoint: 'https://u:{PASSWORD}@m:9'}}",
        "{bucket: b, publicBaseUrl: 'https://c.example.com', include: [" + "'*', " * 500 + "'*']}"])).map(
    lambda line: (line, ""))
odd_urls = st.sampled_from([
    f"https://alice:{PASSWORD}@a.example.com/x y", f"ftp://alice:{PASSWORD}@a.example.com/", f"https://:{PASSWORD}@a/",
    f"https://alice:{PASSWORD}@/x", "https://a.example.com/\x7f", "https://a.example.com/\u202e", "https://[::1",
    "https://a.example.com:99999/", "https://bücher.example/x", "https://" + "a" * 300 + ".com/",
    "https://a.example.com/" + "p" * 20_000, "https://a.example.com/%zz", "HTTPS://A.EXAMPLE.COM:443/../x",
    "https://a.example.com\\x", "https://", "http:///x", "https://a.example.com/#" + "f" * 500, "javascript:alert(1)",
    f"https://a.example.com/?token={PASSWORD}@x"]).map(lambda url: ("targets: [" + json.dumps(url) + "]", ""))
hostile_lines = st.one_of(expansions, depths, odd_keys.map(lambda line: (line, "")), odd_values, odd_urls)
BASE = ["provider: edgeone", "zone: zone-abc123", "targets: [https://a.example.com/x]"]


@st.composite
def hostile_documents(draw) -> tuple[str, list[str]]:
    """(text, what it must be refused for: one entry per hostile line, "" where anything goes)."""
    lines, expected = list(BASE), []
    for line, refusal in draw(st.lists(hostile_lines, min_size=1, max_size=3)):
        lines.insert(draw(st.integers(0, len(lines))), line)
        expected.append(refusal)
    return "\n".join(lines) + "\n", expected


def assert_readable(path: Path, outcome) -> None:
    assert_clean(path, outcome)
    for problem in outcome[1]:
        text = str(problem)
        assert len(text) <= READABLE and PASSWORD not in text, text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=hostile_documents())
def test_hostile_documents_give_located_readable_problems(case):
    text, expected = case
    path, decl, problems = parsed(text)
    assert_readable(path, (decl, problems))
    if expected == [expected[0]] and expected[0]:  # one hostile line, which must be refused: at its line
        [problem] = problems
        assert expected[0] in problem.message and problem.line is not None and problem.path, problem
    if any(expected):
        assert decl is None


def parsed(text: str) -> tuple:
    """(path, declaration, problems) of ``text`` in a file of its own, read as the program reads it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "set.yaml"
        path.write_text(text, encoding="utf-8")
        return (path, *parse_file(path))


IDENTITY_VALUES = {"edgeone": st.from_regex(r"zone-[a-z0-9]{1,12}", fullmatch=True),
                   "tencent-cdn": st.sampled_from(["mainland", "overseas", "global"]),
                   "ucloud": st.from_regex(r"ucdn-[A-Za-z0-9]{1,10}", fullmatch=True)}
IDENTITY_KEY = {"edgeone": "zone", "tencent-cdn": "area", "ucloud": "domainId"}


@st.composite
def merged_declarations(draw) -> tuple[str, list[dict]]:
    """(text whose destinations share a base destination through an anchor and merge keys ``<<``, the
    destinations it must parse to): what a user writes to keep several destinations alike."""
    provider = draw(st.sampled_from(sorted(scopes)))
    key = IDENTITY_KEY[provider]
    base = {"provider": provider, **draw(scopes[provider])}
    identities = draw(st.lists(IDENTITY_VALUES[provider], min_size=2, max_size=3, unique=True))
    base[key] = identities[0]
    lines = ["destinations:", f"  - &base {json.dumps(base)}"]
    expected = [{"provider": provider, **SCOPE_DEFAULTS[provider], **base}]
    for identity in identities[1:]:
        merge = draw(st.sampled_from(["*base", "[*base]", "[{}, *base]"]))
        lines.append(f"  - {{<<: {merge}, {key}: {json.dumps(identity)}}}")
        expected.append({**expected[0], key: identity})
    lines += ["targets: &t [https://a.example.com/x]", "description: &d shared", "revision: *d"]
    return "\n".join(lines) + "\n", expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=merged_declarations())
def test_generated_valid_documents_with_anchors_aliases_and_merge_keys_are_accepted(case):
    text, expected = case
    _, decl, problems = parsed(text)
    assert problems == [] and decl is not None, [str(p) for p in problems]
    assert [d.as_dict() for d in decl.destinations] == expected
    assert (decl.description, decl.revision, decl.targets) == ("shared", "shared", ("https://a.example.com/x",))
