"""``auth.audit`` on a real (SQLite, migrated) database: an event keeps its actor's name after the user is deleted,
rolls back with its session, and the listing filters as the API documents."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, select

from hubstead.auth.audit import AuditEvent, list_events, record
from hubstead.auth.models import User
from hubstead.auth.service import create_user
from hubstead.db import Database
from hubstead.models import load_all_models


def test_an_event_outlives_its_actor_and_rolls_back_with_its_operation(tmp_path: Path) -> None:
    load_all_models()
    db = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    db.migrate()
    with db.session() as session:
        alice = create_user(session, name="Alice")
        record(
            session, actor=alice, action="repo.create", namespace="Alice", target="Alice/r", detail={"private": True}
        )
        record(session, actor=None, action="repo_x.create", namespace="other", target="other/r")
        session.commit()
    try:
        with db.session() as session:
            record(session, actor=None, action="repo.delete", namespace="alice", target="alice/r")
            raise RuntimeError("the operation failed after recording")
    except RuntimeError:
        pass
    with db.session() as session:
        session.execute(delete(User).where(User.name_key == "alice"))
        session.commit()
    with db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        assert [(e.action, e.actor_name, e.actor_id, e.namespace) for e in events] == [
            ("user.create", "Alice", None, "alice"),
            ("repo.create", "Alice", None, "alice"),
            ("repo_x.create", "system", None, "other"),
        ]
        assert events[1].detail == {"private": True}
        # "repo" is every repo.* action, not repo_x.*; the namespace matches whatever its case; newest first
        assert [e.action for e in list_events(session, action="repo")] == ["repo.create"]
        assert [e.action for e in list_events(session, namespace="ALICE")] == ["repo.create", "user.create"]
        assert [e.action for e in list_events(session, actor="Alice", limit=1)] == ["repo.create"]
        assert list_events(session, action="repo.%") == []
