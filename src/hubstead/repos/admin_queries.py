"""What the site admin pages read about repos: counts by type, and the repo table with each repo's size
(bytes of its LFS objects, from ``repo_lfs_objects``, plus its git directory on disk), downloads and last change.

Sizes of git directories are read from disk (a walk of each bare repo), so the table is built for at most
``MAX_SCANNED`` repos matching the filter; a team hub has far fewer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubstead.context import Hub
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.service import git_dir

SORTS = ("size", "downloads", "modified")
TYPES = ("model", "dataset", "space")
MAX_SCANNED = 5000


@dataclass(frozen=True)
class RepoRow:
    repo_type: str
    repo_id: str
    private: bool
    lfs_bytes: int
    git_bytes: int
    downloads: int
    last_modified: datetime

    @property
    def size(self) -> int:
        return self.lfs_bytes + self.git_bytes

    @property
    def url(self) -> str:
        return {"model": "", "dataset": "/datasets", "space": "/spaces"}[self.repo_type] + "/" + self.repo_id


def tree_bytes(root: Path) -> int:
    """The bytes of every regular file under ``root`` (0 when it is missing); links are not followed."""
    total = 0
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # removed while we walked
        except OSError:
            continue
    return total


def repo_counts(session: Session) -> dict[str, int]:
    """Repos by type (every type present, 0 when none)."""
    counts = dict.fromkeys(TYPES, 0)
    for repo_type, count in session.execute(select(Repo.repo_type, func.count()).group_by(Repo.repo_type)).tuples():
        counts[repo_type] = int(count)
    return counts


def lfs_bytes_total(session: Session) -> int:
    """Bytes of distinct LFS objects referenced by any repo (an object shared by two repos counted once)."""
    distinct = select(RepoLfsObject.oid, func.max(RepoLfsObject.size).label("size")).group_by(RepoLfsObject.oid)
    return int(session.scalar(select(func.coalesce(func.sum(distinct.subquery().c.size), 0))) or 0)


def repo_table(hub: Hub, session: Session, *, repo_type: str | None, search: str, sort: str) -> list[RepoRow]:
    """Every repo (of ``repo_type`` if given, whose id contains ``search``), largest / most downloaded / most
    recently changed first."""
    if sort not in SORTS:
        raise ValueError(f"Unknown sort {sort!r}: one of {', '.join(SORTS)}")
    lfs = (
        select(RepoLfsObject.repo_pk, func.sum(RepoLfsObject.size).label("bytes"))
        .group_by(RepoLfsObject.repo_pk)
        .subquery()
    )
    query = select(Repo, func.coalesce(lfs.c.bytes, 0)).outerjoin(lfs, lfs.c.repo_pk == Repo.pk)
    if repo_type:
        query = query.where(Repo.repo_type == repo_type)
    if search:
        needle = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Repo.id_key.like(needle, escape="\\"))
    query = query.order_by(Repo.last_modified.desc(), Repo.pk.desc()).limit(MAX_SCANNED)
    rows = [
        RepoRow(
            repo_type=repo.repo_type,
            repo_id=f"{repo.namespace}/{repo.name}",
            private=repo.private,
            lfs_bytes=int(lfs_size or 0),
            git_bytes=tree_bytes(git_dir(hub, repo)),
            downloads=int(repo.downloads_all_time or 0),
            last_modified=repo.last_modified,
        )
        for repo, lfs_size in session.execute(query).tuples()
    ]
    if sort == "size":
        rows.sort(key=lambda row: (-row.size, row.repo_id))
    elif sort == "downloads":
        rows.sort(key=lambda row: (-row.downloads, row.repo_id))
    return rows
