"""Counting a HEAD-then-GET once when the two requests reach different API processes.

With several API processes behind one port (``serve --workers``) or several machines, ``hf_hub_download``'s HEAD
may reach one process and its GET another; a memory of the client's last request kept in one process would count
the download twice. ``SharedDownloadPairs`` applies the rule (``downloads.follows_head``) with its memory in the
database: one row read and upserted per counted request (a
handful of files per download: config.json, the weights) in the request's own transaction, committed before
the answer goes out, so the GET that follows finds it from any process. The write is an upsert, so two requests of
one client at the same instant never fail on the key. Rows older than ten windows are swept now and then.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hubstead.coordination.models import DownloadPairRow
from hubstead.db import Database
from hubstead.downloads import follows_head

SWEEP_CHANCE = 0.002


class SharedDownloadPairs:
    """``counts(key, method)``: whether a request is a download, over the ``download_pairs`` table."""

    def __init__(self, db: Database, window: float = 30.0) -> None:
        self.db = db
        self.window = window

    def counts(
        self, key: tuple[str, ...], method: str, now: float | None = None, session: Session | None = None
    ) -> bool:
        """Whether this request is a download (False only for the GET that pairs with the same client's HEAD).

        ``session``: the request's own, committed before its answer is sent (``api.deps.SessionDep``). It must be
        that one when the request may already have written: on SQLite a second session would wait on the first
        one's write lock until the busy timeout."""
        digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()
        moment = time.time() if now is None else now
        if session is not None:
            return self._counts(session, digest, method, moment)
        with self.db.session() as own:
            return self._counts(own, digest, method, moment)

    def _counts(self, session: Session, digest: str, method: str, moment: float) -> bool:
        table = cast(Table, DownloadPairRow.__table__)
        last = session.execute(
            select(table.c.method, table.c.at).where(table.c.key == digest).with_for_update()
        ).first()
        paired = last is not None and follows_head(last.method, last.at, method, moment, self.window)
        remembered = "GET-paired" if paired else method
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
        session.execute(
            insert(table)
            .values(key=digest, method=remembered, at=moment)
            .on_conflict_do_update(index_elements=[table.c.key], set_={"method": remembered, "at": moment})
        )
        if random.random() < SWEEP_CHANCE:
            session.execute(delete(table).where(table.c.at < moment - 10 * self.window))
        return not paired
