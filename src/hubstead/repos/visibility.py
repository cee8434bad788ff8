"""Who may see a repo: the one rule, as a predicate for one repo and as a SQL filter for listings.

A repo is visible to a caller when it is public, or when its namespace is one the caller stands in: their
own, an org they belong to (any role), or every namespace for a site admin. ``readable_namespaces`` is that
definition; ``can_read`` and ``visible_filter`` both read it, so a page, a listing, a count, a search and the
inference model list can never disagree about a private repo.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.orm import Session

from hubstead.auth.models import Membership, Org
from hubstead.auth.service import Principal
from hubstead.repos.models import Repo

ALL_NAMESPACES = None  # what readable_namespaces answers for a site admin


def readable_namespaces(session: Session, principal: Principal) -> frozenset[str] | None:
    """The namespaces (lower-cased) whose private repos the caller may see; ``None`` means all (an admin)."""
    user = principal.user
    if user is None:
        return frozenset()
    scope = principal.namespace_scope  # a space's token: its org's repos only
    if user.is_admin:
        return ALL_NAMESPACES if scope is None else frozenset({scope})
    orgs = session.scalars(
        select(Org.name_key).join(Membership, Membership.org_id == Org.id).where(Membership.user_id == user.id)
    )
    namespaces = frozenset({user.name_key, *orgs})
    return namespaces if scope is None else namespaces & {scope}


def can_read(session: Session, principal: Principal, repo: Repo) -> bool:
    """Whether the caller may see ``repo`` (its page, files' list, card; gated content has its own rule)."""
    if not repo.private:
        return True
    namespaces = readable_namespaces(session, principal)
    return namespaces is ALL_NAMESPACES or repo.namespace.lower() in namespaces


def visible_filter(session: Session, principal: Principal) -> ColumnElement[bool]:
    """The WHERE clause that keeps the repos the caller may see (every listing uses it)."""
    namespaces = readable_namespaces(session, principal)
    if namespaces is ALL_NAMESPACES:
        return true()
    if not namespaces:
        return Repo.private == false()
    return or_(Repo.private == false(), func.lower(Repo.namespace).in_(sorted(namespaces)))
