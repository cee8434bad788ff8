"""Counting a HEAD-then-GET once when the two requests reach different API processes.

``downloads.DownloadDeduplicator`` remembers a client's last request in process memory; with several API processes
behind one port (``serve --workers``) or several machines, ``hf_hub_download``'s HEAD may reach one process and its
GET another, and the download would count twice. ``SharedDownloadPairs`` keeps the same rule
(``downloads.follows_head``) with its memory in the database: one short transaction of its own per counted request
(a handful of files per download: config.json, the weights), committed before the answer goes out, so the GET that
follows finds it from any process. Rows older than ten windows are swept now and then.
"""

from __future__ import annotations

import hashlib
import random
import time

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from hubstead.coordination.models import DownloadPairRow
from hubstead.db import Database
from hubstead.downloads import follows_head

SWEEP_CHANCE = 0.002


class SharedDownloadPairs:
    """``DownloadDeduplicator``'s interface (``counts(key, method)``) over the ``download_pairs`` table."""

    def __init__(self, db: Database, window: float = 30.0) -> None:
        self.db = db
        self.window = window

    def counts(self, key: tuple[str, ...], method: str, now: float | None = None) -> bool:
        """Whether this request is a download (False only for the GET that pairs with the same client's HEAD)."""
        digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()
        moment = time.time() if now is None else now
        try:
            with self.db.session() as session:
                row = session.get(DownloadPairRow, digest, with_for_update=True)
                paired = row is not None and follows_head(row.method, row.at, method, moment, self.window)
                remembered = "GET-paired" if paired else method
                if row is None:
                    session.add(DownloadPairRow(key=digest, method=remembered, at=moment))
                else:
                    row.method, row.at = remembered, moment
                if random.random() < SWEEP_CHANCE:
                    session.execute(delete(DownloadPairRow).where(DownloadPairRow.at < moment - 10 * self.window))
        except IntegrityError:  # the same client's two requests at the same instant: the other one recorded it
            return True
        return not paired
