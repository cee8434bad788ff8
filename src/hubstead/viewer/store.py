"""What the last conversion of each dataset produced: its commits, status, and per-split details."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from hubstead.context import Hub
from hubstead.db import Base, UTCDateTime, utcnow
from hubstead.viewer.records import ConfigRecord


class DatasetConversion(Base):
    """One row per dataset: the latest finished conversion (``configs`` holds splits, files, features,
    statistics and the search index path of each split: ``ConfigRecord.to_json`` each; read them with
    ``records()``)."""

    __tablename__ = "dataset_conversions"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    source_commit: Mapped[str] = mapped_column(String(64), nullable=False)
    parquet_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # ok | partial | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    configs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    def records(self) -> list[ConfigRecord]:
        return [ConfigRecord.from_json(c) for c in self.configs]


def record_conversion(
    hub: Hub,
    repo_pk: int,
    *,
    source_commit: str,
    parquet_commit: str | None,
    status: str,
    error: str | None,
    configs: list[ConfigRecord],
) -> None:
    with hub.db.session() as session:
        row = session.get(DatasetConversion, repo_pk)
        if row is None:
            row = DatasetConversion(repo_pk=repo_pk, source_commit=source_commit, status=status, configs=[])
            session.add(row)
        row.source_commit, row.parquet_commit, row.status = source_commit, parquet_commit, status
        row.error, row.configs, row.updated_at = error, [c.to_json() for c in configs], utcnow()


def load_conversion(session: Session, repo_pk: int) -> DatasetConversion | None:
    return session.get(DatasetConversion, repo_pk)
