"""URL normalisation and acceptance (components/model/urls.py)."""

import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.model.clouds import cloud
from components.model.shown import redact_userinfo, shown
from components.model.urls import InvalidUrl, _already_normal, _normalize, cloud_problems, host_of, normalize_url


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


@pytest.mark.parametrize("raw, expected", [
    # RFC 3986 §6.2.2.1: percent-encodings in upper case
    ("https://h/a%2fb%3a?q=%3d", "https://h/a%2Fb%3A?q=%3D"),
    # §6.2.2.2: percent-encoded unreserved characters decoded (in path and query)
    ("https://h/%7Euser/%41%62%2D%2E%5F%7e.js?x=%31", "https://h/~user/Ab-._~.js?x=1"),
    # §6.2.2.3: dot segments removed, never above the root, also when they were percent-encoded
    ("https://h/a/./b/../c.js", "https://h/a/c.js"),
    ("https://h/a/b/../../../c.js", "https://h/c.js"),
    ("https://h/a/%2E%2E/b.js", "https://h/b.js"),
    ("https://h/a/b/..", "https://h/a/"),
    ("https://h/.", "https://h/"),
    ("https://h/a/.hidden/..b", "https://h/a/.hidden/..b"),  # not dot segments
    # a literal "%" that starts no escape is left as it is
    ("https://h/100%.js", "https://h/100%.js"),
    # internationalised host -> punycode (IDNA 2008 / UTS #46); non-ASCII path and query -> UTF-8 escapes
    ("https://Bücher.Example/é.js?q=ü", "https://xn--bcher-kva.example/%C3%A9.js?q=%C3%BC"),
    ("https://straße.de/", "https://xn--strae-oqa.de/"),  # non-transitional, as browsers
    ("https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"),
    # IPv6 literals in their one spelling (RFC 5952), default port dropped
    ("http://[2001:DB8:0:0::1]:80/a", "http://[2001:db8::1]/a"),
    ("http://[::1]:9000/a", "http://[::1]:9000/a"),
])
def test_equivalent_spellings_meet_in_one_normal_form(raw, expected):
    assert normalize_url(raw) == expected
    assert normalize_url(expected) == expected


@pytest.mark.parametrize("raw, words", [
    ("ftp://static.example.com/a.js", "not an http(s) URL"),
    ("static.example.com/a.js", "not an http(s) URL"),
    ("https:///a.js", "has no host"),
    ("https://static.example.com/a b.js", "contains whitespace (U+0020) at character 29; percent-encode it"),
    ("", "empty URL"),
    ("https://static.example.com:99999/a.js", "not a valid URL"),
])
def test_rejects_what_cannot_be_prefetched_with_a_reason(raw, words):
    with pytest.raises(InvalidUrl) as error:
        normalize_url(raw)
    assert words in str(error.value)


@pytest.mark.parametrize("char, what", [
    ("\x00", "a control character (U+0000)"), ("\x07", "a control character (U+0007)"),
    ("\t", "a control character (U+0009)"), ("\n", "a control character (U+000A)"),
    ("\x7f", "a control character (U+007F)"), ("\x85", "a control character (U+0085)"),
    ("\u200b", "an invisible formatting character (U+200B)"), ("\u202e", "an invisible formatting character (U+202E)"),
    ("\ufeff", "an invisible formatting character (U+FEFF)"), ("\u00a0", "whitespace (U+00A0)"),
    ("\u3000", "whitespace (U+3000)"), ("\u2028", "a line separator (U+2028)"),
])
@pytest.mark.parametrize("where", ["https://h/a{}b.js", "https://h{}x/a.js", "https://h/a.js?q={}", "https://h/a.js{}"])
def test_control_format_and_whitespace_characters_are_refused_naming_the_character(char, what, where):
    raw = where.format(char)
    with pytest.raises(InvalidUrl) as error:
        normalize_url(raw)
    message = str(error.value)
    assert f"contains {what} at character {raw.index(char) + 1}" in message
    assert char not in message  # shown escaped, so the message itself stays readable


