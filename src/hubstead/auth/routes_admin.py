"""The site admin's API for accounts (issue 23): ``/api/admin/users`` and ``/api/admin/tokens``.

Only site admins: a visitor gets 401, anyone else 403 (reads need an admin's token of any role, changes a write
token). Every handler is thin: ``auth.accounts`` and ``repos.owners`` do the work, so the CLI and the admin
pages behave the same. ``DELETE /api/admin/users/{name}`` without ``repos`` answers 409 with the plan while
the user owns repos; ``?dry_run=true`` answers the plan without doing it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import SessionDep, get_caller, get_hub, parse_bool
from hubstead.auth.accounts import (
    TokenRow,
    UserRow,
    check_password,
    find_user,
    list_users,
    revoke_any_token,
    set_admin,
    set_disabled,
    set_password,
    token_rows,
    user_row,
)
from hubstead.auth.models import User
from hubstead.auth.service import Principal, create_user
from hubstead.errors import BadRequestError, ForbiddenError, UnauthorizedError
from hubstead.repos.owners import delete_user, deletion_plan

router = APIRouter()


def require_site_admin(request: Request, session: Session, *, write: bool) -> Principal:
    """The caller if they are a site admin (401 for a visitor, 403 otherwise; ``write``: with a write token)."""
    principal = get_caller(request, session)
    if principal.user is None:
        raise UnauthorizedError("You must be authenticated as a site admin")
    if not principal.user.is_admin or (write and not principal.can_write):
        raise ForbiddenError("Only site admins may manage accounts" + (" (with a write token)" if write else ""))
    return principal


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequestError("The body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise BadRequestError("The body must be a JSON object")
    return body


def _string(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise BadRequestError(f"{key!r} must be a non-empty string")
    return value


@router.get("/api/admin/users", response_model=None)
def users_list(
    request: Request, search: str | None = None, limit: int = 500, session: Session = SessionDep
) -> list[UserRow]:
    require_site_admin(request, session, write=False)
    return list_users(session, search=search, limit=limit)


@router.post("/api/admin/users", response_model=None)
async def users_create(request: Request, session: Session = SessionDep) -> UserRow:
    body = await _body(request)

    def create() -> UserRow:
        require_site_admin(request, session, write=True)
        name, password = _string(body, "name"), _string(body, "password", required=False)
        if password is not None:
            check_password(password, name=name)
        if not isinstance(body.get("admin", False), bool):
            raise BadRequestError("'admin' must be true or false")
        user = create_user(session, name=str(name), password=password, email=_string(body, "email", required=False),
                           is_admin=body.get("admin", False))  # fmt: skip
        return user_row(user)

    return await run_in_threadpool(create)


def _target(request: Request, session: Session, name: str) -> tuple[User, User]:
    admin = require_site_admin(request, session, write=True)
    assert admin.user is not None
    return admin.user, find_user(session, name)


@router.post("/api/admin/users/{name}/disable", response_model=None)
def users_disable(name: str, request: Request, session: Session = SessionDep) -> UserRow:
    actor, user = _target(request, session, name)
    return user_row(set_disabled(session, user, True, actor=actor))


@router.post("/api/admin/users/{name}/enable", response_model=None)
def users_enable(name: str, request: Request, session: Session = SessionDep) -> UserRow:
    actor, user = _target(request, session, name)
    return user_row(set_disabled(session, user, False, actor=actor))


@router.post("/api/admin/users/{name}/password", response_model=None)
async def users_password(name: str, request: Request, session: Session = SessionDep) -> dict[str, bool]:
    body = await _body(request)

    def change() -> dict[str, bool]:
        actor, user = _target(request, session, name)
        set_password(session, user, str(_string(body, "password")), actor=actor)
        return {"changed": True}

    return await run_in_threadpool(change)


@router.post("/api/admin/users/{name}/admin", response_model=None)
async def users_admin(name: str, request: Request, session: Session = SessionDep) -> UserRow:
    body = await _body(request)
    admin = body.get("admin", True)
    if not isinstance(admin, bool):
        raise BadRequestError("'admin' must be true or false")

    def change() -> UserRow:
        actor, user = _target(request, session, name)
        return user_row(set_admin(session, user, admin, actor=actor))

    return await run_in_threadpool(change)


@router.delete("/api/admin/users/{name}", response_model=None)
def users_delete(
    name: str, request: Request, repos: str | None = None, dry_run: str | None = None, session: Session = SessionDep
) -> dict[str, object]:
    actor, user = _target(request, session, name)
    if parse_bool(dry_run):
        return deletion_plan(session, user, repos).as_json()
    plan = delete_user(get_hub(request), session, user, repos=repos, actor=actor)
    return {**plan.as_json(), "deleted": True}


@router.get("/api/admin/users/{name}/tokens", response_model=None)
def user_tokens(name: str, request: Request, session: Session = SessionDep) -> list[TokenRow]:
    require_site_admin(request, session, write=False)
    return token_rows(session, find_user(session, name))


@router.delete("/api/admin/tokens/{token_id}", response_model=None)
def tokens_revoke(token_id: int, request: Request, session: Session = SessionDep) -> TokenRow:
    admin = require_site_admin(request, session, write=True)
    return revoke_any_token(session, token_id, actor=admin.user)
