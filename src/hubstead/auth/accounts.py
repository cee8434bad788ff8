"""Account administration: what a site admin does to users and their tokens, and the one password rule.

The CLI (``cli_admin``), the admin API (``auth/routes_admin``), the admin pages (``web/routes_admin_users``), the
sign-up form and the settings page all call these functions, so a rule holds everywhere or nowhere. What happens
to a deleted user's repos is a repos-layer question: ``repos/owners`` (``deletion_plan``, ``delete_user``).

A disabled user keeps their row, repos and history: they cannot sign in, and their tokens and browser sessions
are refused (``service.principal_for_token``, ``sessions.lookup``); their public repos stay readable.
"""

from __future__ import annotations

from typing import Any, TypedDict

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from hubstead.auth import audit
from hubstead.auth.models import Token, User, WebSession
from hubstead.auth.service import hash_password
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, ConflictError, NotFoundError

PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # scrypt hashes anything, but a megabyte "password" is a way to burn CPU


def password_problem(password: str, *, name: str | None = None) -> str | None:
    """What is wrong with ``password`` as a new password, in words for the person typing it, or None.

    The one rule: at least 8 characters, at most 1024, not only spaces, and not the user name itself."""
    if len(password) < PASSWORD_MIN:
        return f"Use a password of at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"Use a password of at most {PASSWORD_MAX} characters"
    if not password.strip():
        return "A password cannot be only spaces"
    if name is not None and password.strip().lower() == name.strip().lower():
        return "Do not use your user name as your password"
    return None


def check_password(password: str, *, name: str | None = None) -> None:
    """Raises BadRequestError (400) with ``password_problem``'s words when the password breaks the rule."""
    problem = password_problem(password, name=name)
    if problem is not None:
        raise BadRequestError(problem)


def _audit(session: Session, *, actor: User | None, action: str, target: str, detail: dict[str, Any]) -> None:
    audit.record(session, actor=actor, action=action, namespace=target, target=target, detail=detail)


class UserRow(TypedDict):
    name: str
    fullname: str
    email: str | None
    isAdmin: bool
    disabled: bool
    disabledAt: str | None
    createdAt: str
    tokens: int


def user_row(user: User, tokens: int = 0) -> UserRow:
    return {
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "isAdmin": user.is_admin,
        "disabled": user.disabled_at is not None,
        "disabledAt": user.disabled_at.isoformat() if user.disabled_at else None,
        "createdAt": user.created_at.isoformat(),
        "tokens": tokens,
    }


def list_users(session: Session, *, search: str | None = None, limit: int = 500) -> list[UserRow]:
    """Users by name, with how many tokens each holds; ``search`` matches name, full name or email (any case)."""
    counts = select(Token.user_id, func.count(Token.id).label("n")).group_by(Token.user_id).subquery()
    query = select(User, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.user_id == User.id)
    if search and search.strip():
        like = f"%{search.strip().lower()}%"
        query = query.where(
            or_(User.name_key.like(like), func.lower(User.fullname).like(like), func.lower(User.email).like(like))
        )
    rows = session.execute(query.order_by(User.name_key).limit(max(1, min(limit, 5000))))
    return [user_row(user, int(n)) for user, n in rows]


def find_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name_key == name.strip().lower()))
    if user is None:
        raise NotFoundError(f"User {name!r} not found")
    return user


def set_disabled(session: Session, user: User, disabled: bool, *, actor: User | None = None) -> User:
    """Disable (or enable) an account. Disabling ends its browser sessions at once; its tokens stay, refused
    while it is disabled, so enabling it again gives them back. An admin cannot disable their own account."""
    if disabled and actor is not None and actor.id == user.id:
        raise BadRequestError("You cannot disable your own account")
    if disabled and user.disabled_at is None:
        user.disabled_at = utcnow()
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    elif not disabled:
        user.disabled_at = None
    session.flush()
    _audit(session, actor=actor, action="user.disable" if disabled else "user.enable", target=user.name,
           detail={"disabled": disabled})  # fmt: skip
    return user


def set_password(session: Session, user: User, password: str, *, actor: User | None = None) -> User:
    """Set a new password (the one rule applies) and end the user's other browser sessions."""
    check_password(password, name=user.name)
    user.password_hash = hash_password(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    _audit(session, actor=actor, action="user.password", target=user.name, detail={})
    return user


def set_admin(session: Session, user: User, admin: bool, *, actor: User | None = None) -> User:
    """Make (or unmake) a site admin. The last enabled admin cannot be unmade: someone must be able to run the hub."""
    if not admin and user.is_admin:
        others = session.scalar(
            select(func.count(User.id)).where(User.is_admin.is_(True), User.id != user.id, User.disabled_at.is_(None))
        )
        if not others:
            raise ConflictError(f"{user.name} is the only site admin; make someone else admin first")
    user.is_admin = admin
    session.flush()
    _audit(session, actor=actor, action="user.admin", target=user.name, detail={"admin": admin})
    return user


class TokenRow(TypedDict):
    id: int
    user: str
    name: str
    role: str
    createdAt: str
    lastUsedAt: str | None


def token_rows(session: Session, user: User | None = None) -> list[TokenRow]:
    """Tokens (never their secret, which is not stored): one user's, or everyone's, newest first."""
    query = select(Token, User.name).join(User, User.id == Token.user_id)
    if user is not None:
        query = query.where(Token.user_id == user.id)
    rows = session.execute(query.order_by(Token.created_at.desc(), Token.id.desc()))
    return [
        {
            "id": token.id,
            "user": name,
            "name": token.name,
            "role": token.role,
            "createdAt": token.created_at.isoformat(),
            "lastUsedAt": token.last_used_at.isoformat() if token.last_used_at else None,
        }
        for token, name in rows
    ]


def revoke_any_token(session: Session, token_id: int, *, actor: User | None = None) -> TokenRow:
    """Delete a token whoever holds it (a site admin's act); returns what it was. 404 when there is none."""
    found = session.execute(select(Token, User.name).join(User, User.id == Token.user_id).where(Token.id == token_id))
    row = found.first()
    if row is None:
        raise NotFoundError(f"Token {token_id} not found")
    token, name = row
    gone: TokenRow = {
        "id": token.id,
        "user": name,
        "name": token.name,
        "role": token.role,
        "createdAt": token.created_at.isoformat(),
        "lastUsedAt": token.last_used_at.isoformat() if token.last_used_at else None,
    }
    session.execute(delete(Token).where(Token.id == token_id))
    session.flush()
    _audit(session, actor=actor, action="token.revoke", target=name, detail={"token": token_id, "name": gone["name"]})
    return gone


def delete_account(session: Session, user: User, *, actor: User | None = None) -> None:
    """Delete the user's row; the database drops their tokens, sessions, memberships, likes and webhooks with it
    (ON DELETE CASCADE) and clears their name from discussions and jobs (SET NULL). Call it through
    ``repos.owners.delete_user``, which first says and does what happens to their repos."""
    if actor is not None and actor.id == user.id:
        raise BadRequestError("You cannot delete your own account")
    if user.is_admin:
        others = session.scalar(
            select(func.count(User.id)).where(User.is_admin.is_(True), User.id != user.id, User.disabled_at.is_(None))
        )
        if not others:
            raise ConflictError(f"{user.name} is the only site admin; make someone else admin first")
    name, user_id = user.name, user.id
    session.expunge(user)
    session.execute(delete(User).where(User.id == user_id))
    session.flush()
    _audit(session, actor=actor, action="user.delete", target=name, detail={})
