"""``hubstead migrate``: a deployment brings the schema up to date once, before it starts new processes, and
``--check`` tells a pipeline whether a migration is pending (exit 1) without changing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from hubstead.db import Database


def _migrate(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hubstead.cli", "migrate", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_migrate_and_check(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pending = _migrate(data_dir, "--check")
    assert pending.returncode == 1 and "schema empty" in pending.stdout
    db = Database(f"sqlite:///{data_dir / 'hubstead.db'}")
    try:
        assert "repos" not in inspect(db.engine).get_table_names()  # --check changed nothing
        done = _migrate(data_dir)
        assert done.returncode == 0 and "migrated from empty to" in done.stdout, done.stderr
        current, newest = db.schema_revisions()
        assert current == newest is not None and "repos" in inspect(db.engine).get_table_names()
        assert _migrate(data_dir, "--check").returncode == 0
        assert "already at" in _migrate(data_dir).stdout
    finally:
        db.engine.dispose()
