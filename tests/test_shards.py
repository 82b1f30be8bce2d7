"""The shard assignment: stable, balanced, and minimal movement when the shard count grows."""

import pytest

from components.plan.shards import SHARD_TARGETS, jump_hash, shard_count, shard_name, shard_of, split

URLS = [f"https://static.example.com/assets/{i:06d}.js" for i in range(20_000)]


def test_shard_count_is_one_up_to_the_limit_then_powers_of_two():
    assert shard_count(0) == 1
    assert shard_count(SHARD_TARGETS) == 1
    assert shard_count(SHARD_TARGETS + 1) == 2
    assert shard_count(100_000) == 16  # 100,000 / 8,192 = 12.2 -> 16
    assert shard_count(100_001) == 16  # one more target does not change the count
    assert shard_count(10, per_shard=3) == 4
    with pytest.raises(ValueError):
        shard_count(10, per_shard=0)


def test_jump_hash_matches_the_published_reference_values():
    # Test vectors of the widely used Go port (github.com/dgryski/go-jump, jump_test.go).
    assert jump_hash(42, 57) == 43
    assert jump_hash(0xDEAD10CC, 666) == 361
    assert jump_hash(256, 1024) == 520
    assert jump_hash(0xDEAD10CC, 1) == 0
    assert all(0 <= jump_hash(k, 7) < 7 for k in range(1000))
    with pytest.raises(ValueError):
        jump_hash(1, 0)


def test_assignment_depends_only_on_the_url_and_the_count():
    first = [shard_of(u, 16) for u in URLS[:500]]
    assert first == [shard_of(u, 16) for u in URLS[:500]]
    assert shard_of(URLS[0], 1) == 0


def test_shards_are_balanced():
    sizes = [len(s) for s in split(URLS, 8)]
    assert sum(sizes) == len(URLS)
    assert max(sizes) < 1.15 * len(URLS) / 8 and min(sizes) > 0.85 * len(URLS) / 8


def test_adding_or_removing_a_target_touches_only_its_shard():
    before = split(URLS, 8)
    added = "https://static.example.com/assets/new.js"
    after = split(URLS + [added], 8)
    changed = [k for k in range(8) if before[k] != after[k]]
    assert changed == [shard_of(added, 8)]
    removed = split(URLS[1:], 8)
    assert [k for k in range(8) if before[k] != removed[k]] == [shard_of(URLS[0], 8)]


def test_doubling_the_count_moves_targets_only_into_the_new_shards():
    old = {u: shard_of(u, 4) for u in URLS}
    new = {u: shard_of(u, 8) for u in URLS}
    moved = [u for u in URLS if old[u] != new[u]]
    assert all(new[u] >= 4 for u in moved)  # nothing moves between old shards
    assert 0.4 < len(moved) / len(URLS) < 0.6  # about half, as consistent hashing promises


def test_shard_zero_keeps_the_unsharded_name():
    assert shard_name("site-edgeone-zone-a", 0, 4) == "site-edgeone-zone-a"
    assert shard_name("site-edgeone-zone-a", 3, 4) == "site-edgeone-zone-a-shard-3"
