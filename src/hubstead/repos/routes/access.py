"""What a repo-scoped route needs first: the repo type and id from the path, the caller, the repo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from fastapi import Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from hubstead.api.deps import get_caller, get_hub, get_principal, raw_segments
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, RepoNotFoundError
from hubstead.repos.models import Repo
from hubstead.repos.service import can_read, check_repo_type, find_repo, get_readable_repo, get_writable_repo

PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass
class RepoRequest:
    """A request aimed at one repo: who asks, which repo, and the path segments after the repo id."""

    hub: Hub
    session: Session
    principal: Principal
    repo_type: str
    repo_id: str
    tail: list[str]  # percent-decoded segments after the repo id (and after the action word)

    def readable(self) -> Repo:
        """The repo, if the caller may see it (else the same 404 as a missing repo)."""
        return get_readable_repo(self.session, self.principal, repo_type=self.repo_type, repo_id=self.repo_id)

    def writable(self) -> Repo:
        """The repo, if the caller may see it and push to it (404, then 401/403 in the Hub's words)."""
        return get_writable_repo(self.session, self.principal, repo_type=self.repo_type, repo_id=self.repo_id)


def api_repo_request(request: Request, session: Session, *, action_segments: int = 1) -> RepoRequest:
    """Parse ``/api/{type}s/{ns}/{name}/{action...}/{tail...}`` from the raw path."""
    segments = raw_segments(request)
    if len(segments) < 4 or segments[1] not in PLURALS:
        raise BadRequestError("Invalid repo URL")
    repo_type = check_repo_type(PLURALS[segments[1]])
    return RepoRequest(
        hub=get_hub(request),
        session=session,
        principal=get_principal(request, session),
        repo_type=repo_type,
        repo_id=f"{segments[2]}/{segments[3]}",
        tail=segments[4 + action_segments :],
    )


def split_prefixed(segments: list[str]) -> tuple[str, str, list[str]]:
    """``[datasets|spaces,] ns, name, *tail`` (a web or file URL) into (repo type, repo id, tail).

    A trailing ``.git`` on the name (git and git-lfs URLs) is dropped."""
    repo_type = "model"
    if len(segments) > 2 and segments[0] in ("datasets", "spaces"):
        repo_type = PLURALS[segments[0]]
        segments = segments[1:]
    if len(segments) < 2:
        raise BadRequestError("Invalid repo URL")
    return repo_type, f"{segments[0]}/{segments[1].removesuffix('.git')}", segments[2:]


def file_repo_request(request: Request, session: Session) -> RepoRequest:
    """Parse ``/[datasets/|spaces/]{ns}/{name}/resolve/{rev}/{path...}`` from the raw path."""
    repo_type, repo_id, tail = split_prefixed(raw_segments(request))
    reading = request.method in ("GET", "HEAD")
    return RepoRequest(
        hub=get_hub(request),
        session=session,
        principal=get_caller(request, session, browser="session") if reading else get_principal(request, session),
        repo_type=repo_type,
        repo_id=repo_id,
        tail=tail[1:],
    )


def redirect_if_moved(request: Request, rr: RepoRequest) -> RedirectResponse | None:
    """A moved repo's old id answers with a redirect to the same URL under the new id."""
    repo, redirected = find_repo(rr.session, repo_type=rr.repo_type, repo_id=rr.repo_id)
    if repo is None or not redirected or not can_read(rr.session, rr.principal, repo):
        return None
    old_ns, old_name = rr.repo_id.split("/")
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    new_path = raw.replace(f"/{old_ns}/{old_name}/", f"/{repo.namespace}/{repo.name}/", 1)
    if raw.endswith(f"/{old_ns}/{old_name}"):
        new_path = raw[: -len(f"{old_ns}/{old_name}")] + f"{repo.namespace}/{repo.name}"
    query = request.url.query
    return RedirectResponse(new_path + (f"?{query}" if query else ""), status_code=307)


def refuse_unqualified_id(request: Request, session: Session, *, repo_type: str, name: str) -> NoReturn:
    """A repo id without a namespace (``gpt2``): every repo here is ``namespace/name``, so the lookup finds none
    and the caller gets the Hub's typed 404 ``RepoNotFound`` (``repo_exists`` answers False, ``file_exists`` too),
    never a generic page. An invalid token is still a 401, as on every repo route."""
    principal = get_principal(request, session)
    repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=name)  # raises RepoNotFoundError
    raise RepoNotFoundError(f"{repo.repo_type} {repo.repo_id} has no namespace")  # unreachable: ids carry one
