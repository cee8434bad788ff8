"""Write locks that hold across machines: PostgreSQL advisory locks per repo and per ref.

Processes on one machine already exclude each other with ``flock`` (``repos.locks``); API processes on several
machines share only the database, so on PostgreSQL a repo's writer also holds ``pg_advisory_lock`` on a key
derived from the repo's path under the repos dir (the same on every machine). The lock is held on a connection
of its own, opened for the write and closed after it, in autocommit mode (no transaction stays open while the
commit runs); PostgreSQL drops it when that connection ends, so a killed writer never leaves a repo locked. On
SQLite (one machine by construction) there is nothing to add.

A writer of one ref (a commit to a branch) holds the repo's key shared and the ref's own key exclusively, so
writers of different refs of one repo go on at once; a writer of the whole repo (a push of several refs, a branch
created or deleted, a squash) holds the repo's key exclusively, so it waits for every ref writer and they for it.
The repo's key is always taken first: no two writers can each hold what the other waits for.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

_engine: Engine | None = None
_root: Path | None = None


def configure(database_url: str, repos_dir: Path) -> None:
    """Use ``database_url`` for cross-machine locks (only PostgreSQL needs them); keys are paths under
    ``repos_dir``. Called once per process by whatever builds the hub (the app, the CLI)."""
    global _engine, _root
    if _engine is not None:
        _engine.dispose()
        _engine = None
    _root = repos_dir.resolve()
    if database_url.startswith(("postgresql://", "postgresql+")):
        url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
        _engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def lock_key(path: Path, ref: str | None = None) -> int:
    """The advisory lock key (signed 64 bits) of ``path`` (its place under the repos dir, else its full path), or
    of its ``ref``."""
    resolved = path.resolve()
    if _root is not None and resolved.is_relative_to(_root):
        name = resolved.relative_to(_root).as_posix()
    else:
        name = resolved.as_posix()
    if ref is not None:
        name += "\0" + ref
    digest = hashlib.sha256(b"hubstead-repo-write:" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def database_write_lock(path: Path, ref: str | None = None) -> Iterator[None]:
    """Hold the database-wide write lock of ``path`` (a repo's git dir), or of its ``ref`` (the repo's shared, the
    ref's exclusive), while the block runs; nothing on SQLite."""
    engine = _engine
    if engine is None:
        yield
        return
    repo_key = lock_key(path)
    held = [("pg_advisory_unlock", repo_key)] if ref is None else [("pg_advisory_unlock_shared", repo_key)]
    with engine.connect() as connection:
        if ref is None:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": repo_key})
        else:
            connection.execute(text("SELECT pg_advisory_lock_shared(:key)"), {"key": repo_key})
            try:
                ref_key = lock_key(path, ref)
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ref_key})
            except BaseException:
                _unlock(connection, held)
                raise
            held.insert(0, ("pg_advisory_unlock", ref_key))
        try:
            yield
        finally:
            _unlock(connection, held)


def _unlock(connection: Connection, held: list[tuple[str, int]]) -> None:
    """Release what ``held`` names (the unlock function, the key), in order. If the lock's connection was lost (the
    database restarted while the block ran), the server released the locks when the connection ended: that is not
    an error of the block, whose own outcome (its exception, or its success) is what the caller must see. The dead
    connection is discarded, not pooled."""
    try:
        for unlock, key in held:
            connection.execute(text(f"SELECT {unlock}(:key)"), {"key": key})
    except DBAPIError:
        log.warning("the repo lock's connection was lost; the server released the lock with it", exc_info=True)
        connection.invalidate()
