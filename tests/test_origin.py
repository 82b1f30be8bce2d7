"""Origin listing, without a server: URL mapping, globs, paging and every error, with stubbed clients."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import quote

import boto3
import pytest
from botocore import exceptions as bx
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from components.declare import origin as origin_module
from components.declare.model import DestinationDeclaration, OriginDeclaration, PrefetchSetDeclaration
from components.declare.origin import (
    Listing,
    ListingFailed,
    OriginCredentials,
    OriginError,
    OriginObject,
    credentials_for,
    glob_matcher,
    key_url,
    list_origin,
    make_client,
    resolve_origins,
    select,
    with_origin_targets,
)
from components.model.status import ContentVersion
from components.model.urls import normalize_url

BASE = "https://static.example.com"
ETAG = '"9b2cf535d3e1a8f3c0a6e4c2d1b0a9f8"'
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def origin(**kwargs) -> OriginDeclaration:
    return OriginDeclaration(**{"bucket": "assets", "public_base_url": BASE, "endpoint": "http://127.0.0.1:9",
                                **kwargs})


def item(key, size=10, etag=ETAG):
    return {"Key": key, "Size": size, "ETag": etag, "LastModified": datetime(2026, 11, 23, tzinfo=timezone.utc)}


def keys_of(listing: Listing) -> list[str]:
    return [o.key for o in listing.objects]


# -- URLs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, url", [
    ("static/app.js", f"{BASE}/static/app.js"),
    ("static/a b.js", f"{BASE}/static/a%20b.js"),
    ("static/a+b.js", f"{BASE}/static/a%2Bb.js"),
    ("static/café/naïve ü.css", f"{BASE}/static/caf%C3%A9/na%C3%AFve%20%C3%BC.css"),
    ("static/~user/x?.js#1", f"{BASE}/static/~user/x%3F.js%231"),
    ("static/100%.txt", f"{BASE}/static/100%25.txt"),
])
def test_key_becomes_the_cdn_url_with_the_key_percent_encoded(key, url):
    assert key_url(BASE, key) == url
    assert key_url(BASE + "/", key) == url  # one slash whatever the base ends with


def test_base_url_may_carry_a_path():
    assert key_url("https://CDN.example.com/bucket-a", "x/y.js") == "https://cdn.example.com/bucket-a/x/y.js"


# -- globs and selection ----------------------------------------------------------------------------
def test_globs_are_fnmatch_style_case_sensitive_and_star_crosses_slashes():
    js = glob_matcher(["*.js"])
    assert js("app.js") and js("deep/down/app.js") and not js("app.JS") and not js("app.json")
    one = glob_matcher(["img/??.png", "[ab]*.css"])
    assert one("img/01.png") and not one("img/001.png") and one("a.css") and not one("c.css")
    assert not glob_matcher([])("anything")


def test_selection_applies_globs_to_the_key_relative_to_the_prefix():
    decl = origin(prefix="static/", include=("*.js", "img/*"), exclude=("*.min.js", "img/raw/*"))
    pages = [{"Contents": [item("static/app.js"), item("static/app.min.js"), item("static/img/a.png"),
                           item("static/img/raw/b.png"), item("static/readme.txt")]}]
    assert keys_of(select(decl, pages)) == ["static/app.js", "static/img/a.png"]
    # "static/app.js" relative to the prefix is "app.js": a glob anchored at the prefix matches it
    assert keys_of(select(origin(prefix="static/", include=("app.js",)), pages)) == ["static/app.js"]


def test_folder_placeholders_and_unaddressable_keys_are_skipped():
    pages = [{"Contents": [item("static/", 0), item("static/img/", 0), item("static/keep/", 5),
                           item("static/a/../b.js"), item("static/./c.js"), item("static/ok.js")]}, {}]
    listing = select(origin(prefix="static/"), pages)
    assert keys_of(listing) == ["static/keep/", "static/ok.js"]  # a non-empty "folder" key is content
    assert listing.skipped_folders == 2
    assert listing.skipped_unaddressable == ["static/a/../b.js", "static/./c.js"]


def test_each_target_carries_its_etag_and_size():
    [obj] = select(origin(), [{"Contents": [item("a.js", 2048)]}]).objects
    assert obj == OriginObject("a.js", f"{BASE}/a.js", ContentVersion("9b2cf535d3e1", 2048))
    # no ETag at all (some S3-compatible servers): the modification time stands in for it
    [bare] = select(origin(), [{"Contents": [{"Key": "b.js", "Size": 1, "LastModified": "2026-11-23"}]}]).objects
    assert bare.version.etag.startswith("h")


def test_listing_targets_join_the_declared_ones_once():
    decl = PrefetchSetDeclaration("web", "web.yaml", (), (f"{BASE}/a.js", f"{BASE}/other.js"))
    objects = [OriginObject("a.js", f"{BASE}/a.js", ContentVersion("aaaaaaaaaaaa", 1)),
               OriginObject("b.js", f"{BASE}/b.js", ContentVersion("bbbbbbbbbbbb", 2))]
    merged = with_origin_targets(decl, objects)
    assert merged.targets == (f"{BASE}/a.js", f"{BASE}/other.js", f"{BASE}/b.js")
    assert merged.content == {f"{BASE}/a.js": objects[0].version, f"{BASE}/b.js": objects[1].version}


# -- boto3: paging, client configuration ------------------------------------------------------------
def stubbed(pages=None, error=None, more=False, **error_kwargs):
    """A real S3 client answering the given pages; ``more`` makes the last page say "truncated"."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIATEST", aws_secret_access_key="x",
                          endpoint_url="http://127.0.0.1:9")
    stub = Stubber(client)
    for index, contents in enumerate(pages or []):
        truncated = more or index < len(pages) - 1
        response = {"Contents": contents, "IsTruncated": truncated, "KeyCount": len(contents)}
        if truncated:
            response["NextContinuationToken"] = f"token-{index + 1}"
        expected = {"Bucket": "assets", "Prefix": "static/", "MaxKeys": 1000}
        if index:
            expected["ContinuationToken"] = f"token-{index}"
        stub.add_response("list_objects_v2", response, expected)
    if error:
        stub.add_client_error("list_objects_v2", service_error_code=error, **error_kwargs)
    stub.activate()
    return lambda _origin, _creds: client


