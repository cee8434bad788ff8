"""The coordination tables: leases (who runs the stateful services, and where) and failure counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime


class LeaseRow(Base):
    """One named lease: held by ``holder`` until ``expires_at`` unless renewed; ``address`` is where the holder
    answers (the compute process's internal URL)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    address: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class FailureRow(Base):
    """One failure counted against a budget (``budget`` names it: sign-in per account, per address...)."""

    __tablename__ = "failure_counts"
    __table_args__ = (Index("ix_failure_counts_budget_key_at", "budget", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget: Mapped[str] = mapped_column(String(32), nullable=False)
    key: Mapped[str] = mapped_column(String(300), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class DownloadPairRow(Base):
    """The last request a client made for one counted file (``key``: a digest of client, agent, repo and path):
    the memory behind counting a HEAD-then-GET once when the two reach different processes."""

    __tablename__ = "download_pairs"
    __table_args__ = (Index("ix_download_pairs_at", "at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[float] = mapped_column(Float, nullable=False)
