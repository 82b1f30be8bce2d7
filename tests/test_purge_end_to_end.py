"""Issue #16 acceptance: changed content reaches the edge: purge, then prefetch, through the real provider host.

The sandbox's edge model (sandbox/edge.py) is the evidence of what users are served: it replays the
cloud's finished tasks per URL (a prefetch fills only an empty or expired copy, a purge evicts) against
the origin's version of each URL (an S3 object's ETag, or a version set by the test). Its task table
says how many purges and prefetches each URL really got, whatever the client saw.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Sequence

import pytest
import yaml

from components.declare import origin as origin_module
from components.model.status import short_etag
from components.resource.submitter import REQUEST_LIFE
from tests.engine import EngineError
from tests.s3_origin import S3, isolate_aws
from tests.stacks import DESTINATIONS, HOST, PURGE_ACTIONS, SERVICES, SUBMIT_ACTIONS, Stack, path_of, resource_name, \
    target_diff

BASE = f"https://{HOST}"
CLOUDS = ("edgeone", "tencent-cdn", "ucloud")

# Each command runs in a new provider host; the client keeps UCloud's 10 s submit spacing within one.
pytestmark = pytest.mark.sandbox(ucloud_prefetch_interval=0.5)


@pytest.fixture(autouse=True)
def aws_environment(tmp_path, monkeypatch):
    isolate_aws(tmp_path, monkeypatch)


def key_url(key: str) -> str:
    return origin_module.key_url(BASE, key)


def declare_origin(stack: Stack, s3: S3, bucket: str, cloud: str, **keys: Any) -> None:
    doc: dict[str, Any] = {"name": "web", **DESTINATIONS[cloud], "wait": "30s", **keys,
                           "origin": {"endpoint": s3.endpoint, "region": "us-east-1", "bucket": bucket,
                                      "prefix": "site/", "publicBaseUrl": BASE}}
    (stack.sets / "web.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def tasks_per_url(sandbox, cloud: str, kind: str) -> Counter:
    """How many tasks of one kind the cloud holds for each URL: what it really did."""
    return Counter(task.target for task in sandbox.store.tasks(SERVICES[cloud], kind=kind))


def served(sandbox, cloud: str, urls: Sequence[str]) -> dict[str, str]:
    """url -> the version a user request gets from the cloud's edge now."""
    return {url: copy.serves for url, copy in sandbox.store.edges(list(urls), SERVICES[cloud]).items()}


def assert_purged_before_prefetched(sandbox, cloud: str, urls: Sequence[str]) -> None:
    """Each URL's last prefetch was submitted after its last purge had finished, successfully."""
    service = SERVICES[cloud]
    purges = {t.target: t for t in sandbox.store.tasks(service, kind="purge")}
    prefetches = {t.target: t for t in sandbox.store.tasks(service, kind="prefetch")}
    for url in urls:
        assert purges[url].outcome == "success"
        assert purges[url].finish <= prefetches[url].created, f"{url} was prefetched before its purge finished"


