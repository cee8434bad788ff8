"""Commits: parse the client's NDJSON payload and apply its operations to a branch atomically.

The order matters for crash safety: file blobs and trees are written to the object database first
(unreferenced objects are harmless), every LFS object is checked to be stored, and only then, under the
repo's write lock, does the branch move, by one atomic ref update. A crash anywhere leaves the branch on
its old commit or its new one.

``prepare_commit`` (parse, write blobs, check LFS proofs) and ``apply_commit`` (move one ref) are the two halves;
who may commit where, and pull requests, are ``discussions.pulls.commit``'s business, the one caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

import pygit2
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.db import on_rollback
from hubstead.errors import (
    BadRequestError,
    EntryNotFoundError,
    LfsObjectMissingError,
    RevisionNotFoundError,
    StaleParentCommitError,
)
from hubstead.repos.cards import check_card_header
from hubstead.repos.events import record_event
from hubstead.repos.git import Author, GitRepo
from hubstead.repos.index import on_main_moved
from hubstead.repos.lfs.objects import object_size
from hubstead.repos.lfs.pointers import LfsPointer
from hubstead.repos.lfs.proofs import may_reference
from hubstead.repos.lfs.uploads import NOT_PROVEN
from hubstead.repos.locks import repo_write_lock
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.packs import BlobSink
from hubstead.repos.paths import normalize_folder_path, normalize_path_in_repo, validate_branch_name
from hubstead.repos.quotas import require_room
from hubstead.repos.service import author_for, git_dir, open_git

log = logging.getLogger(__name__)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class AddFile:
    path: str
    blob: pygit2.Oid  # already written to the object database


@dataclass
class AddLfsFile:
    path: str
    oid: str
    size: int | None  # None for a copy of an object the hub already stores


@dataclass
class DeleteFile:
    path: str


@dataclass
class DeleteFolder:
    path: str


Operation = AddFile | AddLfsFile | DeleteFile | DeleteFolder


@dataclass
class CommitRequest:
    has_header: bool = False
    summary: str = ""
    description: str = ""
    parent_commit: str | None = None
    operations: list[Operation] = field(default_factory=list)


@dataclass
class CommitResult:
    commit_oid: str
    branch: str
    parent: str | None


def _require_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequestError(f"Invalid commit payload: {what} must be a string")
    return value


def _parse_line(request: CommitRequest, sink: BlobSink, item: Any, line_number: int) -> None:
    if not isinstance(item, dict) or "key" not in item or not isinstance(item.get("value"), dict):
        raise BadRequestError(f"Invalid commit payload: line {line_number} must be an object with 'key' and 'value'")
    key, value = item["key"], item["value"]
    if key == "header":
        request.has_header = True
        request.summary = str(value.get("summary") or "")
        request.description = str(value.get("description") or "")
        parent = value.get("parentCommit")
        if parent is not None:
            parent = _require_str(parent, "parentCommit")
            if not _COMMIT_RE.match(parent):
                raise BadRequestError(f"Invalid parentCommit {parent!r}: expected a 40-character commit id")
            request.parent_commit = parent
    elif key == "file":
        path = normalize_path_in_repo(_require_str(value.get("path"), "file path"))
        encoding = value.get("encoding", "base64")
        content = _require_str(value.get("content", ""), "file content")
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequestError(f"Invalid base64 content for {path!r}") from exc
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            raise BadRequestError(f"Unsupported encoding {encoding!r} for {path!r}")
        if path == "README.md":
            check_card_header(data)  # an alias bomb is refused before anything is written
        request.operations.append(AddFile(path=path, blob=sink.add(data)))
    elif key == "lfsFile":
        path = normalize_path_in_repo(_require_str(value.get("path"), "lfsFile path"))
        algo = value.get("algo", "sha256")
        oid = _require_str(value.get("oid"), "lfsFile oid").lower()
        if algo != "sha256" or not _SHA256_RE.match(oid):
            raise BadRequestError(f"Invalid LFS oid for {path!r}: expected a sha256 hex digest")
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise BadRequestError(f"Invalid LFS size for {path!r}")
        request.operations.append(AddLfsFile(path=path, oid=oid, size=size))
    elif key == "deletedFile":
        request.operations.append(DeleteFile(path=normalize_path_in_repo(_require_str(value.get("path"), "path"))))
    elif key == "deletedFolder":
        request.operations.append(DeleteFolder(path=normalize_folder_path(_require_str(value.get("path"), "path"))))
    else:
        raise BadRequestError(f"Invalid commit payload: unknown key {key!r} on line {line_number}")


def _loads(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise BadRequestError(f"Invalid commit payload: {where} is nested too deeply") from exc
    except ValueError as exc:
        raise BadRequestError(f"Invalid commit payload: {where} is not valid JSON") from exc


def parse_commit_body(body: IO[bytes], sink: BlobSink) -> CommitRequest:
    """Read an NDJSON commit body (or the legacy single JSON object) line by line.

    Inline files are decoded and handed to ``sink`` as they are read, so the body is never held whole.

    Raises:
        BadRequestError: a line that is not JSON (or nests too deeply to parse), no header line, or no
            operations: the Hub refuses empty commits.
    """
    request = CommitRequest()
    first = body.readline()
    stripped = first.strip()
    if stripped.startswith(b"{") and b'"key"' not in stripped[:200]:
        # Legacy JSON body: {"summary", "description", "parentCommit", "files", "lfsFiles", "deletedFiles"}.
        _parse_legacy(request, sink, _loads(first + body.read(), "the body"))
    else:
        line_number = 0
        line = first
        while line:
            line_number += 1
            if line.strip():
                _parse_line(request, sink, _loads(line, f"line {line_number}"), line_number)
            line = body.readline()
    if not request.has_header:
        raise BadRequestError("Invalid commit payload: no header line (expected {\"key\": \"header\", ...} first)")
    if not request.operations:
        raise BadRequestError("Invalid commit payload: no operations, nothing to commit")
    return request


def _parse_legacy(request: CommitRequest, sink: BlobSink, payload: Any) -> None:
    if not isinstance(payload, dict):
        raise BadRequestError("Invalid commit payload: expected an object")
    _parse_line(request, sink, {"key": "header", "value": payload}, 0)
    for key, list_key in (("file", "files"), ("lfsFile", "lfsFiles"), ("deletedFile", "deletedFiles")):
        for value in payload.get(list_key) or []:
            _parse_line(request, sink, {"key": key, "value": value}, 0)


def commit_ref(git: GitRepo, revision: str) -> str:
    """The ref a commit to ``revision`` moves: a branch (``main``, ``refs/heads/x``) or a PR's ``refs/pr/N``.

    Raises:
        RevisionNotFoundError: no such branch or pull request.
        BadRequestError: a tag, a commit id or another kind of ref (only branches and PRs accept commits).
    """
    if revision.startswith("refs/pr/"):
        ref = revision
    elif revision.startswith("refs/heads/"):
        ref = revision
    elif revision.startswith("refs/"):
        raise BadRequestError(f"Cannot commit to {revision!r}: only branches accept commits")
    else:
        ref = f"refs/heads/{revision}"
    if git.branch_head(ref) is None:
        if git.reference(f"refs/tags/{revision}") is not None or re.match(r"^[0-9a-f]{7,40}$", revision):
            raise BadRequestError(f"Cannot commit to {revision!r}: it is not a branch")
        raise RevisionNotFoundError(f"Invalid rev id: {revision}")
    return ref


def _lfs_sizes(hub: Hub, session: Session, principal: Principal, repo: Repo, request: CommitRequest) -> dict[str, int]:
    """Check that every LFS object the commit names may be referenced by this repo (``proofs.may_reference``:
    the caller uploaded its bytes here, or can read a repo that references it) and is stored with that size.

    Raises:
        LfsObjectMissingError: the same answer for an object never uploaded, one whose size differs and one
            the caller has no proof of, so it tells nothing about what the store holds.
    """
    sizes: dict[str, int] = {}
    for op in request.operations:
        if not isinstance(op, AddLfsFile) or op.oid in sizes:
            continue
        stored = object_size(hub, session, op.oid) if may_reference(session, principal, repo, op.oid) else None
        if stored is None or (op.size is not None and op.size != stored):
            raise LfsObjectMissingError(f"LFS object {op.oid} for {op.path!r} {NOT_PROVEN} first")
        sizes[op.oid] = stored
    return sizes


@dataclass
class PreparedCommit:
    """A parsed commit whose blobs are written and whose LFS objects are checked: only a ref move is left."""

    request: CommitRequest
    sizes: dict[str, int]
    author: Author

    @property
    def message(self) -> str:
        message = self.request.summary.strip() or "Upload files with Hubstead"
        if self.request.description.strip():
            message += "\n\n" + self.request.description.strip()
        return message + "\n"


def prepare_commit(hub: Hub, session: Session, principal: Principal, *, repo: Repo, body: IO[bytes]) -> PreparedCommit:
    """Parse the NDJSON ``body``, write its inline files as blobs and check its LFS objects (nothing moves yet).

    Raises:
        BadRequestError: malformed payload or paths.
        LfsObjectMissingError: an LFS object never uploaded (or not the caller's to name).
    """
    git = open_git(hub, repo)
    sink = BlobSink(git.repo, git.path)
    try:
        request = parse_commit_body(body, sink)
        sizes = _lfs_sizes(hub, session, principal, repo, request)
        require_room(hub, session, repo, sizes, sink.bytes_added)  # storage quota: nothing moved yet
    except BaseException:
        sink.abort()
        raise
    sink.finish()
    return PreparedCommit(request=request, sizes=sizes, author=author_for(hub, principal))


def prepare_blobs(
    hub: Hub,
    principal: Principal,
    git: GitRepo,
    *,
    files: Iterable[tuple[str, pygit2.Oid]],
    lfs_objects: dict[str, int],
    summary: str,
    description: str = "",
) -> PreparedCommit:
    """A prepared commit of blobs already written (the web upload and README editor): each file's blob (an LFS
    pointer's for LFS files, whose objects the hub stored itself, with their sizes in ``lfs_objects``).

    Raises:
        BadRequestError: a path that is not valid in a repo, or a README whose card header is refused.
    """
    operations: list[Operation] = []
    for path, blob in files:
        path = normalize_path_in_repo(path)
        if path == "README.md":
            check_card_header(git.repo[blob].read_raw())
        operations.append(AddFile(path=path, blob=blob))
    request = CommitRequest(has_header=True, summary=summary, description=description, operations=operations)
    return PreparedCommit(request=request, sizes=dict(lfs_objects), author=author_for(hub, principal))


# The Hub's words for a ``parentCommit`` that is no longer the head (scripts match on them).
STALE_PARENT_MESSAGE = "The branch was updated since you opened this page. Please refresh and try again."


def apply_commit(
    hub: Hub,
    session: Session,
    *,
    repo: Repo,
    prepared: PreparedCommit,
    ref: str,
    new_ref_from: pygit2.Oid | None = None,
) -> CommitResult:
    """Apply a prepared commit to ``ref`` under the ref's write lock (commits to other refs of the repo go on),
    moving it with one atomic update.

    With ``new_ref_from`` the ref is created (or an orphan left by a crash is replaced) with that commit as the
    parent; otherwise it must exist, and a ``parentCommit`` other than its head is refused.

    Raises:
        RevisionNotFoundError: the ref is gone.
        StaleParentCommitError: ``parentCommit`` is not the head any more.
        EntryNotFoundError, BadRequestError: an operation does not fit the tree (nothing is changed).
    """
    request = prepared.request
    with repo_write_lock(git_dir(hub, repo), ref):
        git = open_git(hub, repo)  # fresh view of refs under the lock
        if new_ref_from is not None:
            head: pygit2.Oid | None = new_ref_from
        else:
            head = git.branch_head(ref)
            if head is None:
                raise RevisionNotFoundError(f"Invalid rev id: {ref.removeprefix('refs/heads/')}")
            if request.parent_commit and request.parent_commit != str(head):
                raise StaleParentCommitError(STALE_PARENT_MESSAGE)
        assert head is not None
        tree = _apply(git, git.commit(head).tree, request, prepared.sizes)
        commit = git.write_commit(tree=tree, parents=[head], author=prepared.author, message=prepared.message)
        git.update_ref(ref, commit, message=f"commit: {request.summary[:80]}")
        # Registered before the lock is released: a release that fails (the database went down) fails the commit.
        undo_ref_on_rollback(hub, session, repo, ref, moved_to=commit, back_to=head if new_ref_from is None else None)
    record_lfs_objects(session, repo.pk, prepared.sizes)
    if ref == "refs/heads/main":
        on_main_moved(session, git, repo, git.commit(commit))
    else:
        index_lagging_main(session, git, repo)
    session.flush()
    return CommitResult(commit_oid=str(commit), branch=ref, parent=str(head))


def record_lfs_objects(session: Session, repo_pk: int, sizes: Mapping[str, int]) -> None:
    """Note that the repo's revisions reference these LFS objects (``RepoLfsObject``). A row that exists is left as
    it is, by the database: commits to different branches of a repo run at once and may both name one object."""
    rows = [{"repo_pk": repo_pk, "oid": oid, "size": size} for oid, size in sizes.items()]
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(rows), 1000):
        session.execute(insert(RepoLfsObject).values(rows[start : start + 1000]).on_conflict_do_nothing())


def index_lagging_main(session: Session, git: GitRepo, repo: Repo) -> None:
    """Catch the index row up with main's head if it lags (a writer killed between moving main and committing
    its rows): a commit to any branch of the repo repairs it, not only the next start (``reconcile_all``)."""
    head = git.branch_head("refs/heads/main")
    if head is not None and str(head) != repo.sha:
        log.warning("%s %s: the index lagged main's head; re-indexed", repo.repo_type, repo.repo_id)
        on_main_moved(session, git, repo, git.commit(head))


def undo_ref_on_rollback(
    hub: Hub, session: Session, repo: Repo, ref: str, *, moved_to: pygit2.Oid, back_to: pygit2.Oid | None
) -> None:
    """If the transaction that records this move of ``ref`` fails (the database dropped mid-commit), put the ref
    back (``back_to``; None: delete the ref it created), so an error answer means no commit and a retry does
    not land it twice. Only while the ref still points at ``moved_to``: a commit that has since landed on top
    is kept, and the next move of main re-indexes (``on_main_moved``)."""

    path, name = git_dir(hub, repo), f"{repo.repo_type} {repo.repo_id}"  # the rollback expires ``repo``

    def put_back() -> None:
        git = GitRepo(path)
        current = git.reference(ref)
        if current is None or current.target != moved_to:
            log.warning("%s: %s moved on since a failed commit; left as it is", name, ref)
            return
        if back_to is None:
            current.delete()
        else:  # compare-and-swap: libgit2 refuses if the ref moved since it was read
            current.set_target(back_to, "undo: the commit's transaction failed")
        log.warning("%s: %s put back to %s (the commit's transaction failed)", name, ref, back_to)

    def undo() -> None:
        with ExitStack() as held:
            try:
                held.enter_context(repo_write_lock(path, ref))
            except Exception:  # noqa: BLE001 - a lock that needs the database cannot be had while it is down
                log.warning("%s: undoing %s without the repo lock (it could not be taken)", name, ref, exc_info=True)
            put_back()  # a compare-and-swap: safe without the lock too

    on_rollback(session, undo)


def _apply(git: GitRepo, base: pygit2.Tree, request: CommitRequest, sizes: dict[str, int]) -> pygit2.Oid:
    editor = git.editor(base)
    for op in request.operations:
        if isinstance(op, AddFile):
            editor.put_file(op.path, op.blob)
        elif isinstance(op, AddLfsFile):
            pointer = LfsPointer(oid=op.oid, size=sizes[op.oid])
            editor.put_file(op.path, git.write_blob(pointer.to_bytes()))
        elif isinstance(op, DeleteFile):
            if not editor.delete(op.path, folder=False):
                raise EntryNotFoundError(f"Cannot delete {op.path!r}: no such file in the revision")
        elif isinstance(op, DeleteFolder):
            if not editor.delete(op.path, folder=True):
                raise EntryNotFoundError(f"Cannot delete folder {op.path!r}: no such folder in the revision")
    return editor.write(git.repo)


def commit_files(
    hub: Hub,
    session: Session,
    *,
    repo: Repo,
    branch: str,
    files: Iterable[tuple[str, pygit2.Oid]],
    lfs_objects: dict[str, int],
    message: str,
    author: Author,
    actor_user_id: int | None = None,
) -> str:
    """Commit already-written blobs to ``branch`` (``hubstead import``, the web upload and README editor).
    Returns the commit id."""
    git = open_git(hub, repo)
    ref = f"refs/heads/{branch}"
    with repo_write_lock(git_dir(hub, repo), ref):
        git = GitRepo(git.path)
        if git.branch_head(ref) is None:
            validate_branch_name(branch)  # this commit creates the branch
        old = git.branch_head(ref)
        head = old or git.branch_head("refs/heads/main")
        base = git.commit(head).tree if head is not None else None
        editor = git.editor(base)
        for path, blob in files:
            if normalize_path_in_repo(path) == "README.md":
                check_card_header(git.repo[blob].read_raw())
            editor.put_file(normalize_path_in_repo(path), blob)
        tree = editor.write(git.repo)
        commit = git.write_commit(tree=tree, parents=[head] if head else [], author=author, message=message + "\n")
        git.update_ref(ref, commit, message="import")
        undo_ref_on_rollback(hub, session, repo, ref, moved_to=commit, back_to=old)  # before the lock's release
    record_lfs_objects(session, repo.pk, lfs_objects)
    record_event(
        session,
        repo,
        scope="repo.content",
        action="update",
        actor_user_id=actor_user_id,
        updated_refs=[{"ref": ref, "oldSha": str(old) if old else None, "newSha": str(commit)}],
    )
    if ref == "refs/heads/main":
        on_main_moved(session, git, repo, git.commit(commit))
    else:
        index_lagging_main(session, git, repo)
    session.flush()
    return str(commit)
