"""The space pages beyond the repo pages: the app's live status fragment (the App tab polls it while the space
builds, starts or wakes), the space settings forms (sleep time, hardware, variables, secrets, pause, restart,
factory rebuild), "Create a new space" from a template, and "Duplicate this Space".

Every form posts the session's CSRF token and goes through ``spaces.service`` (and ``repos``), as the API does.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from hubstead.api.deps import SessionDep
from hubstead.auth.service import user_orgs
from hubstead.errors import BadRequestError, HubError
from hubstead.repos.duplicate import duplicate_repo
from hubstead.repos.models import Repo
from hubstead.repos.service import author_for, create_repo, get_readable_repo, require_admin, require_write
from hubstead.spaces import service as spaces
from hubstead.spaces.templates import TEMPLATES, seed
from hubstead.web.pages import Viewer, render, signed_in, viewer
from hubstead.web.routes_repo import repo_context
from hubstead.web.space_views import app_context, settings_context

router = APIRouter(include_in_schema=False)




def _space(session: Session, me: Viewer, ns: str, name: str) -> Repo:
    return get_readable_repo(session, me.principal, repo_type="space", repo_id=f"{ns}/{name}")


def _wake(request: Request) -> None:
    supervisor = getattr(request.app.state, "spaces", None)
    if supervisor is not None:
        supervisor.wake()


@router.get("/spaces/{ns}/{name}/-/status", response_class=HTMLResponse)
def status_fragment(ns: str, name: str, request: Request, session: Session = SessionDep) -> Response:
    """The App tab's live part: the badge and the app (or why it is not there yet)."""
    me = viewer(request, session)
    repo = _space(session, me, ns, name)
    context = app_context(session, request.app.state.hub.settings, repo, me.user.id if me.user else None)
    return render(request, "_space_status.html", me, base=f"/spaces/{repo.repo_id}", repo=repo, **context)


@router.post("/spaces/{ns}/{name}/-/settings")
def space_settings(
    ns: str,
    name: str,
    request: Request,
    action: str = Form(""),
    key: str = Form(""),
    value: str = Form(""),
    description: str = Form(""),
    sleep_time: str = Form(""),
    hardware: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = signed_in(request, session, csrf_token)
    repo = _space(session, me, ns, name)
    require_write(session, me.principal, repo.namespace)
    hub = request.app.state.hub
    try:
        if action == "sleep":
            spaces.set_sleep_time(session, repo, int(sleep_time) if sleep_time.lstrip("-").isdigit() else None)
        elif action == "hardware":
            spaces.request_hardware(session, repo, hardware)
        elif action in ("variable", "secret"):
            spaces.set_setting(hub, session, repo, action, key.strip(), value, description.strip() or None)
        elif action in ("delete-variable", "delete-secret"):
            spaces.delete_setting(session, repo, action.removeprefix("delete-"), key)
        elif action == "pause":
            spaces.pause(session, repo)
        elif action in ("restart", "factory"):
            spaces.restart(session, repo, factory=action == "factory")
        else:
            raise BadRequestError("Unknown space settings action")
    except HubError as exc:
        session.rollback()
        require_admin(session, me.principal, repo.namespace)
        context = {**repo_context(session, me, repo), **settings_context(session, hub.settings, repo)}
        return render(request, "repo_settings.html", me, tab="settings", error=exc.message,
                      status_code=exc.status_code, **context)  # fmt: skip
    session.commit()
    _wake(request)
    return RedirectResponse(f"/spaces/{repo.repo_id}/settings", status_code=303)


def _namespaces(session: Session, me: Viewer) -> list[str]:
    assert me.user is not None
    return [me.user.name] + [org.name for org, role in user_orgs(session, me.user) if role in ("write", "admin")]


@router.get("/new-space", response_class=HTMLResponse)
def new_space_form(request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse("/login?next=/new-space", status_code=303)
    return render(request, "new_space.html", me, namespaces=_namespaces(session, me), templates=TEMPLATES.values(),
                  error=None, chosen="gradio-blank")  # fmt: skip


@router.post("/new-space")
def new_space(
    request: Request,
    namespace: str = Form(""),
    name: str = Form(""),
    template: str = Form("gradio-blank"),
    visibility: str = Form("public"),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = signed_in(request, session, csrf_token)
    hub = request.app.state.hub
    try:
        if template not in TEMPLATES:
            raise BadRequestError(f"Unknown template {template!r}")
        repo, _ = create_repo(hub, session, me.principal, repo_id=f"{namespace}/{name.strip()}", repo_type="space",
                              private=visibility == "private", sdk=TEMPLATES[template].sdk)  # fmt: skip
        actor = me.user.id if me.user else None
        seed(hub, session, repo, template, author=author_for(hub, me.principal), actor_user_id=actor)
    except HubError as exc:
        session.rollback()
        return render(request, "new_space.html", me, namespaces=_namespaces(session, me), templates=TEMPLATES.values(),
                      error=exc.message, chosen=template, status_code=exc.status_code)  # fmt: skip
    session.commit()
    _wake(request)
    return RedirectResponse(f"/spaces/{repo.repo_id}", status_code=303)


@router.post("/spaces/{ns}/{name}/-/duplicate")
def duplicate_space(
    ns: str,
    name: str,
    request: Request,
    namespace: str = Form(""),
    new_name: str = Form(""),
    visibility: str = Form("public"),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    """"Duplicate this Space": its files and variables (never its secrets) in a new space of the viewer's."""
    me = signed_in(request, session, csrf_token)
    source = _space(session, me, ns, name)
    hub = request.app.state.hub
    target = f"{namespace or (me.user.name if me.user else '')}/{new_name.strip()}"
    copy = duplicate_repo(hub, session, me.principal, source, target_id=target, private=visibility == "private")
    spaces.copy_variables(session, source, copy)
    session.commit()
    _wake(request)
    return RedirectResponse(f"/spaces/{copy.repo_id}", status_code=303)
