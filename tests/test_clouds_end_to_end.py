"""Issue #3 acceptance: the same drift scenario on every cloud, and one set on several CDNs.

Through the engine harness and the real provider host, with each cloud's official SDK talking to
the sandbox, which enforces that cloud's limits (a violation would show in its request log).
"""

from __future__ import annotations

import pytest

from sandbox import OTHER_SECRET_ID
from tests.engine import EngineError
from tests.stacks import DESTINATIONS, HOST, ZONE, Stack, path_of, resource_name, target_diff

CLOUDS = list(DESTINATIONS)
URLS = [f"https://{HOST}/assets/{i:02d}.js" for i in range(50)]
FAILED = URLS[3:6]
TIMED_OUT = URLS[10:12]
# Tencent CDN and UCloud have no timeout status: a timed-out prefetch is reported as a failure.
TIMEOUT_WORD = {"edgeone": "timed out", "tencent-cdn": "failed", "ucloud": "failed"}


# Each command runs in a new provider host, so the client's 10 s UCloud spacing cannot span two
# commands run back to back here; the spacing itself is tested in test_clouds_ucloud.py.
pytestmark = pytest.mark.sandbox(ucloud_prefetch_interval=0.5)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_drift_scenario_on_each_cloud(tmp_path, sandbox, cloud):
    for url in FAILED:
        sandbox.store.add_rule(url, "failed")
    for url in TIMED_OUT:
        sandbox.store.add_rule(url, "timeout")
    destination = DESTINATIONS[cloud]
    resource = resource_name("web", destination)
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, destinations=[destination])

    stack.engine.up()
    assert stack.submits(cloud) == [sorted(URLS)]

    drift = target_diff(stack.engine.preview().step(resource))
    assert set(drift) == {path_of(u) for u in FAILED + TIMED_OUT}
    assert all(drift[path_of(u)].old.startswith("failed") for u in FAILED)
    assert all(drift[path_of(u)].old.startswith(TIMEOUT_WORD[cloud]) for u in TIMED_OUT)
    assert all(entry.new == "warm" for entry in drift.values())

    sandbox.store.clear_rules()
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits(cloud) == [sorted(FAILED + TIMED_OUT)]
    assert stack.engine.preview().changed() == []
    assert stack.rejected_requests() == []


def test_a_zone_of_another_account_fails_up_naming_the_key_the_zone_and_the_fix(tmp_path, sandbox):
    """The sandbox's accounts: the stack's key pair reads another account's zone. (The audited engine
    checks that no credential reaches the error, the log or the state.)"""
    sandbox.store.grant("teo", ZONE, OTHER_SECRET_ID)
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS[:2])
    with pytest.raises(EngineError) as info:
        stack.engine.up()
    message = str(info.value)
    assert "ResourceUnavailable.ZoneNotFound" in message
    assert (f"edgeone zone {ZONE} is not in the account of the key pair whose SecretId ends in …-e2e: check the "
            "zone id, or use the key pair of the account that owns the zone (tencentcloud:secretId") in message
    assert stack.submits() == [] and {e["error_code"] for e in sandbox.store.requests()} == {
        "ResourceUnavailable.ZoneNotFound"}


def test_one_set_on_two_clouds_reports_each_destination_on_its_own(tmp_path, sandbox):
    broken = URLS[7]
    sandbox.store.add_rule(broken, "failed", service="ucloud")
    edgeone, ucloud = DESTINATIONS["edgeone"], DESTINATIONS["ucloud"]
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS[:10], destinations=[edgeone, ucloud])
    result = stack.engine.up()
    assert stack.submits("edgeone") == [sorted(URLS[:10])] and stack.submits("ucloud") == [sorted(URLS[:10])]

    preview = stack.engine.preview()
    assert preview.step(resource_name("web", edgeone)).op == "same"
    drift = target_diff(preview.step(resource_name("web", ucloud)))
    assert set(drift) == {path_of(broken)}

    [audit] = result.outputs["prefetch"]["sets"].values()
    by_provider = {d["provider"]: d for d in audit["destinations"]}
    assert by_provider["edgeone"]["summary"]["in_sync"] is True
    assert [d["url"] for d in by_provider["ucloud"]["drifted"]] == [broken]


@pytest.mark.parametrize("cloud, setting", [("edgeone", "prefetch_batch"), ("tencent-cdn", "cdn_push_batch")])
def test_live_batch_size_is_respected(tmp_path, sandbox, cloud, setting):
    sandbox.store.set_setting(setting, 20)
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, destinations=[DESTINATIONS[cloud]])
    stack.engine.up()
    assert sorted(len(batch) for batch in stack.submits(cloud)) == [10, 20, 20]
    assert stack.rejected_requests() == []


@pytest.mark.parametrize("cloud, setting", [("edgeone", "prefetch_daily"), ("tencent-cdn", "cdn_push_daily_mainland"),
                                            ("ucloud", "ucloud_prefetch_daily")])
def test_quota_short_refuses_before_submitting(tmp_path, sandbox, cloud, setting):
    sandbox.store.set_setting(setting, 40)
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, destinations=[DESTINATIONS[cloud]])
    with pytest.raises(Exception, match="50 targets need a prefetch but only 40"):
        stack.engine.up()
    assert stack.submits(cloud) == [] and stack.rejected_requests() == []
