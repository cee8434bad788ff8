"""LFS objects wherever they live: the LFS blob store, or Xet (reconstructed from xorbs on the fly).

One file may arrive by either path; the hub names it by sha256 in both, and serves it to plain HTTP
clients (resolve, Range requests, git-lfs downloads) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.errors import EntryNotFoundError
from hubstead.repos.files import parse_range
from hubstead.storage.base import presigned_url
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
    hub: Hub,
    session: Session,
    request: Request,
    oid: str,
    headers: dict[str, str],
    backed: XetBacked | None = None,
    *,
    filename: str | None = None,
) -> Response:
    """Serve an object's bytes (HEAD, GET, single ``Range``) from whichever store holds it."""
    local = hub.blobs.local_path(oid)
    if local is not None:
        return LargeFileResponse(local, headers=headers, media_type="application/octet-stream")
    stored = hub.blobs.size(oid)
    if stored is not None:
        settings = hub.settings
        if settings.s3_presign and stored >= settings.s3_presign_min_bytes:
            url = presigned_url(hub.blobs, oid, filename=filename)
            if url is not None:
                # The Hub's CDN redirect: the client reads X-Repo-Commit, ETag and X-Linked-* from this answer
                # and follows Location (Range included) to the object store, which checks the signature.
                return RedirectResponse(url, status_code=302, headers={**headers, "Content-Length": "0"})
        return _ranged(request, stored, headers, lambda start, end: hub.blobs.open_range(oid, start, end))
    backed = backed or xet_backed(session, oid)
    if backed is None:
        raise EntryNotFoundError(f"The object {oid} is missing from storage")
    found = backed
    return _ranged(request, found.size, headers, lambda start, end: stream_file(hub.xorbs, found, start, end))


def _ranged(
    request: Request, size: int, headers: dict[str, str], read: Callable[[int, int], Iterator[bytes]]
) -> Response:
    """HEAD, GET or a single ``Range`` of an object of ``size`` bytes read by ``read(start, end)``."""
    byte_range = parse_range(request.headers.get("range"), size)
    start, end = byte_range if byte_range else (0, size - 1)
    headers = {**headers, "Content-Length": str(max(end - start + 1, 0)), "Accept-Ranges": "bytes"}
    status = 200
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        status = 206
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        read(start, end),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )
