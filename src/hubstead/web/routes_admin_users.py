"""The site admin's pages for accounts: ``/admin/users`` (list, search, create) and ``/admin/users/{name}``
(disable or enable, reset the password, make or unmake admin, the user's tokens and their revocation, delete with
the plan for their repos shown first). Every form posts with the session's CSRF token; the work is done by
``auth.accounts`` and ``repos.owners``, as for the CLI and the admin API."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, get_hub
from hubstead.auth.accounts import (
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
from hubstead.auth.service import create_user
from hubstead.errors import HubError
from hubstead.repos.owners import delete_user, deletion_plan
from hubstead.web.pages import Viewer, admin_viewer, render

router = APIRouter(include_in_schema=False)


def _admin(request: Request, session: Session, csrf: str | None = None) -> Viewer:
    return admin_viewer(request, session, csrf)  # the 404 page for anyone but a site admin


def _list_page(
    request: Request, session: Session, me: Viewer, *, error: str | None = None, notice: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    search = request.query_params.get("q", "")
    return render(request, "admin_users.html", me, status_code=status, section="users", users=list_users(
        session, search=search), q=search, error=error, notice=notice)  # fmt: skip


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: Session = SessionDep) -> Response:
    return _list_page(request, session, _admin(request, session))


@router.post("/admin/users", response_class=HTMLResponse)
def users_create(
    request: Request,
    name: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    admin: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = _admin(request, session, csrf_token)
    try:
        check_password(password, name=name)
        user = create_user(session, name=name.strip(), password=password, email=email.strip() or None,
                           is_admin=admin == "on")  # fmt: skip
    except HubError as exc:
        return _list_page(request, session, me, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/admin/users/{user.name}?done=created", status_code=303)


DONE = {
    "created": "User created.",
    "disabled": "Disabled: they cannot sign in and their tokens are refused.",
    "enabled": "Enabled again.",
    "password": "Password changed; their browser sessions were ended.",
    "admin": "Site admin rights changed.",
    "revoked": "Token revoked.",
}


def _user_page(
    request: Request, session: Session, me: Viewer, name: str, *, error: str | None = None, status: int = 200
) -> Response:
    user = find_user(session, name)
    repos, transfer = request.query_params.get("repos"), request.query_params.get("transfer", "").strip()
    if transfer:
        repos = f"transfer:{transfer}"
    plan = deletion_plan(session, user, repos) if repos is not None else None
    return render(request, "admin_user.html", me, status_code=status, section="users", account=user_row(user),
                  tokens=token_rows(session, user), plan=plan, repos_choice=repos, error=error,
                  notice=DONE.get(request.query_params.get("done", "")))  # fmt: skip


@router.get("/admin/users/{name}", response_class=HTMLResponse)
def user_page(name: str, request: Request, session: Session = SessionDep) -> Response:
    return _user_page(request, session, _admin(request, session), name)


@router.post("/admin/users/{name}/{action}", response_class=HTMLResponse)
def user_action(
    name: str,
    action: str,
    request: Request,
    password: str = Form(""),
    repos: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = _admin(request, session, csrf_token)
    user = find_user(session, name)
    try:
        if action in ("disable", "enable"):
            set_disabled(session, user, action == "disable", actor=me.user)
            done = f"{action}d"
        elif action == "password":
            set_password(session, user, password, actor=me.user)
            done = "password"
        elif action in ("make-admin", "revoke-admin"):
            set_admin(session, user, action == "make-admin", actor=me.user)
            done = "admin"
        elif action == "delete":
            delete_user(get_hub(request), session, user, repos=repos or None, actor=me.user)
            return RedirectResponse(f"/admin/users?deleted={user.name}", status_code=303)
        else:
            return _user_page(request, session, me, name, error=f"Unknown action {action!r}", status=404)
    except HubError as exc:
        session.rollback()
        return _user_page(request, session, me, name, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/admin/users/{user.name}?done={done}", status_code=303)


@router.post("/admin/tokens/{token_id}/revoke")
def token_revoke(
    token_id: int, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me = _admin(request, session, csrf_token)
    gone = revoke_any_token(session, token_id, actor=me.user)
    return RedirectResponse(f"/admin/users/{gone['user']}?done=revoked", status_code=303)
