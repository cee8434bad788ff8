"""Creating and changing things from the browser: new repo, upload, README editor, settings, likes.

Every form posts the session's CSRF token; every change goes through the same services as the API.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pygit2
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from hubstead.api.deps import SessionDep
from hubstead.auth.service import user_orgs
from hubstead.discussions import pulls
from hubstead.errors import BadRequestError, HubError, UnauthorizedError
from hubstead.repos.commits import commit_files, prepare_blobs
from hubstead.repos.ingest import ingest_files, rules_for
from hubstead.repos.likes import set_like
from hubstead.repos.models import Repo
from hubstead.repos.paths import validate_branch_name
from hubstead.repos.quotas import require_room_for_files
from hubstead.repos.routes.access import URL_PREFIX
from hubstead.repos.service import (
    author_for,
    can_write,
    check_repo_type,
    create_repo,
    delete_repo,
    get_readable_repo,
    move_repo,
    open_git,
    request_access,
    require_admin,
    require_write,
    update_settings,
)
from hubstead.spaces.service import after_move as space_moved
from hubstead.web.pages import Viewer, render, signed_in, viewer
from hubstead.web.render import render_markdown
from hubstead.web.routes_repo import repo_context
from hubstead.web.space_views import settings_context

router = APIRouter(include_in_schema=False)
MAX_UPLOAD_FILES = 200




def _repo_from_path(request: Request, session: Session, me: Viewer, repo_type: str, ns: str, name: str) -> Repo:
    return get_readable_repo(session, me.principal, repo_type=repo_type, repo_id=f"{ns}/{name}")


def _base(repo: Repo) -> str:
    return f"/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"


def _may_propose(session: Session, me: Viewer, repo: Repo, revision: str) -> bool:
    """Whether this viewer may change ``revision`` from the browser: True for writers (who may also commit
    directly), False for readers who may only open a pull request (``pulls.require_push``); raises otherwise."""
    if me.user is not None and can_write(session, me.principal, repo.namespace):
        return True
    pulls.require_push(session, me.principal, repo, revision=revision, create_pr=True)
    return False


def _land(
    request: Request,
    session: Session,
    me: Viewer,
    repo: Repo,
    *,
    revision: str,
    mode: str,
    files: list[tuple[str, pygit2.Oid]],
    lfs: dict[str, int],
    summary: str,
    description: str,
) -> str:
    """Commit the files from a page: directly to ``revision`` (writers), or as a new pull request against it
    (``mode == "pr"``), through ``pulls.land`` like the API's ``create_pr``. Returns where to go next."""
    hub = request.app.state.hub
    require_room_for_files(hub, session, repo, files, lfs)  # the namespace's storage quota (repos/quotas)
    if mode == "pr":
        git = open_git(hub, repo)
        outcome = pulls.land(
            hub, session, me.principal, repo=repo, revision=revision, create_pr=True,
            prepare=lambda: prepare_blobs(hub, me.principal, git, files=files, lfs_objects=lfs, summary=summary,
                                          description=description),
        )  # fmt: skip
        assert outcome.pull is not None
        return f"{_base(repo)}/discussions/{outcome.pull.num}"
    require_write(session, me.principal, repo.namespace)
    message = summary + (f"\n\n{description.strip()}" if description.strip() else "")
    commit_files(hub, session, repo=repo, branch=revision, files=files, lfs_objects=lfs, message=message,
                 author=author_for(hub, me.principal), actor_user_id=me.user.id if me.user else None)  # fmt: skip
    return ""


@router.get("/new", response_class=HTMLResponse)
def new_repo_form(request: Request, session: Session = SessionDep) -> Response:
    me = viewer(request, session)
    if me.user is None:
        return RedirectResponse("/login?next=/new", status_code=303)
    namespaces = [me.user.name] + [org.name for org, role in user_orgs(session, me.user) if role in ("write", "admin")]
    return render(request, "new_repo.html", me, namespaces=namespaces, error=None)


