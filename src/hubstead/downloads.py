"""Counting downloads the Hub's way: a client's HEAD-then-GET of one file is one download.

Kept on the ``Hub`` (one per process: the pairs it remembers live in memory), so it sits at the bottom
layer with no dependencies; which files count is ``repos.files.counts_as_download``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


def follows_head(last_method: str, last_at: float, method: str, now: float, window: float) -> bool:
    """The rule: a GET within ``window`` seconds of the same client's HEAD of the same file is not a new download."""
    return method == "GET" and last_method == "HEAD" and now - last_at <= window


class DownloadDeduplicator:
    """Counts a client's HEAD-then-GET of one file as one download.

    Like the Hub, every HEAD or GET of a counted file counts, whatever the client sends, except the GET that
    follows the same client's HEAD of the same file within ``window`` seconds: ``hf_hub_download`` (every
    version) checks with HEAD and then fetches. Memory is bounded: the oldest entries go past ``max_entries``.
    """

    def __init__(self, window: float = 30.0, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._last: OrderedDict[tuple[str, ...], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def counts(self, key: tuple[str, ...], method: str, now: float | None = None, session: object = None) -> bool:
        """Whether this request is a download (``session``: unused, for ``SharedDownloadPairs``' interface)."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.pop(key, None)
            paired = last is not None and follows_head(last[0], last[1], method, moment, self.window)
            self._last[key] = ("GET-paired" if paired else method, moment)
            while len(self._last) > self.max_entries:
                self._last.popitem(last=False)
            return not paired
