"""Database faults on SQLite, on a real hub: a write held up past the busy timeout by another writer ("database is
locked") is a fault to retry (503 + Retry-After, ``db.database_unavailable``), the commit it interrupted is undone
in git (the branch is back where it was, so the client's retry lands it once), and a query bug stays a 500."""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hubstead.app import create_app
from hubstead.auth import service as auth
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.config import Settings
from hubstead.context import Hub
from hubstead.db import Database, database_unavailable
from hubstead.repos import locks as repo_locks
from hubstead.repos.commits import Author, commit_files
from hubstead.repos.git import GitRepo
from hubstead.repos.models import Repo
from hubstead.repos.service import create_repo, open_git


@pytest.fixture()
def quick_hub(tmp_path: Path) -> Iterator[Hub]:
    """A SQLite hub whose writers wait 0.2 s (not 30) for another writer's lock."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'hubstead.db'}",
                        secret_key=secrets.token_hex(16))  # fmt: skip
    made = Hub.from_settings(settings)
    made.db.engine.dispose()
    quick = dataclasses.replace(made, db=Database(made.settings.database_url, sqlite_busy_timeout=0.2))
    yield quick
    quick.db.engine.dispose()


def _db_file(hub: Hub) -> str:
    return hub.settings.database_url.removeprefix("sqlite:///")


def _held_write_lock(hub: Hub) -> sqlite3.Connection:
    """Another process's writer: a connection holding SQLite's write lock until it is closed."""
    other = sqlite3.connect(_db_file(hub), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def _main_head(git: GitRepo) -> pygit2.Commit:
    head = git.branch_head("refs/heads/main")
    assert head is not None
    return git.commit(head)


def _commit(hub: Hub, repo_pk: int, user: User, path: str, data: bytes) -> str:
    with hub.db.session() as session:
        row = session.get(Repo, repo_pk)
        assert row is not None
        blob = open_git(hub, row).write_blob(data)
        return commit_files(hub, session, repo=row, branch="main", files=[(path, blob)], lfs_objects={},
                            message=f"add {path}", author=Author(name=user.name, email="a@example.com"))  # fmt: skip


def test_a_commit_interrupted_by_a_locked_database_is_undone_in_git(quick_hub: Hub) -> None:
    hub = quick_hub
    with hub.db.session() as session:
        user = auth.create_user(session, name="alice")
        repo, _ = create_repo(hub, session, Principal(user=user, token_role="write", token_name="t"),
                              repo_id="alice/faults", repo_type="model")  # fmt: skip
    first = _commit(hub, repo.pk, user, "a.txt", b"a")

    other = _held_write_lock(hub)
    try:
        with pytest.raises(OperationalError) as caught:
            _commit(hub, repo.pk, user, "b.txt", b"b")  # git moves, then the rows wait for the lock and fail
    finally:
        other.close()
    assert "database is locked" in str(caught.value)
    assert database_unavailable(caught.value)
    with hub.db.session() as session:
        row = session.get(Repo, repo.pk)
        assert row is not None
        git = open_git(hub, row)
        assert str(git.branch_head("refs/heads/main")) == first == row.sha  # the ref was put back
        assert git.entry(_main_head(git), "b.txt") is None

    retried = _commit(hub, repo.pk, user, "b.txt", b"b")  # the client's retry lands it once
    with hub.db.session() as session:
        row = session.get(Repo, repo.pk)
        assert row is not None
        git = open_git(hub, row)
        head = _main_head(git)
        assert str(head.id) == retried == row.sha
        assert [str(parent) for parent in head.parent_ids] == [first]


def test_a_commit_whose_lock_release_fails_is_undone_in_git(quick_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repo lock is released after the ref moved: if that release fails (on PostgreSQL it is a query, and the
    database just went down), the commit fails, and its ref move must already be registered to be undone."""
    hub = quick_hub
    with hub.db.session() as session:
        user = auth.create_user(session, name="bob")
        repo, _ = create_repo(hub, session, Principal(user=user, token_role="write", token_name="t"),
                              repo_id="bob/release", repo_type="model")  # fmt: skip
    first = _commit(hub, repo.pk, user, "a.txt", b"a")

    @contextmanager
    def lock_lost_on_release(git_dir: Path, ref: str | None = None) -> Iterator[None]:
        yield
        raise OperationalError("SELECT pg_advisory_unlock(1)", {}, Exception("server closed the connection"))

    monkeypatch.setattr(repo_locks, "database_write_lock", lock_lost_on_release)
    with pytest.raises(OperationalError):
        _commit(hub, repo.pk, user, "b.txt", b"b")
    monkeypatch.undo()
    with hub.db.session() as session:
        row = session.get(Repo, repo.pk)
        assert row is not None
        git = open_git(hub, row)
        assert str(git.branch_head("refs/heads/main")) == first == row.sha  # the ref was put back
        assert git.entry(_main_head(git), "b.txt") is None