@router.post("/new")
def new_repo(
    request: Request,
    namespace: str = Form(""),
    name: str = Form(""),
    repo_type: str = Form("model"),
    visibility: str = Form("public"),
    csrf_token: str = Form(""),
    session: Session = SessionDep,
) -> Response:
    me = signed_in(request, session, csrf_token)
    try:
        repo, _ = create_repo(
            request.app.state.hub, session, me.principal, repo_id=f"{namespace}/{name.strip()}",
            repo_type=check_repo_type(repo_type), private=visibility == "private",
        )  # fmt: skip
    except HubError as exc:
        assert me.user is not None
        namespaces = [me.user.name] + [o.name for o, r in user_orgs(session, me.user) if r in ("write", "admin")]
        return render(
            request, "new_repo.html", me, namespaces=namespaces, error=exc.message, status_code=exc.status_code
        )
    return RedirectResponse(_base(repo), status_code=303)


def _manage_routes(prefix: str, repo_type: str) -> None:
    @router.get(prefix + "/{ns}/{name}/upload/{revision}", response_class=HTMLResponse)
    def upload_form(ns: str, name: str, revision: str, request: Request, session: Session = SessionDep) -> Response:
        me = viewer(request, session)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        direct = _may_propose(session, me, repo, revision)
        return render(request, "upload.html", me, revision=revision, tab="files", direct=direct,
                      **repo_context(session, me, repo))  # fmt: skip

    @router.post(prefix + "/{ns}/{name}/upload/{revision}")
    async def upload(ns: str, name: str, revision: str, request: Request) -> Response:
        hub = request.app.state.hub

        def anyone_signed_in() -> bool:
            with hub.db.session() as session:
                return viewer(request, session).user is not None

        # Refuse strangers before reading what may be a large body.
        if not await run_in_threadpool(anyone_signed_in):
            raise UnauthorizedError("Sign in first")
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_part_size=10 * 1024 * 1024)
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        folder = str(form.get("folder") or "").strip().strip("/")
        message = str(form.get("message") or "").strip()
        description = str(form.get("description") or "")
        mode = "pr" if form.get("mode") == "pr" else "direct"
        workdir = Path(tempfile.mkdtemp(dir=hub.settings.uploads_dir))
        try:
            saved = []
            for index, upload_file in enumerate(files):
                target = workdir / str(index)
                with open(target, "wb") as handle:
                    shutil.copyfileobj(upload_file.file, handle, 4 * 1024 * 1024)
                filename = str(upload_file.filename).replace("\\", "/").split("/")[-1]
                saved.append((f"{folder}/{filename}" if folder else filename, target))

            def work() -> Response:
                with hub.db.session() as session:
                    me = signed_in(request, session, str(form.get("csrf_token") or ""))
                    repo = _repo_from_path(request, session, me, repo_type, ns, name)
                    if mode == "pr":
                        pulls.require_push(session, me.principal, repo, revision=revision, create_pr=True)
                    else:
                        require_write(session, me.principal, repo.namespace)
                    if not saved:
                        raise BadRequestError("Choose at least one file to upload")
                    git = open_git(hub, repo)
                    if mode == "direct" and git.branch_head(f"refs/heads/{revision}") is None:
                        validate_branch_name(revision)  # before storing any file: the commit creates the branch
                    ingested = ingest_files(hub, git, rules_for(git, repo.repo_type, revision), saved)
                    summary = message or f"Upload {len(saved)} file{'s' if len(saved) != 1 else ''}"
                    target = _land(request, session, me, repo, revision=revision, mode=mode, files=ingested.files,
                                   lfs=ingested.lfs_objects, summary=summary, description=description)  # fmt: skip
                    return RedirectResponse(target or f"{_base(repo)}/tree/{revision}", status_code=303)

            return await run_in_threadpool(work)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    @router.get(prefix + "/{ns}/{name}/edit/{revision}/README.md", response_class=HTMLResponse)
    def edit_form(ns: str, name: str, revision: str, request: Request, session: Session = SessionDep) -> Response:
        me = viewer(request, session)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        direct = _may_propose(session, me, repo, revision)
        git = open_git(request.app.state.hub, repo)
        readme = git.entry(git.resolve(revision), "README.md")
        text = readme.data.decode("utf-8", errors="replace") if isinstance(readme, pygit2.Blob) else ""
        return render(request, "edit_readme.html", me, revision=revision, text=text, tab="card", direct=direct,
                      mode="direct" if direct else "pr", error=None, **repo_context(session, me, repo))  # fmt: skip

    @router.post(prefix + "/{ns}/{name}/edit/{revision}/README.md")
    def edit(
        ns: str,
        name: str,
        revision: str,
        request: Request,
        content: str = Form(""),
        message: str = Form(""),
        description: str = Form(""),
        mode: str = Form("direct"),
        csrf_token: str = Form(""),
        session: Session = SessionDep,
    ) -> Response:
        me = signed_in(request, session, csrf_token)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        direct = _may_propose(session, me, repo, revision)
        mode = "pr" if mode == "pr" else "direct"
        hub = request.app.state.hub
        git = open_git(hub, repo)
        text = content.replace("\r\n", "\n")
        try:
            blob = git.write_blob(text.encode())
            target = _land(request, session, me, repo, revision=revision, mode=mode, files=[("README.md", blob)],
                           lfs={}, summary=message.strip() or "Update README.md", description=description)  # fmt: skip
        except HubError as exc:  # shown on the form, the text kept
            session.rollback()
            return render(request, "edit_readme.html", me, revision=revision, text=text, tab="card", direct=direct,
                          mode=mode, error=exc.message, message=message, description=description,
                          status_code=exc.status_code, **repo_context(session, me, repo))  # fmt: skip
        return RedirectResponse(target or _base(repo), status_code=303)

    @router.get(prefix + "/{ns}/{name}/settings", response_class=HTMLResponse)
    def settings_form(ns: str, name: str, request: Request, session: Session = SessionDep) -> Response:
        me = viewer(request, session)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        require_admin(session, me.principal, repo.namespace)
        extra = settings_context(session, request.app.state.hub.settings, repo) if repo.repo_type == "space" else {}
        return render(request, "repo_settings.html", me, tab="settings", error=None, **repo_context(session, me, repo),
                      **extra)  # fmt: skip

    @router.post(prefix + "/{ns}/{name}/settings")
    def settings(
        ns: str,
        name: str,
        request: Request,
        action: str = Form(""),
        visibility: str = Form(""),
        gated: str = Form(""),
        new_id: str = Form(""),
        confirm: str = Form(""),
        csrf_token: str = Form(""),
        session: Session = SessionDep,
    ) -> Response:
        me = signed_in(request, session, csrf_token)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        hub = request.app.state.hub
        if action == "visibility":
            update_settings(session, me.principal, repo, private=visibility == "private",
                            gated=gated if gated in ("auto", "manual") else False)  # fmt: skip
            return RedirectResponse(f"{_base(repo)}/settings", status_code=303)
        if action == "move":
            moved = move_repo(
                session, me.principal, from_id=repo.repo_id, to_id=new_id.strip(), repo_type=repo.repo_type
            )
            space_moved(session, moved)
            return RedirectResponse(_base(moved), status_code=303)
        if action == "delete":
            if confirm != repo.repo_id:
                error = f"Type {repo.repo_id} to confirm"
                return render(request, "repo_settings.html", me, tab="settings", error=error,
                              status_code=400, **repo_context(session, me, repo))  # fmt: skip
            delete_repo(hub, session, me.principal, repo_id=repo.repo_id, repo_type=repo.repo_type)
            return RedirectResponse(f"/{me.user.name}", status_code=303)  # type: ignore[union-attr]
        raise BadRequestError("Unknown settings action")

    @router.post(prefix + "/{ns}/{name}/ask-access")
    def ask_access(
        ns: str, name: str, request: Request, csrf_token: str = Form(""), session: Session = SessionDep
    ) -> Response:
        """The gate's "Request access" button: the same request as the API's ``ask-access``."""
        me = signed_in(request, session, csrf_token)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        request_access(session, me.principal, repo)
        return RedirectResponse(_base(repo), status_code=303)

    @router.post(prefix + "/{ns}/{name}/like", response_class=HTMLResponse)
    def like(ns: str, name: str, request: Request, session: Session = SessionDep) -> Response:
        me = signed_in(request, session)
        repo = _repo_from_path(request, session, me, repo_type, ns, name)
        liked = request.query_params.get("liked") == "1"
        count = set_like(session, user=me.user, repo=repo, liked=liked)  # type: ignore[arg-type]
        return render(request, "_like.html", me, repo=repo, base=_base(repo), liked=liked, count=count)


for _prefix, _type in (("", "model"), ("/datasets", "dataset"), ("/spaces", "space")):
    _manage_routes(_prefix, _type)


@router.post("/-/preview", response_class=HTMLResponse)
def preview(request: Request, content: str = Form(""), session: Session = SessionDep) -> HTMLResponse:
    me = signed_in(request, session)
    del me
    return HTMLResponse(render_markdown(content) or "<p class='muted'>Nothing to preview.</p>")
