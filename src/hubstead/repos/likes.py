"""Likes: one per user and repo, counted on the repo and in the day's stats (trending)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubstead.auth.models import User
from hubstead.repos.models import Like, Repo
from hubstead.repos.stats import record_like


def set_like(session: Session, *, user: User, repo: Repo, liked: bool) -> int:
    """Like or unlike ``repo`` as ``user`` (idempotent). Returns the repo's like count."""
    existing = session.get(Like, (user.id, repo.pk))
    if liked and existing is None:
        session.add(Like(user_id=user.id, repo_pk=repo.pk))
        record_like(session, repo.pk, 1)
    elif not liked and existing is not None:
        session.delete(existing)
        record_like(session, repo.pk, -1)
    session.flush()
    repo.likes = session.scalar(select(func.count()).select_from(Like).where(Like.repo_pk == repo.pk)) or 0
    return repo.likes


def has_liked(session: Session, *, user: User | None, repo: Repo) -> bool:
    return user is not None and session.get(Like, (user.id, repo.pk)) is not None