# -- origin objects change: exactly those are purged, then prefetched -------------------------------
@pytest.mark.parametrize("cloud", CLOUDS)
def test_changed_origin_objects_are_purged_then_prefetched_and_the_edge_serves_the_new_version(
        tmp_path, sandbox, s3, cloud):
    bucket = s3.bucket()
    keys = [f"site/app/{n}.js" for n in range(8)]
    etags = {k: s3.put(bucket, k, f"v1 of {k}".encode()) for k in keys}
    sandbox.store.add_s3_origin(f"{BASE}/site/", s3.endpoint, bucket, "site/")
    urls = [key_url(k) for k in keys]
    stack = Stack(tmp_path, sandbox)
    declare_origin(stack, s3, bucket, cloud)
    resource = resource_name("web", DESTINATIONS[cloud])

    stack.engine.up()
    assert served(sandbox, cloud, urls) == {key_url(k): etags[k].strip('"') for k in keys}
    assert stack.submits(cloud, purges=True) == []  # nothing changed yet: nothing purged

    # a release overwrites two objects: the edge still serves their old copies (a day's TTL)
    changed = ["site/app/2.js", "site/app/5.js"]
    new_etags = {k: s3.put(bucket, k, f"v2 of {k}".encode()) for k in changed}
    stale = {key_url(k) for k in changed}
    assert {u for u, c in sandbox.store.edges(urls, SERVICES[cloud]).items() if not c.current} == stale

    sandbox.store.clear_requests()
    preview = stack.engine.preview()
    step = preview.step(resource)
    assert set(target_diff(step)) == {path_of(u) for u in stale}  # exactly those, old version => new
    for key in changed:
        entry = step.diff[path_of(key_url(key))]
        assert short_etag(etags[key]) in entry.old and short_etag(new_etags[key]) in entry.new
        # and what the up will do about it, target by target
        assert (f"{key_url(key)}: stale (etag {short_etag(etags[key])}⇒{short_etag(new_etags[key])}): purge, then "
                "prefetch") in preview.host_log
    assert preview.host_log.count("purge, then prefetch") == 2
    assert stack.submits(cloud, purges=True) == [] and stack.submits(cloud) == []  # a preview never submits

    up = stack.engine.up()
    assert stack.submits(cloud, purges=True) == [sorted(stale)]
    assert stack.submits(cloud) == [sorted(stale)]
    assert "2 of 8 targets changed, to purge then prefetch (2 stale)" in up.host_log
    assert_purged_before_prefetched(sandbox, cloud, sorted(stale))
    assert tasks_per_url(sandbox, cloud, "purge") == Counter(stale)  # nothing else was ever purged
    # the edge now serves the new version of exactly those two, and the others as before
    assert served(sandbox, cloud, urls) == {key_url(k): new_etags.get(k, etags[k]).strip('"') for k in keys}

    outputs = stack.outputs(resource)
    purge_ids = {t.job_id for t in sandbox.store.tasks(SERVICES[cloud], kind="purge")}
    assert {t["task_id"] for t in outputs["submitted"] if t.get("kind") == "purge"} == purge_ids
    assert outputs["summary"]["in_sync"] is True
    assert stack.engine.preview().changed() == []


# -- a revision bump: every target purged, then prefetched; onChange: prefetch shows why ------------
URLS = [f"{BASE}/release/{n:02d}.js" for n in range(12)]


def release(sandbox, build: str, urls: Sequence[str] = URLS) -> None:
    """The origin serves ``build`` for every URL from now on."""
    for url in urls:
        sandbox.store.set_origin_version(url, build)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_revision_bump_purges_then_prefetches_every_target_once_even_under_throttling_and_5xx(
        tmp_path, sandbox, cloud):
    release(sandbox, "build-41")
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, destinations=[DESTINATIONS[cloud]], revision="r41", safety={"maxPurgeShare": 1})
    resource = resource_name("web", DESTINATIONS[cloud])
    stack.engine.up()
    assert set(served(sandbox, cloud, URLS).values()) == {"build-41"}

    release(sandbox, "build-42")
    stack.declare(URLS, destinations=[DESTINATIONS[cloud]], revision="r42", safety={"maxPurgeShare": 1})
    sandbox.store.clear_requests()
    preview = stack.engine.preview()
    assert {p: (e.old, e.new) for p, e in target_diff(preview.step(resource)).items()} == \
        {path_of(u): ("warm (revision r41)", "warm (revision r42)") for u in URLS}
    assert all(f"{u}: revision r41⇒r42: purge, then prefetch" in preview.host_log for u in URLS)

    service = SERVICES[cloud]
    purge_action, _ = PURGE_ACTIONS[cloud]
    prefetch_action, _ = SUBMIT_ACTIONS[cloud]
    # the first purge submit fails after the cloud did it, the first prefetch before; history reads throttled
    sandbox.store.add_fault("http_5xx", service=service, action=purge_action, executed=True, count=1, seed=1)
    sandbox.store.add_fault("http_5xx", service=service, action=prefetch_action, executed=False, count=1, seed=1)
    sandbox.store.add_fault("throttle", service=service, probability=0.3, count=6, seed=7)
    stack.engine.up()
    assert sum(f["fired"] for f in sandbox.store.faults()) >= 2
    # the prefetch whose answer was lost is not sent again before the request's whole life has passed
    assert tasks_per_url(sandbox, cloud, "prefetch") == Counter(URLS)
    stack.travel(REQUEST_LIFE.total_seconds())
    stack.engine.up()
    # what the cloud really did, whatever the client saw: every target purged once, then prefetched once
    assert tasks_per_url(sandbox, cloud, "purge") == Counter(URLS)
    assert tasks_per_url(sandbox, cloud, "prefetch") == Counter(URLS * 2)  # the first warm-up, and one re-warm
    assert_purged_before_prefetched(sandbox, cloud, URLS)
    assert set(served(sandbox, cloud, URLS).values()) == {"build-42"}
    assert stack.outputs(resource)["summary"]["in_sync"] is True
    assert stack.engine.preview().changed() == []


