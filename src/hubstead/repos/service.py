"""Repository lifecycle and access: create, find, delete, move, settings, and who may read or write."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from hubstead.auth import audit
from hubstead.auth.models import Org, User
from hubstead.auth.service import Principal, namespace_role
from hubstead.context import Hub
from hubstead.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GatedRepoError,
    RepoNotFoundError,
    UnauthorizedError,
)
from hubstead.repos.events import record_event
from hubstead.repos.git import Author, GitRepo, repo_path
from hubstead.repos.lfs.pointers import default_gitattributes
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import REPO_TYPES, GatedAccess, Repo, RepoRedirect
from hubstead.repos.paths import split_repo_id
from hubstead.repos.visibility import can_read

GATED_MODES = ("auto", "manual")


def check_repo_type(repo_type: str | None) -> str:
    repo_type = repo_type or "model"
    if repo_type not in REPO_TYPES:
        raise BadRequestError(f"Invalid repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}")
    return repo_type


def git_dir(hub: Hub, repo: Repo) -> Path:
    return repo_path(hub.settings.repos_dir, repo.storage_key)


def open_git(hub: Hub, repo: Repo) -> GitRepo:
    return GitRepo(git_dir(hub, repo))


def author_for(hub: Hub, principal: Principal) -> Author:
    user = principal.user
    if user is None:
        return Author(name="hubstead", email=f"hubstead@{hub.settings.git_author_email_domain}")
    return Author(name=user.name, email=user.email or f"{user.name}@{hub.settings.git_author_email_domain}")


# Built once (every repo request looks its repo up; building the statement cost as much as running it).
_REPO_BY_ID = select(Repo).where(Repo.repo_type == bindparam("repo_type"), Repo.id_key == bindparam("id_key"))


def find_repo(session: Session, *, repo_type: str, repo_id: str) -> tuple[Repo | None, bool]:
    """Look a repo up by id, following the redirect a move leaves. Returns (repo, was_redirected)."""
    key = repo_id.lower()
    repo = session.scalar(_REPO_BY_ID, {"repo_type": repo_type, "id_key": key})
    if repo is not None:
        return repo, False
    redirect = session.scalar(
        select(RepoRedirect).where(RepoRedirect.repo_type == repo_type, RepoRedirect.id_key == key)
    )
    if redirect is not None:
        return session.get(Repo, redirect.repo_pk), True
    return None, False


def can_write(session: Session, principal: Principal, namespace: str) -> bool:
    return principal.can_write and namespace_role(session, principal, namespace) in ("write", "admin")


def can_admin(session: Session, principal: Principal, namespace: str) -> bool:
    return principal.can_write and namespace_role(session, principal, namespace) == "admin"


def get_readable_repo(session: Session, principal: Principal, *, repo_type: str, repo_id: str) -> Repo:
    """The repo if the caller may see it.

    Raises:
        RepoNotFoundError: missing, or private and the caller has no access (the two look the same).
    """
    repo, _ = find_repo(session, repo_type=repo_type, repo_id=repo_id)
    if repo is None or not can_read(session, principal, repo):
        raise RepoNotFoundError(_not_found_message(repo_type, repo_id))
    return repo


def get_writable_repo(session: Session, principal: Principal, *, repo_type: str, repo_id: str) -> Repo:
    """The repo if the caller may push to it. Raises RepoNotFoundError, UnauthorizedError or ForbiddenError."""
    repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=repo_id)
    require_write(session, principal, repo.namespace)
    return repo


def require_write(session: Session, principal: Principal, namespace: str) -> None:
    if principal.user is None:
        raise UnauthorizedError("You must be authenticated to write to this repository")
    if not principal.can_write:
        raise ForbiddenError("This token has read access only; a write token is needed")
    if not can_write(session, principal, namespace):
        raise ForbiddenError(f"You don't have the rights to write in the namespace {namespace!r}")


def require_admin(session: Session, principal: Principal, namespace: str) -> None:
    require_write(session, principal, namespace)
    if not can_admin(session, principal, namespace):
        raise ForbiddenError(f"You need the admin role in {namespace!r} to do this")


def access_request_status(session: Session, repo: Repo, principal: Principal) -> str | None:
    """The caller's access request to ``repo``: ``pending``, ``accepted``, ``rejected`` or None (none made)."""
    if principal.user is None:
        return None
    return session.scalar(
        select(GatedAccess.status).where(GatedAccess.repo_pk == repo.pk, GatedAccess.user_id == principal.user.id)
    )


