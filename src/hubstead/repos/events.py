"""The repo event outbox: every change a webhook may announce is one row here, written in the same database
transaction as the change itself.

Domain code (commits, refs, settings, discussions) calls ``record_event``; it costs one INSERT, so a commit is
never slowed or failed by who is listening. The webhook sender (``hubstead.webhooks``) reads new rows after they
commit and delivers them; nothing in this layer knows webhooks exist. A row snapshots what the Hub's webhook
payload needs at the moment of the change (the repo's name, visibility and head, the discussion and comment
as they were), so a later rename or deletion does not rewrite history.

Scopes and actions are the Hub's: scope ``repo`` (create, delete, move), ``repo.content`` (update: a ref moved),
``repo.config`` (update: visibility, gating, discussions switch), ``discussion`` (create, update: status, title,
merge), ``discussion.comment`` (create, update: edit or hide).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow
from hubstead.repos.models import Repo

SCOPES = ("repo", "repo.content", "repo.config", "discussion", "discussion.comment")
ACTIONS = ("create", "update", "delete", "move")


class RepoEvent(Base):
    """One change to a repo, kept for the webhook sender (no foreign key: a deleted repo's event outlives it)."""

    __tablename__ = "repo_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    repo_pk: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    repo_type: Mapped[str] = mapped_column(String(16), nullable=False)
    repo_id: Mapped[str] = mapped_column(String(200), nullable=False)  # "namespace/name" at the time
    namespace: Mapped[str] = mapped_column(String(96), nullable=False, index=True)
    private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    scope: Mapped[str] = mapped_column(String(32), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # {"headSha": ..., "discussion": {...}?, "comment": {...}?, "updatedRefs": [...]?, "movedTo": {...}?}
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


def record_event(
    session: Session,
    repo: Repo,
    *,
    scope: str,
    action: str,
    actor_user_id: int | None,
    discussion: dict[str, Any] | None = None,
    comment: dict[str, Any] | None = None,
    updated_refs: list[dict[str, str | None]] | None = None,
    moved_to: dict[str, Any] | None = None,
) -> RepoEvent:
    """Add one event row to ``session`` (it commits with the change that caused it).

    ``updated_refs`` items are ``{"ref": "refs/heads/main", "oldSha": ..., "newSha": ...}`` (None for a ref
    created or deleted), as in the Hub's payload. ``discussion`` and ``comment`` are the Hub's payload objects
    without URLs (the sender adds them from its public address).
    """
    if scope not in SCOPES or action not in ACTIONS:
        raise ValueError(f"unknown repo event {scope}/{action}")
    data: dict[str, Any] = {"headSha": repo.sha}
    if discussion is not None:
        data["discussion"] = discussion
    if comment is not None:
        data["comment"] = comment
    if updated_refs is not None:
        data["updatedRefs"] = updated_refs
    if moved_to is not None:
        data["movedTo"] = moved_to
    event = RepoEvent(
        repo_pk=repo.pk,
        repo_type=repo.repo_type,
        repo_id=repo.repo_id,
        namespace=repo.namespace,
        private=bool(repo.private),
        scope=scope,
        action=action,
        actor_user_id=actor_user_id,
        data=data,
    )
    session.add(event)
    return event
