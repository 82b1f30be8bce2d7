"""The sandbox's edge cache model (sandbox/edge.py, sandbox/origin.py): what each cloud's edge would serve.

cdn-apis.md §9: a prefetch fills the edge with what the origin serves when it finishes, but leaves an
unexpired copy in place; a purge evicts; a copy expires after the TTL. Most tests write tasks straight
into the store (their times exact, no server); the last ones drive the three clouds' real actions
through the official SDKs and read the edge they leave.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from ucloud.services.ucdn.client import UCDNClient

from sandbox import edge as edge_module
from sandbox import (
    SANDBOX_SECRET_ID,
    SANDBOX_SECRET_KEY,
    SANDBOX_UCLOUD_PRIVATE_KEY,
    SANDBOX_UCLOUD_PUBLIC_KEY,
    Sandbox,
)
from sandbox.store import DEFAULT_VERSION, NewTask, SandboxStore

URL = "https://static.example.com/app.js"
SCOPES = {"teo": "zone-edge", "cdn": "mainland", "ucloud": SANDBOX_UCLOUD_PUBLIC_KEY}
_JOBS = itertools.count(1)


@pytest.fixture
def store(tmp_path: Path) -> SandboxStore:
    return SandboxStore(tmp_path / "edge.db")


def run(store: SandboxStore, kind: str, *urls: str, service: str = "teo", outcome: str = "success",
        delay: float = 0.0, extra: dict[str, Any] | None = None) -> str:
    """One submit of `kind` tasks created now, finishing after `delay` with `outcome`; returns its job id."""
    now = time.time()
    job = f"job-{next(_JOBS)}"
    tasks = [NewTask(u, urlsplit(u).hostname or "", now + delay, outcome, extra=extra) for u in urls]
    store.create_tasks(service, SCOPES[service], job, tasks, now=now, kind=kind)
    return job


def prefetch(store: SandboxStore, *urls: str, **options: Any) -> str:
    return run(store, "prefetch", *urls, **options)


def purge(store: SandboxStore, *urls: str, **options: Any) -> str:
    return run(store, "purge", *urls, **options)


# ----- prefetch, purge, expiry -----------------------------------------------------------------------


def test_an_uncached_url_is_a_miss_answered_by_the_origin(store: SandboxStore) -> None:
    edge = store.edge(URL)
    assert (edge.service, edge.version, edge.cached_at, edge.last_prefetch, edge.last_purge) == (
        None, None, None, None, None)
    assert (edge.origin, edge.serves, edge.current) == (DEFAULT_VERSION, DEFAULT_VERSION, True)
    store.set_origin_version(URL, " v7 ")
    assert (store.origin_version(URL), store.edge(URL).serves) == ("v7", "v7")
    for url, version in (("static.example.com/x", "v2"), ("ftp://static.example.com/x", "v2"), (URL, " ")):
        with pytest.raises(ValueError):
            store.set_origin_version(url, version)


def test_a_prefetch_caches_what_the_origin_serves_when_it_finishes(store: SandboxStore) -> None:
    store.set_origin_version(URL, "v2")
    job = prefetch(store, URL, delay=60)
    running = store.edge(URL)
    assert running.version is None and running.serves == "v2"  # nothing cached while processing
    assert (running.last_prefetch.job_id, running.last_prefetch.status) == (job, "processing")
    store.age(30)
    store.set_origin_version(URL, "v3")  # the origin changes while the prefetch runs
    store.age(30)
    done = store.edge(URL, "teo")
    assert (done.service, done.version, done.cached_by, done.origin, done.current) == ("teo", "v3", job, "v3", True)
    assert done.last_prefetch.status == "success"
    assert done.cached_at == pytest.approx(done.last_prefetch.finish)
    assert done.expires_at == pytest.approx(done.cached_at + 86400)  # the default edge_ttl_seconds


def test_a_prefetch_keeps_an_unexpired_copy_and_a_purge_lets_the_next_one_in(store: SandboxStore) -> None:
    first = prefetch(store, URL)
    assert store.edge(URL).version == DEFAULT_VERSION
    store.set_origin_version(URL, "v2")
    second = prefetch(store, URL)
    stale = store.edge(URL)
    assert (stale.version, stale.cached_by, stale.origin, stale.serves, stale.current) == (
        DEFAULT_VERSION, first, "v2", DEFAULT_VERSION, False)
    assert stale.last_prefetch.job_id == second  # it ran, and changed nothing

    evicted = purge(store, URL)
    miss = store.edge(URL)
    assert (miss.version, miss.cached_at, miss.expires_at, miss.cached_by) == (None, None, None, None)
    assert (miss.serves, miss.current) == ("v2", True)
    assert (miss.last_purge.job_id, miss.last_purge.status) == (evicted, "success")

    third = prefetch(store, URL)
    fresh = store.edge(URL)
    assert (fresh.version, fresh.cached_by, fresh.current) == ("v2", third, True)
    assert (fresh.last_prefetch.job_id, fresh.last_purge.job_id) == (third, evicted)


def test_a_copy_expires_after_the_ttl_and_the_next_prefetch_replaces_it(store: SandboxStore) -> None:
    store.set_setting("edge_ttl_seconds", 100)
    job = prefetch(store, URL)
    store.set_origin_version(URL, "v2")
    store.age(99)
    assert store.edge(URL).version == DEFAULT_VERSION
    store.age(1)
    expired = store.edge(URL)
    assert (expired.version, expired.serves, expired.current) == (None, "v2", True)  # a miss: from the origin
    assert (expired.cached_by, expired.expires_at - expired.cached_at) == (job, pytest.approx(100))
    again = prefetch(store, URL)
    assert (store.edge(URL).version, store.edge(URL).cached_by) == ("v2", again)


def test_the_ttl_is_per_host_and_read_when_asked(store: SandboxStore) -> None:
    short, other = "https://short.example.com/a.js", "https://long.example.com/a.js"
    store.set_cache_ttl("Short.Example.com", 10)
    assert store.cache_ttls() == {"short.example.com": 10.0}
    assert (store.cache_ttl("SHORT.example.com"), store.cache_ttl("long.example.com")) == (10.0, 86400.0)
    prefetch(store, short, other)
    store.age(10)
    assert (store.edge(short).version, store.edge(other).version) == (None, DEFAULT_VERSION)
    store.set_cache_ttl("short.example.com", 1000)  # a TTL changed later applies to copies already cached
    assert store.edge(short).version == DEFAULT_VERSION
    for host, seconds in (("short.example.com", -1), ("short.example.com", float("inf")),
                          ("https://short.example.com", 10), ("", 10)):
        with pytest.raises(ValueError):
            store.set_cache_ttl(host, seconds)


@pytest.mark.parametrize("outcome", ["failed", "timeout", "canceled", "invalid", "unknown"])
def test_failed_purges_and_prefetches_leave_the_cache_alone(store: SandboxStore, outcome: str) -> None:
    cached, never = URL, "https://static.example.com/never.js"
    job = prefetch(store, cached)
    store.set_origin_version(cached, "v2")
    failed_purge = purge(store, cached, outcome=outcome)
    prefetch(store, never, outcome=outcome)
    edge = store.edge(cached)
    assert (edge.version, edge.cached_by, edge.current) == (DEFAULT_VERSION, job, False)
    assert (edge.last_purge.job_id, edge.last_purge.status) == (failed_purge, outcome)
    assert store.edge(never).version is None and store.edge(never).last_prefetch.status == outcome

    purge(store, cached, delay=60)  # a purge evicts when it finishes, not before
    assert store.edge(cached).version == DEFAULT_VERSION
    store.age(60)
    assert store.edge(cached).version is None


def test_age_moves_the_origin_log_with_the_tasks(store: SandboxStore) -> None:
    store.set_origin_version(URL, "v2")
    prefetch(store, URL)
    (_, since), = [entry for entry in store.origin_history(URL)]
    store.age(3600)
    # Had the log stayed put, the prefetch (now finished an hour ago) would predate v2 and cache v1.
    assert store.origin_history(URL) == [("v2", pytest.approx(since - 3600))]
    assert store.edge(URL).version == "v2"
    assert store.origin_version(URL, at=since - 3601) == DEFAULT_VERSION


def test_edges_are_per_cloud(store: SandboxStore) -> None:
    prefetch(store, URL, service="teo")
    prefetch(store, "https://static.example.com/cdn-only.js", service="cdn")
    assert store.edge(URL, "cdn").version is None and store.edge(URL, "ucloud").version is None
    assert store.edge("https://static.example.com/cdn-only.js").service == "cdn"  # the one cloud with tasks
    purge(store, URL, service="cdn")
    with pytest.raises(ValueError, match="name the service"):
        store.edge(URL)
    assert store.edge(URL, "teo").version == DEFAULT_VERSION  # the CDN purge does not reach EdgeOne's edge
    with pytest.raises(ValueError):
        store.edge(URL, "aws")


def test_http_and_https_share_a_copy(store: SandboxStore) -> None:
    http = URL.replace("https://", "http://")
    prefetch(store, http)
    assert store.edge(URL).version == DEFAULT_VERSION
    purge(store, URL)
    assert store.edge(http).version is None and store.edge(URL).version is None


def test_edges_of_many_urls_at_once(store: SandboxStore) -> None:
    urls = [f"https://many.example.com/{i}.js" for i in range(450)]  # more than one IN (...) chunk
    prefetch(store, *urls[:300])
    purge(store, *urls[:100])
    edges = store.edges(urls + urls[:5], "teo")
    assert list(edges) == urls
    assert [edges[u].version for u in urls] == [None] * 100 + [DEFAULT_VERSION] * 200 + [None] * 150
    assert {edges[u].last_purge is None for u in urls[100:]} == {True}


def test_reset_drops_tasks_and_origin_versions_but_keeps_configuration(store: SandboxStore) -> None:
    store.set_origin_version(URL, "v2")
    store.set_cache_ttl("static.example.com", 60)
    store.set_setting("edge_ttl_seconds", 120)
    store.add_s3_origin("https://s3.example.com/", "http://127.0.0.1:9", "bucket", "site/")
    prefetch(store, URL)
    store.reset()
    assert store.origin_history(URL) == [] and store.tasks() == []
    assert store.edge(URL).version is None and store.edge(URL).origin == DEFAULT_VERSION
    assert store.cache_ttls() == {"static.example.com": 60.0} and store.get_setting("edge_ttl_seconds") == 120
    assert [(o.prefix, o.bucket, o.key_prefix) for o in store.s3_origins()] == [
        ("https://s3.example.com/", "bucket", "site/")]


# ----- an S3-compatible origin: ETags are versions -----------------------------------------------------


class S3:
    """moto's S3 server on loopback."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def put(self, bucket: str, key: str, body: bytes) -> str:
        return self.client.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = S3()
    yield server
    server.server.stop()


