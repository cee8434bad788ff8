"""Read-only git over smart HTTP, so ``git clone <hub>/<ns>/<name>`` works (with ``git lfs`` for large files).

Served by git's own ``upload-pack`` on the bare repository; pushes go through the Hub API, not here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_hub, get_principal, raw_segments
from hubstead.decompress import BoundedDecoder
from hubstead.errors import BadRequestError, PayloadTooLargeError, RepoNotFoundError
from hubstead.repos.routes.access import split_prefixed
from hubstead.repos.service import get_readable_repo, git_dir, require_file_content_access

router = APIRouter(include_in_schema=False)
MAX_NEGOTIATION_BYTES = 64 * 1024 * 1024


def _pkt_line(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


def _repo_dir(request: Request):  # type: ignore[no-untyped-def]
    """The git dir of the repo in the URL, if the caller may read it; anonymous callers of a private repo
    get a 401 asking for credentials (git then retries with the user name and a token as password)."""
    hub = get_hub(request)
    repo_type, repo_id, _ = split_prefixed(raw_segments(request))
    with hub.db.session() as session:
        principal = get_principal(request, session)
        try:
            repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=repo_id)
            require_file_content_access(session, repo, principal)
        except RepoNotFoundError:
            if principal.user is None:
                return None
            raise
        return git_dir(hub, repo)


def _ask_for_credentials() -> Response:
    return Response(
        "Authentication required: use your user name and an access token as the password\n",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Hubstead"'},
    )


@router.get("/{ns}/{name}/info/refs")
@router.get("/datasets/{ns}/{name}/info/refs")
@router.get("/spaces/{ns}/{name}/info/refs")
async def info_refs(request: Request) -> Response:
    if request.query_params.get("service") != "git-upload-pack":
        raise BadRequestError("Only git-upload-pack (clone and fetch) is served; push through the Hub API")
    path = await run_in_threadpool(_repo_dir, request)
    if path is None:
        return _ask_for_credentials()
    result = await run_in_threadpool(
        subprocess.run,
        ["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(path)],
        capture_output=True,
        check=True,
    )
    body = _pkt_line("# service=git-upload-pack\n") + b"0000" + result.stdout
    return Response(
        body,
        media_type="application/x-git-upload-pack-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


@router.post("/{ns}/{name}/git-upload-pack")
@router.post("/datasets/{ns}/{name}/git-upload-pack")
@router.post("/spaces/{ns}/{name}/git-upload-pack")
async def upload_pack(request: Request) -> Response:
    path = await run_in_threadpool(_repo_dir, request)
    if path is None:
        return _ask_for_credentials()
    # The body is bounded as sent (api.bodies) and, if compressed, as expanded: a gzip bomb stops here.
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    decoder = None if encoding == "identity" else BoundedDecoder(encoding, MAX_NEGOTIATION_BYTES, what="negotiation")
    parts, total = [], 0
    async for chunk in request.stream():
        data = decoder.feed(chunk) if decoder is not None else chunk
        total += len(data)
        if total > MAX_NEGOTIATION_BYTES:
            raise PayloadTooLargeError(f"Negotiation request over {MAX_NEGOTIATION_BYTES} bytes")
        parts.append(data)
    if decoder is not None:
        decoder.finish()
    body = b"".join(parts)

    def pack() -> Iterator[bytes]:
        process = subprocess.Popen(
            ["git", "upload-pack", "--stateless-rpc", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(body)
        process.stdin.close()
        try:
            while chunk := process.stdout.read(256 * 1024):
                yield chunk
        finally:
            process.stdout.close()
            process.wait()

    return StreamingResponse(
        pack(), media_type="application/x-git-upload-pack-result", headers={"Cache-Control": "no-cache"}
    )
