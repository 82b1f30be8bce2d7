"""Today's prefetch quota of each destination, as this provider process spends it.

Why: a sharded set (shards.py) is several resources, and several sets may share one zone. Each
``up`` of a resource used to read the live quota and judge its own submits alone, so 16 shards
each saw the whole remaining quota, and each was held to ``maxQuotaShare`` on its own: together
they could spend 16 times the share the set allows, or run into the cloud's own quota refusal
half-way. Here one process keeps, per destination, the quota it read (one call, re-read after
``TTL``) minus what it has reserved since, and per set the total it has submitted in this
process (one engine command), so the safety rail holds for the set as a whole.

What it cannot do: decide for a whole sharded set before any shard submits (the engine updates
only the shards that changed, one RPC each). When the quota runs out part-way, the shards that
fit submit and the others are refused with the numbers; ``up`` fails, and the next ``up``
submits the rest. Nothing is submitted beyond the quota and nothing is reported as done.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Hashable, Optional

from .base import CloudAdapter
from ..model.policy import Policy
from ..model.quota import Quota
from ..plan.safety import QuotaDecision, decide_quota

TTL = 60.0  # seconds a quota reading is trusted (minus our own reservations) before it is read again


@dataclass
class _Entry:
    quota: Quota
    read_at: float
    reserved: int = 0  # submitted (or about to be) by this process since ``quota`` was read
    by_set: dict[str, int] = field(default_factory=dict)  # per set: submitted by this process in all


class QuotaLedger:
    """Process-wide and thread-safe: the provider host runs four RPCs at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl: float = TTL):
        self._clock, self._ttl = clock, ttl
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def available(self, adapter: CloudAdapter) -> Quota:
        """The destination's quota less what this process has reserved since reading it (no reservation)."""
        key = adapter.quota_key()
        if key is None:
            return adapter.quota()
        with self._key_lock(key):
            entry = self._entry(key, adapter)
            return _less(entry.quota, entry.reserved)

    def reserve(self, adapter: CloudAdapter, set_name: str, needed: int, policy: Policy, where: str,
                noun: str = "prefetch") -> QuotaDecision:
        """Decide how many of ``needed`` targets this up submits (safety.decide_quota), and reserve them.

        The share rail counts what the set already submitted in this process to this destination
        (its other shards), so ``maxQuotaShare`` holds for the set, not for each shard. A purge
        adapter's quota is its own entry (its ``kind`` differs): ``noun`` words the messages.
        """
        key = adapter.quota_key()
        if key is None:
            return decide_quota(needed, adapter.quota(), policy, where, noun=noun)
        with self._key_lock(key):
            entry = self._entry(key, adapter)
            spent = entry.by_set.get(set_name, 0)
            decision = decide_quota(needed, _less(entry.quota, entry.reserved), policy, where, spent=spent, noun=noun)
            if decision.submit and decision.refusal is None:
                entry.reserved += decision.submit
                entry.by_set[set_name] = spent + decision.submit
            return decision

    def batch(self, adapter: CloudAdapter) -> int:
        """The batch size of the last quota reading (reading it if there is none)."""
        return self.available(adapter).batch

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # -- internals --------------------------------------------------------------------------------
    def _key_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _entry(self, key: Hashable, adapter: CloudAdapter) -> _Entry:
        """The entry of ``adapter``'s kind at ``key`` (caller holds the key's lock, one for every kind of a
        destination): read the quotas when absent or too old.

        A re-read sees our earlier submits in the cloud's own count, so reservations start again
        from zero; what each set submitted in this process is kept for the share rail. A call that answers
        the other kind's quota too (``adapter.quotas()``) refreshes that entry as well: one call, not two.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get((key, adapter.kind))
        if entry is None or now - entry.read_at >= self._ttl:
            quotas = adapter.quotas()  # may raise CloudError: nothing is cached then
            with self._lock:
                for kind, quota in quotas.items():
                    old = self._entries.get((key, kind))
                    self._entries[(key, kind)] = _Entry(quota, now, 0, old.by_set if old is not None else {})
                entry = self._entries[(key, adapter.kind)]
        return entry


def _less(quota: Quota, reserved: int) -> Quota:
    if not reserved or quota.available is None:
        return quota
    return replace(quota, available=max(0, quota.available - reserved))


#: The ledger of this process.
SHARED_QUOTA = QuotaLedger()
