"""Stable split of a large set's targets into shards: one dynamic resource per shard.

Why: a Python dynamic resource's inputs and outputs cross gRPC as one protobuf Struct, and the
engine keeps them in state whole. A set of 100,000 targets as one resource means one 7 MB state
entry and a 100,000-value message per RPC. Shards bound both.

The assignment must be stable, so that adding or removing a target touches only its own shard
(a one-target change is a one-target diff): a target's shard is a **jump consistent hash**
(Lamping and Veach, 2014) of the first 8 bytes of the SHA-256 of its normalised URL. It depends
on nothing but the URL and the number of shards.

The number of shards is the smallest power of two that keeps every shard at about
``SHARD_TARGETS`` targets or fewer on average. It changes only when a set doubles or halves in
size, and then jump hashing moves only the targets that must move: growing from K to 2K shards
moves about half of each old shard's targets into the new shards and nothing between old ones.
A moved target is never submitted again: its task is in the cloud's history, which every shard
reads (one shared read per zone, components/clouds/history.py).
"""

from __future__ import annotations

import hashlib
from typing import Iterable

#: Average targets per shard above which a set is split further (a power of two more shards).
SHARD_TARGETS = 8192
_MASK64 = (1 << 64) - 1


def shard_count(targets: int, per_shard: int = SHARD_TARGETS) -> int:
    """Shards for a set of ``targets`` targets: 1 up to ``per_shard``, then the next power of two."""
    if per_shard < 1:
        raise ValueError("per_shard must be at least 1")
    count = 1
    while targets > count * per_shard:
        count *= 2
    return count


def jump_hash(key: int, buckets: int) -> int:
    """Lamping-Veach jump consistent hash of a 64-bit key into ``buckets`` buckets."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(url: str, count: int) -> int:
    """The shard (0 .. count-1) of a normalised URL."""
    if count == 1:
        return 0
    key = int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:8], "big")
    return jump_hash(key, count)


def split(urls: Iterable[str], count: int) -> list[list[str]]:
    """The URLs of each shard, in their given order."""
    shards: list[list[str]] = [[] for _ in range(count)]
    if count == 1:
        shards[0].extend(urls)
        return shards
    for url in urls:
        shards[shard_of(url, count)].append(url)
    return shards


def shard_name(base: str, index: int, count: int) -> str:
    """Resource name of a shard: the unsharded name for shard 0 (existing state keeps its name), else ``-shard-<k>``."""
    return base if index == 0 else f"{base}-shard-{index}"
