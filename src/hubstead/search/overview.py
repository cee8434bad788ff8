"""What a user's or organization's overview counts: their repos, likes and discussions, as far as the caller may
see them (``repos/visibility``), for ``/api/users/{name}/overview`` and ``/api/organizations/{name}/overview``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.discussions.models import Discussion
from hubstead.repos.models import Like, Repo
from hubstead.repos.visibility import visible_filter


@dataclass(frozen=True)
class RepoCounts:
    models: int
    datasets: int
    spaces: int


def repo_counts(session: Session, principal: Principal, namespace: str) -> RepoCounts:
    """How many models, datasets and spaces ``namespace`` owns that the caller may see."""
    rows = session.execute(
        select(Repo.repo_type, func.count())
        .where(func.lower(Repo.namespace) == namespace.lower(), visible_filter(session, principal))
        .group_by(Repo.repo_type)
    )
    counts = {kind: int(n) for kind, n in rows}
    return RepoCounts(models=counts.get("model", 0), datasets=counts.get("dataset", 0), spaces=counts.get("space", 0))


def likes_count(session: Session, principal: Principal, user: User) -> int:
    """The repos ``user`` likes that the caller may see."""
    stmt = (
        select(func.count())
        .select_from(Like)
        .join(Repo, Repo.pk == Like.repo_pk)
        .where(Like.user_id == user.id, visible_filter(session, principal))
    )
    return int(session.scalar(stmt) or 0)


def discussions_count(session: Session, principal: Principal, user: User) -> int:
    """The discussions and pull requests ``user`` opened on repos the caller may see."""
    stmt = (
        select(func.count())
        .select_from(Discussion)
        .join(Repo, Repo.pk == Discussion.repo_pk)
        .where(Discussion.author_user_id == user.id, visible_filter(session, principal))
    )
    return int(session.scalar(stmt) or 0)
