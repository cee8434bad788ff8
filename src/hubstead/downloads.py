"""Counting downloads the Hub's way: a client's HEAD-then-GET of one file is one download.

The rule lives here, at the bottom layer with no dependencies; the memory of each client's last request is in the
database (``coordination.downloads.SharedDownloadPairs``, on the ``Hub``), because with several API processes the
HEAD and the GET may reach different ones. Which files count is ``repos.files.counts_as_download``.
"""

from __future__ import annotations


def follows_head(last_method: str, last_at: float, method: str, now: float, window: float) -> bool:
    """The rule: a GET within ``window`` seconds of the same client's HEAD of the same file is not a new download.
    Every other HEAD or GET of a counted file counts, whatever the client sends (``hf_hub_download``, every
    version, checks with HEAD and then fetches)."""
    return method == "GET" and last_method == "HEAD" and now - last_at <= window
