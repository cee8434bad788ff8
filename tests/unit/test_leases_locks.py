"""Repo write locks on PostgreSQL: the advisory lock excludes writers that share only the database (a second
machine's process holds no flock of ours), keys follow the path under the repos dir, and a dead writer's lock ends
with its connection."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from hubstead.coordination import locks
from hubstead.devtools.postgres import PostgresCluster


def test_the_advisory_lock_excludes_writers_and_dies_with_its_connection(postgres: PostgresCluster, tmp_path: Path) -> None:
    url = postgres.new_database()
    repos = tmp_path / "repos"
    git_dir = repos / "models" / "alice" / "m.git"
    git_dir.mkdir(parents=True)
    locks.configure(url, repos)
    assert locks.lock_key(git_dir) != locks.lock_key(repos / "models" / "alice" / "other.git")
    try:
        order: list[str] = []
        inside = threading.Event()

        def first() -> None:
            with locks.database_write_lock(git_dir):
                order.append("first in")
                inside.set()
                time.sleep(0.5)
                order.append("first out")

        thread = threading.Thread(target=first)
        thread.start()
        inside.wait(10)
        with locks.database_write_lock(git_dir):  # waits for the first writer, though no flock is involved
            order.append("second in")
        thread.join()
        assert order == ["first in", "first out", "second in"]

        # Another process takes the lock and is killed while holding it: the next writer gets it at once.
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from pathlib import Path; from hubstead.coordination import locks;"
             f"locks.configure({url!r}, Path({str(repos)!r}));"
             f"cm = locks.database_write_lock(Path({str(git_dir)!r})); cm.__enter__(); print('held', flush=True);"
             "time.sleep(60)"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        blocked = threading.Event()

        def waiter() -> None:
            with locks.database_write_lock(git_dir):
                blocked.set()

        waiting = threading.Thread(target=waiter)
        waiting.start()
        assert not blocked.wait(0.5)  # the other process holds it
        holder.kill()
        holder.wait()
        assert blocked.wait(10)
        waiting.join()
    finally:
        locks.configure("sqlite://", repos)