@pytest.mark.parametrize("raw, words", [
    ("https://*.example.com/a.js", "is not a host name"),
    ("https://static_assets.example.com/a.js", "is not a host name"),
    ("https://b%C3%BCcher.example/a.js", "is not a host name"),
    ("https://a..example.com/a.js", "is not a host name"),
    ("https://" + "a" * 64 + ".example.com/", "is not a host name"),
    ("https://" + "a." * 127 + "com/", "is not a host name"),  # 257 characters
    ("https://static.example.com./a.js", "ends with a dot"),
    ("https://xn--a.ü.example/", "not a valid internationalised domain name"),
    ("https://a\u0301\u0300-.example/", "not a valid internationalised domain name"),
    ("https://[fe80::1%25eth0]/", "IPv6 host that is not valid"),
    ("https://[12345::]/", "not a valid URL"),
])
def test_hosts_no_cloud_would_take_are_refused(raw, words):
    with pytest.raises(InvalidUrl, match=words.replace("(", r"\(")):
        normalize_url(raw)


# -- messages -------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    "ftp://alice:s3cr3t-pw@static.example.com/a.js",       # scheme refused
    "https://alice:s3cr3t-pw@static.example.com:99x/a",    # port refused
    "https://alice:s3cr3t-pw@*.example.com/a",             # host refused
    "https://alice:s3cr3t-pw@static.example.com/a b",      # whitespace refused
    "https://alice:s3cr3t-pw@static.example.com/a\x00",    # control character refused
    "https://alice:s3cr3t-pw@[::g]/a",                     # IPv6 refused
    "https://alice:s3/cr3t-pw@static.example.com/a",       # a "/" in the password: no parser sees userinfo
    "alice:s3cr3t-pw@static.example.com/a.js",             # no scheme
])
def test_messages_about_invalid_urls_never_quote_userinfo(raw):
    with pytest.raises(InvalidUrl) as error:
        normalize_url(raw)
    message = str(error.value)
    assert "s3cr3t" not in message and "cr3t-pw" not in message and "***" in message


@settings(max_examples=150, deadline=None)
@given(password=st.text("abcXYZ019-_.~!$&'()*+,;=:%", min_size=6, max_size=16),
       rest=st.sampled_from(["/a b", "/a\x01", ":99999/", "/", "x:1:2/"]), scheme=st.sampled_from(["https", "ftp"]))
def test_no_password_reaches_a_message(password, rest, scheme):
    raw = f"{scheme}://user:{password}@static.example.com{rest}"
    try:
        normalize_url(raw)
    except InvalidUrl as error:
        assert password not in str(error)
    assert password not in redact_userinfo(raw) and password not in shown(raw)


def test_long_values_are_cut_in_messages():
    url = "https://static.example.com/" + "a" * 50_000 + " b"
    with pytest.raises(InvalidUrl) as error:
        normalize_url(url)
    message = str(error.value)
    assert len(message) < 400 and "(50,029 characters)" in message and "https://static.example.com/aaa" in message


@pytest.mark.parametrize("value", ["https://user:" + "p" * 2_000_000 + "@h/", "a://b:c" * 300_000 + "@",
                                   "a://b:c/ " * 300_000 + "@", "https://" + "@" * 1_000_000],
                         ids=["long password", "many schemes", "many values", "many @"])
def test_a_hostile_value_is_shown_in_linear_time_with_its_userinfo_hidden(value):
    started = time.perf_counter()
    text = shown(value)
    assert time.perf_counter() - started < 1.0 and len(text) < 200 and "pppp" not in text
    assert text.endswith(f"… ({len(value):,} characters)") or text in ("'https://***@h/'", "'https://***@'")


def test_redaction_keeps_the_rest_of_the_url_readable():
    assert redact_userinfo("https://u:p@h.example.com/a@b") == "https://***@h.example.com/a@b"
    assert redact_userinfo("https://h.example.com/npm/@babel/core") == "https://h.example.com/npm/@babel/core"
    assert redact_userinfo("http://h:8080/a@b") == "http://h:8080/a@b"
    assert redact_userinfo("see https://a:b@c/ and ftp://d:e@f/") == "see https://***@c/ and ftp://***@f/"
    assert shown("https://h/\x00") == repr("https://h/\x00")
    assert shown(5) == "5" and shown(["https://u:p@h/"]) == "['https://***@h/']"


# -- idempotence and the fast path ----------------------------------------------------------------
_URL_CHARS = "aZ09-._~:/?#[]@!$&'()*+,;=% \"\\\t\né%2e%2E%7e%41%aF%zz../"


