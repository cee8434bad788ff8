"""Browser sign-in: a session cookie (random, stored as sha256, HttpOnly, SameSite=Lax) and a CSRF token
per session that every form and htmx request must send back.

This module knows cookie values, not requests: ``api.deps`` reads the cookie (``web_session``) and is the one
place routes learn who is calling (``get_caller``: a token, or this session where the route accepts it)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hubstead.auth.models import User, WebSession
from hubstead.auth.service import verify_password
from hubstead.db import utcnow
from hubstead.errors import ForbiddenError

COOKIE = "hubstead_session"
SESSION_DAYS = 14
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def authenticate(session: Session, *, name: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.name_key == name.strip().lower()))
    if user is None or user.disabled_at is not None or not verify_password(password, user.password_hash):
        return None
    return user


def start(session: Session, user: User) -> str:
    """Open a browser session for ``user``; returns the cookie value."""
    value = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_hash(value),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            expires_at=utcnow() + timedelta(days=SESSION_DAYS),
        )
    )
    session.flush()
    return value


def lookup(session: Session, value: str | None) -> WebSession | None:
    """The live session whose cookie value is ``value``, or None."""
    if not value:
        return None
    record = session.scalar(select(WebSession).where(WebSession.token_hash == _hash(value)))
    if record is None or record.expires_at < utcnow() or record.user.disabled_at is not None:
        return None
    return record


def end(session: Session, value: str | None) -> None:
    """Sign out the session whose cookie value is ``value`` (nothing when there is none)."""
    if value:
        session.execute(delete(WebSession).where(WebSession.token_hash == _hash(value)))


def check_csrf(web: WebSession | None, submitted: str | None) -> None:
    """Raises ForbiddenError unless ``submitted`` is this session's CSRF token."""
    if web is None or not submitted or not hmac.compare_digest(web.csrf_token, submitted):
        raise ForbiddenError("This form has expired or did not come from this site; reload the page and try again")
