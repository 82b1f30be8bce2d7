"""Issue #21 acceptance: Cloud CDN's largest history `Limit` is learnt, not assumed.

The sandbox is told the largest `Limit` it serves and whether a larger one is refused
(`InvalidParameter.CdnParamError`) or capped silently; the drift scenario then runs on 1,500 targets
through the engine harness and the real provider host, one host per command as the CLI runs them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.stacks import DESTINATIONS, HOST, Stack, path_of, resource_name, target_diff

URLS = [f"https://{HOST}/bundle/{i:04d}.js" for i in range(1500)]
FAILED = URLS[7:10]
TIMED_OUT = URLS[900:902]
CDN = DESTINATIONS["tencent-cdn"]
RESOURCE = resource_name("web", CDN)

pytestmark = [pytest.mark.sandbox(cdn_push_daily_mainland=10_000), pytest.mark.mostly_waits]


def refused_pages(sandbox) -> list[dict]:
    """History requests refused for their Limit (throttling of a host that follows another within the
    second is the account's shared rate, answered by the retry: not what is counted here)."""
    return [r for r in sandbox.store.requests(action="DescribePushTasks")
            if r["error_code"] == "InvalidParameter.CdnParamError"]


@pytest.mark.parametrize("largest, over", [(100, "refuse"), (20, "refuse"), (100, "cap")])
def test_the_drift_scenario_passes_whatever_largest_limit_the_cloud_has(tmp_path, sandbox, largest, over):
    sandbox.store.set_setting("cdn_history_max_limit", largest)
    sandbox.store.set_setting("cdn_history_over_limit", over)
    for url in FAILED:
        sandbox.store.add_rule(url, "failed")
    for url in TIMED_OUT:
        sandbox.store.add_rule(url, "timeout")
    stack = Stack(tmp_path, sandbox)
    stack.declare(URLS, destinations=[CDN])

    hosts: list = []
    stack.engine.on_host_start = hosts.append
    refusals_per_command = []

    def run(command):
        sandbox.store.clear_requests()
        started = len(hosts)
        result = command()
        refusals_per_command.append((len(hosts) - started, len(refused_pages(sandbox))))
        return result

    run(stack.engine.up)
    assert Counter(u for batch in stack.submits("tencent-cdn") for u in batch) == Counter(URLS)

    preview = run(stack.engine.preview)
    drift = target_diff(preview.step(RESOURCE))
    assert set(drift) == {path_of(u) for u in FAILED + TIMED_OUT}
    assert all(entry.old.startswith("failed") for entry in drift.values())

    sandbox.store.clear_rules()
    run(stack.engine.up)
    assert sorted(u for batch in stack.submits("tencent-cdn") for u in batch) == sorted(FAILED + TIMED_OUT)
    assert run(stack.engine.preview).changed() == []

    served = {r["params"]["Limit"] for r in sandbox.store.requests(action="DescribePushTasks")
              if r["error_code"] is None}
    if over == "refuse":
        # one refused history request per provider host (process) at most, then the documented 20
        assert all(refused <= hosts_started for hosts_started, refused in refusals_per_command)
        assert any(refused for _, refused in refusals_per_command)
        assert served == {20}
        assert "the cloud refused Limit 1000" in preview.host_log
    else:
        assert all(refused == 0 for _, refused in refusals_per_command)
        assert served == {1000}  # a cloud that caps silently is read as before
    assert [r for r in stack.rejected_requests() if r["action"] != "DescribePushTasks"] == []
