"""Routes for repos as a whole: create, delete, move, settings, info, likes, access checks."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pygit2
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import (
    SessionDep,
    base_url,
    bearer_token,
    check_token_budget,
    get_hub,
    get_principal,
    parse_bool,
    read_json_object,
)
from hubstead.api.direct import DirectRoute, direct_handler
from hubstead.auth.models import User
from hubstead.auth.service import get_user, hash_token
from hubstead.dates import iso
from hubstead.db import LoopReadFailed
from hubstead.errors import BadRequestError, ConflictError, UnauthorizedError, error_header_value
from hubstead.evals.index import read_entries as read_eval_entries
from hubstead.ops.logs import note_user
from hubstead.repos import info_answer
from hubstead.repos.git import GitRepo
from hubstead.repos.info import FastJSONResponse, repo_info
from hubstead.repos.likes import set_like
from hubstead.repos.models import Like, Repo
from hubstead.repos.routes.access import PLURALS, URL_PREFIX, api_repo_request, redirect_if_moved, refuse_unqualified_id
from hubstead.repos.service import (
    author_for,
    can_read,
    check_repo_type,
    create_repo,
    delete_repo,
    find_repo,
    move_repo,
    open_git,
    request_access,
    require_file_content_access,
    require_write,
    update_settings,
)
from hubstead.search.related import spaces_using
from hubstead.spaces import runtime as space_runtime
from hubstead.spaces import service as spaces
from hubstead.spaces.templates import seed as seed_space

router = APIRouter()
# Ids without a namespace (``gpt2``): mounted after every other repo route and before the catch-alls (the API's
# unbuilt features, the web pages), so it only sees paths no real repo's route answered.
unqualified_router = APIRouter()


def _repo_url(request: Request, repo_type: str, repo_id: str) -> str:
    return f"{base_url(request)}/{URL_PREFIX[repo_type]}{repo_id}"


def _repo_id_from(payload: dict[str, Any]) -> str:
    name = payload.get("name")
    organization = payload.get("organization")
    if not isinstance(name, str) or not name:
        raise BadRequestError("'name' is required")
    if organization is not None and not isinstance(organization, str):
        raise BadRequestError("'organization' must be a string")
    if "/" in name:
        return name
    return f"{organization}/{name}" if organization else name


def _visibility(payload: dict[str, Any]) -> bool | None:
    visibility = payload.get("visibility")
    if visibility is not None:
        if visibility not in ("public", "private", "protected"):
            raise BadRequestError("visibility must be 'public', 'private' or 'protected'")
        return visibility != "public"
    private = payload.get("private")
    if private is None:
        return None
    if not isinstance(private, bool):
        raise BadRequestError("private must be a boolean")
    return private


@router.post("/api/repos/create")
async def create(request: Request) -> Response:
    payload = await read_json_object(request)
    repo_type = check_repo_type(payload.get("type"))
    repo_id = _repo_id_from(payload)
    private = bool(_visibility(payload))
    sdk = payload.get("sdk") if repo_type == "space" else None
    space_fields = spaces.check_new_space(payload) if repo_type == "space" else None
    hub = get_hub(request)

    def work() -> Response:
        with hub.db.session() as session:
            principal = get_principal(request, session)
            if principal.user is not None and "/" not in repo_id:
                full_id = f"{principal.user.name}/{repo_id}"
            else:
                full_id = repo_id
            try:
                repo, _ = create_repo(
                    hub, session, principal, repo_id=full_id, repo_type=repo_type, private=private, sdk=sdk
                )
            except ConflictError as exc:
                existing, _ = find_repo(session, repo_type=repo_type, repo_id=full_id)
                url = _repo_url(request, repo_type, existing.repo_id if existing else full_id)
                headers = {"X-Error-Message": error_header_value(exc.message)}
                return JSONResponse({"error": exc.message, "url": url}, status_code=409, headers=headers)
            if space_fields is not None:
                spaces.configure_new(hub, session, repo, space_fields)
                template = payload.get("template")
                if template is not None:
                    actor = principal.user.id if principal.user else None
                    seed_space(hub, session, repo, str(template), author=author_for(hub, principal),
                               actor_user_id=actor)  # fmt: skip
            return JSONResponse(
                {"url": _repo_url(request, repo_type, repo.repo_id), "name": repo.repo_id, "id": f"{repo.pk:024x}"}
            )

    return await run_in_threadpool(work)


@router.delete("/api/repos/delete")
async def delete_(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    repo_type = check_repo_type(payload.get("type"))
    repo_id = _repo_id_from(payload)
    hub = get_hub(request)

    def work() -> None:
        with hub.db.session() as session:
            principal = get_principal(request, session)
            repo, _ = find_repo(session, repo_type=repo_type, repo_id=repo_id)
            space_token = space_runtime.sealed_space_token(session, repo.pk) if repo and repo_type == "space" else None
            delete_repo(hub, session, principal, repo_id=repo_id, repo_type=repo_type)
            if space_token is not None:
                space_runtime.revoke_sealed_token(hub, session, space_token)

    await run_in_threadpool(work)
    return {}


@router.post("/api/repos/move")
async def move(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    repo_type = check_repo_type(payload.get("type"))
    from_repo, to_repo = payload.get("fromRepo"), payload.get("toRepo")
    if not isinstance(from_repo, str) or not isinstance(to_repo, str):
        raise BadRequestError("'fromRepo' and 'toRepo' are required")
    hub = get_hub(request)

    def work() -> None:
        with hub.db.session() as session:
            principal = get_principal(request, session)
            moved = move_repo(session, principal, from_id=from_repo, to_id=to_repo, repo_type=repo_type)
            spaces.after_move(session, moved)

    await run_in_threadpool(work)
    return {}


@router.put("/api/{plural:repotype}/{ns}/{name}/settings")
async def settings(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    private = _visibility(payload)
    gated = payload.get("gated")
    if gated is not None and not isinstance(gated, str | bool):
        raise BadRequestError("gated must be 'auto', 'manual' or false")
    discussions_disabled = payload.get("discussionsDisabled")
    if discussions_disabled is not None and not isinstance(discussions_disabled, bool):
        raise BadRequestError("discussionsDisabled must be true or false")
    hub = get_hub(request)

    def work() -> dict[str, Any]:
        with hub.db.session() as session:
            rr = api_repo_request(request, session)
            repo = rr.readable()
            update_settings(
                session, rr.principal, repo, private=private, gated=gated, discussions_disabled=discussions_disabled
            )
            return {
                "private": repo.private,
                "gated": repo.gated or False,
                "discussionsDisabled": repo.discussions_disabled,
            }

    return await run_in_threadpool(work)


def _expand_params(request: Request) -> list[str] | None:
    values = request.query_params.getlist("expand") + request.query_params.getlist("expand[]")
    return values or None


@router.get("/api/{plural:repotype}/{ns}/{name}")
@router.get("/api/{plural:repotype}/{ns}/{name}/revision/{rest:path}")
def info(request: Request, session: Session = SessionDep) -> Response:
    """``model_info`` / ``dataset_info`` / ``space_info``, at main or at a revision."""
    segments_after = 1 if "/revision/" in (request.scope.get("raw_path") or b"").decode("latin-1") else 0
    rr = api_repo_request(request, session, action_segments=segments_after)
    # One lookup on the common path (the id is current and readable); a moved id or a refusal goes the long way.
    found, redirected = find_repo(session, repo_type=rr.repo_type, repo_id=rr.repo_id)
    if found is not None and not redirected and can_read(session, rr.principal, found):
        repo = found
    else:
        moved = redirect_if_moved(request, rr)
        if moved is not None:
            return moved
        repo = rr.readable()
    revision = ("/".join(rr.tail) if segments_after else "main") or "main"
    opened: list[GitRepo] = []

    def git_of() -> GitRepo:  # opened only when the answer needs git (not for a cached answer at main's head)
        if not opened:
            opened.append(open_git(rr.hub, repo))
        return opened[0]

    # At main, the index row names the head (kept in the transaction that moves main): no git open to find it.
    commit_id = repo.sha if revision == "main" and repo.sha else str(git_of().resolve(revision).id)
    blobs = parse_bool(request.query_params.get("blobs"))
    body = repo_info(
        rr.hub, git_of, repo, commit_id, blobs=blobs, expand=_expand_params(request), downloads=repo.downloads_30d
    )
    if repo.repo_type == "model" and "evalResults" in (_expand_params(request) or []):
        git = git_of()
        commit = git.commit(pygit2.Oid(hex=commit_id))
        body["evalResults"] = [entry.answer() for entry in read_eval_entries(rr.hub, git, repo, commit)]
    if repo.repo_type == "model" and "spaces" in body:
        body["spaces"] = [space.repo_id for space in spaces_using(session, rr.principal, repo)][:100]
    if repo.repo_type == "space" and ("runtime" in body or "subdomain" in body):
        row = spaces.ensure_runtime(session, repo)
        if "runtime" in body:
            body["runtime"] = space_runtime.runtime_json(rr.hub.settings, row, repo)
        if "subdomain" in body:
            body["subdomain"] = row.subdomain
        body["host"] = space_runtime.app_url(rr.hub.settings, repo.namespace, repo.name, row.subdomain)
    return FastJSONResponse(body)


@direct_handler("/api/{plural:repotype}/{ns}/{name}")
async def info_direct(request: Request, plural: str, ns: str, name: str) -> Response:
    """``info`` at main, called by ``app.DirectRoutes`` (``direct_repo_route``) without FastAPI's routing.

    The warm answer first (``repos.info_answer``): its one read is made from the event loop
    (``Database.read_now``) and a kept body is answered without a thread hand-off, which cost more than the
    read; a body to build is built from that row in a worker thread. What it does not cover goes the long way,
    ``info``, in a worker thread."""
    hub = get_hub(request)
    read = _warm_read(request, plural, ns, name)
    if read is not None:
        try:
            row = await hub.db.read_now(read.statement, read.params)
        except LoopReadFailed:
            row = None  # the long way below meets the same fault and answers it in its own words
        key = info_answer.answer_key(read, row)
        if key is not None and row is not None:
            body = info_answer.cached_body(key)
            if body is None:  # built from the row just read (no second query), off the loop: it reads git
                body = await run_in_threadpool(info_answer.build_body, hub, read, row, key)
            note_user(request.scope, info_answer.caller_name(read, row))
            return Response(body, media_type="application/json")

    def work() -> Response:
        with hub.db.session() as session:
            return info(request, session)

    return await run_in_threadpool(work)


def _warm_read(request: Request, plural: str, ns: str, name: str) -> info_answer.WarmRead | None:
    """The warm read for this request, or None when its shape has no warm answer (a query parameter other
    than ``blobs``). A sent token passes the invalid-token budget of its address first, as ``get_principal``."""
    query = request.scope.get("query_string", b"")
    blobs = False
    if query:
        field, _, value = query.decode("latin-1").partition("=")
        if field != "blobs" or "&" in value:
            return None
        blobs = parse_bool(unquote(value))
    token = bearer_token(request)
    if token is not None:
        check_token_budget(request)
    return info_answer.warm_read(
        PLURALS[plural], f"{ns}/{name}", hash_token(token) if token is not None else None, blobs=blobs
    )


def direct_repo_route(method: str, path: str) -> DirectRoute | None:
    """``GET /api/{models|datasets|spaces}/{ns}/{name}`` (``model_info`` and its kin: the repo read clients make
    most): the same match as ``info``'s ``@router`` line, which stays registered for the schema and HEAD."""
    if method != "GET" or not path.startswith("/api/"):
        return None
    parts = path[len("/api/") :].split("/")
    if len(parts) != 3 or parts[0] not in PLURALS or not parts[1] or not parts[2]:
        return None
    return info_direct, {"plural": parts[0], "ns": parts[1], "name": parts[2]}


