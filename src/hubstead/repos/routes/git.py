"""git over smart HTTP: ``git clone <hub>/<ns>/<name>`` (git's own ``upload-pack`` on the bare repository, with
``git lfs`` for large files) and ``git push`` with a token as the password (``repos.receive``: the pack is quarantined
and every ref checked as the API checks it before anything moves).

A push is authorised before its body is read (writers, and readers with a write token who may push to their own
pull requests); a refusal then is plain text, which git prints as ``remote: ...``; a refusal of one ref is its
``ng`` line in the report, which ``git push`` prints beside the ref.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from typing import IO

import pygit2
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hubstead.api.deps import get_hub, get_principal, raw_segments
from hubstead.decompress import BoundedDecoder
from hubstead.discussions.models import Discussion
from hubstead.discussions.pulls import get_pull, require_push, require_upload
from hubstead.discussions.service import add_event, announce
from hubstead.errors import BadRequestError, HubError, PayloadTooLargeError, RepoNotFoundError, UnauthorizedError
from hubstead.repos import receive as receiving
from hubstead.repos.routes.access import split_prefixed
from hubstead.repos.service import get_readable_repo, git_dir, open_git, require_file_content_access

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
    service = request.query_params.get("service")
    if service == "git-receive-pack":
        return await push_refs(request)
    if service != "git-upload-pack":
        raise BadRequestError("Only git-upload-pack (clone, fetch) and git-receive-pack (push) are served")
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


def _plain(message: str, status_code: int) -> Response:
    """A refusal git prints (``remote: <message>``): it shows the body of a text/plain error."""
    return Response(message.rstrip("\n") + "\n", status_code=status_code, media_type="text/plain")


def _push_repo(request: Request) -> Response | None:
    """None if the caller may push to the repo in the URL (checked before the body is read), else the answer:
    a 401 asking for credentials, or the refusal in plain text."""
    hub = get_hub(request)
    repo_type, repo_id, _ = split_prefixed(raw_segments(request))
    with hub.db.session() as session:
        try:
            principal = get_principal(request, session)
        except UnauthorizedError:
            return _ask_for_credentials()
        if principal.user is None:
            return _ask_for_credentials()
        try:
            repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=repo_id)
            require_upload(session, principal, repo)
        except HubError as exc:
            return _plain(exc.message, exc.status_code)
    return None


async def push_refs(request: Request) -> Response:
    refused = await run_in_threadpool(_push_repo, request)
    if refused is not None:
        return refused
    path = await run_in_threadpool(_repo_dir, request)
    if path is None:
        return _ask_for_credentials()
    body = _pkt_line("# service=git-receive-pack\n") + b"0000" + await run_in_threadpool(receiving.advertisement, path)
    return Response(
        body, media_type="application/x-git-receive-pack-advertisement", headers={"Cache-Control": "no-cache"}
    )


async def _spool_body(request: Request, limit: int) -> IO[bytes]:
    """The request body in a temporary file (in memory while small), bounded as sent and, if compressed, as
    expanded."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    decoder = None if encoding == "identity" else BoundedDecoder(encoding, limit, what="push")
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - the caller closes it
    total = 0
    try:
        async for chunk in request.stream():
            data = decoder.feed(chunk) if decoder is not None else chunk
            total += len(data)
            if total > limit:
                raise PayloadTooLargeError(f"Push over {limit} bytes: push large files with git lfs")
            spool.write(data)
        if decoder is not None:
            spool.write(decoder.finish() or b"")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _receive(request: Request, body: IO[bytes]) -> bytes:
    hub = get_hub(request)
    repo_type, repo_id, _ = split_prefixed(raw_segments(request))
    commands = receiving.parse_commands(body)
    with hub.db.session() as session:
        principal = get_principal(request, session)
        repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=repo_id)
        pulls: dict[str, Discussion | None] = {}

        def pr_rule(update: receiving.RefUpdate) -> None:
            pulls[update.ref] = require_push(session, principal, repo, revision=update.ref, create_pr=False)

        def pr_landed(update: receiving.RefUpdate) -> None:
            pull = pulls.get(update.ref) or get_pull(session, repo, int(update.ref.removeprefix("refs/pr/")))
            git = open_git(hub, repo)
            summary = git.repo[update.new].peel(pygit2.Commit).message.strip()
            subject = summary.splitlines()[0] if summary else "Upload files"
            add_event(session, pull, type="commit", author=principal.user, data={"subject": subject, "oid": update.new})
            if pull.status == "draft":
                pull.status = "open"
                add_event(session, pull, type="status-change", author=principal.user, data={"status": "open"})
            announce(session, repo, pull, "update", principal)

        outcome = receiving.receive(
            hub, session, principal, repo=repo, commands=commands, pack=body, pr_rule=pr_rule, pr_landed=pr_landed
        )
    return receiving.report(outcome, commands.capabilities)


@router.post("/{ns}/{name}/git-receive-pack")
@router.post("/datasets/{ns}/{name}/git-receive-pack")
@router.post("/spaces/{ns}/{name}/git-receive-pack")
async def receive_pack(request: Request) -> Response:
    refused = await run_in_threadpool(_push_repo, request)
    if refused is not None:
        return refused
    body = await _spool_body(request, get_hub(request).settings.max_commit_body_bytes)
    try:
        answer = await run_in_threadpool(_receive, request, body)
    except HubError as exc:
        return _plain(exc.message, exc.status_code)
    finally:
        body.close()
    return Response(answer, media_type="application/x-git-receive-pack-result", headers={"Cache-Control": "no-cache"})
