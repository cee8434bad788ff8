"""Reading the audit log (``auth.audit``): ``GET /api/admin/audit`` for site admins, ``GET
/api/organizations/{org}/audit`` for an org's admins (their org's events only), and the same as plain pages,
``/admin/audit`` and ``/organizations/{org}/settings/audit``.

Filters: ``actor`` (a user's name), ``action`` (a whole name, or a prefix: ``repo`` is every ``repo.*``),
``namespace`` (site admins), ``since`` (an ISO 8601 time), ``limit`` (at most 500). Newest first; the next
page is in the ``Link`` header (``cursor``: the last event's id). A visitor gets 401, a signed-in caller who is
not an admin of what they ask for 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep, base_url, get_caller
from hubstead.api.pagination import positive_limit
from hubstead.auth.audit import AuditEvent, list_events
from hubstead.auth.service import Principal, get_org, namespace_role
from hubstead.errors import BadRequestError, ForbiddenError, UnauthorizedError
from hubstead.web.pages import admin_viewer, render, viewer

router = APIRouter()
PAGE = 100
MAX_PAGE = 500


def _site_admin(principal: Principal) -> None:
    if principal.user is None:
        raise UnauthorizedError("Sign in as a site administrator to read the audit log")
    if not principal.user.is_admin or principal.namespace_scope is not None:
        raise ForbiddenError("Only site administrators can read the audit log")


def _org_admin(session: Session, principal: Principal, org_name: str) -> str:
    """The org's name, when the caller administers it (a site admin does too)."""
    org = get_org(session, org_name)
    if principal.user is None:
        raise UnauthorizedError("Sign in as an administrator of this organization to read its audit log")
    if namespace_role(session, principal, org.name) != "admin":
        raise ForbiddenError(f"Only administrators of {org.name} can read its audit log")
    return org.name


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequestError(f"since must be an ISO 8601 time, not {value!r}") from exc
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise BadRequestError("Invalid cursor")
    return int(value)


def _query(request: Request, session: Session, namespace: str | None) -> tuple[list[AuditEvent], str | None]:
    """The page of events the request asks for, and the query string of the next page (None on the last)."""
    params = request.query_params
    limit = positive_limit(params.get("limit"), maximum=MAX_PAGE) or PAGE
    events = list_events(
        session,
        namespace=namespace if namespace is not None else (params.get("namespace") or None),
        actor=params.get("actor") or None,
        action=params.get("action") or None,
        since=_since(params.get("since")),
        before_id=_cursor(params.get("cursor")),
        limit=limit + 1,
    )
    if len(events) <= limit:
        return events, None
    events = events[:limit]
    kept = [(k, v) for k, v in params.multi_items() if k != "cursor"]
    return events, urlencode([*kept, ("cursor", str(events[-1].id))])


def _answer(request: Request, events: list[AuditEvent], next_query: str | None) -> JSONResponse:
    headers = {}
    if next_query is not None:
        headers["Link"] = f'<{base_url(request)}{request.url.path}?{next_query}>; rel="next"'
    return JSONResponse([event.as_json() for event in events], headers=headers)


@router.get("/api/admin/audit")
def admin_audit(request: Request, session: Session = SessionDep) -> Response:
    """Every event, for site admins."""
    _site_admin(get_caller(request, session))
    return _answer(request, *_query(request, session, None))


@router.get("/api/organizations/{name}/audit")
def org_audit(name: str, request: Request, session: Session = SessionDep) -> Response:
    """The events of one organization, for its admins."""
    org = _org_admin(session, get_caller(request, session), name)
    return _answer(request, *_query(request, session, org))


def _page(request: Request, session: Session, *, title: str, org: str | None, **context: Any) -> HTMLResponse:
    events, next_query = _query(request, session, org)
    return render(request, "audit.html", viewer(request, session), title=title, org=org, events=events,
                  next_query=next_query, filters=dict(request.query_params), **context)  # fmt: skip


@router.get("/admin/audit", response_class=HTMLResponse, include_in_schema=False)
def admin_audit_page(request: Request, session: Session = SessionDep) -> Response:
    admin_viewer(request, session)  # the 404 page for anyone but a site admin, as every /admin page
    return _page(request, session, title="Audit log", org=None, admin_nav=True)


@router.get("/organizations/{name}/settings/audit", response_class=HTMLResponse, include_in_schema=False)
def org_audit_page(name: str, request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    org = _org_admin(session, me.principal, name)
    return _page(request, session, title=f"{org} · audit log", org=org, admin_nav=False)
