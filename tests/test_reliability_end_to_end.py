"""Issue #5 acceptance: reliability end to end, through the engine harness and the real provider host.

- a provider host killed in the middle of an ``up``: the next ``up`` loses nothing and submits
  nothing twice;
- ambiguous submit failures (5xx or a reset after the cloud did the work, or before): each target
  is submitted exactly once (the sandbox's task table is the evidence);
- a submit the cloud refuses part-way: the error says what was and was not submitted, the next
  refresh finds the submitted tasks, the next ``up`` submits only the rest;
- quota short: the refreshed preview says so with the numbers, ``up`` submits nothing, or exactly
  what fits when the set allows partial submission;
- safety rails: a large drop or a large share of the daily quota is refused without consent and
  goes ahead with it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Callable, Optional, Sequence

import pytest
import yaml

from components.clouds import edgeone
from components.model.connection import Endpoint, TencentCredentials
from components.resource.outputs import output_targets
from components.resource.submitter import REQUEST_LIFE
from sandbox import ucloud as ucloud_sandbox
from sandbox.faults import fires
from sandbox.store import NewTask
from tests.engine import EngineError
from tests.stacks import DESTINATIONS, HOST, SECRET_ID, SECRET_KEY, SERVICES, SUBMIT_ACTIONS, ZONE, Stack, resource_name

URLS = [f"https://{HOST}/assets/{i:03d}.js" for i in range(120)]
EDGEONE = DESTINATIONS["edgeone"]
RESOURCE = resource_name("web", EDGEONE)


# Each command runs in a new provider host; the client keeps UCloud's 10 s spacing within one.
pytestmark = pytest.mark.sandbox(ucloud_prefetch_interval=0.5)


class PolicyStack(Stack):
    """The shared stack helper, with the set's extra keys (allowPartial, safety) when given."""

    def declare(self, urls: Sequence[str], *, destinations: Sequence[dict] = (EDGEONE,), **extra: Any) -> None:
        super().declare(urls, destinations=destinations)
        path = self.sets / "web.yaml"
        doc = yaml.safe_load(path.read_text())
        doc.update(extra)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))


def tasks_per_url(sandbox, cloud: str = "edgeone") -> Counter:
    """How many tasks the cloud holds for each URL: what it really did, whatever the client saw."""
    return Counter(task.target for task in sandbox.store.tasks(SERVICES[cloud]))


def seed_for(pattern: Sequence[bool], probability: float = 0.5) -> int:
    """A fault seed whose first draws fire exactly as ``pattern`` says (draw n = the n-th matching request)."""
    for seed in range(100_000):
        if all(fires(seed, draw, probability) == wanted for draw, wanted in enumerate(pattern)):
            return seed
    raise AssertionError("no seed found")  # pragma: no cover


def on_nth_submit(n: int, count: int = 1) -> dict:
    """Fault arguments that make the n-th submit request (and the next count-1 ones) fail, and no other."""
    return {"probability": 0.5, "seed": seed_for([False] * (n - 1) + [True] * count), "count": count}


class HostKiller:
    """Kills the provider host (tests/engine.py's on_host_start hook) once ``trigger()`` holds,
    as a crash or a cancelled CI job would, in the middle of whatever it is doing."""

    def __init__(self, engine, trigger: Callable[[], bool]):
        self.hosts: list = []
        self.killed: Optional[int] = None
        self.trigger = trigger
        engine.on_host_start = self.hosts.append
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            if self.hosts and self.trigger():
                host = self.hosts[-1]  # submits only happen in the update pass, the latest host
                host.kill()
                self.killed = host.pid
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def submits_logged(sandbox, *, fault: Optional[str] = None) -> Callable[[], bool]:
    def seen() -> bool:
        rows = sandbox.store.requests(action="CreatePrefetchTask")
        if fault is None:
            return any(r["error_code"] is None and r["fault"] is None for r in rows)
        return any(r["fault"] == fault for r in rows)
    return seen


