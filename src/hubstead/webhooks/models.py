"""Tables for webhooks, their deliveries, and the sender's place in the repo event outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class Webhook(Base):
    """One user's hook: where to POST (``url``), what to watch (``watched``: ``[{"type", "name"}]``, types
    model/dataset/space/user/org) and which domains (``["repo", "discussion"]``)."""

    __tablename__ = "webhooks"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id clients see: 24 random hex digits, as the Hub's object ids (not guessable, not a counter).
    public_id: Mapped[str] = mapped_column(String(24), unique=True, nullable=False)
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    secret: Mapped[str | None] = mapped_column(String(256), nullable=True)
    watched: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    domains: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class WebhookDelivery(Base):
    """One event for one hook: pending until a 2xx answer (delivered) or the last attempt (failed).

    ``next_attempt_at`` is when a sender may try it next; a sender claims an attempt by moving it forward
    (a lease) with a conditional UPDATE, so two senders never send the same attempt, and an attempt a killed
    process left is tried again when its lease ends.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_pk", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_pk: Mapped[int] = mapped_column(ForeignKey("webhooks.pk", ondelete="CASCADE"), nullable=False, index=True)
    event_id: Mapped[int] = mapped_column(Integer, nullable=False)  # repo_events.id
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    response_snippet: Mapped[str | None] = mapped_column(String(500), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class WebhookCursor(Base):
    """The sender's place in ``repo_events``: every event up to ``last_event_id`` has its deliveries (one row)."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
