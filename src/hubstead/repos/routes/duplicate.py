"""``POST /api/{type}s/{id}/duplicate`` (``HfApi.duplicate_repo``; ``duplicate_space`` in old clients): body
``{"repository": "ns/name", "visibility": "public"|"private"}`` (old clients: ``"private": bool``); answers
``{"url", "filesCopyPending": false}`` (the copy is done when it answers). An existing target is a 409 that still
carries its ``url``, which ``exist_ok=True`` reads.

``POST /api/{type}s/{id}/lfs-files/duplicate`` (``copy_files`` and cross-repo ``CommitOperationCopy``, before the
commit): ``{"target": {"type", "name"}, "files": [{"sha256", "xetHash", "filename"}]}`` on the *source* repo;
answers ``{"failed": [{"sha256", "error"}]}``. The caller must read the source's files and may send files to the
target (a writer, or a reader who may open a pull request there)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import base_url, get_hub, raw_segments, read_json_object
from hubstead.discussions.pulls import require_upload
from hubstead.errors import BadRequestError, ConflictError, error_header_value
from hubstead.repos.duplicate import check_lfs_copies, duplicate_repo
from hubstead.repos.routes.access import URL_PREFIX, api_repo_request
from hubstead.repos.service import check_repo_type, get_readable_repo
from hubstead.spaces import service as spaces

router = APIRouter()


def _private(payload: dict[str, Any]) -> bool | None:
    visibility, private = payload.get("visibility"), payload.get("private")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise BadRequestError("'visibility' must be 'public' or 'private' ('protected' is a huggingface.co Space "
                                  "setting this hub does not have)")  # fmt: skip
        return visibility == "private"
    if private is not None and not isinstance(private, bool):
        raise BadRequestError("'private' must be true or false")
    return private


@router.post("/api/{plural:repotype}/{ns}/{name}/duplicate")
async def duplicate(request: Request) -> Response:
    payload = await read_json_object(request)
    target = payload.get("repository")
    if not isinstance(target, str) or target.count("/") != 1:
        raise BadRequestError("'repository' must be the new repo's id, 'namespace/name'")
    private = _private(payload)
    space_fields = spaces.check_new_space(payload) if raw_segments(request)[1] == "spaces" else None

    def work() -> Response:
        with get_hub(request).db.session() as session:
            rr = api_repo_request(request, session)
            url = f"{base_url(request)}/{URL_PREFIX[rr.repo_type]}{target}"
            try:
                repo = duplicate_repo(rr.hub, session, rr.principal, rr.readable(), target_id=target, private=private)
            except ConflictError as exc:
                session.rollback()
                message = f"You already created this {rr.repo_type} repo: {target}"
                headers = {"X-Error-Message": error_header_value(message), **(exc.headers or {})}
                return JSONResponse({"error": message, "url": url}, status_code=409, headers=headers)
            if repo.repo_type == "space":
                source = rr.readable()
                spaces.copy_variables(session, source, repo)  # variables come along; secrets do not
                if space_fields is not None:  # duplicate_repo(space_hardware=, space_secrets=, ...) on the copy
                    spaces.configure_new(rr.hub, session, repo, space_fields)
            url = f"{base_url(request)}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"
            return JSONResponse({"url": url, "filesCopyPending": False})

    return await run_in_threadpool(work)


@router.post("/api/{plural:repotype}/{ns}/{name}/lfs-files/duplicate")
async def duplicate_lfs_files(request: Request) -> dict[str, Any]:
    payload = await read_json_object(request)
    target, files = payload.get("target"), payload.get("files")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        raise BadRequestError("'target' must be {\"type\": ..., \"name\": \"namespace/name\"}")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files):
        raise BadRequestError("'files' must be a list of {\"sha256\", \"xetHash\", \"filename\"}")
    wanted = [(str(f["sha256"]), f.get("xetHash") if isinstance(f.get("xetHash"), str) else None) for f in files]
    target_type = check_repo_type(str(target.get("type") or "model"))

    def work() -> dict[str, Any]:
        with get_hub(request).db.session() as session:
            rr = api_repo_request(request, session, action_segments=2)
            source = rr.readable()
            dest = get_readable_repo(session, rr.principal, repo_type=target_type, repo_id=str(target["name"]))
            require_upload(session, rr.principal, dest)
            return {"failed": check_lfs_copies(session, rr.principal, source, wanted)}

    return await run_in_threadpool(work)
