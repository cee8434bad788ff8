"""``duplicate_repo``: a new repo of the caller's holding a copy of another repo's main branch (files, not history).

Git blobs are copied into the new repository; LFS objects are referenced, not copied: the duplicate gets
``repo_lfs_objects`` rows for them through ``commits.commit_files``, and each one must pass ``proofs.may_reference``
first (the caller can read the source's file content, so the source's reference allows it); a pointer whose
object the source no longer references (``permanently_delete_lfs_files``) is copied as the pointer it is, as
unavailable in the copy as in the source. A gated source is a
403 ``GatedRepo`` to those without access, a private one the usual 404. If the copy fails, the new repo is not
kept: its row rolls back with the request's transaction and its git directory is removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError
from hubstead.repos.commits import commit_files
from hubstead.repos.git import GitRepo
from hubstead.repos.lfs.objects import object_size
from hubstead.repos.lfs.pointers import parse_pointer
from hubstead.repos.lfs.proofs import may_reference
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.service import author_for, create_repo, git_dir, open_git, require_file_content_access
from hubstead.xet.cas.reader import xet_hashes


def _files(git: GitRepo, tree: pygit2.Tree, prefix: str = "") -> Iterator[tuple[str, pygit2.Oid]]:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.type_str == "tree":
            yield from _files(git, git.tree(entry.id), path + "/")
        elif entry.type_str == "blob":
            yield path, entry.id


def duplicate_repo(
    hub: Hub, session: Session, principal: Principal, source: Repo, *, target_id: str, private: bool | None
) -> Repo:
    """Create ``target_id`` (same type; private as asked, else as the source) with the source's main files.

    Raises:
        GatedRepoError: the caller may not read the source's files.
        ConflictError: ``target_id`` exists (409).
        UnauthorizedError, ForbiddenError: the caller may not create repos in the target namespace.
    """
    require_file_content_access(session, source, principal)
    src = open_git(hub, source)
    head = src.branch_head("refs/heads/main")
    if head is None:
        raise BadRequestError(f"The {source.repo_type} {source.repo_id} has no main branch to duplicate")
    repo, _ = create_repo(hub, session, principal, repo_id=target_id, repo_type=source.repo_type,
                          private=source.private if private is None else private, sdk=source.sdk)  # fmt: skip
    try:
        dst = open_git(hub, repo)
        files: list[tuple[str, pygit2.Oid]] = []
        lfs_objects: dict[str, int] = {}
        for path, blob in _files(src, src.commit(head).tree):
            data = src.read_blob(blob)
            pointer = parse_pointer(data)
            if pointer is not None and may_reference(session, principal, repo, pointer.oid):
                size = object_size(hub, session, pointer.oid)
                if size is not None:
                    lfs_objects[pointer.oid] = size
            files.append((path, dst.write_blob(data)))
        user_id = principal.user.id if principal.user is not None else None
        commit_files(hub, session, repo=repo, branch="main", files=files, lfs_objects=lfs_objects,
                     message=f"Duplicate from {source.repo_id}", author=author_for(hub, principal),
                     actor_user_id=user_id)  # fmt: skip
    except BaseException:
        shutil.rmtree(git_dir(hub, repo), ignore_errors=True)
        raise
    return repo


MAX_COPY_FILES = 1000


def check_lfs_copies(
    session: Session, principal: Principal, source: Repo, files: list[tuple[str, str | None]]
) -> list[dict[str, str]]:
    """``POST .../lfs-files/duplicate``: may these objects of ``source`` (sha256, and the Xet hash the client read)
    be copied into another repo by this caller? The failures, each ``{"sha256", "error"}``.

    Nothing is written: the commit that names the objects in the target checks ``proofs.may_reference`` again (the
    caller must still read a repo referencing them), so this answers early, in the client's words, what that
    commit would refuse: an object the source does not reference, or whose Xet hash is not the one stored.

    Raises:
        GatedRepoError: the caller may not read the source's files.
    """
    require_file_content_access(session, source, principal)
    if len(files) > MAX_COPY_FILES:
        raise BadRequestError(f"At most {MAX_COPY_FILES} files a request")
    oids = [oid for oid, _ in files]
    referenced = set(session.scalars(
        select(RepoLfsObject.oid).where(RepoLfsObject.repo_pk == source.pk, RepoLfsObject.oid.in_(set(oids)))
    ))  # fmt: skip
    hashes = xet_hashes(session, oids)
    failed = []
    for oid, xet_hash in files:
        if oid not in referenced:
            failed.append({"sha256": oid, "error": f"{source.repo_type} {source.repo_id} has no LFS file {oid}"})
        elif xet_hash is not None and hashes.get(oid) != xet_hash:
            failed.append({"sha256": oid, "error": f"the Xet hash {xet_hash} is not the one stored for {oid}"})
    return failed
