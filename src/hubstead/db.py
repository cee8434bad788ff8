"""Database engine, sessions and schema migrations (SQLAlchemy 2 + Alembic)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Executable, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# How long a client is told to wait (``Retry-After``) when the database is unreachable or locked: a restart of
# PostgreSQL takes a few seconds; huggingface_hub's ``http_backoff`` sleeps Retry-After + 1 s between tries.
RETRY_AFTER_SECONDS = 2
# The advisory lock (PostgreSQL) that one process holds while it brings the schema to head.
MIGRATION_LOCK_KEY = 0x4875627374656164  # "Hubstead"
# A burst of failures is logged once: the first failure after this many quiet seconds opens a new burst.
_BURST_QUIET_SECONDS = 30.0
# The exceptions the app maps through ``database_unavailable`` (anything else from the database is a bug: 500).
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeoutError)
# SQLite's words for a transient failure (another writer holds the lock past the busy timeout, the file is
# briefly unreachable); its other OperationalErrors ("no such table", a syntax error) are bugs.
_SQLITE_TRANSIENT = ("database is locked", "database is busy", "disk i/o error", "unable to open database file")


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored naive in UTC and read back timezone-aware, the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def make_engine(database_url: str, *, sqlite_busy_timeout: float = 30.0, pooled: bool = True) -> Engine:
    """Create the engine; SQLite gets WAL and a busy timeout so the server and the CLI can share it.

    PostgreSQL: a restarted server leaves every pooled connection dead. No ``pool_pre_ping``: it costs a round
    trip on every checkout (+0.2 ms a session on loopback, +15%: ``benchmarks/bench_db_faults.py``,
    RESULTS-db-faults.md) to save one failed request per restart. Instead, the first statement on a dead
    connection raises a disconnect error, which SQLAlchemy answers by invalidating the whole pool (every
    connection older than the error is replaced at its next checkout) and the app answers with a 503 +
    Retry-After (``database_unavailable``): the client's retry gets a fresh connection. ``connect_timeout``
    bounds a request's wait while the server is unreachable: it answers 503 instead of hanging."""
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout},
            # As many kept connections as the threadpool's 40 threads: with 20, a burst over 20 requests opened
            # and closed overflow connections (connect + three PRAGMAs each, ~5% of a loaded model_info).
            # ``pooled=False``: no pool (``Database.read_now``'s own connection, closed when dropped).
            **({"pool_size": 40, "max_overflow": 20} if pooled else {"poolclass": NullPool}),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(database_url, pool_size=20, max_overflow=20, connect_args={"connect_timeout": 5})


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable, restarting or locked (a fault to retry: 503), rather
    than a bug in a query (500). The first of a burst is logged; the rest of it is not."""
    if isinstance(exc, PoolTimeoutError):
        transient = True
    elif isinstance(exc, DBAPIError) and exc.connection_invalidated:
        transient = True
    elif isinstance(exc, InterfaceError):
        transient = True
    elif isinstance(exc, OperationalError):
        if type(exc.orig).__module__.startswith("sqlite3"):
            transient = any(words in str(exc.orig).lower() for words in _SQLITE_TRANSIENT)
        else:  # PostgreSQL: connection lost or refused, server shutting down, lock or statement timeouts
            transient = True
    else:
        transient = False
    if transient:
        _log_burst(exc)
    return transient


_burst = {"last": 0.0, "count": 0}


def _log_burst(exc: BaseException) -> None:
    now = time.monotonic()
    if now - _burst["last"] > _BURST_QUIET_SECONDS:
        if _burst["count"] > 1:
            log.warning("the previous database outage answered %d requests with 503", _burst["count"])
        _burst["count"] = 0
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.error("the database is unavailable; answering 503 with Retry-After until it is back: %s", first_line)
    _burst["last"] = now
    _burst["count"] += 1


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Run ``undo`` if the transaction of ``session`` (one from ``Database.session``) fails: it reverses an
    effect outside the database (a git ref moved before the rows that record it were committed), so an error
    answer means nothing happened and a retry is safe."""
    session.info.setdefault("on_rollback", []).append(undo)


