"""The repo side of gating: list a gated repo's access requests and accept, reject, cancel or grant them.

A request is a ``gated_access`` row (one per repo and user); users make them with ``repos/service.request_access``.
Those who may write to the repo's namespace list and handle them, as on the Hub (a read token or a reader gets
403). Nobody is notified: Hubstead sends no mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.repos.models import GatedAccess, Repo
from hubstead.repos.service import require_write

STATUSES = ("pending", "accepted", "rejected")
MAX_REJECTION_REASON = 1000


@dataclass(frozen=True)
class AccessRequest:
    request_id: str
    user: User
    status: str
    created_at: datetime
    rejection_reason: str | None
    handled_by: str | None
    handled_at: datetime | None


def request_id(user_id: int) -> str:
    """The id a request is known by (one request per user and repo, so the user's id, as the Hub's 24 hex digits)."""
    return f"{user_id:024x}"


def _user_id_from_request_id(value: str) -> int:
    if len(value) != 24:
        raise NotFoundError(f"Access request {value!r} not found")
    try:
        return int(value, 16)
    except ValueError:
        raise NotFoundError(f"Access request {value!r} not found") from None


def require_manager(session: Session, principal: Principal, repo: Repo) -> None:
    """Only those who may write to the repo's namespace see and handle its requests (401/403 otherwise); the
    repo must be gated (400)."""
    require_write(session, principal, repo.namespace)
    if not repo.gated:
        raise BadRequestError(f"The {repo.repo_type} {repo.repo_id} is not gated")


def list_requests(session: Session, principal: Principal, repo: Repo, status: str) -> list[AccessRequest]:
    """The repo's requests in ``status``, oldest first."""
    if status not in STATUSES:
        raise NotFoundError(f"Unknown access request status {status!r}: expected one of {', '.join(STATUSES)}")
    require_manager(session, principal, repo)
    handler = User.__table__.alias("handler")
    rows = session.execute(
        select(GatedAccess, User, handler.c.name)
        .join(User, User.id == GatedAccess.user_id)
        .outerjoin(handler, handler.c.id == GatedAccess.handled_by_id)
        .where(GatedAccess.repo_pk == repo.pk, GatedAccess.status == status)
        .order_by(GatedAccess.created_at, GatedAccess.user_id)
    ).all()
    return [_record(row, user, handler_name) for row, user, handler_name in rows]


def _record(row: GatedAccess, user: User, handled_by: str | None) -> AccessRequest:
    return AccessRequest(
        request_id=request_id(user.id),
        user=user,
        status=row.status,
        created_at=row.created_at,
        rejection_reason=row.rejection_reason,
        handled_by=handled_by,
        handled_at=row.handled_at,
    )


def _find_user(session: Session, *, user: str | None, request: str | None) -> User:
    if (user is None) == (request is None):
        raise BadRequestError("Give exactly one of 'user' or 'requestId'")
    if user is not None:
        found = session.scalar(select(User).where(User.name_key == user.lower()))
        if found is None:
            raise NotFoundError(f"User {user!r} not found")
        return found
    found = session.get(User, _user_id_from_request_id(str(request)))
    if found is None:
        raise NotFoundError(f"Access request {request!r} not found")
    return found


def handle_request(
    session: Session,
    principal: Principal,
    repo: Repo,
    *,
    user: str | None,
    request: str | None,
    status: str,
    rejection_reason: str | None = None,
) -> AccessRequest:
    """Move an existing request to ``status``: ``accepted``, ``rejected`` (with an optional reason) or ``pending``
    (a cancel: the user loses access). Moving a request to the list it is already in is a 404, as on the Hub."""
    require_manager(session, principal, repo)
    if status not in STATUSES:
        raise BadRequestError(f"'status' must be one of {', '.join(STATUSES)}")
    if rejection_reason is not None:
        if status != "rejected":
            raise BadRequestError("'rejectionReason' can only be given when rejecting a request")
        if len(rejection_reason) > MAX_REJECTION_REASON:
            raise BadRequestError(f"'rejectionReason' is longer than {MAX_REJECTION_REASON} characters")
    target = _find_user(session, user=user, request=request)
    row = session.get(GatedAccess, (repo.pk, target.id))
    if row is None:
        raise NotFoundError(f"No access request from {target.name!r} to {repo.repo_type} {repo.repo_id}")
    if row.status == status:
        raise NotFoundError(f"The access request of {target.name!r} is already in the {status} list")
    return _set(session, principal, row, target, status, rejection_reason)


def grant_access(session: Session, principal: Principal, repo: Repo, *, user: str) -> AccessRequest:
    """Give ``user`` access without a request of theirs (or accept the one they made). 400 if they have it already."""
    require_manager(session, principal, repo)
    target = _find_user(session, user=user, request=None)
    row = session.get(GatedAccess, (repo.pk, target.id))
    if row is None:
        row = GatedAccess(repo_pk=repo.pk, user_id=target.id, status="pending")
        session.add(row)
    elif row.status == "accepted":
        raise BadRequestError(f"{target.name!r} already has access to {repo.repo_type} {repo.repo_id}")
    return _set(session, principal, row, target, "accepted", None)


def _set(
    session: Session, principal: Principal, row: GatedAccess, target: User, status: str, reason: str | None
) -> AccessRequest:
    assert principal.user is not None  # require_write let a signed-in caller through
    row.status = status
    row.rejection_reason = reason if status == "rejected" else None
    row.handled_by_id = principal.user.id
    row.handled_at = utcnow()
    session.flush()
    return _record(row, target, principal.user.name)
