"""Routes of the Git LFS batch API and of the signed byte transfers it hands out."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_hub, get_principal, raw_segments, read_json, read_json_object
from hubstead.context import Hub
from hubstead.discussions.pulls import require_upload
from hubstead.errors import BadRequestError, ForbiddenError
from hubstead.repos.lfs import uploads
from hubstead.repos.lfs.objects import object_response
from hubstead.repos.routes.access import RepoRequest, split_prefixed
from hubstead.repos.service import get_readable_repo, require_file_content_access

router = APIRouter()
LFS_MEDIA = "application/vnd.git-lfs+json"


def _lfs_repo(request: Request, session: Any) -> RepoRequest:
    """Parse ``/[datasets/|spaces/]{ns}/{name}.git/info/lfs/...``."""
    repo_type, repo_id, tail = split_prefixed(raw_segments(request))
    return RepoRequest(
        hub=get_hub(request), session=session, principal=get_principal(request, session),
        repo_type=repo_type, repo_id=repo_id, tail=tail,
    )  # fmt: skip


def _authenticate(hub: Hub, request: Request, *, write: bool = False) -> None:
    """Refuse an unknown token (and, for ``write``, a caller who cannot write the repo) before the body is read."""
    with hub.db.session() as session:
        rr = _lfs_repo(request, session)
        if write:
            require_upload(session, rr.principal, rr.readable())


@router.post("/{ns}/{name}/info/lfs/objects/batch")
@router.post("/datasets/{ns}/{name}/info/lfs/objects/batch")
@router.post("/spaces/{ns}/{name}/info/lfs/objects/batch")
async def batch_route(request: Request) -> Response:
    hub = get_hub(request)
    await run_in_threadpool(_authenticate, hub, request)
    payload = await read_json_object(request)
    raw = (request.scope.get("raw_path") or b"").decode("latin-1")
    verify_url = base_url(request) + raw.rsplit("/batch", 1)[0] + "/verify"

    def work() -> Response:
        with hub.db.session() as session:
            rr = _lfs_repo(request, session)
            operation = payload.get("operation")
            if operation == "upload":
                repo = rr.readable()
                require_upload(session, rr.principal, repo)  # the commit naming the objects is checked itself
            else:
                repo = get_readable_repo(session, rr.principal, repo_type=rr.repo_type, repo_id=rr.repo_id)
                require_file_content_access(session, repo, rr.principal)
            transfers = payload.get("transfers") or ["basic"]
            answer = uploads.batch(
                hub,
                session,
                principal=rr.principal,
                repo=repo,
                operation=str(operation),
                objects=payload.get("objects") or [],
                transfers=transfers if isinstance(transfers, list) else ["basic"],
                base_url=base_url(request),
                verify_url=verify_url,
            )
            _verify_with_caller_credentials(answer, request.headers.get("authorization"))
            return JSONResponse(answer, media_type=LFS_MEDIA)

    return await run_in_threadpool(work)


def _verify_with_caller_credentials(answer: dict[str, Any], authorization: str | None) -> None:
    """Objects are answered ``authenticated``, so git-lfs sends each action as given, adding no credentials of its
    own: the verify call (which needs the caller) carries the caller's own Authorization back as its header (git-lfs
    with a token in the remote URL; huggingface_hub sends its token itself)."""
    if not authorization:
        return
    for item in answer.get("objects") or []:
        verify = (item.get("actions") or {}).get("verify") if isinstance(item, dict) else None
        if isinstance(verify, dict):
            verify.setdefault("header", {})["Authorization"] = authorization


@router.post("/{ns}/{name}/info/lfs/objects/verify")
@router.post("/datasets/{ns}/{name}/info/lfs/objects/verify")
@router.post("/spaces/{ns}/{name}/info/lfs/objects/verify")
async def verify_route(request: Request) -> Response:
    hub = get_hub(request)
    await run_in_threadpool(_authenticate, hub, request, write=True)
    payload = await read_json(request)

    def work() -> Response:
        with hub.db.session() as session:
            rr = _lfs_repo(request, session)
            repo = rr.readable()
            require_upload(session, rr.principal, repo)
            uploads.verify(hub, session, principal=rr.principal, repo=repo, payload=payload)
            return JSONResponse({"success": True}, media_type=LFS_MEDIA)

    return await run_in_threadpool(work)


def _grant(request: Request, purpose: str, repo_pk: int, oid: str) -> uploads.UploadGrant:
    params = request.query_params
    try:
        size, user_id, expires, sig = int(params["size"]), int(params["u"]), int(params["exp"]), params["sig"]
    except (KeyError, ValueError) as exc:
        raise ForbiddenError("Missing or invalid upload signature") from exc
    return uploads.check_signature(
        get_hub(request), purpose=purpose, repo_pk=repo_pk, user_id=user_id, oid=oid, size=size, expires=expires,
        sig=sig,
    )  # fmt: skip


async def _receive(request: Request, incoming: uploads.IncomingFile | uploads.PartWriter, limit: int) -> None:
    """Stream the request body into ``incoming``, refusing more than ``limit`` bytes."""
    try:
        async for chunk in request.stream():
            if incoming.size + len(chunk) > limit:
                raise BadRequestError(f"Upload is larger than the announced {limit} bytes")
            incoming.write(chunk)
    except BaseException:
        incoming.discard()
        raise


@router.put("/api/lfs/upload/{repo_pk}/{oid}")
async def upload_object(repo_pk: int, oid: str, request: Request) -> Response:
    grant = _grant(request, "upload", repo_pk, oid)
    hub = get_hub(request)
    incoming = uploads.IncomingFile(hub, f"put-{oid}-{os.getpid()}-{time.time_ns()}")
    await _receive(request, incoming, grant.size)

    def work() -> None:
        with hub.db.session() as session:
            uploads.store_upload(hub, session, grant, incoming)

    await run_in_threadpool(work)
    return Response(status_code=200)


@router.put("/api/lfs/part/{repo_pk}/{oid}")
async def upload_part(repo_pk: int, oid: str, request: Request) -> Response:
    grant = _grant(request, "part", repo_pk, oid)
    part = request.query_params.get("part", "")
    if not part.isdigit():
        raise BadRequestError("Missing part number")
    hub = get_hub(request)
    writer = uploads.PartWriter(hub, grant, int(part))
    await _receive(request, writer, writer.expected)
    etag = await run_in_threadpool(writer.finish)
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


@router.post("/api/lfs/complete/{repo_pk}/{oid}")
async def complete_upload(repo_pk: int, oid: str, request: Request) -> Response:
    grant = _grant(request, "complete", repo_pk, oid)
    payload = await read_json(request)
    hub = get_hub(request)

    def work() -> None:
        with hub.db.session() as session:
            uploads.complete_multipart(hub, session, grant, payload)

    await run_in_threadpool(work)
    return JSONResponse({"success": True})


@router.api_route("/api/lfs/download/{repo_pk}/{oid}", methods=["GET", "HEAD"])
def download_object(repo_pk: int, oid: str, request: Request) -> Response:
    _grant(request, "download", repo_pk, oid)
    hub = get_hub(request)
    with hub.db.session() as session:
        return object_response(hub, session, request, oid, {})