def has_file_content_access(session: Session, repo: Repo, principal: Principal) -> bool:
    """Whether the caller may read a readable repo's file bytes (see ``require_file_content_access``)."""
    if not repo.gated:
        return True
    if namespace_role(session, principal, repo.namespace) is not None:
        return True
    return access_request_status(session, repo, principal) == "accepted"


def require_file_content_access(session: Session, repo: Repo, principal: Principal) -> None:
    """The one check before any route returns a file's bytes or rendered content from a repo the caller can read.

    Gated repos serve file content only to members of the namespace (and site admins) and to users whose
    access request was accepted; the card (README metadata and text on the repo page) and the file list stay
    visible to everyone, as on the Hub.

    Raises:
        GatedRepoError: 403 ``GatedRepo`` when the repo is gated and the caller has no accepted access.
    """
    if has_file_content_access(session, repo, principal):
        return
    raise GatedRepoError(
        f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must have access to it and be authenticated "
        "to access it. Please log in and request access."
    )


def request_access(session: Session, principal: Principal, repo: Repo) -> str:
    """Ask for access to a gated repo; ``auto`` gating accepts at once. Returns the request's status."""
    if principal.user is None:
        raise UnauthorizedError("Log in to request access")
    if not repo.gated:
        raise BadRequestError("This repository is not gated")
    record = session.get(GatedAccess, (repo.pk, principal.user.id))
    if record is None:
        record = GatedAccess(repo_pk=repo.pk, user_id=principal.user.id, status="pending")
        session.add(record)
    if repo.gated == "auto":
        record.status = "accepted"
    session.flush()
    return record.status


def _not_found_message(repo_type: str, repo_id: str) -> str:
    return (
        f"Repository Not Found for {repo_type} {repo_id}. Please make sure you specified the correct `repo_id` and "
        "`repo_type`. If you are trying to access a private or gated repo, make sure you are authenticated."
    )


def namespace_exists(session: Session, namespace: str) -> bool:
    key = namespace.lower()
    return bool(
        session.scalar(select(User.id).where(User.name_key == key))
        or session.scalar(select(Org.id).where(Org.name_key == key))
    )


def canonical_namespace(session: Session, namespace: str) -> str:
    key = namespace.lower()
    user = session.scalar(select(User.name).where(User.name_key == key))
    org = session.scalar(select(Org.name).where(Org.name_key == key))
    return user or org or namespace


def create_repo(
    hub: Hub,
    session: Session,
    principal: Principal,
    *,
    repo_id: str,
    repo_type: str,
    private: bool = False,
    sdk: str | None = None,
    exist_ok: bool = False,
) -> tuple[Repo, bool]:
    """Create a repo with an initial commit holding the default ``.gitattributes``.

    Returns (repo, created). Raises ConflictError when it exists (unless ``exist_ok`` and the caller can
    read it), ForbiddenError outside the caller's namespaces.
    """
    namespace, name = split_repo_id(repo_id)
    if not namespace_exists(session, namespace):
        if principal.user is None:
            raise UnauthorizedError("You must be authenticated to create a repository")
        raise ForbiddenError(f"Namespace {namespace!r} does not exist")
    require_write(session, principal, namespace)
    namespace = canonical_namespace(session, namespace)
    existing, redirected = find_repo(session, repo_type=repo_type, repo_id=f"{namespace}/{name}")
    if existing is not None and not redirected:
        if exist_ok:
            return existing, False
        raise ConflictError("You already created this repo")
    if existing is not None:
        # The id was freed by a move: creating a new repo under it takes the name back.
        session.execute(
            delete(RepoRedirect).where(
                RepoRedirect.repo_type == repo_type, RepoRedirect.id_key == f"{namespace}/{name}".lower()
            )
        )
    storage_key = uuid.uuid4().hex
    repo = Repo(
        repo_type=repo_type,
        namespace=namespace,
        name=name,
        id_key=f"{namespace}/{name}".lower(),
        storage_key=storage_key,
        private=bool(private),
        sdk=sdk,
        tags=[],
        languages=[],
        base_models=[],
        datasets=[],
    )
    path = repo_path(hub.settings.repos_dir, storage_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    git = GitRepo.init(path)
    editor = git.editor(None)
    editor.put_file(".gitattributes", git.write_blob(default_gitattributes(repo_type).encode()))
    tree = editor.write(git.repo)
    commit = git.write_commit(tree=tree, parents=[], author=author_for(hub, principal), message="initial commit")
    with repo_write_lock(path):
        git.update_ref("refs/heads/main", commit, message="initial commit")
    repo.sha = str(commit)
    session.add(repo)
    session.flush()
    record_event(session, repo, scope="repo", action="create", actor_user_id=_actor(principal))
    _audit(session, principal, "repo.create", repo, private=repo.private)
    return repo, True


def delete_repo(hub: Hub, session: Session, principal: Principal, *, repo_id: str, repo_type: str) -> None:
    """Delete a repo and its git directory. LFS objects stay (other repos may share them)."""
    repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=repo_id)
    require_admin(session, principal, repo.namespace)
    path = git_dir(hub, repo)
    record_event(session, repo, scope="repo", action="delete", actor_user_id=_actor(principal))
    _audit(session, principal, "repo.delete", repo)
    session.delete(repo)
    session.flush()
    trash = path.with_name(path.name + f".deleted-{uuid.uuid4().hex[:8]}")
    if path.exists():
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    # Derived files kept under the repo's storage key: the viewer's DuckDB files, inference snapshots.
    for derived in (hub.settings.data_dir / "viewer", hub.settings.data_dir / "inference" / "snapshots"):
        shutil.rmtree(derived / repo.storage_key, ignore_errors=True)


