"""Organizations on the web: create one (``/organizations/new``, any signed-in user, who becomes its admin) and
its members page (``/organizations/{org}/members``: add a member, change a role, remove one; for the org's
admins and site admins, everyone else gets the 404 page). Forms post the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth import org_members
from hubstead.auth.models import ROLES
from hubstead.auth.service import create_org
from hubstead.auth.service import org_members as members_of
from hubstead.errors import HubError
from hubstead.web.pages import render, signed_in, viewer

router = APIRouter(include_in_schema=False)


@router.get("/organizations/new", response_class=HTMLResponse)
def new_org_form(request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse("/login?next=/organizations/new", status_code=303)
    return render(request, "org_new.html", me, error=None, name="")


@router.post("/organizations/new", response_class=HTMLResponse)
def new_org(
    request: Request, name: str = Form(""), csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me = signed_in(request, session, csrf_token)
    assert me.user is not None
    try:
        org = create_org(session, name=name.strip(), owner=me.user, actor=me.user)
    except HubError as exc:
        session.rollback()
        return render(request, "org_new.html", me, error=exc.message, name=name, status_code=exc.status_code)
    session.commit()
    return RedirectResponse(f"/organizations/{org.name}/members", status_code=303)


@router.get("/organizations/{name}/members", response_class=HTMLResponse)
def members_page(name: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    org = org_members.managed_org(session, me.user, name)
    members = sorted(members_of(session, org), key=lambda pair: pair[0].name_key)
    return render(request, "org_members.html", me, org=org, members=members, roles=ROLES)


@router.post("/organizations/{name}/members")
def set_member(
    name: str,
    request: Request,
    username: str = Form(""),
    role: str = Form(""),
    action: str = Form("set"),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = signed_in(request, session, csrf_token)
    assert me.user is not None
    org = org_members.managed_org(session, me.user, name)
    if action == "remove":
        org_members.remove(session, org, username, actor=me.user)
    else:
        org_members.change_role(session, org, username, role, actor=me.user)
    session.commit()
    return RedirectResponse(f"/organizations/{org.name}/members", status_code=303)
