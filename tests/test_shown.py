"""How messages quote a declared value: cut, and never with URL userinfo (issue #17)."""

import pytest

from components.model.shown import SHOWN_CHARS, cut, shown

PASSWORD = "s3cr3t"


@pytest.mark.parametrize("text, expected", [
    (f"https://alice:{PASSWORD}@a.example.com/x", "'https://***@a.example.com/x'"),
    (f"HTTP://alice:{PASSWORD}@a.example.com", "'HTTP://***@a.example.com'"),
    (f"https:/alice:{PASSWORD}@a.example.com/", "'https:/***@a.example.com/'"),
    (f"https:\\\\alice:{PASSWORD}@a.example.com/", "'https:***@a.example.com/'"),
    (f"https://alice:pa ss{PASSWORD}@a.example.com/", "'https://***@a.example.com/'"),
    (f"https://al@ice:{PASSWORD}@a.example.com/", "'https://***@a.example.com/'"),
    (f"alice:{PASSWORD}@minio.local:9000", "'alice:***@minio.local:9000'"),  # no scheme: hidden all the same
    (f"https://alice:pa/{PASSWORD}@a.example.com/", "'https://***@a.example.com/'"),  # a "/" in the password
    (f"x://a:{PASSWORD}@b/ y://c:{PASSWORD}@d/", "'x://***@b/ y://***@d/'"),
    ("https://a.example.com/path@version?q=@", "'https://a.example.com/path@version?q=@'"),
])
def test_userinfo_is_hidden(text, expected):
    assert shown(text) == expected


def test_a_userinfo_that_goes_on_past_the_cut_is_hidden_too():
    text = f"https://alice:{PASSWORD * 40}@a.example.com/x"
    assert shown(text) == "'https://***@a.example.com/x'"
    assert PASSWORD not in cut(text, 12) and PASSWORD[:3] not in shown(text, limit=12)
    long_text = "see " + "x" * 200 + " or write to ops@example.com"  # no URL: nothing hidden
    assert shown(long_text) == f"{long_text[:SHOWN_CHARS]!r}… ({len(long_text)} characters)"


def test_long_values_are_cut_saying_how_long_they_were():
    assert shown("a" * 10_000_000) == f"'{'a' * SHOWN_CHARS}'… (10,000,000 characters)"
    assert cut("b" * 100, 10) == "bbbbbbbbbb… (100 characters)"
    assert shown("short") == "'short'" and cut("short") == "short"
    assert shown("bell\x07") == "'bell\\x07'"  # control characters escaped, as repr does


def test_other_values_are_cut_too():
    assert shown(list(range(100))) == "[0, 1, 2, 3, 4, ...]"
    assert shown({"k": ["x" * 200]}) == f"{{'k': ['{'x' * SHOWN_CHARS}'… (200 characters)]}}"
    assert shown(2 ** 20_000) == "<a number of 20,001 bits>"  # Python refuses to write it out
    assert shown([[[[["deep"]]]]]) == "[[[[...]]]]"
    assert (shown(None), shown(True), shown(1.5)) == ("None", "True", "1.5")
