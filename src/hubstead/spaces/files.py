"""A space's files at one commit, written out as the working tree its app runs in (LFS objects included)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pygit2

from hubstead.context import Hub
from hubstead.repos.files import file_info, iter_entries
from hubstead.repos.git import GitRepo
from hubstead.storage.base import readable_path

MAX_TREE_BYTES = 4 * 2**30


class TreeTooLarge(ValueError):
    pass


def read_small(git: GitRepo, commit: pygit2.Commit, path: str, limit: int = 1 << 20) -> bytes | None:
    """A small file's bytes at ``commit`` (git blobs only: requirements, packages.txt), None when absent."""
    obj = git.entry(commit, path)
    if not isinstance(obj, pygit2.Blob) or obj.size > limit:
        return None
    return git.read_blob(obj.id)


def has_file(git: GitRepo, commit: pygit2.Commit, path: str) -> bool:
    return isinstance(git.entry(commit, path), pygit2.Blob)


def export_tree(hub: Hub, git: GitRepo, commit: pygit2.Commit, target: Path) -> int:
    """Write every file of ``commit`` under ``target`` (replaced); returns the bytes written."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    total = 0
    for entry in iter_entries(git, commit, "", recursive=True):
        if entry.type != "file":
            continue
        info = file_info(git, entry.path, entry.oid)
        total += info.size
        if total > MAX_TREE_BYTES:
            raise TreeTooLarge(f"the space's files are larger than {MAX_TREE_BYTES // 2**30} GiB")
        destination = target / entry.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        if info.lfs is None:
            destination.write_bytes(git.read_blob(pygit2.Oid(hex=info.blob_id)))
            continue
        local = readable_path(hub.blobs, info.lfs.oid)
        if local is not None:
            shutil.copyfile(local, destination)
            continue
        from hubstead.xet.cas.reader import stream_file, xet_backed

        with hub.db.session() as session:
            backed = xet_backed(session, info.lfs.oid)
        if backed is None:
            continue  # an object missing from storage: the app sees no file, as a download would 404
        with open(destination, "wb") as out:
            for chunk in stream_file(hub.xorbs, backed, 0, backed.size - 1):
                out.write(chunk)
    return total

