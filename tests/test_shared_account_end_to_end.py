"""Two provider processes on one account (issue 19): each its own limiter and its own embedded server on one
sandbox file, both at the full limit at first. The sandbox's shared count throttles them; they back off, and
every target is submitted exactly once (read from the sandbox's request log, not from the adapters)."""

from __future__ import annotations

import threading
from collections import Counter

from components.clouds.edgeone import EdgeOneAdapter, make_client
from components.clouds.ratelimit import SlidingWindowLimiter
from components.model.connection import Endpoint, TencentCredentials
from sandbox import SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY, Sandbox

LIMIT = 4  # requests/s per action, the sandbox's and each process's own idea of it: low, so the test is short
SUBMITS = 8  # per process, one URL each, from two threads


def test_two_processes_on_one_account_back_off_and_submit_every_target_once(tmp_path):
    db = tmp_path / "sandbox.db"
    with Sandbox(db) as one, Sandbox(db) as two:
        one.store.set_setting("rate_limit_per_second", LIMIT)
        limiters = [SlidingWindowLimiter(LIMIT, 1.0) for _ in range(2)]
        adapters = [EdgeOneAdapter(make_client(Endpoint("url", "http", box.endpoint),
                                               TencentCredentials(SANDBOX_SECRET_ID, SANDBOX_SECRET_KEY)),
                                   f"zone-shared{index}", limiter=limiter)
                    for index, (box, limiter) in enumerate(zip((one, two), limiters))]
        urls = [[f"https://static.example.com/p{index}/{n}.js" for n in range(SUBMITS)] for index in range(2)]
        errors: list[BaseException] = []

        def submit(adapter: EdgeOneAdapter, part: list[str]) -> None:
            try:
                for url in part:
                    adapter.submit([url])
            except BaseException as exc:  # noqa: BLE001 - failed below
                errors.append(exc)

        threads = [threading.Thread(target=submit, args=(adapter, mine[half::2]))
                   for adapter, mine in zip(adapters, urls) for half in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        log = one.store.requests(action="CreatePrefetchTask")

    throttled = [row for row in log if row["error_code"] == "RequestLimitExceeded"]
    assert throttled  # both at the whole limit at first: the account's count refused some
    backed_off = [limiter.rate(("edgeone", "CreatePrefetchTask")) for limiter in limiters]
    assert min(backed_off) < LIMIT  # a throttled process lowered its rate (and was not starved: all got through)
    accepted = Counter(url for row in log if row["error_code"] is None for url in row["params"]["Targets"])
    assert accepted == Counter(url for mine in urls for url in mine)  # every target in exactly one accepted submit
    assert len(throttled) < 2 * SUBMITS  # backing off, not hammering: fewer refusals than submits
