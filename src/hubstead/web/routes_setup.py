"""/setup?token=...: the first admin of a fresh hub, through the one-time link ``hubstead serve`` prints
(``auth/setup.py``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth import setup
from hubstead.errors import ForbiddenError, HubError
from hubstead.web.pages import viewer
from hubstead.web.routes_account import _check_login_csrf, _login_form, _signed_in

router = APIRouter(include_in_schema=False)


def _data_dir(request: Request) -> Path:
    return Path(request.app.state.hub.settings.data_dir)


@router.get("/setup", response_class=HTMLResponse)
def setup_form(request: Request, token: str = "", session: Session = SessionDep) -> Response:
    viewer(request, session)  # a refusal is answered as a page
    if not setup.is_valid(session, _data_dir(request), token):
        raise ForbiddenError(setup.REFUSED)
    return _login_form(request, session, "setup.html", setup_token=token)


@router.post("/setup")
def create_admin(
    request: Request,
    token: str = Form(""),
    username: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    login_csrf: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    viewer(request, session)
    _check_login_csrf(request, login_csrf)
    typed = {"username": username.strip(), "email": email.strip()}
    try:
        user = setup.create_first_admin(session, _data_dir(request), token, name=typed["username"], password=password,
                                        email=typed["email"] or None)  # fmt: skip
    except ForbiddenError:
        session.rollback()
        raise
    except HubError as exc:
        session.rollback()
        return _login_form(request, session, "setup.html", error=exc.message, status=exc.status_code,
                           setup_token=token, values=typed)  # fmt: skip
    return _signed_in(session, user, RedirectResponse("/", status_code=303))