# -- (a) the provider host dies in the middle of an up ---------------------------------------------
@pytest.mark.parametrize("moment", ["after-first-accepted-submit", "waiting-on-a-slow-submit"])
def test_a_host_killed_mid_up_loses_nothing_and_the_next_up_submits_nothing_twice(tmp_path, sandbox, moment):
    sandbox.store.set_setting("prefetch_batch", 20)  # 100 targets: 5 submits
    urls = URLS[:100]
    if moment == "after-first-accepted-submit":
        # the 2nd submit is throttled 3 times: the host is backing off when it is killed
        sandbox.store.add_fault("throttle", service="teo", action="CreatePrefetchTask", **on_nth_submit(2, 3))
        trigger = submits_logged(sandbox)
    else:
        # the 2nd submit is performed, then answered only after 20 s: the host is waiting for it
        sandbox.store.add_fault("slow", service="teo", action="CreatePrefetchTask", executed=True,
                                delay_seconds=20, **on_nth_submit(2))
        trigger = submits_logged(sandbox, fault="slow")
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(urls)
    killer = HostKiller(stack.engine, trigger)
    try:
        with pytest.raises(EngineError):
            stack.engine.up()
    finally:
        killer.stop()
    assert killer.killed is not None
    before = tasks_per_url(sandbox)
    assert 0 < sum(before.values()) < len(urls)  # it really died part-way
    stack.engine.on_host_start = None

    stack.engine.up()
    assert tasks_per_url(sandbox) == Counter(urls)  # every target exactly once: none lost, none twice
    outputs = stack.outputs(RESOURCE)
    assert outputs["summary"]["in_sync"] is True
    # the tasks the dead host submitted are in the record (as each target's task)
    recorded = {record[1] for record in outputs["observed"].values()}
    assert {t.job_id for t in sandbox.store.tasks("teo")} == recorded
    assert stack.engine.preview().changed() == []


# -- (d) ambiguous submit failures never duplicate ------------------------------------------------
@pytest.mark.parametrize("cloud, kind, executed", [
    ("edgeone", "http_5xx", True), ("edgeone", "http_5xx", False),
    ("edgeone", "reset", True), ("edgeone", "reset", False),
    ("tencent-cdn", "http_5xx", True), ("tencent-cdn", "reset", True),
    ("ucloud", "http_5xx", True), ("ucloud", "reset", True),
])
def test_an_ambiguous_submit_failure_submits_each_target_exactly_once(tmp_path, sandbox, cloud, kind, executed):
    action, _ = SUBMIT_ACTIONS[cloud]
    sandbox.store.add_fault(kind, service=SERVICES[cloud], action=action, executed=executed, count=1, seed=1)
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(URLS[:30], destinations=[DESTINATIONS[cloud]])
    resource = resource_name("web", DESTINATIONS[cloud])
    result = stack.engine.up()
    assert [f["fired"] for f in sandbox.store.faults()] == [1]
    assert "may or may not have been accepted" in result.host_log
    if executed:
        assert "counted as submitted, not sent again" in result.host_log
    else:  # never sent again in that up: the cloud might still run it; the next up after its life decides
        assert tasks_per_url(sandbox, cloud) == Counter() and "history does not show them yet" in result.host_log
        [attempt] = stack.outputs(resource)["unconfirmed"]
        assert sorted(attempt["targets"]) == URLS[:30]
        assert stack.outputs(resource)["summary"]["counts"]["unknown"] == 30
        stack.travel(REQUEST_LIFE.total_seconds())
        result = stack.engine.up()
        assert "it was not executed; they are sent as history says" in result.host_log
    assert tasks_per_url(sandbox, cloud) == Counter(URLS[:30])
    outputs = stack.outputs(resource)
    assert outputs["summary"]["in_sync"] is True and "unconfirmed" not in outputs
    assert len(outputs["submitted"]) == 1  # one task, whichever way we learnt its id


# -- item 4: a submit refused part-way ------------------------------------------------------------
def test_a_submit_refused_part_way_says_what_was_submitted_and_the_next_up_submits_only_the_rest(tmp_path, sandbox):
    sandbox.store.set_setting("prefetch_batch", 20)
    urls = URLS[:60]
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(urls)
    stack.engine.up()
    sandbox.store.age(36 * 3600)  # everything expired (freshness 24h)
    # the 2nd submit of the next up is refused once (a signature the cloud finds expired: not retried)
    sandbox.store.add_fault("clock_skew", service="teo", action="CreatePrefetchTask", **on_nth_submit(2))
    with pytest.raises(EngineError) as info:
        stack.engine.up()
    first_batch = sandbox.store.tasks("teo")[-20:]
    message = str(info.value)
    assert "submitting batch 2 of 3 failed" in message and "AuthFailure.SignatureExpire" in message
    assert f"Submitted before the failure: 20 targets (task ids: {first_batch[0].job_id}); not submitted: 40" in message

    stack.engine.refresh()
    observed = stack.outputs(RESOURCE)["observed"]
    assert {url for url, record in observed.items() if record[1] == first_batch[0].job_id} == \
        {t.target for t in first_batch}
    assert sum(1 for record in observed.values() if record[0] == "expired") == 40

    sandbox.store.clear_requests()
    stack.engine.up()
    assert sorted(u for batch in stack.submits() for u in batch) == sorted(set(urls) - {t.target for t in first_batch})
    assert tasks_per_url(sandbox) == Counter(urls * 2)  # the first warm-up and exactly one re-warm each


