import pytest

from components.urls import InvalidUrl, normalize_url


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
