"""Daily download and like counts: what trending and "downloads last month" are computed from."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import ScalarSelect, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hubstead.db import utcnow
from hubstead.repos.models import Repo, RepoDailyStat

TRENDING_DAYS = 7
MONTH_DAYS = 30
LIKE_WEIGHT = 10  # a like says more than a download


def today() -> date:
    return utcnow().date()


def bump(session: Session, repo_pk: int, *, downloads: int = 0, likes: int = 0) -> None:
    """Add to today's counts of a repo (an upsert, safe under concurrent requests)."""
    values = {"repo_pk": repo_pk, "day": today(), "downloads": downloads, "likes": likes}
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(RepoDailyStat).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["repo_pk", "day"],
        set_={
            "downloads": RepoDailyStat.downloads + stmt.excluded.downloads,
            "likes": RepoDailyStat.likes + stmt.excluded.likes,
        },
    )
    session.execute(stmt)


def record_download(session: Session, repo: Repo) -> None:
    session.execute(
        update(Repo)
        .where(Repo.pk == repo.pk)
        .values(
            downloads_all_time=Repo.downloads_all_time + 1,
            downloads_30d=Repo.downloads_30d + 1,
            trending_score=Repo.trending_score + 1,
        )
    )
    bump(session, repo.pk, downloads=1)


def record_like(session: Session, repo_pk: int, delta: int) -> None:
    session.execute(
        update(Repo).where(Repo.pk == repo_pk).values(trending_score=Repo.trending_score + LIKE_WEIGHT * delta)
    )
    bump(session, repo_pk, likes=delta)


def refresh_rollups(session: Session) -> None:
    """Recompute every repo's 30-day downloads and trending score from the daily stats (days leave the
    window as time passes; the live increments cannot subtract them)."""
    session.execute(update(Repo).values(downloads_30d=downloads_last_month(), trending_score=trending_score()))


def trending_score() -> ScalarSelect[int]:
    """Per repo (correlated): downloads plus weighted likes over the last 7 days."""
    since = today() - timedelta(days=TRENDING_DAYS - 1)
    return (
        select(func.coalesce(func.sum(RepoDailyStat.downloads + LIKE_WEIGHT * RepoDailyStat.likes), 0))
        .where(RepoDailyStat.repo_pk == Repo.pk, RepoDailyStat.day >= since)
        .correlate(Repo)
        .scalar_subquery()
    )


def downloads_last_month() -> ScalarSelect[int]:
    """Per repo (correlated): downloads over the last 30 days, the Hub's ``downloads`` figure."""
    since = today() - timedelta(days=MONTH_DAYS - 1)
    return (
        select(func.coalesce(func.sum(RepoDailyStat.downloads), 0))
        .where(RepoDailyStat.repo_pk == Repo.pk, RepoDailyStat.day >= since)
        .correlate(Repo)
        .scalar_subquery()
    )


def monthly_downloads(session: Session, repo_pk: int) -> int:
    since = today() - timedelta(days=MONTH_DAYS - 1)
    total = session.scalar(
        select(func.coalesce(func.sum(RepoDailyStat.downloads), 0)).where(
            RepoDailyStat.repo_pk == repo_pk, RepoDailyStat.day >= since
        )
    )
    return int(total or 0)