def test_with_on_change_prefetch_the_edge_keeps_serving_the_old_build(tmp_path, sandbox):
    """Why purge-then-prefetch is the default: a prefetch does not replace an unexpired cached copy."""
    release(sandbox, "build-41")
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, revision="r41", onChange="prefetch")
    stack.engine.up()
    release(sandbox, "build-42")
    stack.declare(URLS, revision="r42", onChange="prefetch")
    assert f"{URLS[0]}: revision r41⇒r42: prefetch again (onChange: prefetch)" in stack.engine.preview().host_log
    sandbox.store.clear_requests()
    up = stack.engine.up()
    assert stack.submits(purges=True) == []
    assert sorted(u for b in stack.submits() for u in b) == URLS  # prefetched again, and reported warm...
    assert stack.outputs(resource_name("web", DESTINATIONS["edgeone"]))["summary"]["in_sync"] is True
    assert "to purge" not in up.host_log
    # ...while every user is still served yesterday's build
    assert set(served(sandbox, "edgeone", URLS).values()) == {"build-41"}
    assert not any(c.current for c in sandbox.store.edges(URLS, "teo").values())


# -- a purge that fails: drift of its own, its prefetch waits, the next up retries the purge only --------
def test_a_failed_purge_is_drift_its_prefetch_waits_and_the_next_up_retries_the_purge_only(tmp_path, sandbox):
    release(sandbox, "build-41")
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, revision="r41", safety={"maxPurgeShare": 1})
    resource = resource_name("web", DESTINATIONS["edgeone"])
    stack.engine.up()
    release(sandbox, "build-42")
    broken = URLS[3]
    sandbox.store.add_rule(broken, "failed", fail_type="taskFailed", fail_message="purge backend unavailable",
                           kind="purge")
    stack.declare(URLS, revision="r42", safety={"maxPurgeShare": 1})
    sandbox.store.clear_requests()
    up = stack.engine.up()
    assert sorted(u for b in stack.submits(purges=True) for u in b) == URLS
    assert sorted(u for b in stack.submits() for u in b) == [u for u in URLS if u != broken]  # not its prefetch
    assert "1 of 12 targets not warm (1 purge_failed)" in up.host_log
    outputs = stack.outputs(resource)
    assert outputs["summary"]["in_sync"] is False
    assert outputs["observed"][broken][0] == "purge_failed"
    assert served(sandbox, "edgeone", [broken]) == {broken: "build-41"}  # users still get the old build

    # the next preview shows it as drift (target by target), with the reason
    step = stack.engine.preview(refresh=True).step(resource)
    assert set(target_diff(step)) == {path_of(broken)}
    assert "purge failed" in target_diff(step)[path_of(broken)].old
    assert "purge backend unavailable" in target_diff(step)[path_of(broken)].old

    sandbox.store.clear_rules()
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits(purges=True) == [[broken]]  # the purge only, and then its prefetch
    assert stack.submits() == [[broken]]
    assert tasks_per_url(sandbox, "edgeone", "purge")[broken] == 2
    assert set(served(sandbox, "edgeone", URLS).values()) == {"build-42"}
    assert stack.engine.preview().changed() == []


