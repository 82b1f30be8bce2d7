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
