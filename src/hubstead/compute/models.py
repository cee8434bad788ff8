"""Compute jobs (the Hub's Jobs: a command run for a user or an org) and scheduled jobs (a cron schedule that
starts one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow


class ComputeJob(Base):
    """One job. ``stage``: SCHEDULING -> RUNNING -> COMPLETED | ERROR | CANCELED (a retried attempt goes back to
    SCHEDULING). ``spec`` is what the client sent, checked (image, command, arguments, environment, flavor,
    timeoutSeconds, volumes); ``secrets`` is sealed (``spaces.secrets``), never answered."""

    __tablename__ = "compute_jobs"
    __table_args__ = (
        Index("ix_compute_jobs_namespace_created", "namespace_key", "created_at"),
        Index("ix_compute_jobs_stage", "stage"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(96), nullable=False)
    namespace_key: Mapped[str] = mapped_column(String(96), nullable=False)
    owner_type: Mapped[str] = mapped_column(String(8), nullable=False)  # user | org
    owner_id: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    stage: Mapped[str] = mapped_column(String(16), nullable=False, default="SCHEDULING")
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    initiator_type: Mapped[str | None] = mapped_column(String(24), nullable=True)
    initiator_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scheduled_job_id: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    devices: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the GPUs it holds, "0,1"
    token: Mapped[str | None] = mapped_column(Text, nullable=True)  # the job's HF_TOKEN, sealed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ScheduledJob(Base):
    """A job spec run on a cron schedule by the hub's scheduler (``compute.schedule``)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_namespace", "namespace_key"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(96), nullable=False)
    namespace_key: Mapped[str] = mapped_column(String(96), nullable=False)
    owner_type: Mapped[str] = mapped_column(String(8), nullable=False)
    owner_id: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    schedule: Mapped[str] = mapped_column(String(120), nullable=False)
    suspend: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    concurrency: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_job_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