@router.get("/api/{plural:repotype}/{ns}/{name}/auth-check")
@router.get("/api/{plural:repotype}/{ns}/{name}/auth-check/{mode}")
def auth_check(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    """``auth_check``: 404 RepoNotFound if the caller cannot see the repo, 403 GatedRepo if it is gated and their
    access is not accepted (``GatedRepoError``), 401/403 for ``/write`` without write access."""
    rr = api_repo_request(request, session)
    repo = rr.readable()
    if rr.tail and rr.tail[0] == "write":
        require_write(session, rr.principal, repo.namespace)
    require_file_content_access(session, repo, rr.principal)
    return {}


@router.post("/api/{plural:repotype}/{ns}/{name}/ask-access")
def ask_access(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    rr = api_repo_request(request, session)
    return {"status": request_access(session, rr.principal, rr.readable())}


@router.post("/api/{plural:repotype}/{ns}/{name}/like")
@router.delete("/api/{plural:repotype}/{ns}/{name}/like")
def like(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    rr = api_repo_request(request, session)
    repo = rr.readable()
    user = rr.principal.user
    if user is None:
        raise UnauthorizedError("You must be authenticated to like a repository")
    set_like(session, user=user, repo=repo, liked=request.method == "POST")
    return {"likes": repo.likes}


@router.get("/api/{plural:repotype}/{ns}/{name}/likers")
def likers(request: Request, session: Session = SessionDep) -> list[dict[str, Any]]:
    rr = api_repo_request(request, session)
    repo = rr.readable()
    users = session.scalars(select(User).join(Like, Like.user_id == User.id).where(Like.repo_pk == repo.pk))
    return [{"user": u.name, "fullname": u.fullname or u.name, "avatarUrl": ""} for u in users]


@router.get("/api/users/{username}/likes")
def user_likes(username: str, request: Request, session: Session = SessionDep) -> list[dict[str, Any]]:
    principal = get_principal(request, session)
    user = get_user(session, username)
    rows = session.execute(
        select(Like, Repo)
        .join(Repo, Repo.pk == Like.repo_pk)
        .where(Like.user_id == user.id)
        .order_by(Like.created_at.desc())
    )
    return [
        {"createdAt": iso(like.created_at), "repo": {"name": repo.repo_id, "type": repo.repo_type}}
        for like, repo in rows
        if can_read(session, principal, repo)
    ]


@unqualified_router.api_route("/api/{plural:repotype}/{name}", methods=["GET", "HEAD"])
@unqualified_router.api_route("/api/{plural:repotype}/{name}/revision/{rest:path}", methods=["GET", "HEAD"])
@unqualified_router.api_route("/api/{plural:repotype}/{name}/tree/{rest:path}", methods=["GET"])
@unqualified_router.api_route("/api/{plural:repotype}/{name}/paths-info/{rest:path}", methods=["POST"])
@unqualified_router.api_route("/api/{plural:repotype}/{name}/commits/{rest:path}", methods=["GET"])
def unqualified_api(plural: str, name: str, request: Request, session: Session = SessionDep) -> None:
    """``repo_info`` / ``revision_exists`` / ``list_repo_tree`` / ``get_paths_info`` / ``list_repo_commits``,
    on an id without a namespace: the typed RepoNotFound. (``/api/models/gpt2/refs`` and the like are already one:
    the info route reads them as the missing repo ``gpt2/refs``.)"""
    refuse_unqualified_id(request, session, repo_type=PLURALS[plural], name=name)


@unqualified_router.head("/{name}/resolve/{rest:path}")
def unqualified_resolve(name: str, request: Request, session: Session = SessionDep) -> None:
    """``file_exists`` / ``hf_hub_download`` (its metadata HEAD) on a model id without a namespace: the typed
    RepoNotFound, not the web pages' 405. (``/datasets/gpt2/resolve/...`` already is one: the file route reads it
    as the missing dataset ``gpt2/resolve``.) GET stays with the web pages, which own ``/{ns}/{name}/...``."""
    refuse_unqualified_id(request, session, repo_type="model", name=name)
