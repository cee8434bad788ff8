"""The read cache's bounds: entries and bytes, least recently used out first, oversized values not kept."""

from __future__ import annotations

import threading

import pytest

from hubstead.repos.cache import ByteLRU, json_size


def test_entry_bound_drops_least_recently_used() -> None:
    cache = ByteLRU(max_bytes=10_000, max_entries=3)
    for key in "abc":
        cache.put(key, key * 3)
    assert cache.get("a") == "aaa"  # a is now the most recent
    cache.put("d", "ddd")
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == ["aaa", "ccc", "ddd"]


def test_byte_bound_holds_and_counts_replacements() -> None:
    cache = ByteLRU(max_bytes=400, max_entries=1000)
    for i in range(50):
        cache.put(i, ["x" * 40])
        assert cache.size_bytes <= 400
    kept = [i for i in range(50) if cache.get(i) is not None]
    assert kept == list(range(50 - len(kept), 50)) and 0 < len(kept) < 50
    assert cache.size_bytes == sum(json_size(["x" * 40]) for _ in kept)
    cache.put(49, ["y"])  # replacing an entry gives its bytes back
    assert cache.size_bytes == sum(json_size(["x" * 40]) for _ in kept[:-1]) + json_size(["y"])


def test_oversized_values_are_not_kept_and_misses_build() -> None:
    cache = ByteLRU(max_bytes=1000, max_entries=10)
    assert cache.put("big", "z" * 300) is False
    assert cache.get("big") is None and cache.size_bytes == 0
    built: list[int] = []

    def build() -> list[int]:
        built.append(1)
        return [1, 2]

    assert cache.get_or_build("k", build) == [1, 2]
    assert cache.get_or_build("k", build) == [1, 2]
    assert len(built) == 1 and cache.hits >= 1


def test_bounds_hold_under_threads_and_bad_bounds_refused() -> None:
    cache = ByteLRU(max_bytes=2000, max_entries=20)

    def fill(offset: int) -> None:
        for i in range(500):
            cache.put((offset, i), {"i": i})
            cache.get((offset, i // 2))

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 20 and cache.size_bytes <= 2000
    with pytest.raises(ValueError):
        ByteLRU(max_bytes=0)
