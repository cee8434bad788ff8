"""``hubstead.auth.sessions`` against a real database: browser sessions start, are found by their cookie, expire,
end, and carry the CSRF token every form must send back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hubstead.auth import service, sessions
from hubstead.auth.models import WebSession
from hubstead.context import Hub
from hubstead.db import utcnow
from hubstead.errors import ForbiddenError


def test_start_stores_only_a_hash_and_lookup_finds_the_session(backend_hub: Hub) -> None:
    """The cookie value is random and only its sha256 is stored; looking it up gives the user's session, with a
    CSRF token and an expiry ``SESSION_DAYS`` ahead; a different or empty value finds nothing."""
    with backend_hub.db.session() as s:
        user = service.create_user(s, name="Alice", password="pw-123456")
        value = sessions.start(s, user)
        other = sessions.start(s, user)
        assert value != other and len(value) >= 40
        assert value not in set(s.scalars(select(WebSession.token_hash)))
        record = sessions.lookup(s, value)
        assert record is not None and record.user.name == "Alice" and record.csrf_token
        remaining = record.expires_at - utcnow()
        assert timedelta(days=sessions.SESSION_DAYS - 1) < remaining <= timedelta(days=sessions.SESSION_DAYS)
        assert sessions.lookup(s, other) is not None and sessions.lookup(s, other) is not record
        for missing in (None, "", value + "x", value[:-1]):
            assert sessions.lookup(s, missing) is None


def test_an_expired_session_is_not_found(hub: Hub) -> None:
    """A session past its expiry is treated as signed out even though its row is still there."""
    with hub.db.session() as s:
        user = service.create_user(s, name="bob")
        value = sessions.start(s, user)
        record = sessions.lookup(s, value)
        assert record is not None
        record.expires_at = utcnow() - timedelta(seconds=1)
        s.flush()
        assert sessions.lookup(s, value) is None


def test_end_signs_out_only_that_session(hub: Hub) -> None:
    """Ending one session removes it and leaves the user's other sessions; ending nothing is harmless."""
    with hub.db.session() as s:
        user = service.create_user(s, name="carol")
        laptop, phone = sessions.start(s, user), sessions.start(s, user)
        sessions.end(s, laptop)
        sessions.end(s, None)
        sessions.end(s, "not-a-session")
        assert sessions.lookup(s, laptop) is None
        assert sessions.lookup(s, phone) is not None


def test_check_csrf_accepts_only_this_sessions_token(hub: Hub) -> None:
    """A form passes only with its own session's CSRF token: another session's token, none, an empty one or no
    session at all is a 403 that tells the person to reload."""
    with hub.db.session() as s:
        user = service.create_user(s, name="dave")
        mine = sessions.lookup(s, sessions.start(s, user))
        theirs = sessions.lookup(s, sessions.start(s, user))
        assert mine is not None and theirs is not None and mine.csrf_token != theirs.csrf_token
        sessions.check_csrf(mine, mine.csrf_token)
        for session_record, submitted in ((mine, theirs.csrf_token), (mine, None), (mine, ""), (None, mine.csrf_token)):
            with pytest.raises(ForbiddenError, match="reload the page"):
                sessions.check_csrf(session_record, submitted)


def test_authenticate_checks_name_and_password(hub: Hub) -> None:
    """Sign-in finds the user by name whatever its case and spacing, and only with the right password."""
    with hub.db.session() as s:
        user = service.create_user(s, name="Erin", password="correct horse")
        assert sessions.authenticate(s, name=" erin ", password="correct horse") is user
        assert sessions.authenticate(s, name="erin", password="wrong") is None
        assert sessions.authenticate(s, name="nobody", password="correct horse") is None
