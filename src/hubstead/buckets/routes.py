"""The Hub's bucket API as ``huggingface_hub`` calls it: ``/api/buckets/{namespace}[/{name}[/...]]`` (create,
info, list, delete, settings, tree, paths-info, Xet tokens, batch) and ``/buckets/{id}/resolve/{path}``.
Thin: the rules are in ``buckets.service``; the bytes go through the CAS (``xet/routes``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_caller, get_hub, parse_bool, read_json_object
from hubstead.api.pagination import decode_cursor, decode_path_cursor, next_page_link, positive_limit
from hubstead.buckets import service
from hubstead.errors import BadRequestError, PayloadTooLargeError, error_header_value
from hubstead.repos.files import parse_range
from hubstead.xet import tokens
from hubstead.xet.routes import cas_url

router = APIRouter()
MAX_BATCH_BODY = service.MAX_BATCH_OPERATIONS * 512
LIST_PAGE = 100


def _url(request: Request, bucket_id: str) -> str:
    return f"{base_url(request)}/buckets/{bucket_id}"


@router.post("/api/buckets/{namespace}/{name}", response_model=None)
async def create_bucket(request: Request, namespace: str, name: str) -> JSONResponse:
    body = await read_json_object(request, allow_empty=True)
    visibility = body.get("visibility", "private" if body.get("private") is True else "public")
    if visibility not in ("public", "private"):
        raise BadRequestError("visibility must be 'public' or 'private'")
    hub = get_hub(request)

    def work() -> JSONResponse:
        with hub.db.session() as session:
            caller = get_caller(request, session)
            try:
                bucket = service.create_bucket(session, caller, namespace, name, private=visibility == "private")
            except service.BucketExistsError as exc:
                headers = {"X-Error-Message": error_header_value(exc.message)}
                return JSONResponse(
                    {"error": exc.message, "url": _url(request, exc.bucket_id)}, status_code=409, headers=headers
                )
            bucket_id = bucket.bucket_id
        return JSONResponse({"url": _url(request, bucket_id), "id": bucket_id, "name": bucket_id})

    return await run_in_threadpool(work)


@router.get("/api/buckets/{namespace}/{name}", response_model=None)
def bucket_info(request: Request, namespace: str, name: str) -> dict[str, Any]:
    hub = get_hub(request)
    with hub.db.session() as session:
        bucket = service.check_readable(session, get_caller(request, session), f"{namespace}/{name}")
        return service.bucket_json(session, bucket)


@router.delete("/api/buckets/{namespace}/{name}", response_model=None)
def delete_bucket(request: Request, namespace: str, name: str) -> dict[str, Any]:
    hub = get_hub(request)
    with hub.db.session() as session:
        service.delete_bucket(session, get_caller(request, session), f"{namespace}/{name}")
    return {}


@router.put("/api/buckets/{namespace}/{name}/settings", response_model=None)
async def bucket_settings(request: Request, namespace: str, name: str) -> dict[str, Any]:
    body = await read_json_object(request)
    private = body.get("private")
    if not isinstance(private, bool):
        raise BadRequestError("Expected {'private': true or false}")
    hub = get_hub(request)

    def work() -> dict[str, Any]:
        with hub.db.session() as session:
            caller = get_caller(request, session)
            bucket = service.update_settings(session, caller, f"{namespace}/{name}", private=private)
            return service.bucket_json(session, bucket)

    return await run_in_threadpool(work)


@router.get("/api/buckets/{namespace}", response_model=None)
def list_buckets(request: Request, namespace: str) -> JSONResponse:
    """The namespace's buckets the caller may see, a page at a time (``Link: rel="next"``)."""
    hub = get_hub(request)
    offset = decode_cursor(request.query_params.get("cursor"))
    limit = positive_limit(request.query_params.get("limit"), maximum=LIST_PAGE) or LIST_PAGE
    with hub.db.session() as session:
        caller = get_caller(request, session)
        found = service.list_buckets(session, caller, namespace, request.query_params.get("search"))
        page = [service.bucket_json(session, bucket) for bucket in found[offset : offset + limit]]
    more = len(found) > offset + limit
    return JSONResponse(page, headers={"Link": next_page_link(request, offset + limit)} if more else {})


@router.get("/api/buckets/{namespace}/{name}/tree", response_model=None)
@router.get("/api/buckets/{namespace}/{name}/tree/{prefix:path}", response_model=None)
def bucket_tree(request: Request, namespace: str, name: str, prefix: str = "") -> JSONResponse:
    hub = get_hub(request)
    recursive = parse_bool(request.query_params.get("recursive"))
    after = decode_path_cursor(request.query_params.get("cursor"))
    limit = positive_limit(request.query_params.get("limit"), maximum=service.TREE_PAGE) or service.TREE_PAGE
    with hub.db.session() as session:
        bucket = service.check_readable(session, get_caller(request, session), f"{namespace}/{name}")
        entries, next_after = service.tree(session, bucket, prefix, recursive=recursive, after=after, limit=limit)
    headers = {"Link": next_page_link(request, path_cursor=next_after)} if next_after is not None else {}
    return JSONResponse(entries, headers=headers)


