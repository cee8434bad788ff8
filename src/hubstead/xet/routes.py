"""Xet over HTTP: the hub's token endpoints, and the CAS service (under ``/xet-cas``) ``hf_xet`` talks to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_hub
from hubstead.auth.models import Token
from hubstead.discussions.pulls import require_upload
from hubstead.errors import BadRequestError, ForbiddenError, NotFoundError, PayloadTooLargeError, UnauthorizedError
from hubstead.repos.routes.access import api_repo_request
from hubstead.repos.service import get_readable_repo, require_file_content_access
from hubstead.xet import service, tokens
from hubstead.xet.cas.formats import MAX_XORB_BYTES

router = APIRouter()
CAS_PREFIX = "/xet-cas"
MAX_SHARD_BYTES = 256 * 1024 * 1024


def cas_url(request: Request) -> str:
    return base_url(request) + CAS_PREFIX


@router.get("/api/{plural:repotype}/{ns}/{name}/xet-read-token/{rest:path}")
@router.get("/api/{plural:repotype}/{ns}/{name}/xet-write-token/{rest:path}")
@router.get("/api/{plural:repotype}/{ns}/{name}/xet-write-token")
def token(request: Request) -> Response:
    """A CAS token for this repo, in the headers (read by huggingface_hub) and the body (read by hf_xet)."""
    hub = get_hub(request)
    write = "/xet-write-token" in request.url.path
    with hub.db.session() as session:
        rr = api_repo_request(request, session)
        repo = get_readable_repo(session, rr.principal, repo_type=rr.repo_type, repo_id=rr.repo_id)
        if write:
            require_upload(session, rr.principal, repo)  # pull requests by readers upload too
        else:
            require_file_content_access(session, repo, rr.principal)
        user_id = rr.principal.user.id if rr.principal.user else None
        access, expires = tokens.issue(
            hub.settings.secret_key, repo_pk=repo.pk, user_id=user_id, mode="write" if write else "read",
            parent=rr.principal.token_id,
        )  # fmt: skip
    url = cas_url(request)
    headers = {"X-Xet-Cas-Url": url, "X-Xet-Access-Token": access, "X-Xet-Token-Expiration": str(expires)}
    return JSONResponse({"casUrl": url, "exp": expires, "accessToken": access}, headers=headers)


def _grant(request: Request) -> tokens.CasGrant:
    """The CAS token's grant, refused (401) when forged, expired, or its parent access token was revoked."""
    hub = get_hub(request)
    grant = tokens.verify(hub.settings.secret_key, request.headers.get("authorization"))
    if grant.parent is not None:
        with hub.db.session() as session:
            if session.get(Token, grant.parent) is None:
                raise UnauthorizedError("The access token this Xet token was minted with has been revoked")
    return grant


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"Body over {limit} bytes")
    parts, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"Body over {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


@router.post(CAS_PREFIX + "/v1/xorb-grants/{prefix}/{xorb_hash}")
def xorb_grant(prefix: str, xorb_hash: str) -> Response:
    """Pre-signed direct uploads are not offered: a 404 sends the client to ``POST /v1/xorbs``."""
    return JSONResponse({"error": "Upload xorbs directly"}, status_code=404)


@router.post(CAS_PREFIX + "/v1/xorbs/{prefix}/{xorb_hash}")
async def upload_xorb(prefix: str, xorb_hash: str, request: Request) -> dict[str, Any]:
    grant = _grant(request)
    grant.require_write()
    body = await _body(request, MAX_XORB_BYTES)
    hub = get_hub(request)

    def work() -> bool:
        with hub.db.session() as session:
            return service.upload_xorb(hub, session, grant, xorb_hash, body)

    return {"was_inserted": await run_in_threadpool(work)}


@router.post(CAS_PREFIX + "/v2/shards")
def shards_v2() -> Response:
    return JSONResponse({"error": "Use /v1/shards"}, status_code=404)


@router.post(CAS_PREFIX + "/v1/shards")
async def upload_shard(request: Request) -> dict[str, Any]:
    grant = _grant(request)
    grant.require_write()
    body = await _body(request, MAX_SHARD_BYTES)
    hub = get_hub(request)

    def work() -> int:
        with hub.db.session() as session:
            return service.register_shard(hub, session, grant, body)

    new_files = await run_in_threadpool(work)
    return {"result": 1 if new_files else 0}


@router.get(CAS_PREFIX + "/v1/chunks/{prefix}/{chunk_hash}")
def dedup(prefix: str, chunk_hash: str, request: Request) -> Response:
    grant = _grant(request)
    hub = get_hub(request)
    with hub.db.session() as session:
        shard = service.dedup_query(hub, session, grant, chunk_hash)
    return Response(shard, media_type="application/octet-stream")


@router.get(CAS_PREFIX + "/v2/reconstructions/{file_hash}")
def reconstruction_v2(file_hash: str) -> Response:
    return JSONResponse({"error": "Use /v1/reconstructions"}, status_code=404)


@router.get(CAS_PREFIX + "/v1/reconstructions/{file_hash}")
def reconstruction(file_hash: str, request: Request) -> dict[str, Any]:
    grant = _grant(request)
    hub = get_hub(request)
    with hub.db.session() as session:
        return service.reconstruction(hub, session, grant, file_hash, request.headers.get("range"), cas_url(request))


@router.get(CAS_PREFIX + "/xorb-data/{xorb_hash}")
def xorb_data(xorb_hash: str, request: Request) -> Response:
    """Bytes of a stored xorb, by a URL signed in a reconstruction answer (the client sends no token).

    The URL allows one byte span; a ``Range`` must lie inside it, and without one the span is served."""
    hub = get_hub(request)
    span = request.query_params.get("r", "")
    try:
        expires = int(request.query_params.get("exp", "0"))
        allowed_start, allowed_end = (int(part) for part in span.split("-"))
    except ValueError as exc:
        raise BadRequestError("Invalid xorb URL") from exc
    tokens.check_fetch(hub.settings.secret_key, xorb_hash, expires, span, request.query_params.get("sig", ""))
    start, end = allowed_start, allowed_end
    header = request.headers.get("range")
    if header:
        first, _, last = header.strip().removeprefix("bytes=").partition("-")
        if not first.isdigit() or not last.isdigit():
            raise BadRequestError("Only a single 'bytes=start-end' range is served")
        start, end = int(first), int(last)
    if start < allowed_start or end > allowed_end or start > end:
        raise ForbiddenError("Range outside what this URL allows")
    store = hub.xorbs
    size = store.size(xorb_hash)
    if size is None:
        raise NotFoundError("Xorb not found")
    if end >= size:
        raise BadRequestError("Range past the end of the xorb")

    def stream() -> Iterator[bytes]:
        yield from store.bodies.open_range(xorb_hash, start, end)

    headers = {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)}
    return StreamingResponse(stream(), status_code=206, headers=headers, media_type="application/octet-stream")


@router.post(CAS_PREFIX + "/v1/telemetry")
def telemetry() -> dict[str, Any]:
    return {}
