#!/usr/bin/env python
"""What ``pool_pre_ping`` costs per request, and what it buys after a database restart.

1. Cost: N sessions (``Database.session``: pool checkout, one indexed primary-key read, commit, return), timed
   with the hub's engine settings, with ``pool_pre_ping`` on (ours on PostgreSQL) and off (the baseline), on
   SQLite and on a private PostgreSQL on loopback. Reported: microseconds per session and the ratio.
2. Recovery: the pool filled (8 connections held at once, then returned), PostgreSQL restarted (``pg_ctl -m fast``),
   then sessions one after another: how many fail before one succeeds, with and without pre-ping. Without it,
   each failure (a dead pooled connection) is a 503 a client must retry; SQLAlchemy invalidates the rest of the
   pool on the first disconnect it sees.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from hubstead.db import Database
from hubstead.devtools.postgres import PostgresCluster


def engine_like_ours(url: str, *, pre_ping: bool) -> Engine:
    """``db.make_engine``'s PostgreSQL engine, with ``pool_pre_ping`` as asked."""
    url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url, pool_size=20, max_overflow=20, pool_pre_ping=pre_ping, connect_args={"connect_timeout": 5}
    )


def database(url: str, *, pre_ping: bool) -> Database:
    db = Database(url)
    if url.startswith("postgresql"):
        db.engine.dispose()
        db.engine = engine_like_ours(url, pre_ping=pre_ping)
        db._sessions.configure(bind=db.engine)
    elif pre_ping:
        db.engine.pool._pre_ping = True  # SQLite: the same flag on the pool that make_engine builds
    return db


def per_session_us(db: Database, count: int) -> float:
    with db.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, name TEXT)"))
        session.execute(text("DELETE FROM bench_rows"))
        session.execute(text("INSERT INTO bench_rows (id, name) VALUES (1, 'one')"))
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count // 5):
            with db.session() as session:
                session.execute(text("SELECT name FROM bench_rows WHERE id = 1")).scalar_one()
        rounds.append((time.perf_counter() - started) / (count // 5) * 1e6)
    return statistics.median(rounds)


def failures_after_restart(cluster: PostgresCluster, url: str, *, pre_ping: bool) -> int:
    db = database(url, pre_ping=pre_ping)
    held = [db.engine.connect() for _ in range(8)]
    for conn in held:
        conn.execute(text("SELECT 1"))
        conn.close()
    cluster.stop_server("fast")
    cluster.start_server()
    failures = 0
    while failures < 50:
        try:
            with db.session() as session:
                session.execute(text("SELECT 1")).scalar_one()
            break
        except DBAPIError:
            failures += 1
    db.engine.dispose()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS-db-faults.md")
    args = parser.parse_args()

    cluster = PostgresCluster(prefix="hubstead-bench-pg-")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_url = f"sqlite:///{tmp}/bench.db"
            for backend, url in (("SQLite", sqlite_url), ("PostgreSQL", cluster.new_database())):
                off = per_session_us(database(url, pre_ping=False), args.sessions)
                on = per_session_us(database(url, pre_ping=True), args.sessions)
                rows.append(f"| {backend} | {on:.0f} | {off:.0f} | {on - off:+.0f} | {on / off:.2f} |")
        pg_url = cluster.new_database()
        with_ping = failures_after_restart(cluster, pg_url, pre_ping=True)
        without_ping = failures_after_restart(cluster, pg_url, pre_ping=False)
    finally:
        cluster.stop()

    report = "\n".join(
        [
            "# Database faults: what pool_pre_ping costs and buys (benchmarks/bench_db_faults.py)",
            "",
            f"One session = pool checkout, one primary-key SELECT, commit, return; median of 5 rounds of "
            f"{args.sessions // 5} sessions, microseconds per session. Loopback PostgreSQL, fsync off.",
            "",
            "| backend | pre-ping on (us) | pre-ping off: baseline (us) | cost (us) | ratio |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Sessions that failed after a PostgreSQL restart (pool of 8 idle connections), before one succeeded:",
            f"pre-ping on: {with_ping}; pre-ping off: {without_ping}.",
            "",
        ]
    )
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
