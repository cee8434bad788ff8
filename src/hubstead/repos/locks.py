"""Per-repo and per-ref write locks that hold across threads, processes and machines (the API processes, the
compute process and the ``import`` command).

On one machine: ``flock``. Each acquisition opens its own descriptor, and ``flock`` locks belong to the open
file description, so two threads of one process exclude each other just as two processes do. The kernel drops
the lock when a process dies, so a killed writer never leaves a repo locked. Across machines (PostgreSQL): a
database advisory lock as well, taken first (``coordination.locks``), which PostgreSQL drops when the writer's
connection ends.

A commit moves one ref: it holds the repo's lock shared and the ref's exclusively, so commits to different
branches of one repo (and the viewer's conversion writing ``refs/convert/parquet``) go on at once, and commits to
one branch take turns. Whatever moves several refs or all of them (a push, creating or deleting a branch or a
tag, a merge, a squash) holds the repo's lock exclusively. The repo's lock is always taken first.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hubstead.coordination.locks import database_write_lock

REF_LOCKS = "hubstead-ref-locks"  # in the git dir: one lock file per ref that a commit moved


@contextmanager
def _flocked(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def repo_write_lock(git_dir: Path, ref: str | None = None) -> Iterator[None]:
    """Hold the write lock of one repo (no ref of it moves meanwhile), or with ``ref`` of that one ref of it
    (writers of its other refs go on): commits serialize where they must, none is lost."""
    with database_write_lock(git_dir, ref):
        with _flocked(git_dir / "hubstead.lock", fcntl.LOCK_EX if ref is None else fcntl.LOCK_SH):
            if ref is None:
                yield
                return
            folder = git_dir / REF_LOCKS
            folder.mkdir(exist_ok=True)
            with _flocked(folder / hashlib.sha256(ref.encode()).hexdigest()[:32], fcntl.LOCK_EX):
                yield
