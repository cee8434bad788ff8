"""A bounded, thread-safe, in-process LRU for read answers that depend only on a repo's content at one commit.

Callers key entries by the commit id they answer for (with the repo's storage key and the request's options),
never by a branch name: a commit made by this or another process moves the head in the index row, the next
request builds a new key, and the old entry just ages out. Nothing here checks who may read what: the caller
checks visibility before it reads the cache, and caches only what is the same for every reader allowed to see
the repo. Each process has its own cache; none is shared.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 50_000


def json_size(value: Any) -> int:
    """An estimate of what ``value`` costs in memory: the length of its JSON text (what it answers as)."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


class ByteLRU:
    """At most ``max_entries`` entries and ``max_bytes`` of (estimated) size: the least recently used go first.
    A value larger than a quarter of ``max_bytes`` is not kept at all (it would evict most of the rest)."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_bytes < 1 or max_entries < 1:
            raise ValueError("a cache needs room for at least one entry")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> bool:
        """Keep ``value`` under ``key``; returns whether it was kept (not when over a quarter of the bound)."""
        cost = json_size(value) if size is None else size
        if cost > self.max_bytes // 4:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, cost)
            self._bytes += cost
            while self._bytes > self.max_bytes or len(self._items) > self.max_entries:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
        return True

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The cached value, or ``build()``'s (kept for next time). Two threads missing at once both build: the
        answers are equal (same commit), and no lock is held while git is read."""
        found = self.get(key)
        if found is not None:
            return found
        value = build()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


# The process-wide caches of read answers (see the callers in repos.info and the browse pages).
INFO_CACHE = ByteLRU()


def base_parts(scope: Any) -> tuple[Hashable, ...]:
    """What an answer kept for a request depends on besides its path and the database: the query, and the base URL
    its links are made of (Host, scheme, root path). The one place the kept listings (``search.answers``) and
    kept pages (``web.kept_pages``) take them from, so neither can keep an answer for one host and serve it to
    another."""
    host = next((value for name, value in scope.get("headers", ()) if name == b"host"), b"")
    return scope.get("query_string", b""), host, scope.get("scheme"), scope.get("root_path", "")


class OneBuildAtATime:
    """Requests on one event loop that miss the same key at once: the first builds, the others wait for what it
    kept (None if it kept nothing: each then builds for itself). Without it, when a kept answer is invalidated,
    every client asking at that moment builds the same answer at once (32 clients: 32 builds, and a p99 of
    ten builds' time)."""

    def __init__(self) -> None:
        self._building: dict[tuple[int, Hashable], asyncio.Future[Any]] = {}

    @staticmethod
    def _on_this_loop(key: Hashable) -> tuple[int, Hashable]:
        return id(asyncio.get_running_loop()), key  # a future belongs to its loop

    def building(self, key: Hashable) -> asyncio.Future[Any] | None:
        """What to await if another request is building ``key`` now, else None (and the caller builds)."""
        return self._building.get(self._on_this_loop(key))

    def start(self, key: Hashable) -> None:
        self._building[self._on_this_loop(key)] = asyncio.get_running_loop().create_future()

    def finish(self, key: Hashable, kept: Any) -> None:
        """The build of ``key`` is over (``kept``: what it kept, or None): wake the waiters."""
        future = self._building.pop(self._on_this_loop(key), None)
        if future is not None and not future.done():
            future.set_result(kept)
