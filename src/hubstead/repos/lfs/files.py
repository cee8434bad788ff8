"""A repo's LFS files: listing them (``list_lfs_files``) and deleting them for good (``permanently_delete_lfs_files``).

A repo's LFS files are the objects its revisions reference (``repo_lfs_objects``, written by commits). Each is
listed with where it was found (a path and the ref whose history holds it: branches first, ``main`` first of
all), when it was pushed and by whom (the uploader's proof, else the commit that brought it), paged by sha256.
Repo writers list; repo admins delete.

Deleting a file means the repo stops referencing the object: its ``repo_lfs_objects`` row and the repo's upload
proofs go, so neither a download from this repo (``resolve``, the git-LFS batch, Xet reconstruction all ask
``repo_lfs_objects``) nor a commit naming it without sending the bytes again gets it. The store is shared by
content across repos, so the bytes leave the blob store only when no other repo references or has proven them
(``drop_unreferenced_bytes``, after the deletion is committed). The git history keeps its pointer files: a
download of one is a 404 EntryNotFound.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pygit2
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.dates import from_timestamp
from hubstead.errors import BadRequestError, EntryNotFoundError
from hubstead.repos.git import GitRepo
from hubstead.repos.lfs.pointers import MAX_POINTER_SIZE, parse_pointer
from hubstead.repos.models import LfsUploadProof, Repo, RepoLfsObject
from hubstead.repos.service import open_git, require_admin, require_write

PAGE_SIZE = 1000
MAX_DELETIONS = 1000  # the client sends its deletions in batches of 1000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LfsFile:
    oid: str
    size: int
    filename: str  # a path that holds it ("" when no ref's history does any more)
    ref: str | None
    pushed_at: datetime
    pusher: User | None


@dataclass(frozen=True)
class _Sighting:
    path: str
    ref: str
    at: datetime


def list_lfs_files(
    hub: Hub, session: Session, principal: Principal, repo: Repo, *, after: str | None, limit: int = PAGE_SIZE
) -> tuple[list[LfsFile], bool]:
    """One page of the repo's LFS files in sha256 order, after ``after``; and whether more follow.

    Raises:
        UnauthorizedError / ForbiddenError: the caller may not write to the repo.
    """
    require_write(session, principal, repo.namespace)
    query = select(RepoLfsObject).where(RepoLfsObject.repo_pk == repo.pk)
    if after is not None:
        query = query.where(RepoLfsObject.oid > after)
    rows = list(session.scalars(query.order_by(RepoLfsObject.oid).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return [], False
    oids = {row.oid for row in rows}
    sightings = locate(open_git(hub, repo), oids)
    pushes: dict[str, tuple[datetime, User]] = {}
    proofs = session.execute(
        select(LfsUploadProof.oid, LfsUploadProof.created_at, User)
        .join(User, User.id == LfsUploadProof.user_id)
        .where(LfsUploadProof.repo_pk == repo.pk, LfsUploadProof.oid.in_(oids))
        .order_by(LfsUploadProof.created_at)
    )
    for oid, created_at, user in proofs:
        pushes.setdefault(oid, (created_at, user))  # the first upload
    files = []
    for row in rows:
        seen = sightings.get(row.oid)
        push = pushes.get(row.oid)
        pushed_at = push[0] if push else seen.at if seen else repo.created_at
        files.append(
            LfsFile(
                oid=row.oid,
                size=row.size,
                filename=seen.path if seen else "",
                ref=seen.ref if seen else None,
                pushed_at=pushed_at,
                pusher=push[1] if push else None,
            )
        )
    return files, more


def _ref_order(name: str) -> tuple[int, str]:
    for rank, prefix in enumerate(("refs/heads/main", "refs/heads/", "refs/tags/", "refs/pr/")):
        if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
            return rank, name
    return 4, name


def locate(git: GitRepo, oids: set[str]) -> dict[str, _Sighting]:
    """Where each of ``oids`` first appears: a path holding its pointer, the ref, the commit's date.

    Each ref's history is walked oldest first, and a tree or blob already read is skipped, so the walk reads every
    distinct tree and pointer-sized blob of the repo once at most and stops when all are found."""
    repo = git.repo
    found: dict[str, _Sighting] = {}
    seen_trees: set[pygit2.Oid] = set()
    seen_blobs: set[pygit2.Oid] = set()

    def scan(tree: pygit2.Tree, prefix: str, ref: str, at: datetime) -> None:
        for entry in tree:
            if entry.type_str == "tree":
                if entry.id not in seen_trees:
                    seen_trees.add(entry.id)
                    scan(repo[entry.id], f"{prefix}{entry.name}/", ref, at)  # type: ignore[arg-type]
            elif entry.type_str == "blob" and entry.id not in seen_blobs:
                seen_blobs.add(entry.id)
                if repo.odb.read_header(entry.id)[1] > MAX_POINTER_SIZE:
                    continue
                pointer = parse_pointer(repo[entry.id].read_raw())
                if pointer is not None and pointer.oid in oids and pointer.oid not in found:
                    found[pointer.oid] = _Sighting(path=f"{prefix}{entry.name}", ref=ref, at=at)

    for name in sorted(repo.references, key=_ref_order):
        try:
            head = repo.references[name].peel(pygit2.Commit)
        except (pygit2.GitError, ValueError, KeyError):
            continue
        order = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
        for commit in repo.walk(head.id, order):
            if commit.tree_id in seen_trees:
                continue
            seen_trees.add(commit.tree_id)
            scan(commit.tree, "", name, from_timestamp(commit.commit_time))
            if len(found) == len(oids):
                return found
    return found


def check_deletions(shas: object) -> list[str]:
    """The sha256s of a ``permanently_delete_lfs_files`` body (``deletions.sha``), checked."""
    if not isinstance(shas, list) or not shas:
        raise BadRequestError("'deletions.sha' must be a non-empty list of sha256 object ids")
    if len(shas) > MAX_DELETIONS:
        raise BadRequestError(f"At most {MAX_DELETIONS} LFS files may be deleted in one request")
    if not all(isinstance(sha, str) and _SHA256.match(sha) for sha in shas):
        raise BadRequestError("Every entry of 'deletions.sha' must be a sha256 (64 lower-case hex digits)")
    return list(dict.fromkeys(shas))


def delete_lfs_files(session: Session, principal: Principal, repo: Repo, shas: list[str]) -> list[str]:
    """Make the repo stop referencing these objects. All or nothing: a sha256 that is not one of the repo's LFS
    files refuses the whole request. Returns the objects no repo references or has proven any more (their bytes
    may go once this session is committed: ``drop_unreferenced_bytes``).

    Raises:
        UnauthorizedError / ForbiddenError: the caller is not an admin of the repo.
        EntryNotFoundError: some sha256 is not an LFS file of this repo.
    """
    require_admin(session, principal, repo.namespace)
    present = set(
        session.scalars(
            select(RepoLfsObject.oid).where(RepoLfsObject.repo_pk == repo.pk, RepoLfsObject.oid.in_(shas))
        )
    )
    missing = [sha for sha in shas if sha not in present]
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise EntryNotFoundError(f"Not an LFS file of {repo.repo_type} {repo.repo_id}: {listed}; nothing was deleted")
    session.execute(delete(RepoLfsObject).where(RepoLfsObject.repo_pk == repo.pk, RepoLfsObject.oid.in_(shas)))
    session.execute(delete(LfsUploadProof).where(LfsUploadProof.repo_pk == repo.pk, LfsUploadProof.oid.in_(shas)))
    session.flush()
    return [sha for sha in shas if not referenced(session, sha)]


def referenced(session: Session, oid: str) -> bool:
    """Whether any repo's revisions reference ``oid`` or any user has proven its bytes for a repo."""
    return bool(
        session.scalar(select(exists().where(RepoLfsObject.oid == oid)))
        or session.scalar(select(exists().where(LfsUploadProof.oid == oid)))
    )


def drop_unreferenced_bytes(hub: Hub, oids: Iterable[str]) -> int:
    """Remove from the blob store the objects that are still referenced by no repo (checked again, in a fresh
    session, just before each removal). Returns how many left the store."""
    removed = 0
    with hub.db.session() as session:
        for oid in oids:
            if not referenced(session, oid) and hub.blobs.delete(oid):
                removed += 1
    return removed
