"""One search over everything a reader may find: models, datasets, spaces and people (users and organizations).

The header's search box asks it as one types (a few suggestions per kind) and ``/search?q=`` shows a page of each
kind. Repos come from the same listing conditions as the lists (``service._conditions``: visibility included, so a
private repo never shows to someone who may not read it); the closest names come first (the whole name, then a
name starting with the query, then the rest by trending). People are the accounts whose name or full name holds
the query; disabled users are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from hubstead.auth.models import Org, User
from hubstead.auth.service import Principal
from hubstead.errors import BadRequestError
from hubstead.repos.models import Repo
from hubstead.search.service import ListedRepo, ListQuery, _conditions

KINDS = ("model", "dataset", "space")
MAX_QUERY = 200
MAX_TERMS = 8


@dataclass(frozen=True)
class Person:
    name: str
    fullname: str
    is_org: bool


@dataclass
class Found:
    """What one search found, grouped by kind, and whether each group had more than it shows."""

    query: str
    repos: dict[str, list[ListedRepo]] = field(default_factory=dict)
    more: dict[str, bool] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    more_people: bool = False

    @property
    def empty(self) -> bool:
        return not self.people and not any(self.repos.values())


def terms_of(query: str) -> list[str]:
    """The words of a query (each must be in a match's id); a clear 400 for an over-long one."""
    if len(query) > MAX_QUERY:
        raise BadRequestError(f"Search text too long: at most {MAX_QUERY} characters")
    terms = [t for t in query.lower().split() if t]
    if len(terms) > MAX_TERMS:
        raise BadRequestError(f"Too many search words: at most {MAX_TERMS}")
    return terms


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _repos(session: Session, principal: Principal, kind: str, terms: list[str], limit: int) -> list[ListedRepo]:
    whole = " ".join(terms)
    name = func.lower(Repo.name)
    closeness: Any = case(
        (or_(name == whole, Repo.id_key == whole), 0),
        (or_(name.startswith(whole, autoescape=True), Repo.id_key.startswith(whole, autoescape=True)), 1),
        else_=2,
    )
    stmt = (
        select(Repo, Repo.trending_score, Repo.downloads_30d)
        .where(*_conditions(session, ListQuery(repo_type=kind, search=terms), principal))
        .order_by(closeness, Repo.trending_score.desc(), Repo.id_key)
        .limit(limit)
    )
    return [ListedRepo(row[0], int(row[1] or 0), int(row[2] or 0)) for row in session.execute(stmt)]


def _people(session: Session, terms: list[str], limit: int) -> list[Person]:
    whole = " ".join(terms)
    found: list[tuple[int, str, Person]] = []
    for model, is_org in ((User, False), (Org, True)):
        conditions: list[Any] = [
            or_(model.name_key.like(_like(t), escape="\\"), func.lower(model.fullname).like(_like(t), escape="\\"))
            for t in terms
        ]
        if model is User:
            conditions.append(User.disabled_at.is_(None))
        closeness: Any = case(
            (model.name_key == whole, 0), (model.name_key.startswith(whole, autoescape=True), 1), else_=2
        )
        stmt = (
            select(model.name, model.fullname, closeness)
            .where(*conditions)
            .order_by(closeness, model.name_key)
            .limit(limit)
        )
        found += [
            (int(rank), name.lower(), Person(name, fullname or "", is_org))
            for name, fullname, rank in session.execute(stmt)
        ]
    found.sort(key=lambda item: (item[0], item[1]))
    return [person for _, _, person in found[:limit]]


def search(session: Session, principal: Principal, query: str, *, per_kind: int) -> Found:
    """Up to ``per_kind`` of each kind matching ``query`` that the caller may see (nothing for an empty one)."""
    terms = terms_of(query)
    found = Found(query=" ".join(terms))
    if not terms:
        return found
    for kind in KINDS:
        rows = _repos(session, principal, kind, terms, per_kind + 1)
        found.repos[kind], found.more[kind] = rows[:per_kind], len(rows) > per_kind
    people = _people(session, terms, per_kind + 1)
    found.people, found.more_people = people[:per_kind], len(people) > per_kind
    return found


def suggestions(session: Session, principal: Principal, query: str, *, limit: int = 8) -> list[tuple[str, list[Any]]]:
    """At most ``limit`` suggestions in all, grouped by kind (models, datasets, spaces, people), shared round-robin
    so that one kind with many matches does not push the others out."""
    found = search(session, principal, query, per_kind=limit)
    groups: list[list[Any]] = [list(found.repos.get(kind, [])) for kind in KINDS] + [list(found.people)]
    taken: list[list[Any]] = [[] for _ in groups]
    left = limit
    while left > 0 and any(groups):
        for source, target in zip(groups, taken, strict=True):
            if source and left > 0:
                target.append(source.pop(0))
                left -= 1
    labels = ["Models", "Datasets", "Spaces", "People"]
    return [(label, items) for label, items in zip(labels, taken, strict=True) if items]
