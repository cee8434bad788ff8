"""Routes for refs and history: refs, branches, tags, commits, super-squash."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import SessionDep, parse_bool, read_json_object
from hubstead.api.pagination import decode_cursor, next_page_link, positive_limit
from hubstead.errors import BadRequestError
from hubstead.repos import refs
from hubstead.repos.routes.access import api_repo_request
from hubstead.repos.service import open_git

router = APIRouter()
COMMITS_PAGE = 50


@router.get("/api/{plural:repotype}/{ns}/{name}/refs")
def list_refs(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    rr = api_repo_request(request, session)
    repo = rr.readable()
    return refs.list_refs(open_git(rr.hub, repo), include_prs=parse_bool(request.query_params.get("include_prs")))


@router.post("/api/{plural:repotype}/{ns}/{name}/branch/{rest:path}")
async def create_branch(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    payload = await read_json_object(request, allow_empty=True)

    def work() -> dict[str, Any]:
        rr = api_repo_request(request, session)
        repo = rr.writable()
        start = payload.get("startingPoint")
        if start is not None and not isinstance(start, str):
            raise BadRequestError("startingPoint must be a string")
        branch = "/".join(rr.tail)
        new = refs.create_branch(rr.hub, repo, branch=branch, starting_point=start)
        refs.announce_ref(session, repo, rr.principal, f"refs/heads/{branch}", old=None, new=new)
        return {}

    return await run_in_threadpool(work)


@router.delete("/api/{plural:repotype}/{ns}/{name}/branch/{rest:path}")
def delete_branch(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    rr = api_repo_request(request, session)
    repo = rr.writable()
    branch = "/".join(rr.tail)
    old = refs.delete_branch(rr.hub, repo, branch=branch)
    refs.announce_ref(session, repo, rr.principal, f"refs/heads/{branch}", old=old, new=None)
    return {}


@router.post("/api/{plural:repotype}/{ns}/{name}/tag/{rest:path}")
async def create_tag(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    payload = await read_json_object(request, allow_empty=True)

    def work() -> dict[str, Any]:
        rr = api_repo_request(request, session)
        repo = rr.writable()
        tag = payload.get("tag")
        if not isinstance(tag, str) or not tag:
            raise BadRequestError("'tag' is required")
        message = payload.get("message")
        new = refs.create_tag(
            rr.hub,
            repo,
            tag=tag,
            revision="/".join(rr.tail) or "main",
            message=message if isinstance(message, str) else None,
        )
        refs.announce_ref(session, repo, rr.principal, f"refs/tags/{tag}", old=None, new=new)
        return {}

    return await run_in_threadpool(work)


@router.delete("/api/{plural:repotype}/{ns}/{name}/tag/{rest:path}")
def delete_tag(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    rr = api_repo_request(request, session)
    repo = rr.writable()
    tag = "/".join(rr.tail)
    old = refs.delete_tag(rr.hub, repo, tag=tag)
    refs.announce_ref(session, repo, rr.principal, f"refs/tags/{tag}", old=old, new=None)
    return {}


@router.get("/api/{plural:repotype}/{ns}/{name}/commits/{rest:path}")
def list_commits(request: Request, session: Session = SessionDep) -> Response:
    rr = api_repo_request(request, session)
    repo = rr.readable()
    git = open_git(rr.hub, repo)
    start = git.resolve("/".join(rr.tail) or "main")
    offset = decode_cursor(request.query_params.get("cursor"))
    page_size = positive_limit(request.query_params.get("limit"), maximum=1000) or COMMITS_PAGE
    page: list[dict[str, Any]] = []
    more = False
    for index, commit in enumerate(git.history(start)):
        if index < offset:
            continue
        if len(page) == page_size:
            more = True
            break
        page.append(refs.commit_json(commit))
    headers = {"Link": next_page_link(request, offset + len(page))} if more else {}
    return JSONResponse(page, headers=headers)


@router.post("/api/{plural:repotype}/{ns}/{name}/super-squash/{rest:path}")
async def super_squash(request: Request, session: Session = SessionDep) -> dict[str, Any]:
    payload = await read_json_object(request, allow_empty=True)

    def work() -> dict[str, Any]:
        rr = api_repo_request(request, session)
        repo = rr.writable()
        message = payload.get("message")
        commit = refs.super_squash(
            rr.hub,
            session,
            rr.principal,
            repo,
            branch="/".join(rr.tail) or "main",
            message=message if isinstance(message, str) else None,
        )
        return {"commitId": commit}

    return await run_in_threadpool(work)
