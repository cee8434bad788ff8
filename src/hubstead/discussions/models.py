"""Tables for discussions and pull requests, and the events of their threads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow

STATUSES = ("draft", "open", "closed", "merged")
EVENT_TYPES = ("comment", "status-change", "commit", "title-change")


class Discussion(Base):
    """A discussion or a pull request (``is_pull_request``; its git ref is ``refs/pr/{num}``)."""

    __tablename__ = "discussions"
    __table_args__ = (UniqueConstraint("repo_pk", "num"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False, index=True)
    num: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    is_pull_request: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Pull requests: the branch they merge into, and once merged the commit the branch moved to.
    base_ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    merge_commit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Set (and committed) before a merge moves the base branch; cleared or turned into ``merge_commit``
    # after, or by ``pulls.reconcile_pending_merges`` at the next start if the process died in between.
    pending_merge: Mapped[str | None] = mapped_column(String(40), nullable=True)


class DiscussionEvent(Base):
    """One event of a thread: a comment, a status change, a commit pushed to the PR, a title change.

    ``data`` holds the type's fields: ``{"status"}``, ``{"subject", "oid"}``, ``{"from", "to"}``; a comment
    keeps its revisions, oldest first (``{"revisions": [{"raw", "updatedAt", "authorId"}]}``); hiding one
    erases them (the Hub's rule: a hidden comment's content cannot be read back).
    """

    __tablename__ = "discussion_events"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id clients see: 24 hex digits, as the Hub's object ids.
    event_id: Mapped[str] = mapped_column(String(24), unique=True, nullable=False)
    discussion_pk: Mapped[int] = mapped_column(
        ForeignKey("discussions.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    hidden_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