@settings(max_examples=1200, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTP", "ftp", "http:"]),
       host=st.text("abcXYZ019.-_:@[]%é", max_size=12), rest=st.text(_URL_CHARS, max_size=24))
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
    if _already_normal(raw):
        assert expected == raw


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.text(max_size=40), st.builds("https://{}/{}".format, st.text(max_size=12),
                                                      st.text(max_size=24))))
def test_normalisation_is_idempotent_and_fails_only_as_invalid_url(raw):
    try:
        once = normalize_url(raw)
    except InvalidUrl:
        return
    assert normalize_url(once) == once and _normalize(once) == once
    # The fast path may send a normal URL down the general path (``/.0`` looks like a dot segment to it),
    # never the other way: what it takes as normal is.
    assert not _already_normal(raw) or _normalize(raw) == raw


# One URL in normal form, and ways to spell it differently that RFC 3986 §6 calls equivalent.
_SEGMENT = st.text("abcXYZ019-._~!$&'()*+,;=:@é", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


def _respell(draw, segment: str) -> str:
    """The segment with some unreserved characters percent-encoded, in either hex case."""
    out = ""
    for char in segment:
        if char.isascii() and (char.isalnum() or char in "-._~") and draw(st.booleans()):
            code = f"{ord(char):02X}"
            out += "%" + (code.lower() if draw(st.booleans()) else code)
        else:
            out += char
    return out


@st.composite
def equivalent_spellings(draw):
    segments = draw(st.lists(_SEGMENT, min_size=1, max_size=4))
    host = draw(st.sampled_from(["static.example.com", "bücher.example", "127.0.0.1", "[2001:db8::1]"]))
    scheme = draw(st.sampled_from(["http", "https"]))
    plain = f"{scheme}://{host}/" + "/".join(segments)
    spelled = []
    for segment in segments:
        if draw(st.booleans()):
            spelled.append(".")
        if draw(st.booleans()):
            spelled += ["detour", ".."]
        spelled.append(_respell(draw, segment))
    port = draw(st.sampled_from(["", f":{80 if scheme == 'http' else 443}"]))
    userinfo = draw(st.sampled_from(["", "user:pw@"]))
    other = f"{scheme.upper() if draw(st.booleans()) else scheme}://{userinfo}{host.upper()}{port}/" + "/".join(spelled)
    return plain, other + draw(st.sampled_from(["", "#fragment"]))


@settings(max_examples=200, deadline=None)
@given(equivalent_spellings())
def test_equivalent_urls_normalise_to_one_spelling(pair):
    plain, other = pair
    assert normalize_url(other) == normalize_url(plain)


@pytest.mark.parametrize("raw", ["https://static.example.com/a.js", "http://h/a/b?v=1&x=%20", "https://h/",
                                 "https://h/%E3%83%91?q=%2F"])
def test_typical_history_urls_take_the_fast_path(raw):
    assert _already_normal(raw) and normalize_url(raw) == raw


@pytest.mark.parametrize("raw", ["https://h/a?", "https://H/a", "https://h:443/a", "https://u@h/a", "https://h/a#f",
                                 "https://h", "https://h/a b", "https://h/é", "https://h/%7e", "https://h/%41",
                                 "https://h/%c3%a9", "https://h/a/../b", "https://h/./b"])
def test_urls_the_normalisation_would_change_or_refuse_take_the_general_path(raw):
    assert not _already_normal(raw)


# -- what each cloud takes ------------------------------------------------------------------------
def entries(*urls):
    return [normalize_url(url) for url in urls]


def test_each_cloud_takes_urls_up_to_its_own_length():
    edgeone, cdn, ucloud = cloud("edgeone"), cloud("tencent-cdn"), cloud("ucloud")
    assert (edgeone.max_url_length, cdn.max_url_length, ucloud.max_url_length) == (8192, 8000, 8000)
    base = "https://static.example.com/"
    fits_edgeone = base + "a" * (8192 - len(base))
    assert cloud_problems(entries(fits_edgeone), edgeone, {}) == []
    [(index, message)] = cloud_problems(entries(fits_edgeone), cdn, {})
    assert index == 0 and "is 8,192 characters long once normalised; Tencent Cloud CDN takes URLs of at most " \
                          "8,000; shorten it" in message and len(message) < 300
    assert [i for i, _ in cloud_problems(entries(base, fits_edgeone + "a"), edgeone, {})] == [1]


def test_edgeone_hosts_must_be_the_named_site_or_below_it():
    spec = cloud("edgeone")
    urls = entries("https://example.com/a", "https://static.example.com/a", "https://evil-example.com/a",
                   "https://example.com.evil.net/a", "https://STATIC.Example.com/b")
    found = cloud_problems(urls, spec, {"zoneName": "Example.com"})
    assert [i for i, _ in found] == [2, 3]
    assert found[0][1].startswith("host evil-example.com is not example.com or below it, so EdgeOne site "
                                  "zoneName: example.com does not accelerate it")
    assert cloud_problems(urls, spec, {"zone": "zone-x"}) == []  # by id: preflight asks the cloud


def test_a_ucloud_destination_takes_urls_of_one_host():
    spec = cloud("ucloud")
    urls = entries("https://a.example.com/1", "http://a.example.com:8080/2", "https://b.example.com/3")
    [(index, message)] = cloud_problems(urls, spec, {"domainId": "ucdn-x"})
    assert index == 2 and message.startswith("host b.example.com differs from a.example.com (targets[0]): a UCloud "
                                             "UCDN destination is one domain (domainId)")
    assert cloud_problems(urls[:2], spec, {"domainId": "ucdn-x"}) == []
    assert cloud_problems(urls, cloud("tencent-cdn"), {"area": "mainland"}) == []  # any domain of the account


def test_the_rules_are_the_registry_entry_s_facts():
    custom = replace(cloud("tencent-cdn"), max_url_length=30, same_host=True)
    found = cloud_problems(entries("https://a.example.com/x", "https://b.example.com/y", "https://a.example.com/" +
                                   "z" * 20), custom, {})
    assert [i for i, _ in found] == [1, 2]


@pytest.mark.parametrize("url, host", [
    ("https://h.example.com/a:b", "h.example.com"), ("http://h:8080/", "h"), ("http://[::1]:9000/x", "[::1]"),
    ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
])
def test_host_of_a_normalised_url(url, host):
    assert host_of(url) == host


def assert_normalises_as_the_general_path(raw: str) -> None:
    """normalize_url (with its fast paths) gives exactly _normalize's result, or fails where it fails."""
    try:
        expected = _normalize(raw)
    except InvalidUrl:
        with pytest.raises(InvalidUrl):
            normalize_url(raw)
        return
    assert normalize_url(raw) == expected


@settings(max_examples=150, deadline=None)
@given(host=st.lists(st.text("abzABZ09-", min_size=1, max_size=8), min_size=1, max_size=3).map(".".join),
       path=st.text("aZ09-._~/%2A!$&'()*+,;=:@", max_size=16), scheme=st.sampled_from(["http", "HTTP", "Https", "hTtPs"]))
def test_a_url_whose_scheme_and_host_only_differ_in_case_takes_the_case_fast_path_to_the_same_result(scheme, host, path):
    """normalize_url lower-cases an ASCII scheme and host without the general path when that is all it
    would do; the result must be _normalize's, the path's case kept."""
    raw = f"{scheme}://{host}/{path}"
    assert_normalises_as_the_general_path(raw)


@settings(max_examples=400, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTPS"]),
       host=st.lists(st.text("abzAZ09-", min_size=1, max_size=6), min_size=1, max_size=3).map(".".join),
       segments=st.lists(st.sampled_from([".", "..", "a", "B", "%61", "%7e", "%2F", "%2f", "%zz", "%", "~", "é",
                                          "x.js", ""]), max_size=6),
       query=st.one_of(st.none(), st.lists(st.sampled_from(["v=1", "%7E", "%41", "a%2fb", "é", "&", "="]),
                                           max_size=3).map("".join)),
       fragment=st.sampled_from(["", "#top", "#"]))
def test_an_otherwise_plain_url_with_escapes_or_dot_segments_normalises_as_the_general_path_does(
        scheme, host, segments, query, fragment):
    """normalize_url takes a URL whose scheme and host are plain (after lower-casing) through the path and
    query work alone: it must give exactly _normalize's result (dot segments removed, escapes normal, an empty
    query and the fragment dropped) and fail where it fails."""
    raw = f"{scheme}://{host}/{'/'.join(segments)}" + (f"?{query}" if query is not None else "") + fragment
    assert_normalises_as_the_general_path(raw)