def test_an_s3_origin_versions_urls_by_etag(store: SandboxStore, s3: S3) -> None:
    bucket = f"edge-{uuid.uuid4().hex[:12]}"
    s3.client.create_bucket(Bucket=bucket)
    first = s3.put(bucket, "site/css/a b.css", b"one")
    store.add_s3_origin("https://s3.example.com/static/", s3.endpoint, bucket, "site/")
    url = "https://s3.example.com/static/css/a%20b.css"  # keys are the decoded rest of the URL
    assert store.edge(url).origin == first
    assert store.origin_version("https://s3.example.com/static/missing.css") == DEFAULT_VERSION

    prefetch(store, url)
    assert [v for v, _ in store.origin_history(url)] == [first]  # read when the prefetch was submitted
    second = s3.put(bucket, "site/css/a b.css", b"two")
    stale = store.edge(url)
    assert (stale.version, stale.origin, stale.current) == (first, second, False)
    purge(store, url)
    prefetch(store, url)
    assert (store.edge(url).version, store.edge(url).current) == (second, True)
    assert [v for v, _ in store.origin_history(url)] == [first, second]

    with pytest.raises(ValueError, match="loopback"):
        store.add_s3_origin("https://s3.example.com/", "http://192.0.2.1:9000", bucket)


def test_an_s3_origin_unreadable_at_submit_is_read_when_asked(store: SandboxStore, s3: S3,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bucket = f"edge-{uuid.uuid4().hex[:12]}"
    s3.client.create_bucket(Bucket=bucket)
    etag = s3.put(bucket, "b.js", b"body")
    url = "https://down.example.com/b.js"
    store.add_s3_origin("https://down.example.com/", s3.endpoint, bucket)

    def down(*_: Any) -> dict[str, str]:
        raise ConnectionError("connection refused")

    with monkeypatch.context() as patched:  # the origin is down while the prefetch is submitted
        patched.setattr(edge_module, "read_versions", down)
        prefetch(store, url)
    assert "cannot read origin" in capsys.readouterr().err and store.origin_history(url) == []
    assert (store.edge(url).version, store.edge(url).current) == (etag, True)


# ----- driven through the clouds' real actions -----------------------------------------------------------


@pytest.mark.sandbox(progress_seconds=0.0, ucloud_prefetch_interval=0)
def test_the_three_clouds_actions_fill_and_evict_their_own_edges(sb: Sandbox) -> None:
    store = sb.store
    urls = {s: f"https://{s}.example.com/app.js" for s in ("teo", "cdn", "ucloud")}
    cred = credential.Credential(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=sb.endpoint, reqTimeout=10))
    teo = CommonClient("teo", "2022-09-01", cred, "", profile)
    cdn = CommonClient("cdn", "2018-06-06", cred, "", profile)
    quiet = logging.getLogger("tests.edge.ucloud")
    quiet.setLevel(logging.ERROR)
    ucdn = UCDNClient({"base_url": sb.url, "public_key": SANDBOX_UCLOUD_PUBLIC_KEY,
                       "private_key": SANDBOX_UCLOUD_PRIVATE_KEY, "max_retries": 0}, logger=quiet)
    submit = {
        "teo": (lambda u: teo.call_json("CreatePrefetchTask", {"ZoneId": "zone-edge", "Targets": [u]}),
                lambda u: teo.call_json("CreatePurgeTask", {"ZoneId": "zone-edge", "Type": "purge_url",
                                                            "Targets": [u]})),
        "cdn": (lambda u: cdn.call_json("PushUrlsCache", {"Urls": [u]}),
                lambda u: cdn.call_json("PurgeUrlsCache", {"Urls": [u]})),
        "ucloud": (lambda u: ucdn.prefetch_new_ucdn_domain_cache({"UrlList": [u]}),
                   lambda u: ucdn.refresh_new_ucdn_domain_cache({"Type": "file", "UrlList": [u]})),
    }
    for service, url in urls.items():
        warm, evict = submit[service]
        warm(url)
        store.set_origin_version(url, "v2")
        warm(url)
        assert (store.edge(url).service, store.edge(url).version) == (service, DEFAULT_VERSION), service
        evict(url)
        assert store.edge(url).version is None, service
        warm(url)
        assert store.edge(url).version == "v2", service

    # A UCloud directory refresh evicts every URL below it, and nothing beside it.
    below = ["https://ucloud.example.com/img/a.png", "https://ucloud.example.com/img/deep/b.png"]
    beside = "https://ucloud.example.com/imgs/c.png"
    ucdn.prefetch_new_ucdn_domain_cache({"UrlList": [*below, beside]})
    ucdn.refresh_new_ucdn_domain_cache({"Type": "dir", "UrlList": ["https://ucloud.example.com/img/"]})
    edges = store.edges([*below, beside, urls["ucloud"]], "ucloud")
    assert [edges[u].version for u in (*below, beside, urls["ucloud"])] == [None, None, DEFAULT_VERSION, "v2"]
