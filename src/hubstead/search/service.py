"""Listing and search over the repo index: filters, sorting, pagination. Never reads git."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, null, select, union
from sqlalchemy.orm import Session, aliased

from hubstead.auth.service import Principal
from hubstead.errors import BadRequestError
from hubstead.repos.index import LANGUAGE_TAG
from hubstead.repos.info import INDEX_ROW_COLUMNS, IndexRow
from hubstead.repos.models import Repo, RepoTag
from hubstead.repos.visibility import visible_filter

SORTS = {
    "downloads",
    "likes",
    "lastModified",
    "last_modified",
    "createdAt",
    "created_at",
    "trendingScore",
    "trending_score",
    "id",
}
MAX_LIMIT = 1000


@dataclass(frozen=True)
class ListedRepo:
    repo: Repo
    trending: int
    downloads: int


@dataclass(frozen=True)
class ListedRow:
    """A listed repo as plain index columns (``IndexRow``): what the JSON listing answers from."""

    repo: IndexRow
    trending: int
    downloads: int


@dataclass
class ListQuery:
    repo_type: str
    search: list[str]
    author: str | None = None
    filters: list[str] | None = None
    pipeline_tag: str | None = None
    library: list[str] | None = None
    language: list[str] | None = None
    gated: bool | None = None
    license: str | None = None
    sort: str | None = None
    direction: int = -1
    limit: int | None = None
    offset: int = 0


def _has_tag(tag: str) -> ColumnElement[bool]:
    """Repos with ``tag``, as a list the tag index builds once (not a probe per scanned repo: an EXISTS per row
    made a rare tag's listing scan every repo of the type in sort order, 1.2 ms at 1,000 repos, 12 at 10,000)."""
    return Repo.pk.in_(select(RepoTag.repo_pk).where(RepoTag.tag == tag))


_OTHER = aliased(Repo, name="matching")  # made once: a new alias per call cost more than the query (0.9 ms)


def _tagged_or(tag: str, *columns: str) -> ColumnElement[bool]:
    """Repos with ``tag``, or with it as one of ``columns`` (``pipeline_tag``, ``library_name``): one list from
    three index searches, so the database can start from the few repos that match (``_has_tag``)."""
    parts = [select(RepoTag.repo_pk).where(RepoTag.tag == tag)]
    parts += [select(_OTHER.pk).where(getattr(_OTHER, column) == tag) for column in columns]
    return Repo.pk.in_(union(*parts))


def _conditions(session: Session, query: ListQuery, principal: Principal) -> list[Any]:
    """The WHERE clauses of a listing: type, visibility, search and every filter."""
    conditions: list[Any] = [Repo.repo_type == query.repo_type, visible_filter(session, principal)]
    for term in query.search:
        if term:
            escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(Repo.id_key.like(f"%{escaped}%", escape="\\"))
    if query.author:
        conditions.append(func.lower(Repo.namespace) == query.author.lower())
    for tag in query.filters or []:
        if tag.startswith("language:"):
            conditions.append(_has_tag(tag))
        elif tag:
            conditions.append(_tagged_or(tag, "pipeline_tag", "library_name"))
    if query.pipeline_tag:
        conditions.append(Repo.pipeline_tag == query.pipeline_tag)
    for library in query.library or []:
        conditions.append(_tagged_or(library, "library_name"))
    for language in query.language or []:
        conditions.append(_has_tag(f"{LANGUAGE_TAG}{language}"))
    if query.license:
        conditions.append(Repo.license == query.license)
    if query.gated is not None:
        conditions.append(Repo.gated.is_not(None) if query.gated else Repo.gated.is_(None))
    return conditions


def build_query(session: Session, query: ListQuery, principal: Principal) -> Select[Repo, int, int]:
    """The listing query; trending and 30-day downloads are indexed columns kept by ``repos/stats``."""
    stmt = select(Repo, Repo.trending_score, Repo.downloads_30d).where(*_conditions(session, query, principal))
    column: Any = {
        "downloads": Repo.downloads_30d,
        "likes": Repo.likes,
        "lastModified": Repo.last_modified,
        "last_modified": Repo.last_modified,
        "createdAt": Repo.created_at,
        "created_at": Repo.created_at,
        "trendingScore": Repo.trending_score,
        "trending_score": Repo.trending_score,
        "id": Repo.id_key,
    }.get(query.sort or "", None)
    if query.sort and column is None:
        raise BadRequestError(f"Invalid sort {query.sort!r}: expected one of {', '.join(sorted(SORTS))}")
    if column is not None:
        ordered = column.asc() if query.direction > 0 else column.desc()
        stmt = stmt.order_by(ordered, Repo.pk.desc())
    else:
        stmt = stmt.order_by(Repo.pk.desc())
    return stmt


def list_repos(
    session: Session, principal: Principal, query: ListQuery, *, page_size: int
) -> tuple[list[ListedRepo], bool]:
    """One page of repos matching ``query`` and whether more follow."""
    stmt = build_query(session, query, principal).offset(query.offset).limit(page_size + 1)
    rows = [ListedRepo(row[0], int(row[1] or 0), int(row[2] or 0)) for row in session.execute(stmt)]
    return rows[:page_size], len(rows) > page_size


def list_rows(
    session: Session, principal: Principal, query: ListQuery, *, page_size: int, card: bool, config: bool
) -> tuple[list[ListedRow], bool]:
    """``list_repos`` for the JSON listing: the same query, but only the index columns (the card and the model
    config only when the answer shows them), read as plain rows."""
    columns: list[Any] = [*INDEX_ROW_COLUMNS]
    columns += [Repo.card_data if card else null(), Repo.model_config if config else null()]
    ordered = build_query(session, query, principal)
    stmt = ordered.with_only_columns(*columns, Repo.trending_score, Repo.downloads_30d, maintain_column_froms=True)
    stmt = stmt.offset(query.offset).limit(page_size + 1)
    rows = [
        ListedRow(IndexRow(*row[:-2]), int(row[-2] or 0), int(row[-1] or 0))
        for row in session.execute(stmt)
    ]
    return rows[:page_size], len(rows) > page_size


@dataclass(frozen=True)
class Facets:
    tasks: list[tuple[str, int]]
    libraries: list[tuple[str, int]]
    licenses: list[tuple[str, int]]
    languages: list[tuple[str, int]]
    total: int


def facets(session: Session, principal: Principal, query: ListQuery) -> Facets:
    """Counts per task, library, license and language among the repos ``query`` matches (visible ones only)."""
    matching = select(Repo.pk).where(*_conditions(session, query, principal))

    def counts(column: Any) -> list[tuple[str, int]]:
        stmt = (
            select(column, func.count())
            .where(Repo.pk.in_(matching), column.is_not(None))
            .group_by(column)
            .order_by(func.count().desc(), column)
        )
        return [(str(value), int(count)) for value, count in session.execute(stmt)]

    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    language_rows = session.execute(
        select(RepoTag.tag, func.count())
        .where(RepoTag.repo_pk.in_(matching), RepoTag.tag.startswith(LANGUAGE_TAG))
        .group_by(RepoTag.tag)
        .order_by(func.count().desc(), RepoTag.tag)
        .limit(40)
    )
    return Facets(
        tasks=counts(Repo.pipeline_tag),
        libraries=counts(Repo.library_name),
        licenses=counts(Repo.license),
        languages=[(tag.removeprefix(LANGUAGE_TAG), int(n)) for tag, n in language_rows],
        total=int(total),
    )
