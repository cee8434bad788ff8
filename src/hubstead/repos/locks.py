"""Per-repo write locks that hold across threads, processes and machines (the API processes, the compute
process and the ``import`` command).

On one machine: ``flock``. Each acquisition opens its own descriptor, and ``flock`` locks belong to the open
file description, so two threads of one process exclude each other just as two processes do. The kernel drops
the lock when a process dies, so a killed writer never leaves a repo locked. Across machines (PostgreSQL): a
database advisory lock as well, taken first (``coordination.locks``), which PostgreSQL drops when the writer's
connection ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hubstead.coordination.locks import database_write_lock


@contextmanager
def repo_write_lock(git_dir: Path) -> Iterator[None]:
    """Hold the exclusive write lock of one repo: commits to it serialize, none is lost."""
    with database_write_lock(git_dir):
        fd = os.open(git_dir / "hubstead.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
