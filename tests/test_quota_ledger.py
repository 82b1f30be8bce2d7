"""The process's quota ledger: one quota reading per destination, spent by every shard and set."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Iterator, Optional, Sequence

import pytest

from components.clouds.base import CloudAdapter, CloudError, SubmitResult
from components.clouds.quota_ledger import QuotaLedger
from components.model.policy import Policy
from components.model.quota import Quota
from tests.fakes import FakeClock


class QuotaOnly(CloudAdapter):
    """An adapter whose quota calls are counted; history and submit are not used here."""

    cloud = "fake"
    max_window = timedelta(days=7)

    def __init__(self, available: int, daily: int = 10_000, batch: int = 100, scope: str = "zone-a",
                 key: Optional[tuple] = ("fake", "endpoint", "id")):
        self.available, self.daily, self.batch, self.scope, self.key = available, daily, batch, scope, key
        self.quota_calls = 0
        self.fail: Optional[CloudError] = None

    def quota(self) -> Quota:
        self.quota_calls += 1
        if self.fail:
            raise self.fail
        return Quota(self.batch, self.daily, self.available)

    def submit(self, urls: Sequence[str]) -> SubmitResult:
        raise AssertionError("not used")

    def history(self, since, until) -> Iterator:
        raise AssertionError("not used")

    def history_key(self):
        return self.key

    def describe_scope(self) -> str:
        return f"fake zone {self.scope}"


LARGE = Policy(max_quota_share=1.0)


def test_shards_share_one_reading_and_spend_it_in_turn():
    adapter, ledger = QuotaOnly(available=1_000), QuotaLedger()
    first = ledger.reserve(adapter, "web", 600, LARGE, "set 'web'")
    second = ledger.reserve(adapter, "web", 600, LARGE, "set 'web'")
    assert (first.submit, first.refusal) == (600, None)
    # The second shard sees only the 400 left, and is refused before the cloud could refuse it part-way.
    assert second.submit == 0 and second.available == 400 and "only 400" in second.refusal
    assert adapter.quota_calls == 1
    assert first.batch == 100


def test_allow_partial_takes_what_is_left_after_the_other_shards():
    adapter, ledger = QuotaOnly(available=1_000), QuotaLedger()
    policy = Policy(max_quota_share=1.0, allow_partial=True)
    assert ledger.reserve(adapter, "web", 700, policy, "w").submit == 700
    assert ledger.reserve(adapter, "web", 700, policy, "w").submit == 300
    assert ledger.reserve(adapter, "web", 700, policy, "w").submit == 0


def test_share_rail_holds_for_the_set_not_for_each_shard():
    adapter, ledger = QuotaOnly(available=10_000, daily=10_000), QuotaLedger()
    policy = Policy(max_quota_share=0.5)
    assert ledger.reserve(adapter, "web", 3_000, policy, "set 'web'").submit == 3_000
    refused = ledger.reserve(adapter, "web", 3_000, policy, "set 'web'")
    assert refused.submit == 0 and refused.share_exceeded
    assert "6000 targets (with the 3000 its other shards submitted in this up)" in refused.refusal
    # Another set on the same destination has its own allowance (as before sharding), but the same quota.
    other = ledger.reserve(adapter, "docs", 3_000, policy, "set 'docs'")
    assert other.submit == 3_000 and other.available == 7_000


def test_destinations_and_accounts_do_not_share():
    ledger = QuotaLedger()
    a, b = QuotaOnly(available=500, scope="zone-a"), QuotaOnly(available=500, scope="zone-b")
    other_account = QuotaOnly(available=500, key=("fake", "endpoint", "other-id"))
    for adapter in (a, b, other_account):
        assert ledger.reserve(adapter, "web", 500, LARGE, "w").submit == 500
        assert adapter.quota_calls == 1


def test_an_adapter_without_a_key_reads_the_quota_every_time():
    adapter, ledger = QuotaOnly(available=500, key=None), QuotaLedger()
    assert ledger.reserve(adapter, "web", 500, LARGE, "w").submit == 500
    assert ledger.reserve(adapter, "web", 500, LARGE, "w").submit == 500
    assert adapter.quota_calls == 2


def test_the_reading_is_renewed_after_the_ttl_and_the_set_total_is_kept():
    clock = FakeClock()
    adapter, ledger = QuotaOnly(available=10_000), QuotaLedger(clock=clock.monotonic, ttl=60)
    policy = Policy(max_quota_share=0.5)
    assert ledger.reserve(adapter, "web", 4_000, policy, "w").submit == 4_000
    adapter.available = 6_000  # the cloud has counted our submit
    clock.sleep(61)
    assert ledger.available(adapter).available == 6_000
    assert adapter.quota_calls == 2
    # The share rail still counts the 4,000 this set submitted before the re-read.
    assert ledger.reserve(adapter, "web", 2_000, policy, "w").share_exceeded


def test_preview_reading_reserves_nothing():
    adapter, ledger = QuotaOnly(available=1_000), QuotaLedger()
    assert ledger.available(adapter).available == 1_000
    assert ledger.available(adapter).available == 1_000
    assert ledger.reserve(adapter, "web", 1_000, LARGE, "w").submit == 1_000
    assert adapter.quota_calls == 1


def test_a_failed_reading_is_not_kept():
    adapter, ledger = QuotaOnly(available=1_000), QuotaLedger()
    adapter.fail = CloudError("fake", "DescribeQuota", "InternalError", "down", kind="transient")
    with pytest.raises(CloudError):
        ledger.reserve(adapter, "web", 10, LARGE, "w")
    adapter.fail = None
    assert ledger.reserve(adapter, "web", 10, LARGE, "w").submit == 10
    assert adapter.quota_calls == 2


def test_concurrent_shards_never_reserve_more_than_the_quota():
    adapter, ledger = QuotaOnly(available=1_000), QuotaLedger()
    policy = Policy(max_quota_share=1.0, allow_partial=True)
    results: list[int] = []
    lock = threading.Lock()

    def shard() -> None:
        decision = ledger.reserve(adapter, "web", 150, policy, "w")
        with lock:
            results.append(decision.submit)

    threads = [threading.Thread(target=shard) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1_000 and adapter.quota_calls == 1
