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


def test_processes_starting_at_once_on_postgresql_migrate_once(postgres) -> None:  # type: ignore[no-untyped-def]
    """Four processes (API processes on several machines, say) start against one empty PostgreSQL database at the
    same moment: one migrates under the advisory lock, the others wait and find the schema current. Without the
    lock they race on the same CREATE TABLEs and some die."""
    import subprocess
    import sys

    from sqlalchemy import create_engine, text

    url = postgres.new_database()
    code = "import sys; from hubstead.db import Database; Database(sys.argv[1]).migrate()"
    processes = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], errors
    engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert len(versions) == 1
