"""``hubstead import``: commit a local folder as a repo, the way an air-gapped team seeds its hub.

Follows symlinks (a Hugging Face cache snapshot is a folder of links into ``blobs/``), skips ``.git`` and
the ``.cache`` folder ``hf download --local-dir`` leaves, and sends each file to LFS or git by the same
rule as preupload. LFS bytes are hashed while copied into the blob store, never read whole into memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from hubstead.auth.models import Membership, Org, User
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, NotFoundError
from hubstead.repos.commits import commit_files
from hubstead.repos.ingest import ingest_files, rules_for
from hubstead.repos.lfs.pointers import LfsRules
from hubstead.repos.paths import split_repo_id
from hubstead.repos.refs import create_branch
from hubstead.repos.service import author_for, check_repo_type, create_repo, find_repo, open_git

SKIPPED_DIRS = {".git", ".cache"}


@dataclass
class ImportResult:
    commit: str
    files: int
    lfs_files: int


def _acting_user(hub: Hub, session, namespace: str, name: str | None) -> User:  # type: ignore[no-untyped-def]
    if name:
        user = session.scalar(select(User).where(User.name_key == name.lower()))
        if user is None:
            raise NotFoundError(f"User {name!r} not found")
        return user
    user = session.scalar(select(User).where(User.name_key == namespace.lower()))
    if user is not None:
        return user
    owner = session.scalar(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .join(Org, Org.id == Membership.org_id)
        .where(Org.name_key == namespace.lower(), Membership.role == "admin")
    )
    if owner is not None:
        return owner
    admin = session.scalar(select(User).where(User.is_admin.is_(True)))
    if admin is None:
        raise NotFoundError(f"Namespace {namespace!r} has no user or org admin to act as; pass --user")
    return admin


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(path in repo, file)`` for every file under ``folder`` (links followed, ``.git``/``.cache`` skipped)."""
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(root) / name
            yield path.relative_to(folder).as_posix(), path


def import_folder(
    hub: Hub,
    folder: Path,
    *,
    repo_id: str,
    repo_type: str = "model",
    revision: str = "main",
    as_user: str | None = None,
) -> ImportResult:
    """Commit every file under ``folder`` to ``revision`` of the repo, creating the repo if needed."""
    repo_type = check_repo_type(repo_type)
    if not folder.is_dir():
        raise BadRequestError(f"{folder} is not a folder")
    namespace, _ = split_repo_id(repo_id)
    with hub.db.session() as session:
        user = _acting_user(hub, session, namespace, as_user)
        principal = Principal(user=user, token_role="write")
        repo, _ = find_repo(session, repo_type=repo_type, repo_id=repo_id)
        if repo is None:
            repo, _ = create_repo(hub, session, principal, repo_id=repo_id, repo_type=repo_type)
        git = open_git(hub, repo)
        attributes = folder / ".gitattributes"
        rules = LfsRules(attributes.read_text(errors="replace")) if attributes.is_file() else rules_for(git, repo_type)
        ingested = ingest_files(hub, git, rules, _walk(folder))
        files, lfs_objects = ingested.files, ingested.lfs_objects
        if not files:
            raise BadRequestError(f"{folder} holds no files")
        if revision != "main" and git.branch_head(f"refs/heads/{revision}") is None:
            create_branch(hub, repo, branch=revision, starting_point="main")
        commit = commit_files(
            hub,
            session,
            repo=session.merge(repo) if repo not in session else repo,
            branch=revision,
            files=files,
            lfs_objects=lfs_objects,
            message=f"Import {folder.name}",
            author=author_for(hub, principal),
        )
        return ImportResult(commit=commit, files=len(files), lfs_files=len(lfs_objects))
