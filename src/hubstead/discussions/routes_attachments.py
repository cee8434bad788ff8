"""``POST /uploads`` (``HfApi.upload_attachment``: the raw bytes, ``Content-Type`` the file's type; answers its
URL as text) and ``GET /attachments/{sha256}.{ext}`` (the file, with ``discussions/attachments``' safe headers).
Any signed-in user with a write token may upload; the body is bounded by ``api/bodies`` (rule "attachment")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_hub, get_principal
from hubstead.discussions.attachments import attachment_headers, attachment_path, store_attachment
from hubstead.errors import ForbiddenError, UnauthorizedError

router = APIRouter()


@router.post("/uploads")
async def upload(request: Request) -> Response:
    hub = get_hub(request)
    with hub.db.session() as session:
        principal = get_principal(request, session)
        if principal.user is None:
            raise UnauthorizedError("You must be authenticated to upload an attachment")
        if not principal.can_write:
            raise ForbiddenError("This token has read access only; a write token is needed")
    data = await request.body()
    name = await run_in_threadpool(store_attachment, hub, data, request.headers.get("content-type", ""))
    return PlainTextResponse(f"{base_url(request)}/attachments/{name}")


@router.get("/attachments/{name}")
def attachment(name: str, request: Request) -> Response:
    path, content_type = attachment_path(get_hub(request), name)
    return FileResponse(path, media_type=content_type, headers=attachment_headers(name))