_INSTANCES = itertools.count(1)
_GENERATIONS_LOCK = threading.Lock()
_SNAPSHOT = text("SELECT pg_current_snapshot()::text")
LOOP_BUSY_TIMEOUT_S = 0.05


class LoopReadFailed(Exception):
    """A read made from the event loop (``Database.read_now``, ``change_stamp_now``) met a database error."""


class _LoopConnections:
    """A few asynchronous PostgreSQL connections (psycopg, autocommit) for one event loop's reads, opened as
    needed up to ``size``; a request beyond waits for a free one. Statements are compiled once for the engine's
    dialect; datetimes come back timezone-aware in UTC, as ``UTCDateTime`` reads them."""

    def __init__(self, engine: Engine, size: int = 4) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.dialect = engine.dialect
        self.slots = asyncio.Semaphore(size)
        self.idle: list[Any] = []
        self.compiled: dict[int, tuple[Executable, str, dict[str, Any]]] = {}

    def _compile(self, statement: Executable) -> tuple[str, dict[str, Any]]:
        found = self.compiled.get(id(statement))
        if found is None or found[0] is not statement:
            compiled = statement.compile(dialect=self.dialect)  # type: ignore[attr-defined]
            found = self.compiled[id(statement)] = (statement, str(compiled), dict(compiled.params))
        return found[1], found[2]

    async def read(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        import psycopg
        from psycopg.rows import namedtuple_row

        sql, defaults = self._compile(statement)
        async with self.slots:
            connection = self.idle.pop() if self.idle else None
            try:
                if connection is None:
                    connection = await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True, connect_timeout=5, row_factory=namedtuple_row
                    )
                cursor = await connection.execute(sql, {**defaults, **params})
                row = await cursor.fetchone()
            except (psycopg.Error, OSError) as exc:
                if connection is not None:
                    await _close_quietly(connection)
                raise LoopReadFailed(str(exc)) from exc
            except BaseException:  # cancelled mid-read (the client went away): the connection's state is unknown
                if connection is not None:
                    asyncio.ensure_future(_close_quietly(connection))
                raise
            self.idle.append(connection)
        if row is None:
            return None
        return row._make(v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in row)

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        for connection in idle:
            await _close_quietly(connection)


async def _close_quietly(connection: Any) -> None:
    try:
        await connection.close()
    except Exception:  # noqa: BLE001 - a broken connection is being dropped anyway
        log.debug("closing a loop connection failed", exc_info=True)


