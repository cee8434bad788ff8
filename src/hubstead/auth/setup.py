"""The first admin of a fresh hub, from the web.

While no site admin exists, ``hubstead serve`` issues a one-time setup token and prints the link
``/setup?token=...``; the page behind it creates the first admin. Only the token's sha256 is kept, in the data
dir (``setup-token``, shared by every process of a deployment). The token works once: redeeming it removes the
file; it stops working as soon as any admin exists (made here or by ``hubstead users create --admin``), and each
start of ``serve`` replaces it with a fresh one. Signing up never makes anyone an admin.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.accounts import password_problem
from hubstead.auth.models import User
from hubstead.auth.service import create_user
from hubstead.config import Settings
from hubstead.db import Database
from hubstead.errors import BadRequestError, ForbiddenError

TOKEN_FILE = "setup-token"
REFUSED = "This setup link is no longer valid: it was used, replaced by a newer one, or an admin already exists"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE


def looks_like_email(text: str) -> bool:
    """A loose check of an optional email address typed into a form (one @, a dot in the domain, no spaces)."""
    local, at, domain = text.partition("@")
    return bool(at and local and "." in domain.strip(".") and "@" not in domain and len(text) <= 256
                and not any(c.isspace() for c in text))  # fmt: skip


def admin_exists(session: Session) -> bool:
    return session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)) is not None


def issue(session: Session, data_dir: Path) -> str | None:
    """A fresh setup token while the hub has no admin (the previous one stops working), else None (and any
    leftover token file is removed)."""
    path = _path(data_dir)
    if admin_exists(session):
        path.unlink(missing_ok=True)
        return None
    token = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(_digest(token) + "\n")
    os.replace(temporary, path)
    return token


def is_valid(session: Session, data_dir: Path, token: str) -> bool:
    if not token or admin_exists(session):
        return False
    try:
        stored = _path(data_dir).read_text().strip()
    except FileNotFoundError:
        return False
    return secrets.compare_digest(stored, _digest(token))


def create_first_admin(
    session: Session, data_dir: Path, token: str, *, name: str, password: str, email: str | None = None
) -> User:
    """Create the first site admin with the setup token, and use the token up. Raises ForbiddenError (403) when the
    token is wrong, used, or an admin exists; BadRequestError / ConflictError for a bad name or password, with
    nothing written and the token still valid. The caller's transaction is what commits the user; if it rolls
    back, the token is put back."""
    if not is_valid(session, data_dir, token):
        raise ForbiddenError(REFUSED)
    if (problem := password_problem(password, name=name)) is not None:
        raise BadRequestError(problem)
    if email and not looks_like_email(email):
        raise BadRequestError("That email address does not look right")
    user = create_user(session, name=name.strip(), password=password, is_admin=True, email=email or None)
    path = _path(data_dir)
    try:
        stored = path.read_text()
        path.unlink()  # of two requests at once, one unlinks: the other is refused
    except FileNotFoundError:
        raise ForbiddenError(REFUSED) from None

    def put_back() -> None:
        if not path.exists():
            path.write_text(stored)

    session.info.setdefault("on_rollback", []).append(put_back)
    return user


def open_url(settings: Settings) -> str:
    """The address to open in a browser: the public URL, else the listening address (loopback for "every
    address")."""
    if settings.public_url or settings.host not in ("0.0.0.0", "::", ""):
        return settings.external_url + "/"
    return f"http://127.0.0.1:{settings.port}/"


def serve_banner(db: Database, settings: Settings) -> list[str]:
    """What ``hubstead serve`` prints once it is ready to start: where the data lives, the URL to open, and while
    the hub has no admin the one-time setup link (a fresh token each start)."""
    url = open_url(settings)
    lines = [f"Data dir: {settings.data_dir}", f"Open {url} in a browser"]
    with db.session() as session:
        token = issue(session, settings.data_dir)
    if token is not None:
        lines.append(f"No admin yet: create the first one at {url}setup?token={token} (works once)")
    return lines