# -- a host killed between the purge submit and the state save -------------------------------------
def test_a_host_killed_after_its_purge_submit_loses_nothing_and_the_next_up_does_not_purge_again(tmp_path, sandbox):
    release(sandbox, "build-41")
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, revision="r41", safety={"maxPurgeShare": 1})
    stack.engine.up()
    release(sandbox, "build-42")
    stack.declare(URLS, revision="r42", safety={"maxPurgeShare": 1})
    sandbox.store.set_setting("progress_seconds", 3.0)  # the host is waiting on the purge when it dies

    hosts: list = []
    stack.engine.on_host_start = hosts.append
    killed = threading.Event()

    def kill_after_purge_submit() -> None:
        while not killed.is_set():
            if hosts and any(r["error_code"] is None for r in sandbox.store.requests(action="CreatePurgeTask")):
                hosts[-1].kill()
                killed.set()
                return
            threading.Event().wait(0.01)

    watcher = threading.Thread(target=kill_after_purge_submit, daemon=True)
    watcher.start()
    try:
        with pytest.raises(EngineError):
            stack.engine.up()
    finally:
        killed.set()
        watcher.join(5)
    stack.engine.on_host_start = None
    assert tasks_per_url(sandbox, "edgeone", "purge") == Counter(URLS)  # the purge was submitted...
    assert tasks_per_url(sandbox, "edgeone", "prefetch") == Counter(URLS)  # ...its prefetch not yet

    sandbox.store.set_setting("progress_seconds", 0.3)
    sandbox.store.clear_requests()
    up = stack.engine.up()
    # The purge is found in the history: still running (waited for), or done by the time this host started
    # (a loaded machine): either way followed by its prefetch, never purged again.
    assert ("12 of 12 targets wait for a purge an earlier up submitted, then a prefetch" in up.host_log
            or "12 of 12 targets need a prefetch (12 purged)" in up.host_log)
    assert stack.submits(purges=True) == []  # found in the purge history: not purged again
    assert sorted(u for b in stack.submits() for u in b) == URLS
    assert tasks_per_url(sandbox, "edgeone", "purge") == Counter(URLS)
    assert set(served(sandbox, "edgeone", URLS).values()) == {"build-42"}
    assert stack.engine.preview().changed() == []


# -- the purge rail -------------------------------------------------------------------------------
def test_purging_more_than_the_set_share_is_warned_in_preview_refused_by_up_and_goes_with_consent(tmp_path, sandbox):
    release(sandbox, "build-41")
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, revision="r41")  # the default rail: at most half the set per up
    stack.engine.up()
    release(sandbox, "build-42")
    stack.declare(URLS, revision="r42")
    sandbox.store.clear_requests()

    preview = stack.engine.preview()
    assert "up will refuse this change" in preview.host_log and "would purge 12 of the set's 12 targets" in \
        preview.host_log
    with pytest.raises(EngineError) as refused:
        stack.engine.up()
    assert "safety: {maxPurgeShare: 1}" in str(refused.value)
    assert stack.submits(purges=True) == [] and stack.submits() == []  # nothing purged or submitted

    stack.engine.config["cdn-prefetch:allowLargeChanges"] = "true"  # consent once
    stack.engine.up()
    assert sorted(u for b in stack.submits(purges=True) for u in b) == URLS
    assert set(served(sandbox, "edgeone", URLS).values()) == {"build-42"}