def test_every_page_is_read():
    pages = [[item(f"static/{p}-{i}.js") for i in range(3)] for p in range(4)]
    listing = list_origin(origin(prefix="static/"), client_factory=stubbed(pages))
    assert len(listing.objects) == 12 and listing.objects[-1].key == "static/3-2.js"


def test_client_uses_standard_retries_timeouts_and_the_declared_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    client = make_client(origin(region="eu-west-1", addressing_style="path"), None)
    config = client.meta.config
    assert config.retries == {"total_max_attempts": origin_module.MAX_RETRIES + 1, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (origin_module.CONNECT_TIMEOUT, origin_module.READ_TIMEOUT)
    assert config.s3 == {"addressing_style": "path"}
    assert client.meta.endpoint_url == "http://127.0.0.1:9" and client.meta.region_name == "eu-west-1"
    assert client._request_signer._credentials.access_key == "AKIAENV"  # the standard chain
    keyed = make_client(origin(), OriginCredentials("AKIACONFIG", SECRET))
    assert keyed._request_signer._credentials.access_key == "AKIACONFIG"


# -- errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, status, words", [
    ("NoSuchBucket", 404, "the bucket 'assets' does not exist (NoSuchBucket"),
    ("AccessDenied", 403, "access denied (AccessDenied"),
    ("InvalidAccessKeyId", 403, "the credentials were refused (InvalidAccessKeyId"),
    ("SignatureDoesNotMatch", 403, "the credentials were refused (SignatureDoesNotMatch"),
    ("PermanentRedirect", 301, "another region"),
    ("SlowDown", 503, "listing failed (SlowDown"),
])
def test_cloud_errors_become_plain_reasons(code, status, words):
    with pytest.raises(ListingFailed) as info:
        list_origin(origin(prefix="static/"), client_factory=stubbed(error=code, http_status_code=status,
                                                                      service_message="from the server"))
    assert words in str(info.value)


