"""Bare git repositories through pygit2: revisions, trees, blobs, and building new trees and commits.

Nothing here knows about HTTP or the database. Writes of git objects are plain object-database writes
(content-addressed, harmless if a crash leaves them unreferenced); a branch moves only through
``update_ref``, under the repo's lock (see ``locks.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pygit2

from hubstead.errors import BadRequestError, EntryNotFoundError, RevisionNotFoundError

# Objects and refs reach the disk before a branch moves, so a crash never leaves a ref naming a lost object.
pygit2.settings.enable_fsync_gitdir(True)

FILE_MODE = pygit2.enums.FileMode.BLOB
EXEC_MODE = pygit2.enums.FileMode.BLOB_EXECUTABLE
TREE_MODE = pygit2.enums.FileMode.TREE
_HEX_RE = re.compile(r"^[0-9a-f]{7,40}$")
_FULL_ID_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_REVISION_BYTES = 255  # new branch and tag names are at most 200 bytes (paths.validate_branch_name)


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class TreeEntry:
    """A file or folder found in a tree: ``oid`` is the git blob or tree id."""

    path: str
    type: str  # "file" or "directory"
    oid: str
    size: int = 0


class GitRepo:
    """A bare repository on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.Repository(str(path))

    @classmethod
    def init(cls, path: Path) -> GitRepo:
        pygit2.init_repository(str(path), bare=True, initial_head="main")
        return cls(path)

    # --- revisions -------------------------------------------------------------------------------

    def resolve(self, revision: str) -> pygit2.Commit:
        """Resolve a full commit id, branch, tag, full ref (``refs/pr/1``) or short commit id to a commit.

        A full commit id is looked up as a commit first, so no branch or tag can shadow it (new refs named
        like commit ids are refused, but an old one may exist).

        Raises:
            RevisionNotFoundError: nothing by that name, it is not a commit, or the name cannot be a revision
                (over ``MAX_REVISION_BYTES``, control characters).
        """
        if not revision or len(revision.encode()) > MAX_REVISION_BYTES or _CONTROL_RE.search(revision):
            shown = revision if len(revision) <= 80 else revision[:80] + "..."
            raise RevisionNotFoundError(f"Invalid rev id: {shown}")
        if _FULL_ID_RE.match(revision):
            found = self._object(revision)
            if isinstance(found, pygit2.Commit):
                return found
        candidates = []
        if revision.startswith("refs/"):
            candidates.append(revision)
        else:
            candidates += [f"refs/heads/{revision}", f"refs/tags/{revision}"]
        for name in candidates:
            ref = self.reference(name)
            if ref is not None:
                return ref.peel(pygit2.Commit)
        if _HEX_RE.match(revision):
            found = self._object(revision)
            if isinstance(found, pygit2.Commit):
                return found
        raise RevisionNotFoundError(f"Invalid rev id: {revision}")

    def _object(self, hex_id: str) -> pygit2.Object | None:
        try:
            return self.repo.get(hex_id)
        except (ValueError, KeyError, pygit2.GitError):
            return None

    def reference(self, name: str) -> pygit2.Reference | None:
        """The reference ``name``, or None (also for names libgit2 refuses to look up)."""
        try:
            return self.repo.references.get(name)
        except (ValueError, pygit2.InvalidSpecError):
            return None

    def branch_head(self, branch_ref: str) -> pygit2.Oid | None:
        ref = self.reference(branch_ref)
        if ref is None:
            return None
        target = ref.target
        return target if isinstance(target, pygit2.Oid) else None

    def commit(self, oid: pygit2.Oid) -> pygit2.Commit:
        found = self.repo.get(oid)
        if not isinstance(found, pygit2.Commit):
            raise RevisionNotFoundError(f"{oid} is not a commit")
        return found

    def tree(self, oid: pygit2.Oid) -> pygit2.Tree:
        found = self.repo.get(oid)
        if not isinstance(found, pygit2.Tree):
            raise EntryNotFoundError(f"{oid} is not a folder")
        return found

    def refs(self, prefix: str) -> list[tuple[str, pygit2.Commit]]:
        """References under ``prefix`` (e.g. ``refs/heads/``) with the commit each points to."""
        out = []
        for name in self.repo.references:
            if name.startswith(prefix):
                out.append((name, self.repo.references[name].peel(pygit2.Commit)))
        return sorted(out, key=lambda item: item[0])

    def update_ref(self, ref_name: str, new: pygit2.Oid, *, message: str) -> None:
        """Point ``ref_name`` at ``new``. Callers hold the repo lock, so any ``.lock`` file left beside the ref
        is a leftover of a killed writer and is removed first. libgit2 writes the ref by atomic rename."""
        lock = self.path / (ref_name + ".lock")
        lock.unlink(missing_ok=True)
        packed_lock = self.path / "packed-refs.lock"
        packed_lock.unlink(missing_ok=True)
        self.repo.create_reference_direct(ref_name, new, True, message=message)

    def delete_ref(self, ref_name: str) -> None:
        (self.path / (ref_name + ".lock")).unlink(missing_ok=True)
        (self.path / "packed-refs.lock").unlink(missing_ok=True)
        self.repo.references.delete(ref_name)

    # --- reading ---------------------------------------------------------------------------------

    def entry(self, commit: pygit2.Commit, path: str) -> pygit2.Object | None:
        """The blob or tree at ``path`` in ``commit``, or None. ``""`` is the root tree."""
        if path == "":
            return commit.tree
        try:
            tree_entry = commit.tree[path]
        except KeyError:
            return None
        return self.repo.get(tree_entry.id)

    def blob_size(self, oid: pygit2.Oid) -> int:
        return self.repo.odb.read_header(oid)[1]

    def read_blob(self, oid: pygit2.Oid) -> bytes:
        blob = self.repo.get(oid)
        if not isinstance(blob, pygit2.Blob):
            raise EntryNotFoundError("Not a file")
        return blob.data

    def history(self, start: pygit2.Commit) -> Iterator[pygit2.Commit]:
        """Commits reachable from ``start``, newest first."""
        walker = self.repo.walk(start.id, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
        yield from walker

    # --- writing ---------------------------------------------------------------------------------

    def write_blob(self, data: bytes) -> pygit2.Oid:
        return self.repo.create_blob(data)

    def write_commit(
        self,
        *,
        tree: pygit2.Oid,
        parents: list[pygit2.Oid],
        author: Author,
        message: str,
        when: datetime | None = None,
    ) -> pygit2.Oid:
        moment = when or datetime.now(UTC)
        signature = pygit2.Signature(author.name, author.email, int(moment.timestamp()), 0)
        return self.repo.create_commit(None, signature, signature, message, tree, parents)

    def editor(self, base: pygit2.Tree | None) -> TreeEditor:
        return TreeEditor(self.repo, base)


class _Dir:
    """A folder being edited: entries loaded from its base tree on first touch, written bottom-up."""

    __slots__ = ("repo", "base", "entries", "children", "dirty")

    def __init__(self, repo: pygit2.Repository, base: pygit2.Tree | None) -> None:
        self.repo = repo
        self.base = base
        self.entries: dict[str, tuple[pygit2.Oid, int]] | None = None
        self.children: dict[str, _Dir] = {}
        self.dirty = False

    def load(self) -> dict[str, tuple[pygit2.Oid, int]]:
        if self.entries is None:
            self.entries = {str(item.name): (item.id, item.filemode) for item in self.base} if self.base else {}
        return self.entries

    def child(self, name: str, *, create: bool) -> _Dir | None:
        if name in self.children:
            return self.children[name]
        entries = self.load()
        existing = entries.get(name)
        if existing is None:
            if not create:
                return None
            child = _Dir(self.repo, None)
        elif existing[1] == TREE_MODE:
            subtree = self.repo.get(existing[0])
            assert isinstance(subtree, pygit2.Tree)
            child = _Dir(self.repo, subtree)
        else:
            if not create:
                return None
            raise BadRequestError(f"Cannot create a folder where a file already exists: {name!r}")
        self.children[name] = child
        return child

    def write(self) -> pygit2.Oid | None:
        if not self.dirty and self.base is not None:
            return self.base.id
        entries = dict(self.load())
        for name, child in self.children.items():
            if not child.dirty:
                continue
            oid = child.write()
            if oid is None:
                entries.pop(name, None)
            else:
                entries[name] = (oid, TREE_MODE)
        if not entries:
            return None
        builder = self.repo.TreeBuilder()
        for name, (oid, mode) in entries.items():
            builder.insert(name, oid, mode)
        return builder.write()


class TreeEditor:
    """Applies file additions and deletions to a base tree and writes only the folders that changed."""

    def __init__(self, repo: pygit2.Repository, base: pygit2.Tree | None) -> None:
        self.root = _Dir(repo, base)

    def _walk_to_parent(self, path: str, *, create: bool) -> tuple[list[_Dir], str] | None:
        *folders, leaf = path.split("/")
        chain = [self.root]
        node = self.root
        for name in folders:
            nxt = node.child(name, create=create)
            if nxt is None:
                return None
            chain.append(nxt)
            node = nxt
        return chain, leaf

    def put_file(self, path: str, blob: pygit2.Oid, *, mode: int = FILE_MODE) -> None:
        walked = self._walk_to_parent(path, create=True)
        assert walked is not None
        chain, leaf = walked
        parent = chain[-1]
        entries = parent.load()
        existing = entries.get(leaf)
        if (existing is not None and existing[1] == TREE_MODE) or leaf in parent.children:
            raise BadRequestError(f"Cannot add file {path!r}: a folder with that name exists")
        entries[leaf] = (blob, mode)
        for node in chain:
            node.dirty = True

    def get_file(self, path: str) -> tuple[pygit2.Oid, int] | None:
        walked = self._walk_to_parent(path, create=False)
        if walked is None:
            return None
        chain, leaf = walked
        found = chain[-1].load().get(leaf)
        if found is None or found[1] == TREE_MODE or leaf in chain[-1].children:
            return None
        return found

    def delete(self, path: str, *, folder: bool) -> bool:
        """Remove a file (or, with ``folder``, a whole folder). False when nothing was there."""
        walked = self._walk_to_parent(path, create=False)
        if walked is None:
            return False
        chain, leaf = walked
        parent = chain[-1]
        entries = parent.load()
        existing = entries.get(leaf)
        is_tree = leaf in parent.children or (existing is not None and existing[1] == TREE_MODE)
        if existing is None and leaf not in parent.children:
            return False
        if is_tree != folder:
            return False
        entries.pop(leaf, None)
        parent.children.pop(leaf, None)
        for node in chain:
            node.dirty = True
        return True

    def write(self, empty_tree_factory: pygit2.Repository) -> pygit2.Oid:
        oid = self.root.write()
        if oid is None:
            oid = empty_tree_factory.TreeBuilder().write()
        return oid


def repo_path(repos_dir: Path, storage_key: str) -> Path:
    return repos_dir / storage_key[:2] / f"{storage_key}.git"


def ensure_dir(path: Path) -> None:
    os.makedirs(path, exist_ok=True)
