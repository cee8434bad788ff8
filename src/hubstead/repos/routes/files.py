"""Routes that read files: resolve (download), tree listing, paths-info."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import SessionDep, base_url, parse_bool, read_json_object
from hubstead.api.pagination import decode_path_cursor, next_page_link, positive_limit
from hubstead.errors import BadRequestError, EntryNotFoundError, HubError
from hubstead.repos.files import (
    counts_as_download,
    entry_at,
    entry_json,
    get_file,
    iter_entries,
    last_commits,
    parse_range,
)
from hubstead.repos.git import TreeEntry
from hubstead.repos.lfs.objects import object_response
from hubstead.repos.models import RepoLfsObject
from hubstead.repos.paths import normalize_folder_path, normalize_path_in_repo
from hubstead.repos.routes.access import api_repo_request, file_repo_request, redirect_if_moved
from hubstead.repos.service import open_git, require_file_content_access
from hubstead.repos.stats import record_download
from hubstead.xet.cas.reader import xet_backed, xet_hashes

router = APIRouter()
TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50


def _content_disposition(path: str, *, attachment: bool = False) -> str:
    name = path.rsplit("/", 1)[-1]
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename*=UTF-8''{quote(name)}; filename=\"{name.encode('ascii', 'replace').decode()}\";"


@router.api_route("/{ns}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
@router.api_route("/datasets/{ns}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
@router.api_route("/spaces/{ns}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve(request: Request, session: Session = SessionDep) -> Response:
    """Serve a file at a revision, with the headers ``hf_hub_download`` caches by."""
    rr = file_repo_request(request, session)
    moved = redirect_if_moved(request, rr)
    if moved is not None:
        return moved
    repo = rr.readable()
    if len(rr.tail) < 2:
        raise EntryNotFoundError("No file path given")
    revision, path = rr.tail[0], "/".join(rr.tail[1:])
    git = open_git(rr.hub, repo)
    commit = git.resolve(revision)
    commit_headers = {"X-Repo-Commit": str(commit.id)}
    try:
        path = normalize_path_in_repo(path)
        require_file_content_access(session, repo, rr.principal)
        info = get_file(git, commit, path)
    except HubError as exc:
        raise _with_headers(exc, commit_headers) from None
    headers = {
        **commit_headers,
        "ETag": f'"{info.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Disposition": _content_disposition(path, attachment=request.query_params.get("download") == "true"),
        "Cache-Control": "private, max-age=0, must-revalidate"
        if repo.private
        else "public, max-age=0, must-revalidate",
    }
    if info.lfs:
        headers["X-Linked-Etag"] = f'"{info.lfs.oid}"'
        headers["X-Linked-Size"] = str(info.lfs.size)
    if counts_as_download(repo.repo_type, path) and not request.headers.get("range"):
        client = request.client.host if request.client else ""
        key = (client, request.headers.get("user-agent", ""), str(repo.pk), path)
        if rr.hub.downloads.counts(key, request.method, session=session):
            record_download(session, repo)
    if info.lfs:
        if session.get(RepoLfsObject, (repo.pk, info.lfs.oid)) is None:
            # Its LFS file was deleted for good (permanently_delete_lfs_files): the pointer stays in git.
            raise _with_headers(
                EntryNotFoundError(f"{path}: its LFS object was permanently deleted from this repo"), commit_headers
            )
        backed = xet_backed(session, info.lfs.oid)
        if backed is not None:
            # Clients with hf_xet download through the CAS; the others get the bytes from us below.
            headers["X-Xet-Hash"] = backed.file_hash
            read_token = f"{base_url(request)}/api/{repo.repo_type}s/{repo.repo_id}/xet-read-token/{commit.id}"
            headers["Link"] = f'<{read_token}>; rel="xet-auth"'
        try:
            return object_response(
                rr.hub, session, request, info.lfs.oid, headers, backed, filename=path.rsplit("/", 1)[-1]
            )
        except HubError as exc:
            raise _with_headers(exc, commit_headers) from None
    data = git.read_blob(commit.tree[path].id)
    return _bytes_response(request, data, headers)


def _bytes_response(request: Request, data: bytes, headers: dict[str, str]) -> Response:
    byte_range = parse_range(request.headers.get("range"), len(data))
    media_type = "application/octet-stream"
    if byte_range is None:
        headers["Content-Length"] = str(len(data))
        return Response(b"" if request.method == "HEAD" else data, headers=headers, media_type=media_type)
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    headers["Content-Length"] = str(end - start + 1)
    body = b"" if request.method == "HEAD" else data[start : end + 1]
    return Response(body, status_code=206, headers=headers, media_type=media_type)


def _with_headers(exc: HubError, headers: dict[str, str]) -> HubError:
    exc.headers.update(headers)
    return exc


@router.get("/api/{plural:repotype}/{ns}/{name}/tree/{rest:path}")
def tree(request: Request, session: Session = SessionDep) -> Response:
    """List a folder at a revision (``list_repo_tree``), paginated by ``Link``."""
    rr = api_repo_request(request, session)
    moved = redirect_if_moved(request, rr)
    if moved is not None:
        return moved
    repo = rr.readable()
    if not rr.tail:
        raise BadRequestError("Missing revision")
    revision, path = rr.tail[0], "/".join(rr.tail[1:]).strip("/")
    if path:
        path = normalize_folder_path(path)
    recursive = parse_bool(request.query_params.get("recursive"))
    expand = parse_bool(request.query_params.get("expand"))
    page_size = TREE_PAGE_EXPANDED if expand else TREE_PAGE
    page_size = positive_limit(request.query_params.get("limit"), maximum=page_size) or page_size
    after = decode_path_cursor(request.query_params.get("cursor"))
    git = open_git(rr.hub, repo)
    commit = git.resolve(revision)
    page: list[TreeEntry] = []
    more = False
    for entry in iter_entries(git, commit, path, recursive=recursive, after=after):
        if len(page) == page_size:
            more = True
            break
        page.append(entry)
    commits = last_commits(git, commit, [e.path for e in page]) if expand else None
    body = with_xet_hashes(session, [entry_json(git, entry, commits) for entry in page])
    headers = {"X-Repo-Commit": str(commit.id)}
    if more:
        headers["Link"] = next_page_link(request, path_cursor=page[-1].path)
    return JSONResponse(body, headers=headers)


@router.post("/api/{plural:repotype}/{ns}/{name}/paths-info/{rest:path}")
async def paths_info(request: Request, session: Session = SessionDep) -> Response:
    """Entries for the named paths (form or JSON ``paths``); missing paths are left out."""
    paths, expand = await _read_paths_body(request)
    return await run_in_threadpool(_paths_info, request, session, paths, expand)


async def _read_paths_body(request: Request) -> tuple[list[str], bool]:
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        payload = await read_json_object(request)
        paths = payload.get("paths") or []
        expand = payload.get("expand", False)
    else:
        form = await request.form()
        paths = [str(p) for p in form.getlist("paths")]
        expand = form.get("expand", "false")
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequestError("'paths' must be a list of strings")
    if len(paths) > 10000:
        raise BadRequestError("At most 10000 paths per request")
    return paths, parse_bool(expand if isinstance(expand, str | bool) else None)


def with_xet_hashes(session: Session, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``xetHash`` to entries stored in Xet, so hf_xet clients fetch them from the CAS."""
    hashes = xet_hashes(session, [e["lfs"]["oid"] for e in entries if "lfs" in e])
    for entry in entries:
        if "lfs" in entry and entry["lfs"]["oid"] in hashes:
            entry["xetHash"] = hashes[entry["lfs"]["oid"]]
    return entries


def _paths_info(request: Request, session: Session, paths: list[str], expand: bool) -> Response:
    rr = api_repo_request(request, session)
    repo = rr.readable()
    if not rr.tail:
        raise BadRequestError("Missing revision")
    git = open_git(rr.hub, repo)
    commit = git.resolve(rr.tail[0])
    entries = []
    for raw in paths:
        path = raw.strip("/")
        if not path:
            continue
        entry = entry_at(git, commit, normalize_path_in_repo(path))
        if entry is not None:
            entries.append(entry)
    commits = last_commits(git, commit, [e.path for e in entries]) if expand else None
    body = with_xet_hashes(session, [entry_json(git, e, commits) for e in entries])
    return JSONResponse(body, headers={"X-Repo-Commit": str(commit.id)})