def test_an_error_on_a_later_page_fails_the_whole_listing():
    factory = stubbed([[item("static/a.js")]] * 2, error="InternalError", http_status_code=500, more=True)
    with pytest.raises(ListingFailed, match="InternalError"):
        list_origin(origin(prefix="static/"), client_factory=factory)


class Pages:
    """A client answering the given pages (no boto3: cheap)."""

    def __init__(self, pages):
        self.pages = pages

    def get_paginator(self, _name):
        return self

    def paginate(self, **_kwargs):
        return self.pages


class Raising(Pages):
    def __init__(self, error):
        super().__init__([])
        self.error = error

    def paginate(self, **_kwargs):
        raise self.error


@pytest.mark.parametrize("error, words", [
    (bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:9/assets"), "cannot reach the endpoint after"),
    (bx.ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"), "did not answer in time"),
    (bx.NoCredentialsError(), "no credentials found"),
])
def test_connection_and_credential_errors_become_plain_reasons(error, words):
    with pytest.raises(ListingFailed, match=words):
        list_origin(origin(), client_factory=lambda *_: Raising(error))


def test_unknown_profile_is_a_plain_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(ListingFailed) as info:
        list_origin(origin(profile="nope"))
    assert "profile (nope) could not be found; check origin.credentials.profile" in str(info.value)


def test_secrets_are_redacted_from_any_message():
    error = bx.EndpointConnectionError(endpoint_url=f"http://127.0.0.1:9/?k={SECRET}")
    with pytest.raises(ListingFailed) as info:
        list_origin(origin(), OriginCredentials("AKIA", SECRET), client_factory=lambda *_: Raising(error))
    assert SECRET not in str(info.value) and "***" in str(info.value)


def test_credentials_come_from_the_named_stack_config_entry_and_errors_never_show_them():
    table = {"assets": {"accessKeyId": "AKIACONFIG", "secretAccessKey": SECRET}, "other": {"accessKeyId": "x"}}
    creds = credentials_for(origin(credentials_config="assets"), table)
    assert creds.access_key_id == "AKIACONFIG" and creds.secret_access_key == SECRET
    assert SECRET not in repr(creds)
    assert credentials_for(origin(), table) is None
    for name, table_value, words in [("missing", table, "has no such entry (entries: assets, other)"),
                                     ("other", table, "needs both accessKeyId and secretAccessKey"),
                                     ("assets", None, "is not set"),
                                     ("assets", "text", "must be a map")]:
        with pytest.raises(ListingFailed) as info:
            credentials_for(origin(credentials_config=name), table_value)
        assert words in str(info.value) and SECRET not in str(info.value)


# -- the program's step: every set, every problem, naming the set and the origin ---------------------
def declared(name, **origin_kwargs):
    return PrefetchSetDeclaration(name, f"sets/{name}.yaml", (), (f"{BASE}/fixed.js",),
                                  origin=origin(line=7, **origin_kwargs))


def fake_lister(results):
    def lister(decl_origin, _creds):
        outcome = results[decl_origin.bucket]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return lister


def test_problems_of_every_origin_are_reported_together_with_set_origin_file_and_line():
    sets = [declared("web", bucket="gone"), declared("api", bucket="locked"), declared("ok", bucket="fine"),
            PrefetchSetDeclaration("plain", "sets/plain.yaml", (), (f"{BASE}/p.js",))]
    results = {"gone": ListingFailed("the bucket 'gone' does not exist (NoSuchBucket)"),
               "locked": ListingFailed("access denied (AccessDenied)"),
               "fine": select(origin(bucket="fine"), [{"Contents": [item("a.js")]}])}
    with pytest.raises(OriginError) as info:
        resolve_origins(sets, lister=fake_lister(results))
    text = str(info.value)
    assert text.splitlines()[0] == "2 problems listing origin buckets (nothing was submitted):"
    assert ("  - sets/web.yaml:7: origin: set 'web', origin s3://gone/ at http://127.0.0.1:9: the bucket 'gone' "
            "does not exist (NoSuchBucket)") in text.splitlines()
    assert "sets/api.yaml:7: origin: set 'api', origin s3://locked/ at http://127.0.0.1:9: access denied" in text


def test_an_origin_matching_nothing_warns_or_fails_when_it_must_not_be_empty():
    warnings = []
    [resolved] = resolve_origins([declared("web", prefix="typo/")], lister=fake_lister({"assets": Listing([])}),
                                 warn=warnings.append)
    assert resolved.targets == (f"{BASE}/fixed.js",) and resolved.content == {}
    [warning] = warnings
    assert "set 'web', origin s3://assets/typo/ at http://127.0.0.1:9: no object matches" in warning
    with pytest.raises(OriginError, match=r"sets/web.yaml:7: origin: set 'web', origin s3://assets/typo/ .*no "
                                          r"object matches .*mustNotBeEmpty"):
        resolve_origins([declared("web", prefix="typo/", must_not_be_empty=True)],
                        lister=fake_lister({"assets": Listing([])}))


def test_resolved_sets_carry_their_origin_targets_and_content():
    listing = select(origin(), [{"Contents": [item("a b.js", 5)]}])
    infos = []
    [resolved] = resolve_origins([declared("web")], lister=fake_lister({"assets": listing}), info=infos.append)
    assert resolved.targets == (f"{BASE}/fixed.js", f"{BASE}/a%20b.js")
    assert resolved.content == {f"{BASE}/a%20b.js": ContentVersion("9b2cf535d3e1", 5)}
    assert infos == ["set web: 1 targets from origin s3://assets/ at http://127.0.0.1:9"]


# -- the endpoint: no credentials in it, no instance-metadata address unless allowed (issue 17) -----
@pytest.mark.parametrize("endpoint, words", [
    ("http://169.254.169.254", "is a link-local address (169.254.169.254, in 169.254.0.0/16)"),
    ("http://169.254.0.23:80/", "is a link-local address (169.254.0.23"),          # Tencent Cloud
    ("http://[fe80::a:1]:9000", "is a link-local address (fe80::a:1, in fe80::/10)"),
    ("http://[::ffff:169.254.169.254]", "is a link-local address (169.254.169.254"),
    ("http://100.100.100.200", "is a cloud instance-metadata address (100.100.100.200)"),  # Alibaba Cloud
    ("http://[fd00:ec2::254]", "is a cloud instance-metadata address (fd00:ec2::254)"),    # AWS, IPv6
    ("http://Metadata.Google.Internal", "metadata.google.internal is a cloud instance-metadata host name"),
    ("http://metadata.tencentyun.com", "is a cloud instance-metadata host name"),
    # the numeric spellings every resolver reads as 169.254.169.254
    ("http://2852039166", "169.254.169.254"), ("http://0xA9FEA9FE", "169.254.169.254"),
    ("http://0251.0376.0251.0376", "169.254.169.254"), ("http://169.254.43518", "169.254.169.254"),
])
def test_instance_metadata_endpoints_are_refused_unless_allowed(endpoint, words):
    problem = origin_module.endpoint_problem(endpoint)
    assert words in problem and "origin.allowLinkLocal: true" in problem
    assert origin_module.endpoint_problem(endpoint, allow_link_local=True) is None


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:9000",
                                      "https://minio.example.com", "http://10.0.0.5:9000", "http://192.168.1.2",
                                      "http://100.64.0.1", "http://169.253.255.255", "https://s3.deadbeef.cafe"])
