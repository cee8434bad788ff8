"""The webhooks settings page: a person's hooks, a form to add one, enable/disable/delete, and each hook's
delivery log (time, event, attempts, HTTP status, error). Every change goes through ``webhooks.service``, the
same calls as the API, with the signed-in session acting as a write token behind a CSRF check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth import sessions
from hubstead.errors import HubError
from hubstead.web.pages import Viewer, render, viewer
from hubstead.webhooks import service
from hubstead.webhooks.models import Webhook

router = APIRouter(include_in_schema=False)


def parse_watched(text: str) -> list[dict[str, str]]:
    """The form's watched list: one ``type:name`` a line or comma (``model:alice/bert``, ``user:alice``)."""
    items = []
    for part in text.replace(",", "\n").splitlines():
        part = part.strip()
        if not part:
            continue
        kind, sep, name = part.partition(":")
        if not sep:
            kind, name = ("model", part) if "/" in part else ("user", part)
        items.append({"type": kind.strip().lower(), "name": name.strip()})
    return items


def _page(
    request: Request, session: Session, me: Viewer, *, selected: Webhook | None = None, error: str | None = None,
    form: dict[str, Any] | None = None, status: int = 200,
) -> Response:  # fmt: skip
    assert me.user is not None
    hooks = service.list_webhooks(session, me.principal)
    log = service.deliveries(session, selected) if selected is not None else []
    return render(request, "settings_webhooks.html", me, status_code=status, hooks=hooks, selected=selected,
                  deliveries=log, error=error, form=form or {}, watched_text=_watched_text,
                  allow_private=request.app.state.hub.settings.webhooks_allow_private)  # fmt: skip


def _watched_text(hook: Webhook) -> str:
    return ", ".join(f"{w['type']}:{w['name']}" for w in service.watched_json(hook))


def _signed_in(request: Request, session: Session) -> tuple[Viewer, Response | None]:
    me = viewer(request, session)
    if me.user is None:
        return me, RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return me, None


@router.get("/settings/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, session: Session = SessionDep) -> Response:
    me, redirect = _signed_in(request, session)
    return redirect or _page(request, session, me)


@router.get("/settings/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook_page(webhook_id: str, request: Request, session: Session = SessionDep) -> Response:
    me, redirect = _signed_in(request, session)
    if redirect:
        return redirect
    return _page(request, session, me, selected=service.get_webhook(session, me.principal, webhook_id))


@router.post("/settings/webhooks", response_class=HTMLResponse)
def create_webhook_route(
    request: Request,
    url: str = Form(""),
    watched: str = Form(""),
    secret: str = Form(""),
    domain_repo: str = Form(""),
    domain_discussion: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me, redirect = _signed_in(request, session)
    if redirect:
        return redirect
    sessions.check_csrf(me.web, csrf_token)
    domains = [d for d, on in (("repo", domain_repo), ("discussion", domain_discussion)) if on]
    body = {"url": url.strip(), "watched": parse_watched(watched), "domains": domains, "secret": secret or None}
    try:
        with session.begin_nested():
            hook = service.create_webhook(
                session, me.principal, body, allow_private=request.app.state.hub.settings.webhooks_allow_private
            )
    except HubError as exc:
        form = {"url": url, "watched": watched, "domains": domains}
        return _page(request, session, me, error=exc.message, form=form, status=exc.status_code)
    return RedirectResponse(f"/settings/webhooks/{hook.public_id}", status_code=303)


@router.post("/settings/webhooks/{webhook_id}/{action}")
def change_webhook_route(
    webhook_id: str, action: str, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
) -> Response:
    me, redirect = _signed_in(request, session)
    if redirect:
        return redirect
    sessions.check_csrf(me.web, csrf_token)
    if action == "delete":
        service.delete_webhook(session, me.principal, webhook_id)
        return RedirectResponse("/settings/webhooks", status_code=303)
    if action not in ("enable", "disable"):
        return _page(request, session, me, error=f"Unknown action {action!r}", status=404)
    service.set_disabled(session, me.principal, webhook_id, action == "disable")
    return RedirectResponse(f"/settings/webhooks/{webhook_id}", status_code=303)
