"""Rendering pages: the Jinja2 environment, the context every page gets, and the viewer of a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from hubstead.api.deps import base_url, web_session
from hubstead.auth import sessions
from hubstead.auth.models import User, WebSession
from hubstead.auth.service import ANONYMOUS, Principal
from hubstead.errors import NotFoundError, UnauthorizedError
from hubstead.tasks import TASK_MODALITY, task_label
from hubstead.web.names import parse_model_name
from hubstead.web.render import highlight_code
from hubstead.web.space_views import look as space_look

TEMPLATES = Path(__file__).parent / "templates"


def _human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)


def _human_count(count: int | None) -> str:
    count = count or 0
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 1000:
        return f"{count / 1000:.1f}k"
    return str(count)


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for limit, unit in ((60, "second"), (3600, "minute"), (86400, "hour"), (86400 * 30, "day"), (86400 * 365, "month")):
        if seconds < limit:
            divisor = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 86400 * 30}[unit]
            value = max(int(seconds // divisor), 0 if unit == "second" else 1)
            return "just now" if unit == "second" else f"{value} {unit}{'s' if value != 1 else ''} ago"
    years = int(seconds // (86400 * 365))
    return f"{years} year{'s' if years != 1 else ''} ago"


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True)
env.filters["size"] = _human_size
env.filters["count"] = _human_count
env.filters["ago"] = _ago
env.filters["space_look"] = space_look  # a space card's emoji, title and colours from its README header
env.filters["task_label"] = task_label
env.filters["name_size"] = lambda repo_id: parse_model_name(repo_id).size
env.filters["highlight"] = highlight_code
env.globals["TASK_MODALITY"] = TASK_MODALITY


@dataclass
class Viewer:
    """The person looking at a page: a signed-in user (with their session) or anonymous."""

    web: WebSession | None

    @property
    def user(self) -> User | None:
        return self.web.user if self.web else None

    @property
    def principal(self) -> Principal:
        # A browser session acts with write rights; every write form checks the CSRF token first.
        return Principal(user=self.web.user, token_role="write") if self.web else ANONYMOUS

    @property
    def csrf(self) -> str:
        return self.web.csrf_token if self.web else ""


def viewer(request: Request, session: Session) -> Viewer:
    # Errors on pages are answered as pages; under /api they stay JSON.
    request.state.page = not request.url.path.startswith("/api/")
    return Viewer(web=web_session(request, session))


def signed_in(request: Request, session: Session, csrf: str | None = None) -> Viewer:
    """The signed-in viewer of a page that changes something: 401 for a visitor, 403 without the session's CSRF
    token (the form's ``csrf``, else the ``X-CSRF-Token`` header htmx sends) on a POST or when one is given."""
    me = viewer(request, session)
    if me.user is None:
        raise UnauthorizedError("Sign in first")
    if csrf is not None or request.method == "POST":
        sessions.check_csrf(me.web, csrf or request.headers.get(sessions.CSRF_HEADER))
    return me

def admin_viewer(request: Request, session: Session, csrf: str | None = None) -> Viewer:
    """The signed-in site admin looking at an admin page (``/admin/...``); for anyone else the 404 page, so the
    pages' existence is not revealed. A POST needs the session's CSRF token too. Every admin page calls this."""
    me = viewer(request, session)
    if me.user is None or not me.user.is_admin:
        raise NotFoundError("Page not found")
    if request.method == "POST":
        sessions.check_csrf(me.web, csrf or request.headers.get(sessions.CSRF_HEADER))
    return me



def url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one): links that keep the query."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render(request: Request, template: str, viewer_: Viewer, status_code: int = 200, **context: Any) -> HTMLResponse:
    hub = request.app.state.hub
    body = env.get_template(template).render(
        request=request,
        viewer=viewer_,
        user=viewer_.user,
        csrf=viewer_.csrf,
        hub_url=base_url(request),
        signup_enabled=hub.settings.signup_enabled,
        url_with=lambda **changes: url_with(request, **changes),
        **context,
    )
    return HTMLResponse(body, status_code=status_code)
