"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hubstead.db import Base, Database
from hubstead.models import load_all_models


def test_migrations_match_models(tmp_path: Path) -> None:
    load_all_models()
    db = Database(f"sqlite:///{tmp_path / 'schema.db'}")
    db.migrate()
    db.migrate()  # running again at the next start is a no-op
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
