"""Issue #4 acceptance: prefetch sets derived from an S3-compatible origin bucket, with content drift.

A real S3-compatible server (moto's, on loopback) holds the origin; the project's own program lists
it with boto3, and the engine harness (tests/engine.py) drives the real provider host against a
sandbox started here. The sandbox's request log is the evidence of what was submitted.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from components.declare import origin as origin_module
from components.model.status import short_etag
from components.resource.outputs import output_targets
from tests.engine import EngineError
from tests.s3_origin import S3, isolate_aws
from tests.stacks import DESTINATIONS, HOST, Stack, path_of, resource_name

RESOURCE = resource_name("web", DESTINATIONS["edgeone"])
BASE = f"https://{HOST}"
SECRET = "OriginSecretKey-must-never-leak-5e8d21"
POLICY_ALLOW_LIST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "*"}]})


@pytest.fixture(autouse=True)
def aws_environment(tmp_path, monkeypatch):
    isolate_aws(tmp_path, monkeypatch)


def make_stack(tmp_path: Path, sandbox, *, origin_credentials: Optional[dict] = None) -> Stack:
    extra = {"cdn-prefetch:originCredentials": origin_credentials} if origin_credentials else None
    stack = Stack(tmp_path, sandbox, extra_config=extra)
    if origin_credentials:
        stack.engine.secret_keys.add("cdn-prefetch:originCredentials")
    return stack


def declare(stack: Stack, s3: S3, bucket: str, *, endpoint: Optional[str] = None, wait: str = "30s",
            targets: Optional[list[str]] = None, **origin: Any) -> Path:
    doc: dict[str, Any] = {"name": "web", **DESTINATIONS["edgeone"], "wait": wait}
    if targets:
        doc["targets"] = targets
    doc["origin"] = {"endpoint": endpoint or s3.endpoint, "region": "us-east-1", "bucket": bucket,
                     "prefix": "site/", "publicBaseUrl": BASE, **origin}
    path = stack.sets / "web.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def url(key: str) -> str:
    return origin_module.key_url(BASE, key)


def desired(etag: str, size: int) -> str:
    return f"warm (etag {short_etag(etag)}, {size} bytes)"


# -- listing: every page, exact URLs -------------------------------------------------------------------
SPECIAL = {"site/a b.js": f"{BASE}/site/a%20b.js",
           "site/a+b.js": f"{BASE}/site/a%2Bb.js",
           "site/ünï/çødé 1+1.css": f"{BASE}/site/%C3%BCn%C3%AF/%C3%A7%C3%B8d%C3%A9%201%2B1.css"}


def test_2500_objects_over_several_pages_become_2500_targets_with_exact_urls(tmp_path, s3, sandbox, monkeypatch):
    bucket = s3.bucket()
    plain = [f"site/bundle/{i:04d}.js" for i in range(2500 - len(SPECIAL))]
    s3.seed(bucket, plain)
    for key in SPECIAL:
        s3.put(bucket, key, b"special")
    s3.put(bucket, "site/empty-folder/", b"")       # a folder placeholder: not a target
    s3.put(bucket, "elsewhere/x.js", b"outside")    # outside the prefix: not listed

    page_sizes: list[int] = []
    make_client = origin_module.make_client

    def counting_client(decl_origin, credentials):
        client = make_client(decl_origin, credentials)
        client.meta.events.register("after-call.s3.ListObjectsV2",
                                    lambda parsed, **_: page_sizes.append(len(parsed.get("Contents", []))))
        return client

    monkeypatch.setattr(origin_module, "make_client", counting_client)
    stack = make_stack(tmp_path, sandbox)
    declare(stack, s3, bucket, wait="0s")
    result = stack.engine.up()

    assert page_sizes == [1000, 1000, 501] * 2  # every page, in the preview pass and the update pass
    submitted = [u for batch in stack.submits() for u in batch]
    assert len(submitted) == len(set(submitted)) == 2500
    assert set(submitted) == {url(k) for k in plain} | set(SPECIAL.values())
    for key, expected in SPECIAL.items():
        assert url(key) == expected and expected in submitted
    assert result.outputs["prefetch"]["sets"]["web"]["targets"] == 2500
    assert ("info", f"set web: 2500 targets from origin s3://{bucket}/site/ at {s3.endpoint} (region us-east-1)") \
        in result.diagnostics


# -- content drift: overwritten objects are stale; deleted ones leave the set --------------------------
def test_overwritten_objects_show_as_changed_and_up_resubmits_exactly_those(tmp_path, s3, sandbox):
    bucket = s3.bucket()
    keys = [f"site/js/{n}.js" for n in range(10)] + list(SPECIAL)
    etags = {k: s3.put(bucket, k, f"v1 of {k}".encode()) for k in keys}
    sizes = {k: len(f"v1 of {k}".encode()) for k in keys}
    stack = make_stack(tmp_path, sandbox)
    declare(stack, s3, bucket)

    stack.engine.up()
    assert stack.submits() == [sorted(url(k) for k in keys)]
    observed = stack.outputs(RESOURCE)["observed"]
    assert {u: (r[0], r[4]) for u, r in observed.items()} == {url(k): ("warm", short_etag(etags[k])) for k in keys}
    assert stack.engine.preview().changed() == []

    # overwrite 3 objects: the next preview shows exactly those 3, old content against new
    changed = ["site/js/3.js", "site/a b.js", "site/ünï/çødé 1+1.css"]
    new_etags = {k: s3.put(bucket, k, f"version two of {k}".encode()) for k in changed}
    sandbox.store.clear_requests()
    preview = stack.engine.preview()
    step = preview.step(RESOURCE)
    assert step.op == "update"
    assert set(step.diff) == {path_of(url(k)) for k in changed}  # nothing else
    for key in changed:
        entry = step.diff[path_of(url(key))]
        assert entry.kind == "update"
        assert entry.old == desired(etags[key], sizes[key])
        assert entry.new == desired(new_etags[key], len(f"version two of {key}".encode()))
    assert preview.refresh_step(RESOURCE).op == "refresh"  # the CDN did not drift: the origin did
    assert stack.submits() == []  # a preview never submits

    # up: the provider sees those 3 as stale (prefetched for another ETag): it purges exactly them (an
    # edge keeps an unexpired copy through a prefetch), then prefetches exactly them
    up = stack.engine.up()
    assert stack.submits(purges=True) == [sorted(url(k) for k in changed)]
    assert stack.submits() == [sorted(url(k) for k in changed)]
    assert "set web: 3 of 13 targets changed, to purge then prefetch (3 stale)" in up.host_log
    observed = stack.outputs(RESOURCE)["observed"]
    for key in keys:
        assert observed[url(key)][0] == "warm"
        assert observed[url(key)][4] == short_etag(new_etags.get(key, etags[key]))
    assert stack.outputs(RESOURCE)["summary"]["in_sync"] is True
    assert stack.engine.preview().changed() == []

    # delete 2 objects: they leave the set, shown as removed, and nothing is submitted
    deleted = ["site/js/7.js", "site/a+b.js"]
    for key in deleted:
        s3.client().delete_object(Bucket=bucket, Key=key)
    sandbox.store.clear_requests()
    step = stack.engine.preview().step(RESOURCE)
    assert {p: e.kind for p, e in step.diff.items()} == {path_of(url(k)): "delete" for k in deleted}
    stack.engine.up()
    assert stack.submits() == []
    assert set(output_targets(stack.outputs(RESOURCE))) == {url(k) for k in keys if k not in deleted}


def test_url_targets_beside_an_origin_keep_plain_warm_and_an_empty_listing_warns(tmp_path, s3, sandbox):
    bucket = s3.bucket()
    s3.put(bucket, "other/x.js", b"x")
    stack = make_stack(tmp_path, sandbox)
    fixed = f"{BASE}/fixed/app.js"
    declare(stack, s3, bucket, prefix="typo/", targets=[fixed])
    result = stack.engine.up()
    assert stack.submits() == [[fixed]]
    assert output_targets(stack.outputs(RESOURCE)) == {fixed: "warm"}
    warnings = [m for severity, m in result.diagnostics if severity == "warning"]
    assert len(warnings) == 2  # once in the preview pass, once in the update pass
    assert all(f"set 'web', origin s3://{bucket}/typo/ at {s3.endpoint} (region us-east-1): no object matches"
               in warning for warning in warnings)


# -- credentials: secret stack config or a profile; never in state, outputs or logs -------------------
def test_credentials_from_secret_stack_config_are_used_and_never_stored(tmp_path, s3, sandbox):
    bucket = s3.bucket()
    s3.put(bucket, "site/a.js", b"a")
    key_id, secret = s3.user(f"reader-{uuid.uuid4().hex[:6]}", POLICY_ALLOW_LIST)
    stack = make_stack(tmp_path, sandbox, origin_credentials={"assets": {"accessKeyId": key_id,
                                                                         "secretAccessKey": secret}})
    declare(stack, s3, bucket, credentials={"config": "assets"})
    with s3.authenticating():
        result = stack.engine.up()
    assert stack.submits() == [[url("site/a.js")]]
    for text in (stack.engine.state_json(), json.dumps(stack.engine.stack_outputs), result.host_log,
                 json.dumps(result.diagnostics)):
        assert secret not in text and key_id not in text


def test_credentials_from_a_named_profile(tmp_path, s3, sandbox):
    bucket = s3.bucket()
    s3.put(bucket, "site/a.js", b"a")
    key_id, secret = s3.user(f"profiled-{uuid.uuid4().hex[:6]}", POLICY_ALLOW_LIST)
    (tmp_path / "aws-credentials").write_text(f"[assets]\naws_access_key_id = {key_id}\n"
                                              f"aws_secret_access_key = {secret}\n")
    stack = make_stack(tmp_path, sandbox)
    declare(stack, s3, bucket, credentials={"profile": "assets"})
    with s3.authenticating():
        stack.engine.up()
    assert stack.submits() == [[url("site/a.js")]]


# -- every failure: a clear message naming set and origin, no traceback, nothing submitted ---------------
def closed_port_endpoint() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("case, words", [
    ("missing-bucket", "the bucket '{bucket}' does not exist (NoSuchBucket"),
    ("access-denied", "access denied (AccessDenied"),
    ("invalid-credentials", "the credentials were refused (InvalidAccessKeyId"),
    ("unreachable", "cannot reach the endpoint after 2 attempts (Could not connect to the endpoint URL"),
    ("empty", "no object matches (prefix 'site/'"),
])
def test_origin_failures_fail_the_preview_clearly_and_submit_nothing(tmp_path, s3, sandbox, monkeypatch, case, words):
    bucket = f"never-created-{uuid.uuid4().hex[:8]}" if case == "missing-bucket" else s3.bucket()
    if case not in ("missing-bucket", "empty"):
        s3.put(bucket, "site/a.js", b"a")
    creds = None
    if case == "access-denied":
        key_id, secret = s3.user(f"nobody-{uuid.uuid4().hex[:6]}")  # no policy: may not list
        creds = {"assets": {"accessKeyId": key_id, "secretAccessKey": secret}}
    elif case == "invalid-credentials":
        creds = {"assets": {"accessKeyId": "AKIAUNKNOWNKEY000000", "secretAccessKey": SECRET}}
    endpoint = closed_port_endpoint() if case == "unreachable" else s3.endpoint
    monkeypatch.setattr(origin_module, "MAX_RETRIES", 1)  # the default 5 attempts take ~15 s here
    stack = make_stack(tmp_path, sandbox, origin_credentials=creds)
    path = declare(stack, s3, bucket, endpoint=endpoint, mustNotBeEmpty=(case == "empty"),
                   **({"credentials": {"config": "assets"}} if creds else {}))

    with s3.authenticating() if creds else contextlib.nullcontext():
        with pytest.raises(EngineError) as info:
            stack.engine.up()
    message = str(info.value.program_error)
    assert message.startswith("1 problem listing origin buckets (nothing was submitted):")
    line = path.read_text(encoding="utf-8").splitlines().index("origin:") + 1
    assert f"{path}:{line}: origin: set 'web', origin s3://{bucket}/site/ at {endpoint} (region us-east-1): " in message
    assert words.format(bucket=bucket) in message
    assert "Traceback" not in message and SECRET not in message
    assert info.value.steps == []               # no resource was registered
    assert sandbox.store.requests() == []       # the CDN was never called
    assert stack.engine.state == {}
