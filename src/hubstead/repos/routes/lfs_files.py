"""``list_lfs_files`` and ``permanently_delete_lfs_files``: ``/api/{type}s/{id}/lfs-files`` (paged by ``Link``) and
``/api/{type}s/{id}/lfs-files/batch`` (``{"deletions": {"sha": [...], "rewriteHistory": bool}}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import SessionDep, get_hub, read_json_object
from hubstead.api.pagination import decode_path_cursor, next_page_link, positive_limit
from hubstead.dates import iso
from hubstead.errors import BadRequestError
from hubstead.repos.lfs.files import (
    PAGE_SIZE,
    LfsFile,
    check_deletions,
    delete_lfs_files,
    drop_unreferenced_bytes,
    list_lfs_files,
)
from hubstead.repos.routes.access import api_repo_request, redirect_if_moved
from hubstead.xet.cas.reader import xet_hashes

router = APIRouter()


def _file_json(item: LfsFile, xet_hash: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "fileOid": item.oid,
        "oid": item.oid,
        "size": item.size,
        "filename": item.filename,
        "ref": item.ref,
        "pushedAt": iso(item.pushed_at),
    }
    if item.pusher is not None:
        user = item.pusher
        out["pusher"] = {"_id": f"{user.id:024x}", "user": user.name, "name": user.name,
                         "fullname": user.fullname or user.name, "avatarUrl": "", "type": "user"}  # fmt: skip
    if xet_hash is not None:
        out["xetHash"] = xet_hash
    return out


@router.get("/api/{plural:repotype}/{ns}/{name}/lfs-files")
def lfs_files(request: Request, session: Session = SessionDep) -> Response:
    """The repo's LFS files, a page at a time (``limit``, at most 1000; ``Link: rel="next"`` while more follow)."""
    rr = api_repo_request(request, session)
    moved = redirect_if_moved(request, rr)
    if moved is not None:
        return moved
    repo = rr.readable()
    limit = positive_limit(request.query_params.get("limit"), maximum=PAGE_SIZE) or PAGE_SIZE
    after = decode_path_cursor(request.query_params.get("cursor"))
    files, more = list_lfs_files(rr.hub, session, rr.principal, repo, after=after, limit=limit)
    hashes = xet_hashes(session, [item.oid for item in files])
    headers = {"Link": next_page_link(request, path_cursor=files[-1].oid)} if more and files else {}
    return JSONResponse([_file_json(item, hashes.get(item.oid)) for item in files], headers=headers)


@router.post("/api/{plural:repotype}/{ns}/{name}/lfs-files/batch")
async def lfs_files_batch(request: Request) -> dict[str, Any]:
    """Delete LFS files for good (repo admins). ``rewriteHistory`` is accepted, but history is not rewritten: the
    pointer files stay in git, and downloading one answers 404 EntryNotFound."""
    payload = await read_json_object(request)
    deletions = payload.get("deletions")
    if not isinstance(deletions, dict):
        raise BadRequestError("'deletions' must be an object with a 'sha' list")
    shas = check_deletions(deletions.get("sha"))
    hub = get_hub(request)

    def work() -> None:
        with hub.db.session() as session:
            rr = api_repo_request(request, session)
            orphans = delete_lfs_files(session, rr.principal, rr.readable(), shas)
        drop_unreferenced_bytes(hub, orphans)  # after the commit: a rolled-back deletion keeps its bytes

    await run_in_threadpool(work)
    return {}