class Database:
    """Owns the engine and hands out sessions."""

    def __init__(self, database_url: str, *, sqlite_busy_timeout: float = 30.0) -> None:
        self.url = database_url
        self.engine = make_engine(database_url, sqlite_busy_timeout=sqlite_busy_timeout)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._own_connection = threading.local()  # SQLite: the loop thread's own connection (``read_now``)
        self._loop_engine: Engine | None = None
        self._generation = 0
        self._async_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopConnections] = (
            weakref.WeakKeyDictionary()
        )  # PostgreSQL: each loop's asynchronous connections (``read_now``)
        self.instance = next(_INSTANCES)  # unique in the process: stamps of two databases never compare equal

    async def read_now(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        """The first row of one short indexed read made from the event loop, without a thread hand-off (which on
        the hottest reads cost more than the query), or None. Attribute access by column name, as a Row.

        - SQLite: on the loop's thread itself, with a connection of its own held for the thread's life (no pool
          checkout, which could wait, and the loop must not). A WAL reader never waits for a writer; the read is
          a local file's pages, tens of microseconds.
        - PostgreSQL: awaited on one of a few asynchronous connections of the loop's own (``_LoopConnections``),
          in autocommit, so the loop serves other requests during the round trip.

        Each read is its own snapshot: nothing stays open between reads, so a commit by any process is seen by
        the next one. A database error raises ``LoopReadFailed`` and drops the connection (a fresh one next
        time): the caller then answers the long way, whose session meets the fault and answers it in its words."""
        if self.engine.dialect.name == "sqlite":
            return self._sqlite_read(lambda connection: connection.execute(statement, params).first())[1]
        return await self._loop_connections().read(statement, params)

    async def change_stamp_now(self) -> Hashable:
        """A value that differs from the last one read from this loop whenever any other connection, in any
        process, has committed a change since (``search.answers``, ``web.kept_pages``). Tagged with this
        Database's ``instance``, so two databases' stamps never compare equal.

        - SQLite: ``data_version`` on the loop's own connection (which never writes), with that connection's
          generation (a replaced connection's count starts afresh).
        - PostgreSQL: the current snapshot (xmin, xmax, the transactions in progress). Equal snapshots mean no
          transaction that wrote anything committed in between: a commit either leaves the in-progress list or
          was given an id at or past the earlier xmax.
        Raises ``LoopReadFailed`` on a database error."""
        if self.engine.dialect.name == "sqlite":
            generation, version = self._sqlite_read(
                lambda connection: connection.exec_driver_sql("PRAGMA data_version").scalar_one()
            )
            return self.instance, generation, int(version)
        row = await self._loop_connections().read(_SNAPSHOT, {})
        return self.instance, row[0] if row is not None else None

    def _sqlite_read(self, read: Callable[[Connection], Any]) -> tuple[int, Any]:
        """``read`` on this thread's own connection: (the connection's generation, what ``read`` returned)."""
        held: tuple[int, Connection] | None = getattr(self._own_connection, "value", None)
        if held is None:
            if self._loop_engine is None:
                # Its own engine, without a pool: the connection is never handed to a session. A WAL reader does
                # not wait for writers, but SQLite may still answer "busy" in rare moments (another connection
                # recovering the WAL index): the loop waits 50 ms at most, then the long way waits instead.
                self._loop_engine = make_engine(self.url, sqlite_busy_timeout=LOOP_BUSY_TIMEOUT_S, pooled=False)
            connection = self._loop_engine.connect()
            with _GENERATIONS_LOCK:
                self._generation += 1
                held = (self._generation, connection)
            self._own_connection.value = held
        connection = held[1]
        try:
            answer = read(connection)
            connection.rollback()  # ends the read (pysqlite opens no transaction for a SELECT: a no-op)
            return held[0], answer
        except DATABASE_ERRORS as exc:
            self._own_connection.value = None
            try:
                connection.invalidate()
                connection.close()
            except Exception:  # noqa: BLE001 - the read's own error is the one to raise
                log.debug("closing a failed loop connection failed", exc_info=True)
            raise LoopReadFailed(str(exc)) from exc

    def _loop_connections(self) -> _LoopConnections:
        loop = asyncio.get_running_loop()
        found = self._async_connections.get(loop)
        if found is None:
            found = self._async_connections[loop] = _LoopConnections(self.engine)
        return found

    async def close_loop_connections(self) -> None:
        """Close this loop's PostgreSQL connections (the app's shutdown)."""
        found = self._async_connections.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error; on rollback, the ``on_rollback`` undos
        run, newest first (each logged, not raised, if it fails: the original error is what the caller sees)."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            undos = session.info.pop("on_rollback", [])
            try:
                session.rollback()
            except DBAPIError:  # the connection is gone: the server rolls the transaction back itself
                log.warning("rollback failed on a lost connection", exc_info=True)
            for undo in reversed(undos):
                try:
                    undo()
                except Exception:  # noqa: BLE001 - the caller's error matters more; this one is logged
                    log.exception("undoing an effect of a failed transaction failed")
            raise
        finally:
            session.info.pop("on_rollback", None)
            session.close()

    def _alembic_config(self):  # type: ignore[no-untyped-def]  # alembic.config.Config, imported when needed
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        config.attributes["engine"] = self.engine
        return config

    def schema_revisions(self) -> tuple[str | None, str | None]:
        """The database's schema revision (None: an empty database) and the newest one this code brings."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        return current, ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command

        config = self._alembic_config()
        if self.engine.dialect.name != "postgresql":  # SQLite: one machine, and Alembic's DDL takes its write lock
            command.upgrade(config, "head")
            return
        # Several processes on several machines may start at once against one PostgreSQL database: one migrates,
        # the others wait on the advisory lock, then find the schema current (an upgrade to head is idempotent).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                command.upgrade(config, "head")
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
