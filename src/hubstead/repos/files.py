"""Reading files out of a revision: entries with their LFS details, ranges, last commits, downloads."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pygit2

from hubstead.dates import from_timestamp, iso
from hubstead.errors import BadRequestError, EntryNotFoundError, HubError
from hubstead.repos.git import TREE_MODE, GitRepo, TreeEntry
from hubstead.repos.lfs.pointers import MAX_POINTER_SIZE, LfsPointer, parse_pointer


@dataclass(frozen=True)
class FileInfo:
    """A file at a revision: its git blob, and its LFS object when the blob is a pointer."""

    path: str
    blob_id: str
    blob_size: int
    lfs: LfsPointer | None

    @property
    def size(self) -> int:
        return self.lfs.size if self.lfs else self.blob_size

    @property
    def etag(self) -> str:
        return self.lfs.oid if self.lfs else self.blob_id


def file_info(git: GitRepo, path: str, oid: pygit2.Oid | str) -> FileInfo:
    oid = pygit2.Oid(hex=oid) if isinstance(oid, str) else oid
    size = git.blob_size(oid)
    pointer = parse_pointer(git.read_blob(oid)) if size <= MAX_POINTER_SIZE else None
    return FileInfo(path=path, blob_id=str(oid), blob_size=size, lfs=pointer)


def get_file(git: GitRepo, commit: pygit2.Commit, path: str) -> FileInfo:
    """The file at ``path``. Raises EntryNotFoundError if it is missing or a folder."""
    obj = git.entry(commit, path)
    if not isinstance(obj, pygit2.Blob):
        raise EntryNotFoundError(f"{path} does not exist on revision {commit.id}")
    return file_info(git, path, obj.id)


def entry_json(git: GitRepo, entry: TreeEntry, last_commits: dict[str, pygit2.Commit] | None = None) -> dict[str, Any]:
    """A tree or paths-info entry as the client's ``RepoFile`` / ``RepoFolder`` read it."""
    if entry.type == "directory":
        out: dict[str, Any] = {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
    else:
        info = file_info(git, entry.path, entry.oid)
        out = {"type": "file", "oid": info.blob_id, "size": info.size, "path": entry.path}
        if info.lfs:
            out["lfs"] = {"oid": info.lfs.oid, "size": info.lfs.size, "pointerSize": info.blob_size}
    if last_commits is not None:
        commit = last_commits.get(entry.path)
        if commit is not None:
            out["lastCommit"] = {
                "id": str(commit.id),
                "title": commit.message.split("\n", 1)[0],
                "date": iso(from_timestamp(commit.commit_time)),
            }
        # Nothing is scanned here; the client reads these keys (None where no scan ran).
        out["securityFileStatus"] = {"status": "unscanned", "avScan": None, "pickleImportScan": None}
    return out


def iter_entries(
    git: GitRepo, commit: pygit2.Commit, path: str, *, recursive: bool, after: str | None = None
) -> Iterator[TreeEntry]:
    """Entries below folder ``path`` (``""`` is the root), in git order; with ``after``, only those that
    follow the entry at that path (a page cursor: resuming costs the depth of the tree, not a re-walk).

    Raises EntryNotFoundError when ``path`` is not a folder."""
    tree = git.entry(commit, path)
    if not isinstance(tree, pygit2.Tree):
        raise EntryNotFoundError(f"{path or '/'} is not a folder on revision {commit.id}")
    prefix = f"{path}/" if path else ""
    if after is None:
        yield from _names(git, tree, prefix, recursive)
        return
    if not after.startswith(prefix):
        raise BadRequestError("Invalid cursor")
    yield from _names_after(git, tree, prefix, recursive, after[len(prefix) :].split("/"))


def _names_after(
    git: GitRepo, tree: pygit2.Tree, prefix: str, recursive: bool, cursor: list[str]
) -> Iterator[TreeEntry]:
    items = list(tree)
    for index, item in enumerate(items):
        if str(item.name) != cursor[0]:
            continue
        path = prefix + str(item.name)
        if item.filemode == TREE_MODE and recursive:
            subtree = git.tree(item.id)
            if len(cursor) == 1:
                yield from _names(git, subtree, path + "/", True)  # the folder was the last entry sent
            else:
                yield from _names_after(git, subtree, path + "/", True, cursor[1:])
        yield from _names(git, items[index + 1 :], prefix, recursive)
        return
    raise BadRequestError("Invalid cursor: the entry it names is not in this revision")


def _names(git: GitRepo, tree: Iterable[pygit2.Object], prefix: str, recursive: bool) -> Iterator[TreeEntry]:
    # Sizes are not read here: pages read them only for the entries they return.
    for item in tree:
        path = prefix + str(item.name)
        if item.filemode == TREE_MODE:
            yield TreeEntry(path=path, type="directory", oid=str(item.id))
            if recursive:
                yield from _names(git, git.tree(item.id), path + "/", True)
        else:
            yield TreeEntry(path=path, type="file", oid=str(item.id))


def entry_at(git: GitRepo, commit: pygit2.Commit, path: str) -> TreeEntry | None:
    obj = git.entry(commit, path)
    if isinstance(obj, pygit2.Tree):
        return TreeEntry(path=path, type="directory", oid=str(obj.id))
    if isinstance(obj, pygit2.Blob):
        return TreeEntry(path=path, type="file", oid=str(obj.id))
    return None


def last_commits(
    git: GitRepo, commit: pygit2.Commit, paths: list[str], *, max_commits: int = 5000
) -> dict[str, pygit2.Commit]:
    """For each path, the newest commit (from ``commit`` back) that changed it."""
    pending = {p: _oid_at(commit.tree, p) for p in paths}
    found: dict[str, pygit2.Commit] = {}
    for walked, current in enumerate(git.history(commit)):
        if not pending or walked >= max_commits:
            break
        parent_tree = current.parents[0].tree if current.parents else None
        for path in list(pending):
            before = _oid_at(parent_tree, path) if parent_tree is not None else None
            if before != pending[path]:
                found[path] = current
                del pending[path]
            else:
                pending[path] = before
    return found


def _oid_at(tree: pygit2.Tree, path: str) -> pygit2.Oid | None:
    try:
        return tree[path].id
    except KeyError:
        return None


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(HubError):
    status_code = 416


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range from a ``Range`` header, clamped to the file (``0-100000`` on a small file is fine).

    Returns None for no (or an unusable multi-) range; raises RangeNotSatisfiableError past the end.
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        if "," in header:
            return None
        raise BadRequestError(f"Invalid Range header {header!r}")
    first, last = match.groups()
    if first == "" and last == "":
        raise BadRequestError(f"Invalid Range header {header!r}")
    if first == "":
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiableError("Requested range not satisfiable")
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiableError("Requested range not satisfiable")
    return start, end


COUNTED_FILES = {
    "model": ("config.json", "model_index.json", "adapter_config.json", "params.json", "config.yaml"),
    "dataset": ("README.md", "dataset_infos.json"),
    "space": ("README.md",),
}


def counts_as_download(repo_type: str, path: str) -> bool:
    """Whether fetching ``path`` counts as one download of the repo (one file per repo, as on the Hub, so a
    snapshot of many files counts once); GGUF files count each, being whole models."""
    return path in COUNTED_FILES.get(repo_type, ()) or (repo_type == "model" and path.endswith(".gguf"))