def test_a_locked_database_answers_503_with_retry_after_and_a_query_bug_is_not_a_fault(quick_hub: Hub) -> None:
    hub = quick_hub
    with hub.db.session() as session:
        user = auth.create_user(session, name="bob")
        token = auth.create_token(session, user=user, role="write")
    client = TestClient(create_app(hub.settings, hub), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"}

    other = _held_write_lock(hub)
    try:
        answer = client.post("/api/repos/create", json={"name": "locked", "type": "model"}, headers=headers)
    finally:
        other.close()
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["X-Error-Message"] == "the database is unavailable; retry shortly"
    assert answer.json() == {"error": "the database is unavailable; retry shortly"}

    again = client.post("/api/repos/create", json={"name": "locked", "type": "model"}, headers=headers)
    assert again.status_code == 200, again.text  # nothing was half-written: the same create succeeds

    with hub.db.session() as session, pytest.raises(OperationalError) as caught:
        session.execute(text("SELECT * FROM no_such_table"))
    assert not database_unavailable(caught.value)  # a bug in a query: a 500, not a retry


def test_a_lagging_index_is_repaired_by_the_next_commit_to_any_branch(quick_hub: Hub) -> None:
    hub = quick_hub
    with hub.db.session() as session:
        user = auth.create_user(session, name="carol")
        repo, _ = create_repo(hub, session, Principal(user=user, token_role="write", token_name="t"),
                              repo_id="carol/lagging", repo_type="model")  # fmt: skip
    first = _commit(hub, repo.pk, user, "README.md", b"---\nlicense: mit\n---\n")
    with hub.db.session() as session:  # a writer killed after moving main, before its rows: git only
        row = session.get(Repo, repo.pk)
        assert row is not None
        git = open_git(hub, row)
        base = _main_head(git)
        editor = git.editor(base.tree)
        editor.put_file("README.md", git.write_blob(b"---\nlicense: apache-2.0\n---\n"))
        moved = git.write_commit(tree=editor.write(git.repo), parents=[base.id],
                                 author=Author(name="carol", email="c@example.com"), message="killed\n")  # fmt: skip
        git.update_ref("refs/heads/main", moved, message="killed writer")
        git.update_ref("refs/heads/dev", moved, message="branch")
        assert row.sha == first and row.license == "mit"

    with hub.db.session() as session:
        row = session.get(Repo, repo.pk)
        assert row is not None
        blob = open_git(hub, row).write_blob(b"dev")
        commit_files(hub, session, repo=row, branch="dev", files=[("dev.txt", blob)], lfs_objects={},
                     message="on dev", author=Author(name="carol", email="c@example.com"))  # fmt: skip
    with hub.db.session() as session:
        row = session.get(Repo, repo.pk)
        assert row is not None
        assert row.sha == str(moved) and row.license == "apache-2.0"
