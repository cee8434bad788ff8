"""Failure counts every process shares (the throttle's budgets): one row per failure, counted within a window."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from hubstead.coordination.models import FailureRow
from hubstead.db import Database, utcnow

_PRUNE_EVERY = 200  # every this many failures a process records, rows past every window go
_LONGEST_WINDOW = timedelta(hours=1)
_recorded = itertools.count(1)


def record(db: Database, budget: str, key: str) -> None:
    now = utcnow()
    with db.session() as session:
        session.add(FailureRow(budget=budget, key=key, at=now))
        if next(_recorded) % _PRUNE_EVERY == 0:
            session.execute(delete(FailureRow).where(FailureRow.at <= now - _LONGEST_WINDOW))


def newest(db: Database, budget: str, key: str, window: float, limit: int) -> list[datetime]:
    """The times of ``key``'s newest failures within ``window`` seconds (at most ``limit``), newest first."""
    since = utcnow() - timedelta(seconds=window)
    with db.session() as session:
        return list(
            session.scalars(
                select(FailureRow.at)
                .where(FailureRow.budget == budget, FailureRow.key == key, FailureRow.at > since)
                .order_by(FailureRow.at.desc())
                .limit(limit)
            )
        )


def clear(db: Database, budget: str, key: str) -> None:
    with db.session() as session:
        session.execute(delete(FailureRow).where(FailureRow.budget == budget, FailureRow.key == key))