def test_loopback_private_and_public_endpoints_are_fine(endpoint):
    assert origin_module.endpoint_problem(endpoint) is None


def test_credentials_in_the_endpoint_are_refused_without_showing_them():
    for endpoint in ("http://AKIA:wJalrSECRET@minio:9000", "http://wJalrSECRET@127.0.0.1:9000",
                     "http://a:b@169.254.169.254"):
        problem = origin_module.endpoint_problem(endpoint, allow_link_local=True)
        assert problem.startswith("carries credentials") and "cdn-prefetch:originCredentials" in problem
        assert "wJalr" not in problem and "AKIA" not in problem


def test_an_origin_built_by_other_code_is_refused_before_any_client_is_made():
    def no_client(*_):
        raise AssertionError("a client was made")

    with pytest.raises(ListingFailed, match="origin.endpoint 169.254.169.254 is a link-local address"):
        list_origin(origin(endpoint="http://169.254.169.254"), client_factory=no_client)
    assert list_origin(origin(endpoint="http://169.254.169.254", allow_link_local=True),
                       client_factory=lambda *_: Pages([{"Contents": [item("a.js")]}])).objects


def test_listed_urls_longer_than_a_destination_takes_are_left_out_with_a_warning():
    keys = ["static/ok.js", "static/" + "k" * 8000 + ".js", "static/" + "m" * 8200 + ".js"]
    listing = select(origin(), [{"Contents": [item(k) for k in keys]}])
    decl = replace(declared("web"), destinations=(DestinationDeclaration("edgeone", {"zone": "zone-x"}),
                                                  DestinationDeclaration("tencent-cdn", {"area": "mainland"})))
    warnings = []
    [resolved] = resolve_origins([decl], lister=fake_lister({"assets": listing}), warn=warnings.append)
    assert resolved.targets == (f"{BASE}/fixed.js", f"{BASE}/static/ok.js")
    [warning] = warnings
    assert "2 keys left out because their URL is longer than the 8,000 characters Tencent Cloud CDN takes" in warning
    assert len(warning) < 500
    edgeone_only = replace(decl, destinations=decl.destinations[:1])
    [resolved] = resolve_origins([edgeone_only], lister=fake_lister({"assets": select(origin(), [
        {"Contents": [item(k) for k in keys]}])}))
    assert len(resolved.targets) == 3  # 8,192 on EdgeOne: the 8,000-character key fits


# -- the origin listing and the declarations spell a URL the same way -------------------------------
_KEY_CHARS = "abcXYZ019-._~!$&'()*+,;=:@ %#?é中/"


@settings(max_examples=200, deadline=None)
@given(key=st.text(_KEY_CHARS, min_size=1, max_size=16), lower=st.booleans(), encode_unreserved=st.booleans())
def test_a_listed_key_and_a_declared_url_of_the_same_object_are_one_target(key, lower, encode_unreserved):
    if any(part in (".", "..") for part in key.split("/")):
        return  # skipped by the listing: no URL names such a key
    listed = key_url(BASE, key)
    assert normalize_url(listed) == listed  # already in its one spelling
    # how a person might declare the same object: hex in lower case, unreserved characters encoded too,
    # non-ASCII characters as they are
    path = quote(key, safe="/" if encode_unreserved else "/~")
    if encode_unreserved:
        path = path.replace("a", "%61").replace("-", "%2D")
    if lower:
        path = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), path)
    assert normalize_url(f"{BASE}/{path}") == listed
    as_typed = "".join(char if not char.isascii() else quote(char, safe="/~") for char in key)
    assert normalize_url(f"{BASE}/{as_typed}") == listed
