import pytest

from components.model.urls import InvalidUrl, normalize_url


@pytest.mark.parametrize("raw, expected", [
    ("HTTPS://Static.Example.COM/App.js", "https://static.example.com/App.js"),
    ("https://static.example.com/a.js#section", "https://static.example.com/a.js"),
    ("https://user:pass@static.example.com/a.js", "https://static.example.com/a.js"),
    ("https://static.example.com:443/a.js", "https://static.example.com/a.js"),
    ("http://static.example.com:80/a.js", "http://static.example.com/a.js"),
    ("http://static.example.com:8080/a.js", "http://static.example.com:8080/a.js"),
    ("https://static.example.com", "https://static.example.com/"),
    ("https://static.example.com/a.js?v=2&x=Y", "https://static.example.com/a.js?v=2&x=Y"),
    ("  https://static.example.com/a.js  ", "https://static.example.com/a.js"),
])
def test_normalises_scheme_host_userinfo_fragment_and_default_port(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize("raw, words", [
    ("ftp://static.example.com/a.js", "not an http(s) URL"),
    ("static.example.com/a.js", "not an http(s) URL"),
    ("https:///a.js", "has no host"),
    ("https://static.example.com/a b.js", "whitespace"),
    ("", "empty URL"),
    ("https://static.example.com:99999/a.js", "not a valid URL"),
])
def test_rejects_what_cannot_be_prefetched_with_a_reason(raw, words):
    with pytest.raises(InvalidUrl, match=words.replace("(", r"\(").replace(")", r"\)")):
        normalize_url(raw)


# -- the fast path for URLs already in normal form (history rows) ---------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from components.model.urls import _ALREADY_NORMAL, _normalize  # noqa: E402

_URL_CHARS = "aZ09-._~:/?#[]@!$&'()*+,;=% \"\\\t\né"


@settings(max_examples=3000, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTP", "ftp", "http:"]),
       host=st.text("abcXYZ019.-_:@[]%", max_size=12), rest=st.text(_URL_CHARS, max_size=20))
def test_the_fast_path_returns_exactly_what_the_general_normalisation_does(scheme, host, rest):
    raw = f"{scheme}://{host}{rest}"
    try:
        expected = _normalize(raw)
    except Exception as exc:  # noqa: BLE001 - the fast path must fail the same way
        try:
            normalize_url(raw)
        except type(exc):
            return
        raise AssertionError(f"{raw!r}: the general path fails ({exc}), the fast path does not")
    assert normalize_url(raw) == expected
    if _ALREADY_NORMAL.fullmatch(raw):
        assert expected == raw


@pytest.mark.parametrize("raw", ["https://static.example.com/a.js", "http://h/a/b?v=1&x=%20", "https://h/"])
def test_typical_history_urls_take_the_fast_path(raw):
    assert _ALREADY_NORMAL.fullmatch(raw) and normalize_url(raw) == raw


@pytest.mark.parametrize("raw", ["https://h/a?", "https://H/a", "https://h:443/a", "https://u@h/a", "https://h/a#f",
                                 "https://h", "https://h/a b", "https://h/é"])
def test_urls_the_normalisation_would_change_or_refuse_take_the_general_path(raw):
    assert not _ALREADY_NORMAL.fullmatch(raw)
