"""Files from disk into a repo: each goes to LFS or git by the same rule as preupload (size, the repo's
``.gitattributes``, binary content), LFS bytes hashed while copied into the blob store."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from hubstead.config import LFS_THRESHOLD_BYTES
from hubstead.context import Hub
from hubstead.repos.git import GitRepo
from hubstead.repos.lfs.pointers import LfsPointer, LfsRules, default_gitattributes
from hubstead.repos.paths import normalize_path_in_repo


def rules_for(git: GitRepo, repo_type: str, revision: str = "main") -> LfsRules:
    try:
        commit = git.resolve(revision)
    except Exception:  # noqa: BLE001 - a missing branch falls back to the defaults
        return LfsRules(default_gitattributes(repo_type))
    attributes = git.entry(commit, ".gitattributes")
    if isinstance(attributes, pygit2.Blob):
        return LfsRules(attributes.data.decode("utf-8", errors="replace"))
    return LfsRules(default_gitattributes(repo_type))


def store_lfs(hub: Hub, source: Path) -> tuple[str, int]:
    """Copy ``source`` into the blob store, hashing on the way. Returns (sha256, size)."""
    digest = hashlib.sha256()
    tmp = hub.settings.uploads_dir / f"ingest-{os.getpid()}-{time.time_ns()}"
    size = 0
    with open(source, "rb") as src, open(tmp, "wb") as dst:
        while chunk := src.read(8 * 1024 * 1024):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    oid = digest.hexdigest()
    if hub.blobs.exists(oid):
        tmp.unlink()
    else:
        hub.blobs.put_file(oid, tmp)
    return oid, size


@dataclass
class IngestedFiles:
    """Files written for one commit: each path's git blob (an LFS pointer's for LFS files) and the LFS objects
    stored on the way (sha256 → size)."""

    files: list[tuple[str, pygit2.Oid]] = field(default_factory=list)
    lfs_objects: dict[str, int] = field(default_factory=dict)


def ingest_files(hub: Hub, git: GitRepo, rules: LfsRules, sources: Iterable[tuple[str, Path]]) -> IngestedFiles:
    """The one way local files become a commit's blobs (``hubstead import`` and the web upload form): each
    ``(path in repo, file on disk)`` has its path checked (``normalize_path_in_repo``) before anything is
    stored, then goes to LFS or git by ``ingest_file``'s rule."""
    checked = [(normalize_path_in_repo(path), source) for path, source in sources]
    out = IngestedFiles()
    for path, source in checked:
        blob, lfs_oid, size = ingest_file(hub, git, rules, path, source)
        if lfs_oid is not None:
            out.lfs_objects[lfs_oid] = size
        out.files.append((path, blob))
    return out


def ingest_file(
    hub: Hub, git: GitRepo, rules: LfsRules, path_in_repo: str, source: Path
) -> tuple[pygit2.Oid, str | None, int]:
    """Write one file for a commit. Returns (git blob id, LFS sha256 or None, size)."""
    size = source.stat().st_size
    with open(source, "rb") as handle:
        sample = handle.read(512)
    if size > LFS_THRESHOLD_BYTES or rules.matches(path_in_repo) or b"\x00" in sample:
        oid, size = store_lfs(hub, source)
        return git.write_blob(LfsPointer(oid=oid, size=size).to_bytes()), oid, size
    return git.write_blob(source.read_bytes()), None, size
