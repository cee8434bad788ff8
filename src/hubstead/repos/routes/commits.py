"""Routes that write: preupload and commit."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_hub, parse_bool, read_json_object
from hubstead.context import Hub
from hubstead.discussions import pulls
from hubstead.discussions.pulls import require_push
from hubstead.errors import HubError, RevisionNotFoundError
from hubstead.repos.models import Repo
from hubstead.repos.paths import validate_branch_name
from hubstead.repos.preupload import preupload
from hubstead.repos.routes.access import URL_PREFIX, RepoRequest, api_repo_request
from hubstead.repos.service import open_git

router = APIRouter()


def _pushable_repo(session: Session, request: Request) -> tuple[RepoRequest, Repo, str, bool]:
    """The repo, the revision and ``create_pr``, once ``pulls.require_push`` allows the caller to commit there
    (writers anywhere; readers into a new pull request or their own open one)."""
    rr = api_repo_request(request, session)
    repo = rr.readable()
    revision = "/".join(rr.tail) or "main"
    create_pr = parse_bool(request.query_params.get("create_pr"))
    require_push(session, rr.principal, repo, revision=revision, create_pr=create_pr)
    return rr, repo, revision, create_pr


def _may_write(hub: Hub, request: Request) -> None:
    """Authenticate the caller and check they may push there: routes call it before reading a body."""
    with hub.db.session() as session:
        _pushable_repo(session, request)


@router.post("/api/{plural:repotype}/{ns}/{name}/preupload/{rest:path}")
async def preupload_route(request: Request) -> dict[str, Any]:
    hub = get_hub(request)
    await run_in_threadpool(_may_write, hub, request)  # before the body is read
    payload = await read_json_object(request)

    def work() -> dict[str, Any]:
        with hub.db.session() as session:
            _, repo, revision, create_pr = _pushable_repo(session, request)
            git = open_git(hub, repo)
            try:
                commit = git.resolve(revision)
            except RevisionNotFoundError:
                # A branch the commit will create is not an error here, if it is a name a branch may have.
                validate_branch_name(revision.removeprefix("refs/heads/"))
                commit = None
            git_ignore = payload.get("gitIgnore")
            return {
                "files": preupload(
                    git, commit, payload.get("files"), git_ignore if isinstance(git_ignore, str) else None
                )
            }

    return await run_in_threadpool(work)


@router.post("/api/{plural:repotype}/{ns}/{name}/commit/{rest:path}")
async def commit_route(request: Request) -> Response:
    """Apply an NDJSON commit. The caller is authenticated and must be able to write before a byte of the body
    is read; the body is then spooled to disk as it streams in (``api.bodies`` bounds it), and applied off the
    event loop."""
    hub = get_hub(request)
    await run_in_threadpool(_may_write, hub, request)
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, dir=str(hub.settings.uploads_dir))
    try:
        async for chunk in request.stream():  # bounded by api.bodies (413 past max_commit_body_bytes)
            spool.write(chunk)
        spool.seek(0)

        def work() -> Response:
            with hub.db.session() as session:
                rr, repo, revision, create_pr = _pushable_repo(session, request)
                outcome = pulls.commit(
                    hub, session, rr.principal, repo=repo, revision=revision, body=spool, create_pr=create_pr
                )
                repo_url = f"{base_url(request)}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"
                pr_url = f"{repo_url}/discussions/{outcome.pull.num}" if outcome.pull is not None else None
                return JSONResponse(
                    {
                        "success": True,
                        "commitOid": outcome.result.commit_oid,
                        "commitUrl": f"{repo_url}/commit/{outcome.result.commit_oid}",
                        "pullRequestUrl": pr_url,
                    }
                )

        return await run_in_threadpool(work)
    except HubError:
        raise
    finally:
        spool.close()
