"""Sitemaps as a target source (components/declare/sitemap.py and sitemap_reader.py), against a web site on
127.0.0.1."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.declare import sitemap_reader
from components.declare.declarations import load_sets
from components.declare.model import DeclarationError
from components.declare.sitemap import SitemapError, normal_lastmod, resolve_sitemaps
from components.model.status import ContentVersion
from components.plan.safety import RefusedChange
from components.provider import PrefetchProvider
from components.resource.inputs import ShardInputs
from tests.fakes import ENTITY_EXPANSION, sitemap_index, urlset

PAGE = "https://www.example.com/{}"


@pytest.fixture(autouse=True)
def no_retries(monkeypatch):
    monkeypatch.setattr(sitemap_reader, "MAX_RETRIES", 0)  # a refused connection is not retried with backoff


def declare(folder: Path, urls: list[str], **keys: Any) -> Path:
    doc = {"name": "web", "provider": "edgeone", "zone": "zone-abc123", **keys.pop("top", {}),
           "sitemap": {"urls": urls, **keys}}
    path = folder / "web.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def resolved(folder: Path, warnings: list[str] | None = None, info: list[str] | None = None):
    [decl] = resolve_sitemaps(load_sets(folder), warn=(warnings if warnings is not None else []).append,
                              info=(info if info is not None else []).append)
    return decl


def test_an_index_with_a_gzipped_child_gives_every_url_with_its_lastmod(tmp_path, site):
    gz = site.put("/sitemap-pages.xml.gz", urlset([(PAGE.format("a"), "2026-05-01"),
                                                   (PAGE.format("b"), "2026-05-01T18:00:00+08:00")]), gzipped=True,
                  headers={"Content-Type": "application/gzip"})
    plain = site.put("/sitemap-blog.xml", urlset([(PAGE.format("blog/1"), None), (PAGE.format("a"), "2020-01-01")]))
    index = site.put("/sitemap.xml", sitemap_index([gz, "/sitemap-blog.xml"]))  # a relative loc: from the index
    declare(tmp_path, [index], top={"targets": [PAGE.format("blog/1")]})
    info: list[str] = []
    decl = resolved(tmp_path, info=info)
    assert decl.targets == (PAGE.format("blog/1"), PAGE.format("a"), PAGE.format("b"))
    assert decl.content == {PAGE.format("a"): ContentVersion.of_lastmod("2026-05-01"),  # its first listing
                            PAGE.format("b"): ContentVersion.of_lastmod("2026-05-01T10:00:00Z")}
    assert info == ["set web: 3 targets from 1 sitemap"]
    assert plain and site.requests == ["/sitemap.xml", "/sitemap-pages.xml.gz", "/sitemap-blog.xml"]


def test_a_content_encoded_sitemap_is_read_and_two_sets_naming_it_fetch_it_once(tmp_path, site):
    url = site.put("/sitemap.xml", gzip.compress(urlset([(PAGE.format("a"), None)]).encode()),
                   headers={"Content-Encoding": "gzip"})
    declare(tmp_path, [url])
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({"provider": "edgeone", "zone": "zone-x",
                                                         "sitemap": {"urls": [url]}}), encoding="utf-8")
    sets = resolve_sitemaps(load_sets(tmp_path))
    assert [s.targets for s in sets] == [(PAGE.format("a"),)] * 2 and site.requests == ["/sitemap.xml"]


@pytest.mark.parametrize("raw, normal", [
    ("2026", "2026"), ("2026-05", "2026-05"), ("2026-05-01", "2026-05-01"), (" 2026-05-01\n", "2026-05-01"),
    ("2026-05-01T10:00Z", "2026-05-01T10:00:00Z"), ("2026-05-01T18:00:00+08:00", "2026-05-01T10:00:00Z"),
    ("2026-05-01T10:00:00.25Z", "2026-05-01T10:00:00.250000Z"),
    ("2026-13-01", None), ("2026-02-30", None), ("yesterday", None), ("2026-05-01T10:00:00", None),  # no zone
    ("", None), (None, None),
])
def test_lastmod_is_read_as_a_w3c_datetime_in_one_spelling(raw, normal):
    assert normal_lastmod(raw) == normal


def test_include_exclude_and_limit_choose_the_targets_and_what_is_left_out_is_said(tmp_path, site):
    entries = [(PAGE.format(p), "2026-05-01") for p in ("docs/a", "docs/b.pdf", "docs/c", "blog/x", "docs/d")]
    url = site.put("/sitemap.xml", urlset(entries + [("not a url", None), (PAGE.format("docs/e"), "last week")]))
    declare(tmp_path, [url], include=["/docs/*"], exclude=["*.pdf"], limit=3)
    warnings: list[str] = []
    decl = resolved(tmp_path, warnings)
    assert decl.targets == (PAGE.format("docs/a"), PAGE.format("docs/c"), PAGE.format("docs/d"))
    where = f"{tmp_path / 'web.yaml'}: set 'web', sitemap {url}"
    assert warnings == [f"{where}: 1 <loc> entries left out because they are no http(s) URL, e.g. 'not a url'",
                        f"{where}: 1 matching URLs left out past sitemap.limit 3 (the first 3 listed are kept)"]


def test_urls_a_destination_would_refuse_are_left_out_with_a_warning(tmp_path, site):
    long = PAGE.format("x" * 8200)
    url = site.put("/sitemap.xml", urlset([(PAGE.format("ok"), None), (long, None)]))
    declare(tmp_path, [url])
    warnings: list[str] = []
    assert resolved(tmp_path, warnings).targets == (PAGE.format("ok"),)
    assert len(warnings) == 1 and "1 sitemap URLs left out because destination edgeone-zone-abc123 would refuse them" \
        in warnings[0] and "EdgeOne takes URLs of at most 8,192" in warnings[0]


def test_the_protocol_limits_are_50000_urls_and_50_mb_per_file():
    assert (sitemap_reader.MAX_URLS, sitemap_reader.MAX_BYTES) == (50_000, 52_428_800)


@pytest.mark.parametrize("case, words", [
    ("urls", "lists 4 <url> entries, more than the 3 the sitemap protocol allows in one file; split it"),
    ("served", "is larger than 2,000 bytes as served, the most the sitemap protocol allows in one file"),
    ("gzip", "is larger than 2,000 bytes once decompressed, the most the sitemap protocol allows in one file"),
])
def test_a_file_past_a_protocol_limit_is_refused_not_read_in_part(tmp_path, site, monkeypatch, case, words):
    monkeypatch.setattr(sitemap_reader, "MAX_URLS", 3)
    monkeypatch.setattr(sitemap_reader, "MAX_BYTES", 2000)
    body = urlset([(PAGE.format(i), None) for i in range(4)]) if case == "urls" else \
        urlset([(PAGE.format("x" * 40 + str(i)), None) for i in range(40)])
    url = site.put("/sitemap.xml", body, gzipped=case == "gzip")
    declare(tmp_path, [url])
    with pytest.raises(SitemapError) as info:
        resolved(tmp_path)
    assert words in str(info.value)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case, words", [
    ("unreachable", "cannot be reached after 1 attempt ([Errno 111] Connection refused); check the URL and that "
                    "the site is up"),
    ("missing", "answered HTTP 404 Not Found; check the URL"),
    ("malformed", "is not well-formed XML (mismatched tag: line 1"),
    ("entities", "declares a DTD or entities (DTDForbidden), which a sitemap never needs: refused, so that no "
                 "entity is expanded (billion laughs) or fetched (external entity)"),
    ("external", "declares a DTD or entities (DTDForbidden)"),
    ("html", "is not a sitemap: its root element is <html>, not <urlset> or <sitemapindex>"),
    ("nested", "lists {site}/inner.xml, another sitemap index; the protocol allows one level"),
    ("child", "lists sitemap {site}/gone.xml.gz, which answered HTTP 404 Not Found"),
    ("empty", "the sitemaps list no URL that matches (include ['*'], exclude []); check the URLs and globs"),
    ("metadata", "redirects to http://169.254.169.254/latest/meta-data/, which names a host that is a link-local "
                 "address (169.254.169.254, in 169.254.0.0/16)"),
])
def test_a_sitemap_that_cannot_be_read_fails_with_the_set_the_url_and_the_line(tmp_path, site, case, words):
    bodies = {
        "malformed": "<urlset><url><loc>https://www.example.com/a</url></urlset>",
        "entities": ENTITY_EXPANSION,
        "external": '<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    '<urlset><url><loc>&x;</loc></url></urlset>',
        "html": "<html><body>Welcome</body></html>",
        "nested": sitemap_index([site.url + "/inner.xml"]),
        "child": sitemap_index([site.url + "/gone.xml.gz"]),
        "empty": urlset([]),
    }
    site.put("/inner.xml", sitemap_index([site.url + "/sitemap-pages.xml"]))
    if case == "metadata":
        site.put("/sitemap.xml", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    elif case in bodies:
        site.put("/sitemap.xml", bodies[case])
    url = f"http://127.0.0.1:{closed_port()}/sitemap.xml" if case == "unreachable" else site.url + "/sitemap.xml"
    readable = [] if case == "empty" else [site.put("/ok.xml", urlset([(PAGE.format("a"), None)]))]
    path = declare(tmp_path, [*readable, url])
    with pytest.raises(SitemapError) as info:
        resolved(tmp_path)
    [problem] = info.value.problems
    message = str(info.value)
    assert message.startswith("1 problem reading sitemaps (nothing was submitted):\n  - ")
    assert isinstance(info.value, DeclarationError) and "Traceback" not in message
    lines = path.read_text().splitlines()
    if case == "empty":
        assert (problem.line, problem.path) == (lines.index("sitemap:") + 1, "sitemap")
        assert problem.message.startswith("set 'web': ")
    else:
        assert (problem.line, problem.path) == (lines.index(f"  - {url}") + 1, "sitemap.urls[1]")  # the 2nd URL
        assert problem.message.startswith(f"set 'web', sitemap {url}: ")
    assert words.format(site=site.url) in problem.message


def test_a_sitemap_url_is_checked_where_it_is_declared(tmp_path):
    declare(tmp_path, ["https://user:pw@www.example.com/sitemap.xml", "http://169.254.169.254/sitemap.xml"])
    with pytest.raises(DeclarationError) as info:
        load_sets(tmp_path)
    assert [(p.line, p.path) for p in info.value.problems] == [(6, "sitemap.urls[0]"), (7, "sitemap.urls[1]")]
    assert "carries credentials" in info.value.problems[0].message and "pw" not in str(info.value)
    assert "is a link-local address" in info.value.problems[1].message


def test_a_sitemap_alone_is_a_set_and_its_keys_are_checked(tmp_path):
    declare(tmp_path, ["https://www.example.com/sitemap.xml"])
    [decl] = load_sets(tmp_path)
    assert decl.targets == () and decl.sitemap.urls == ("https://www.example.com/sitemap.xml",)
    assert (decl.sitemap.include, decl.sitemap.exclude, decl.sitemap.limit) == (("*",), (), None)
    declare(tmp_path, ["https://www.example.com/sitemap.xml"], limit=0, colour="red")
    with pytest.raises(DeclarationError) as info:
        load_sets(tmp_path)
    assert sorted((p.path, p.message.split(" (")[0].split(";")[0]) for p in info.value.problems) == [
        ("sitemap.colour", "unknown key 'colour'"), ("sitemap.limit", "0 is too small: at least 1")]


def test_a_sitemap_that_suddenly_lists_far_fewer_urls_is_refused_by_the_drop_rail(tmp_path, site):
    url = site.put("/sitemap.xml", urlset([(PAGE.format(i), None) for i in range(12)]))
    declare(tmp_path, [url])
    before = resolved(tmp_path)
    site.put("/sitemap.xml", urlset([(PAGE.format(i), None) for i in range(3)]))
    after = resolved(tmp_path)
    olds, news = (ShardInputs.from_declaration(d, d.destinations[0]) for d in (before, after))
    provider = PrefetchProvider()
    provider._sync = lambda _props: pytest.fail("no cloud call may happen")  # noqa: E731
    with pytest.raises(RefusedChange, match="this change drops 9 of the set's 12 targets .* a sitemap the site "
                                            "shortened lists fewer URLs"):
        provider.update("id", olds.output_props(), news.to_props())
