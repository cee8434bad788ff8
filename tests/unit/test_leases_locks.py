"""Repo write locks on PostgreSQL: the advisory lock excludes writers that share only the database (a second
machine's process holds no flock of ours), keys follow the path under the repos dir, and a dead writer's lock ends
with its connection."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

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


def test_a_lock_whose_connection_dies_does_not_fail_its_block(postgres: PostgresCluster, tmp_path: Path) -> None:
    """The database dropped the lock's connection while the block ran (a restart): the server released the lock,
    and the block's own outcome stands; the lock is free for the next writer."""
    url = postgres.new_database()
    repos = tmp_path / "repos"
    git_dir = repos / "models" / "alice" / "m.git"
    git_dir.mkdir(parents=True)
    locks.configure(url, repos)
    admin = create_engine("postgresql+psycopg://" + url.split("://", 1)[1], poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    terminate = text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    try:
        ran = []
        with locks.database_write_lock(git_dir):
            with admin.connect() as connection:  # terminate the backend that holds the advisory lock
                assert connection.execute(terminate).scalars().all() == [True]
            ran.append("block")
        assert ran == ["block"]  # no error from the release
        with pytest.raises(ValueError):  # and the block's own error is the one raised, not the release's
            with locks.database_write_lock(git_dir):
                with admin.connect() as connection:
                    connection.execute(terminate)
                raise ValueError("the block failed")
        with locks.database_write_lock(git_dir):  # free again
            ran.append("next")
        assert ran == ["block", "next"]
    finally:
        admin.dispose()
        locks.configure("sqlite://", repos)


def test_ref_locks_let_other_refs_go_on_and_the_whole_repo_waits_for_them(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    """On the database too (writers on other machines share no flock): while one writer holds ``main``, another
    takes ``dev`` at once, a second writer of ``main`` waits, and so does a writer of the whole repo; held for the
    whole repo, a ref writer waits."""
    url = postgres.new_database()
    repos = tmp_path / "repos"
    git_dir = repos / "models" / "alice" / "m.git"
    git_dir.mkdir(parents=True)
    locks.configure(url, repos)
    assert len({locks.lock_key(git_dir), locks.lock_key(git_dir, "refs/heads/main"),
                locks.lock_key(git_dir, "refs/heads/dev")}) == 3  # fmt: skip
    try:
        release = threading.Event()
        holding = threading.Event()

        def hold(ref: str | None) -> None:
            with locks.database_write_lock(git_dir, ref):
                holding.set()
                release.wait(30)

        def waits(ref: str | None) -> threading.Event:
            got = threading.Event()

            def take() -> None:
                with locks.database_write_lock(git_dir, ref):
                    got.set()

            threading.Thread(target=take, daemon=True).start()
            return got

        holder = threading.Thread(target=hold, args=("refs/heads/main",))
        holder.start()
        assert holding.wait(10)
        assert waits("refs/heads/dev").wait(10)  # another ref: at once
        second_main, whole = waits("refs/heads/main"), waits(None)
        assert not second_main.wait(0.5) and not whole.wait(0.2)
        release.set()
        holder.join(10)
        assert second_main.wait(10) and whole.wait(10)

        release.clear()
        holding.clear()
        holder = threading.Thread(target=hold, args=(None,))
        holder.start()
        assert holding.wait(10)
        dev = waits("refs/heads/dev")
        assert not dev.wait(0.5)  # the whole repo is held
        release.set()
        holder.join(10)
        assert dev.wait(10)
    finally:
        locks.configure("sqlite://", repos)