# -- (b) quota short by 10 targets ----------------------------------------------------------------
def spend_quota(sandbox, count: int) -> None:
    """Quota used today by someone else in the same zone (other URLs)."""
    tasks = [NewTask(f"https://other.example.com/{i}.js", "other.example.com", time.time(), "success")
             for i in range(count)]
    sandbox.store.create_tasks("teo", ZONE, "someone-else", tasks, now=time.time())


def test_quota_short_by_ten_shows_in_the_preview_and_up_submits_nothing_or_what_fits(tmp_path, sandbox):
    sandbox.store.set_setting("prefetch_daily", 200)
    urls = URLS[:60]
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(urls)
    stack.engine.up()
    sandbox.store.age(36 * 3600)  # expired, and that quota was spent on another day
    spend_quota(sandbox, 150)     # 50 of today's 200 left
    sandbox.store.clear_requests()

    preview = stack.engine.preview()
    warning = (f"warning: set web on edgeone zone {ZONE}: 60 targets need a prefetch but only 50 of today's quota "
               "are left: up will submit nothing")
    assert warning in preview.host_log
    with pytest.raises(EngineError) as info:
        stack.engine.up()
    assert "60 targets need a prefetch but only 50 of today's 200 prefetch quota are left; nothing was submitted" \
        in str(info.value)
    assert stack.submits() == []

    stack.declare(urls, allowPartial=True)
    preview = stack.engine.preview()
    # read only knows the saved state (no consent yet); the diff shows the consent this change adds
    assert warning in preview.host_log
    assert [path for path in preview.step(RESOURCE).diff if "allowPartial" in path] == ["destination.allowPartial"]
    result = stack.engine.up()
    assert sum(len(batch) for batch in stack.submits()) == 50
    assert "submitting 50 (allowPartial); 10 not submitted" in result.host_log
    outputs = stack.outputs(RESOURCE)
    assert outputs["quota"] == {"needed": 60, "available": 50, "daily": 200, "submit": 50, "not_submitted": 10,
                                "allow_partial": True, "refused": ""}
    assert outputs["summary"]["counts"]["expired"] == 10 and outputs["summary"]["counts"]["warm"] == 50
    assert ("10 targets need a prefetch but only 0 of today's quota are left: up will submit nothing now and leave "
            "10 for after the quota resets (allowPartial)") in stack.engine.preview().host_log


# -- (c) safety rails -----------------------------------------------------------------------------
@pytest.mark.parametrize("consent", ["declaration", "stack-config"])
def test_dropping_most_targets_needs_consent(tmp_path, sandbox, consent):
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(URLS[:40])
    stack.engine.up()
    sandbox.store.clear_requests()

    stack.declare(URLS[:10])
    refusal = f"set 'web' on edgeone zone {ZONE}: this change drops 30 of the set's 40 targets (75%)"
    assert f"warning: up will refuse this change: {refusal}" in stack.engine.preview().host_log
    with pytest.raises(EngineError) as info:
        stack.engine.up()
    assert refusal in str(info.value) and "safety: {maxDropShare: 0.75}" in str(info.value)
    assert len(output_targets(stack.outputs(RESOURCE))) == 40  # nothing changed

    if consent == "declaration":
        stack.declare(URLS[:10], safety={"maxDropShare": 0.75})
    else:
        stack.engine.config["cdn-prefetch:allowLargeChanges"] = "true"
    stack.engine.up()
    assert len(output_targets(stack.outputs(RESOURCE))) == 10
    assert stack.submits() == []


def test_submitting_more_than_half_the_daily_quota_needs_consent(tmp_path, sandbox):
    sandbox.store.set_setting("prefetch_daily", 100)
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(URLS[:60])
    with pytest.raises(EngineError) as info:
        stack.engine.up()
    assert ("this up would submit 60 targets, 60% of the daily prefetch quota of 100, more than the 50% one change "
            "may use without consent; nothing was submitted") in str(info.value)
    assert stack.submits() == []

    stack.declare(URLS[:60], safety={"maxQuotaShare": 0.6})
    stack.engine.up()
    assert sorted(u for batch in stack.submits() for u in batch) == URLS[:60]


