"""Fixtures for the service unit tests: a real ``Hub`` (database, repos, blobs, xorbs) on a temporary data dir,
with no server in front of it.

``hub`` is SQLite (a fresh, migrated database per test: a fraction of a second). ``backend_hub`` runs a test
on SQLite and on PostgreSQL (a fresh database per test in the session's private cluster, ``tests/conftest.py``
``postgres``), for rules where a backend difference could matter: case folding, NULL ordering, locking.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubstead.config import Settings
from hubstead.context import Hub


def make_hub(data_dir: Path, database_url: str | None = None) -> Hub:
    """A migrated hub whose data lives under ``data_dir`` (SQLite there unless ``database_url`` says otherwise)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url or f"sqlite:///{data_dir / 'hubstead.db'}",
        secret_key=secrets.token_hex(16),
    )
    return Hub.from_settings(settings)


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[Hub]:
    """A fresh hub on SQLite."""
    made = make_hub(tmp_path / "data")
    yield made
    made.db.engine.dispose()


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One SQLite hub shared by a module's tests (for many small cases that each leave nothing behind)."""
    made = make_hub(tmp_path_factory.mktemp("hub") / "data")
    yield made
    made.db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hub]:
    """A fresh hub on SQLite, then on PostgreSQL."""
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres").new_database()
    made = make_hub(tmp_path / "data", database_url)
    yield made
    made.db.engine.dispose()