@router.post("/api/buckets/{namespace}/{name}/paths-info", response_model=None)
async def bucket_paths_info(request: Request, namespace: str, name: str) -> list[dict[str, Any]]:
    body = await read_json_object(request)
    hub = get_hub(request)

    def work() -> list[dict[str, Any]]:
        with hub.db.session() as session:
            bucket = service.check_readable(session, get_caller(request, session), f"{namespace}/{name}")
            return service.paths_info(session, bucket, body.get("paths"))

    return await run_in_threadpool(work)


@router.get("/api/buckets/{namespace}/{name}/xet-read-token", response_model=None)
@router.get("/api/buckets/{namespace}/{name}/xet-write-token", response_model=None)
@router.get("/api/buckets/{namespace}/{name}/xet-read-token/{rest:path}", response_model=None)
@router.get("/api/buckets/{namespace}/{name}/xet-write-token/{rest:path}", response_model=None)
def xet_token(request: Request, namespace: str, name: str) -> JSONResponse:
    """A CAS token for this bucket (read: may see it; write: may change it), shaped as for repos."""
    hub = get_hub(request)
    write = "/xet-write-token" in request.url.path
    with hub.db.session() as session:
        caller = get_caller(request, session)
        check = service.check_writable if write else service.check_readable
        bucket = check(session, caller, f"{namespace}/{name}")
        access, expires = tokens.issue(
            hub.settings.secret_key, repo_pk=0, bucket_pk=bucket.pk,
            user_id=caller.user.id if caller.user else None, mode="write" if write else "read", parent=caller.token_id,
        )  # fmt: skip
    url = cas_url(request)
    headers = {"X-Xet-Cas-Url": url, "X-Xet-Access-Token": access, "X-Xet-Token-Expiration": str(expires)}
    return JSONResponse({"casUrl": url, "exp": expires, "accessToken": access}, headers=headers)


@router.post("/api/buckets/{namespace}/{name}/batch", response_model=None)
async def bucket_batch(request: Request, namespace: str, name: str) -> JSONResponse:
    """NDJSON ``addFile``/``copyFile``/``deleteFile`` lines, applied all or none: 200 ``{"success": n,
    "failed": []}``, or 422 with every failing line and nothing written."""
    hub = get_hub(request)
    bucket_id = f"{namespace}/{name}"

    def authorize() -> None:
        with hub.db.session() as session:
            service.check_writable(session, get_caller(request, session), bucket_id)

    await run_in_threadpool(authorize)  # before a byte of the body is read
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BATCH_BODY:
        raise PayloadTooLargeError(f"Batch body over {MAX_BATCH_BODY} bytes")
    parts, total = [], 0
    async for piece in request.stream():
        total += len(piece)
        if total > MAX_BATCH_BODY:
            raise PayloadTooLargeError(f"Batch body over {MAX_BATCH_BODY} bytes")
        parts.append(piece)
    operations = service.parse_batch(b"".join(parts))

    def work() -> JSONResponse:
        with hub.db.session() as session:
            caller = get_caller(request, session)
            bucket = service.check_writable(session, caller, bucket_id)
            applied, failures = service.apply_batch(session, caller, bucket, operations)
        if failures:
            message = f"{len(failures)} of {len(operations)} operations refused; nothing was applied"
            headers = {"X-Error-Message": error_header_value(message)}
            return JSONResponse({"success": 0, "failed": failures, "error": message}, status_code=422, headers=headers)
        return JSONResponse({"success": applied, "failed": []})

    return await run_in_threadpool(work)


@router.api_route("/buckets/{namespace}/{name}/resolve/{path:path}", methods=["GET", "HEAD"], response_model=None)
def resolve(request: Request, namespace: str, name: str, path: str) -> Response:
    """A bucket file: its Xet hash and token route in the headers (``get_bucket_file_metadata``), its bytes."""
    hub = get_hub(request)
    with hub.db.session() as session:
        caller = get_caller(request, session, browser="session")
        bucket = service.check_readable(session, caller, f"{namespace}/{name}")
        row = service.get_file(session, bucket, path)
        size = row.size
        token_route = f"{base_url(request)}/api/buckets/{bucket.bucket_id}/xet-read-token"
        headers = {
            "X-Xet-Hash": row.xet_hash, "X-Linked-Size": str(size), "Accept-Ranges": "bytes",
            "ETag": f'"{row.xet_hash}"', "Link": f'<{token_route}>; rel="xet-auth"',
            "Cache-Control": "private, max-age=0" if bucket.private else "public, max-age=0",
        }  # fmt: skip
        byte_range = parse_range(request.headers.get("range"), size) if size else None
        start, end = byte_range if byte_range is not None else (0, size - 1)
        headers["Content-Length"] = str(end - start + 1 if size else 0)
        if byte_range is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        status = 206 if byte_range is not None else 200
        media = row.content_type or "application/octet-stream"
        if request.method == "HEAD" or size == 0:
            return Response(b"", status_code=status, headers=headers, media_type=media)
        pieces = service.stream(hub, session, row, start, end + 1)  # the layout is read now; bytes on the way
    return StreamingResponse(pieces, status_code=status, headers=headers, media_type=media)
