"""Named leases in the database: the election of the one process that runs the stateful services.

A lease is held by one holder until it expires; the holder renews it well before then. ``try_acquire`` is one
atomic statement either way (an UPDATE of an expired or own lease, else an INSERT that the primary key lets only
one process win), so it works the same on SQLite and PostgreSQL without locks of its own. Times are the
processes' clocks (UTC): machines that share a deployment are expected to run NTP; a ttl of seconds tolerates
the usual skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from hubstead.coordination.models import LeaseRow
from hubstead.db import Database, utcnow

COMPUTE = "compute"  # the lease of the process that runs the job scheduler, spaces, inference, webhooks, rollups


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    address: str
    expires_at: datetime
    renewed_at: datetime


def try_acquire(db: Database, name: str, holder: str, address: str, ttl: float) -> bool:
    """Take ``name`` for ``holder`` (or extend it, if ``holder`` has it) for ``ttl`` seconds; False while another
    holder's lease is unexpired."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    with db.session() as session:
        taken = session.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.expires_at <= now))
            .values(holder=holder, address=address, expires_at=expires, renewed_at=now)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return True
    try:
        with db.session() as session:
            session.add(LeaseRow(name=name, holder=holder, address=address, expires_at=expires, renewed_at=now))
    except IntegrityError:  # another process holds it (or took it a moment ago)
        return False
    return True


def renew(db: Database, name: str, holder: str, ttl: float) -> bool:
    """Extend ``holder``'s unexpired lease by ``ttl`` seconds; False when it is no longer ``holder``'s (it
    expired and may have been taken over: the holder must stop what the lease guards)."""
    now = utcnow()
    with db.session() as session:
        renewed = session.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.expires_at > now)
            .values(expires_at=now + timedelta(seconds=ttl), renewed_at=now)
        )
        return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def release(db: Database, name: str, holder: str) -> None:
    """Give ``name`` up (only if ``holder`` has it), so a standby takes it at once instead of after the ttl."""
    with db.session() as session:
        session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))


def current(db: Database, name: str) -> Lease | None:
    """The unexpired lease ``name``, or None when nobody holds it now."""
    with db.session() as session:
        row = session.scalars(select(LeaseRow).where(LeaseRow.name == name, LeaseRow.expires_at > utcnow())).first()
        if row is None:
            return None
        return Lease(row.name, row.holder, row.address, row.expires_at, row.renewed_at)
