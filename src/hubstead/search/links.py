"""Which of the repos a card names (``datasets:``, ``base_model:``) are here for the caller: one query for them
all, so a header naming 22 datasets costs one round trip, not 22."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.repos.models import Repo
from hubstead.repos.visibility import visible_filter

MAX_NAMED = 200  # a card may name many; the header shows at most this many


def readable(session: Session, principal: Principal, repo_type: str, ids: list[str]) -> list[tuple[str, bool]]:
    """Each of ``ids`` (as the card names it, at most ``MAX_NAMED``) and whether the caller may open it here."""
    named = [i for i in ids if isinstance(i, str) and i][:MAX_NAMED]
    if not named:
        return []
    keys = {i.lower() for i in named}
    stmt = select(Repo.id_key).where(
        Repo.repo_type == repo_type, Repo.id_key.in_(keys), visible_filter(session, principal)
    )
    here = set(session.scalars(stmt))
    return [(i, i.lower() in here) for i in named]