# -- issue 17: a submit the cloud executes late, UCloud's clock far from ours, URLs without a status -------
def replay_lost_submit(sandbox) -> None:
    """The cloud executes now the submit whose answer the client lost (the request the sandbox logged)."""
    [lost] = [r for r in sandbox.store.requests(action="CreatePrefetchTask") if r["fault"]]
    adapter = edgeone.build(EDGEONE, Endpoint("url", "http", sandbox.endpoint), TencentCredentials(SECRET_ID, SECRET_KEY))
    adapter.submit(lost["params"]["Targets"])


def test_a_submit_executed_60_s_after_the_client_gave_up_is_submitted_exactly_once_over_two_ups(tmp_path, sandbox):
    sandbox.store.add_fault("http_5xx", service="teo", action="CreatePrefetchTask", executed=False, count=1)
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(URLS[:3])
    first = stack.engine.up()
    assert tasks_per_url(sandbox) == Counter() and "history does not show them yet" in first.host_log
    stack.travel(60)
    replay_lost_submit(sandbox)  # 60 s after the client gave up, the cloud runs the request after all
    second = stack.engine.up()
    assert tasks_per_url(sandbox) == Counter(URLS[:3])  # exactly once: the second up sent nothing
    assert "counted as submitted, not sent again" in second.host_log
    outputs = stack.outputs(RESOURCE)
    assert outputs["summary"]["in_sync"] is True and "unconfirmed" not in outputs
    assert [s["task_id"] for s in outputs["submitted"]] == [t.job_id for t in sandbox.store.tasks("teo")][:1]


UCLOUD = DESTINATIONS["ucloud"]


def skew_ucloud_clock(sandbox, seconds: float) -> None:
    """UCloud's clock ``seconds`` off ours from now on (sandbox/faults.py clock_skew), for every request no
    fault added before fires on."""
    sandbox.store.add_fault("clock_skew", service="ucloud", delay_seconds=seconds)


def test_ucloud_half_an_hour_ahead_submits_once_and_is_warm(tmp_path, sandbox):
    sandbox.store.add_fault("http_5xx", service="ucloud", action="PrefetchNewUcdnDomainCache", executed=True, count=1)
    skew_ucloud_clock(sandbox, 1800)
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(URLS[:3], destinations=[UCLOUD])
    stack.engine.up()  # the ambiguous submit is found in history although the cloud stamps it in our future
    assert tasks_per_url(sandbox, "ucloud") == Counter(URLS[:3])
    assert stack.outputs(resource_name("web", UCLOUD))["summary"]["in_sync"] is True
    assert stack.engine.preview().changed() == []  # a refreshed preview finds it warm: nothing to send


def test_ucloud_half_an_hour_behind_submits_once_and_is_warm(tmp_path, sandbox):
    sandbox.store.add_fault("http_5xx", service="ucloud", action="PrefetchNewUcdnDomainCache", executed=True,
                            **on_nth_submit(2))
    skew_ucloud_clock(sandbox, -1800)
    stack = PolicyStack(tmp_path, sandbox)
    resource = resource_name("web", UCLOUD)
    stack.declare(URLS[:3], destinations=[UCLOUD])
    stack.engine.up()  # our task, read by id, shows the cloud's clock: the polls see it finish
    assert stack.outputs(resource)["summary"]["in_sync"] is True
    stack.declare(URLS[:6], destinations=[UCLOUD])
    stack.engine.up()  # a new host, whose first submit is ambiguous: its task is stamped before our window
    assert stack.outputs(resource)["summary"]["counts"]["unknown"] == 3  # unconfirmed, never sent twice
    stack.engine.up()
    assert tasks_per_url(sandbox, "ucloud") == Counter(URLS[:6])
    assert stack.outputs(resource)["summary"]["in_sync"] is True


def test_ucloud_urls_without_a_status_of_their_own_are_unknown_and_only_the_failed_one_is_sent_again(
        tmp_path, sandbox, monkeypatch):
    reported = ucloud_sandbox._url_status
    monkeypatch.setattr(ucloud_sandbox, "_url_status",  # a task whose warm URLs come without a status
                        lambda created, finish, outcome, now: None if outcome == "success" else
                        reported(created, finish, outcome, now))
    sandbox.store.add_rule(URLS[0], "failed")
    stack = PolicyStack(tmp_path, sandbox)
    stack.declare(URLS[:30], destinations=[UCLOUD])
    stack.engine.up()
    counts = stack.outputs(resource_name("web", UCLOUD))["summary"]["counts"]
    assert (counts["failed"], counts["unknown"]) == (1, 29)
    sandbox.store.clear_requests()
    stack.engine.up()
    assert stack.submits("ucloud") == [[URLS[0]]]
