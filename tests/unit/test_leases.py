"""Leases elect one holder among processes, on SQLite and on PostgreSQL: exclusive while unexpired, renewed only
by their holder, taken over once expired, released at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubstead.coordination import leases
from hubstead.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    database = Database(url)
    database.migrate()
    yield database
    database.engine.dispose()


def test_one_holder_at_a_time_until_expiry(db: Database) -> None:
    assert leases.current(db, "compute") is None
    assert leases.try_acquire(db, "compute", "a", "http://127.0.0.1:1", ttl=0.6)
    assert not leases.try_acquire(db, "compute", "b", "http://127.0.0.1:2", ttl=0.6)
    held = leases.current(db, "compute")
    assert held is not None and (held.holder, held.address) == ("a", "http://127.0.0.1:1")
    assert leases.try_acquire(db, "compute", "a", "http://127.0.0.1:1", ttl=0.6)  # the holder extends its own
    assert not leases.renew(db, "compute", "b", ttl=0.6)
    assert leases.try_acquire(db, "other", "b", "", ttl=0.6)  # names are independent

    time.sleep(0.8)  # a's lease expires: nobody holds it, b takes it over, a can no longer renew
    assert leases.current(db, "compute") is None
    assert leases.try_acquire(db, "compute", "b", "http://127.0.0.1:2", ttl=5)
    assert not leases.renew(db, "compute", "a", ttl=5)
    held = leases.current(db, "compute")
    assert held is not None and (held.holder, held.address) == ("b", "http://127.0.0.1:2")


def test_renewal_keeps_it_and_release_frees_it(db: Database) -> None:
    assert leases.try_acquire(db, "compute", "a", "x", ttl=0.5)
    for _ in range(4):  # renewed past several ttls: still a's
        time.sleep(0.2)
        assert leases.renew(db, "compute", "a", ttl=0.5)
        assert not leases.try_acquire(db, "compute", "b", "y", ttl=0.5)
    leases.release(db, "compute", "b")  # not b's to release
    assert leases.current(db, "compute") is not None
    leases.release(db, "compute", "a")
    assert leases.current(db, "compute") is None
    assert leases.try_acquire(db, "compute", "b", "y", ttl=0.5)


def test_racing_acquirers_elect_exactly_one(db: Database) -> None:
    won: list[str] = []
    start = threading.Barrier(8)

    def contend(holder: str) -> None:
        start.wait()
        if leases.try_acquire(db, "race", holder, "", ttl=30):
            won.append(holder)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = leases.current(db, "race")
    assert len(won) == 1 and held is not None and held.holder == won[0]
