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
durations = st.sampled_from(["0s", "90s", "15m", "24h", "7d", "1h30m", "2d12h"])
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
    optional = draw(st.fixed_dictionaries({}, optional={"name": set_names, "freshness": durations, "wait": durations,
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