def move_repo(session: Session, principal: Principal, *, from_id: str, to_id: str, repo_type: str) -> Repo:
    """Rename a repo (possibly to another namespace the caller can write); the old id redirects."""
    repo = get_readable_repo(session, principal, repo_type=repo_type, repo_id=from_id)
    require_admin(session, principal, repo.namespace)
    namespace, name = split_repo_id(to_id)
    if not namespace_exists(session, namespace):
        raise ForbiddenError(f"Namespace {namespace!r} does not exist")
    require_write(session, principal, namespace)
    namespace = canonical_namespace(session, namespace)
    new_key = f"{namespace}/{name}".lower()
    clash, redirected = find_repo(session, repo_type=repo_type, repo_id=new_key)
    if clash is not None and not redirected and clash.pk != repo.pk:
        raise ConflictError(f"A {repo_type} repository called {namespace}/{name} already exists")
    session.execute(delete(RepoRedirect).where(RepoRedirect.repo_type == repo_type, RepoRedirect.id_key == new_key))
    if repo.id_key != new_key:
        session.add(RepoRedirect(repo_type=repo_type, id_key=repo.id_key, repo_pk=repo.pk))
    moved_to = {"name": f"{namespace}/{name}", "owner": {"name": namespace}}
    record_event(session, repo, scope="repo", action="move", actor_user_id=_actor(principal), moved_to=moved_to)
    old_namespace, old_id = repo.namespace, repo.repo_id
    repo.namespace, repo.name, repo.id_key = namespace, name, new_key
    for concerned in {old_namespace.lower(): old_namespace, namespace.lower(): namespace}.values():  # both owners
        audit.record(session, actor=principal, action="repo.move", namespace=concerned, target=repo.repo_id,
                     detail={"repoType": repo.repo_type, "old": old_id, "new": repo.repo_id})  # fmt: skip
    session.flush()
    return repo


def update_settings(
    session: Session,
    principal: Principal,
    repo: Repo,
    *,
    private: bool | None,
    gated: str | bool | None,
    discussions_disabled: bool | None = None,
) -> Repo:
    """Change visibility, gating and whether discussions are open. ``gated`` is ``"auto"``, ``"manual"`` or
    False."""
    require_admin(session, principal, repo.namespace)
    old_private, old_gated = repo.private, repo.gated
    if discussions_disabled is not None:
        repo.discussions_disabled = discussions_disabled
    if private is not None:
        repo.private = bool(private)
    if gated is not None:
        if gated is False or gated == "false" or gated == "":
            repo.gated = None
        elif gated in GATED_MODES:
            repo.gated = str(gated)
        else:
            raise BadRequestError("gated must be 'auto', 'manual' or false")
    session.flush()
    record_event(session, repo, scope="repo.config", action="update", actor_user_id=_actor(principal))
    if repo.private != old_private:
        _audit(session, principal, "repo.visibility", repo, old=old_private, new=repo.private)
    if repo.gated != old_gated:
        _audit(session, principal, "repo.gating", repo, old=old_gated or False, new=repo.gated or False)
    return repo


def _audit(session: Session, principal: Principal, action: str, repo: Repo, **detail: object) -> None:
    """An audit event about ``repo`` in its namespace (``auth.audit``)."""
    audit.record(session, actor=principal, action=action, namespace=repo.namespace, target=repo.repo_id,
                 detail={"repoType": repo.repo_type, **detail})  # fmt: skip


def _actor(principal: Principal) -> int | None:
    return principal.user.id if principal.user is not None else None
