"""The audit log: who created, deleted, moved, changed visibility or gating, changed roles, created or revoked
tokens, merged, and when (issue 23).

``record`` adds one row in the caller's session, so an event commits or rolls back with the operation it
describes: a refused or failed operation leaves nothing. The domain functions that do each operation call it
(repos.service, auth.service, discussions.pulls, auth.accounts), so the API, the web pages and the CLI are all
recorded. The actor's name is copied into the row and kept after the user is deleted (the id is then NULL); an
actor of None is the system (the CLI without a user, start-up repairs). Details never hold secrets.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hubstead.auth.models import User
from hubstead.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from hubstead.auth.service import Principal

SYSTEM = "system"  # the actor name of an event no user caused


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_namespace_at", "namespace", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(96), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    # The namespace's lower-cased key (a user's or an org's), so that an org's admins can read their org's events.
    namespace: Mapped[str | None] = mapped_column(String(96), nullable=True)
    target: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor_name,
            "actorId": self.actor_id,
            "action": self.action,
            "namespace": self.namespace,
            "target": self.target,
            "detail": self.detail,
        }


def _user_of(actor: User | Principal | None) -> User | None:
    if actor is None or isinstance(actor, User):
        return actor
    return actor.user


def record(
    session: Session,
    *,
    actor: User | Principal | None,
    action: str,
    namespace: str | None,
    target: str,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to ``session`` (it commits or rolls back with the caller's operation).

    ``actor`` is the user (or the principal) who acted, None for the system; ``action`` a dotted name such as
    ``repo.create``; ``namespace`` the user or org the event concerns; ``target`` what was acted on (a repo id,
    a user's name, a token's name); ``detail`` small JSON (old and new values), never a secret."""
    user = _user_of(actor)
    event = AuditEvent(
        at=utcnow(),
        actor_id=user.id if user is not None else None,
        actor_name=user.name if user is not None else SYSTEM,
        action=action,
        namespace=namespace.lower() if namespace else None,
        target=target[:256],
        detail=dict(detail or {}),
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    namespace: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Events newest first, filtered. ``action`` matches a whole name or a prefix ending at a dot (``repo``
    matches ``repo.create``); ``before_id`` pages on (the last id of the previous page)."""
    query = select(AuditEvent)
    if namespace is not None:
        query = query.where(AuditEvent.namespace == namespace.lower())
    if actor:
        query = query.where(AuditEvent.actor_name == actor)
    if action:
        query = query.where((AuditEvent.action == action) | AuditEvent.action.startswith(action + ".", autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))
