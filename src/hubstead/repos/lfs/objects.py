"""LFS objects wherever they live: the LFS blob store, or Xet (reconstructed from xorbs on the fly).

One file may arrive by either path; the hub names it by sha256 in both, and serves it to plain HTTP
clients (resolve, Range requests, git-lfs downloads) the same way.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.errors import EntryNotFoundError
from hubstead.repos.files import parse_range
from hubstead.xet.cas.reader import XetBacked, stream_file, xet_backed


class LargeFileResponse(FileResponse):
    chunk_size = 4 * 1024 * 1024


def object_size(hub: Hub, session: Session, oid: str) -> int | None:
    """Size of the stored object with this sha256, from either store, or None if neither has it."""
    size = hub.blobs.size(oid)
    if size is not None:
        return size
    backed = xet_backed(session, oid)
    return backed.size if backed else None


def object_response(
    hub: Hub, session: Session, request: Request, oid: str, headers: dict[str, str], backed: XetBacked | None = None
) -> Response:
    """Serve an object's bytes (HEAD, GET, single ``Range``) from whichever store holds it."""
    local = hub.blobs.local_path(oid)
    if local is not None:
        return LargeFileResponse(local, headers=headers, media_type="application/octet-stream")
    backed = backed or xet_backed(session, oid)
    if backed is None:
        raise EntryNotFoundError(f"The object {oid} is missing from storage")
    byte_range = parse_range(request.headers.get("range"), backed.size)
    start, end = byte_range if byte_range else (0, backed.size - 1)
    headers = {**headers, "Content-Length": str(max(end - start + 1, 0)), "Accept-Ranges": "bytes"}
    status = 200
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end}/{backed.size}"
        status = 206
    if request.method == "HEAD" or backed.size == 0:
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        stream_file(hub.xorbs, backed, start, end),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )
