"""An org's members as its admins manage them on the web: who may (an org admin, or a site admin), role changes
that never leave the org without an admin, and removing a member. Adding and role changes go through
``service.set_membership`` (which audits them); a removal is audited here as ``org.member.remove``."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubstead.auth import audit
from hubstead.auth.models import ROLES, Membership, Org, User
from hubstead.auth.service import get_org, get_user, org_role, set_membership
from hubstead.errors import BadRequestError, ConflictError, NotFoundError


def may_manage(session: Session, user: User | None, org: Org) -> bool:
    return user is not None and (user.is_admin or org_role(session, user=user, namespace=org.name) == "admin")


def managed_org(session: Session, user: User | None, name: str) -> Org:
    """The org called ``name`` when ``user`` may manage its members; a 404 otherwise (as for a missing org)."""
    org = get_org(session, name)
    if not may_manage(session, user, org):
        raise NotFoundError(f"Organization {name!r} not found")
    return org


def _admins(session: Session, org: Org) -> int:
    count = session.scalar(
        select(func.count()).select_from(Membership).where(Membership.org_id == org.id, Membership.role == "admin")
    )
    return int(count or 0)


def _membership(session: Session, org: Org, user: User) -> Membership:
    found = session.scalar(select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id))
    if found is None:
        raise NotFoundError(f"{user.name} is not a member of {org.name}")
    return found


def change_role(session: Session, org: Org, name: str, role: str, *, actor: User) -> Membership:
    """Add ``name`` with ``role`` or change their role; the org's last admin stays an admin."""
    if role not in ROLES:
        raise BadRequestError(f"Invalid role {role!r}: expected one of {', '.join(ROLES)}")
    user = get_user(session, name.strip())
    current = session.scalar(select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id))
    if current is not None and current.role == "admin" and role != "admin" and _admins(session, org) <= 1:
        raise ConflictError(f"{user.name} is the last admin of {org.name}; make someone else an admin first")
    return set_membership(session, org=org, user=user, role=role, actor=actor)


def remove(session: Session, org: Org, name: str, *, actor: User) -> None:
    user = get_user(session, name)
    membership = _membership(session, org, user)
    if membership.role == "admin" and _admins(session, org) <= 1:
        raise ConflictError(f"{user.name} is the last admin of {org.name}; make someone else an admin first")
    session.delete(membership)
    audit.record(session, actor=actor, action="org.member.remove", namespace=org.name, target=user.name,
                 detail={"role": membership.role})  # fmt: skip
    session.flush()
