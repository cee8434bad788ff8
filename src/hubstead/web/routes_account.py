"""Sign in, sign up, sign out, and account settings (profile, access tokens, organizations)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, client_address, throttle_of
from hubstead.auth import sessions
from hubstead.auth.accounts import password_problem
from hubstead.auth.models import User
from hubstead.auth.service import authenticate_password, create_token, create_user, list_tokens, revoke_token, user_orgs
from hubstead.auth.setup import looks_like_email
from hubstead.errors import ForbiddenError, HubError, TooManyRequestsError
from hubstead.web.pages import render, viewer

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "hubstead_login_csrf"


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def _login_form(
    request: Request, session: Session, template: str, error: str | None = None, status: int = 200, **context: Any
) -> Response:
    """A sign-in, sign-up or setup form; ``context`` carries what was typed (``values``) back after an error."""
    me = viewer(request, session)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    context.setdefault("values", {})
    response = render(request, template, me, status_code=status, login_csrf=token, error=error,
                      next=_safe_next(request.query_params.get("next")), **context)  # fmt: skip
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax")
    return response


def _check_login_csrf(request: Request, submitted: str) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not secrets.compare_digest(cookie, submitted):
        raise ForbiddenError("This form has expired; reload the page and try again")


def _signed_in(session: Session, user: User, response: RedirectResponse) -> RedirectResponse:
    value = sessions.start(session, user)
    response.set_cookie(sessions.COOKIE, value, httponly=True, samesite="lax", max_age=sessions.SESSION_DAYS * 86400)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: Session = SessionDep) -> Response:
    return _login_form(request, session, "login.html")


@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    login_csrf: str = Form(""),
    next: str = Form("/"),
    session: Session = SessionDep,
) -> Response:
    _check_login_csrf(request, login_csrf)
    throttle, address = throttle_of(request), client_address(request)
    try:
        if throttle is not None:
            throttle.check_sign_in(username, address)
    except TooManyRequestsError as exc:
        locked = _login_form(request, session, "login.html", error=exc.message, status=exc.status_code)
        locked.headers.update(exc.headers)
        return locked
    user = authenticate_password(session, name=username, password=password)
    if user is None:
        if throttle is not None:
            throttle.sign_in_failed(username, address)
        return _login_form(request, session, "login.html", error="Wrong user name or password", status=401)
    if user.disabled_at is not None:
        return _login_form(request, session, "login.html", error="This account is disabled; ask an administrator",
                           status=403)  # fmt: skip
    if throttle is not None:
        throttle.signed_in(username)
    return _signed_in(session, user, RedirectResponse(_safe_next(next), status_code=303))


def _require_signup_enabled(request: Request, session: Session) -> None:
    viewer(request, session)
    if not request.app.state.hub.settings.signup_enabled:
        raise ForbiddenError("Sign-up is turned off on this hub; ask an administrator for an account")


@router.get("/join", response_class=HTMLResponse)
def signup_form(request: Request, session: Session = SessionDep) -> Response:
    _require_signup_enabled(request, session)
    return _login_form(request, session, "signup.html")


@router.post("/join")
def signup(
    request: Request,
    username: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    login_csrf: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    _require_signup_enabled(request, session)
    _check_login_csrf(request, login_csrf)
    typed = {"username": username.strip(), "email": email.strip()}  # shown again after an error; never the password
    problem = password_problem(password, name=username)
    if problem is None and typed["email"] and not looks_like_email(typed["email"]):
        problem = "That email address does not look right"
    if problem is not None:
        return _login_form(request, session, "signup.html", error=problem, status=400, values=typed)
    try:  # never an admin, first user or not: the first admin comes from serve's setup link (auth/setup.py)
        user = create_user(session, name=typed["username"], password=password, email=typed["email"] or None)
    except HubError as exc:
        return _login_form(request, session, "signup.html", error=exc.message, status=exc.status_code, values=typed)
    return _signed_in(session, user, RedirectResponse("/", status_code=303))


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form(""), session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    sessions.check_csrf(me.web, csrf_token)
    sessions.end(session, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(sessions.COOKIE)
    return response


def _require_user(request: Request, session: Session):  # type: ignore[no-untyped-def]
    me = viewer(request, session)
    if me.user is None:
        return me, RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return me, None


@router.get("/settings/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, session: Session = SessionDep) -> Response:
    me, redirect = _require_user(request, session)
    if redirect:
        return redirect
    return render(request, "settings_tokens.html", me, tokens=list_tokens(session, me.user), new_token=None,
                  orgs=user_orgs(session, me.user))  # fmt: skip


@router.post("/settings/tokens", response_class=HTMLResponse)
def create_token_route(
    request: Request,
    name: str = Form(""),
    role: str = Form("read"),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me, redirect = _require_user(request, session)
    if redirect:
        return redirect
    sessions.check_csrf(me.web, csrf_token)
    token = create_token(session, user=me.user, role=role, name=name.strip()[:128])
    return render(request, "settings_tokens.html", me, tokens=list_tokens(session, me.user), new_token=token,
                  orgs=user_orgs(session, me.user))  # fmt: skip


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token_route(
    token_id: int, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me, redirect = _require_user(request, session)
    if redirect:
        return redirect
    sessions.check_csrf(me.web, csrf_token)
    revoke_token(session, user=me.user, token_id=token_id)
    return RedirectResponse("/settings/tokens", status_code=303)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, session: Session = SessionDep) -> Response:
    return RedirectResponse("/settings/profile", status_code=303)


@router.get("/settings/profile", response_class=HTMLResponse)
def profile_form(request: Request, session: Session = SessionDep) -> Response:
    me, redirect = _require_user(request, session)
    if redirect:
        return redirect
    return render(request, "settings_profile.html", me, saved=False, orgs=user_orgs(session, me.user))


@router.post("/settings/profile", response_class=HTMLResponse)
def save_profile(
    request: Request,
    fullname: str = Form(""),
    email: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me, redirect = _require_user(request, session)
    if redirect:
        return redirect
    sessions.check_csrf(me.web, csrf_token)
    user = session.merge(me.user)
    user.fullname = fullname.strip()[:256] or user.name
    email = email.strip()[:256]
    if email and ("@" not in email or " " in email):
        return render(request, "settings_profile.html", me, saved=False, error="That is not an email address",
                      orgs=user_orgs(session, user), status_code=400)  # fmt: skip
    user.email = email or None
    session.flush()
    return render(request, "settings_profile.html", me, saved=True, orgs=user_orgs(session, user))
