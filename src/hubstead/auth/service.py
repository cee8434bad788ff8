"""Users, organizations, tokens and the permission rules every route asks.

Passwords are hashed with scrypt (salted); tokens are 256-bit random strings of which only the sha256
is stored, so a stolen database reveals neither.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, lazyload

from hubstead.auth import audit
from hubstead.auth.models import ROLES, Membership, Org, Token, User
from hubstead.db import utcnow
from hubstead.errors import BadRequestError, ConflictError, NotFoundError
from hubstead.names import validate_name

TOKEN_PREFIX = "hs_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user and the role of the token they used (``None`` user means anonymous)."""

    user: User | None
    token_role: str | None = None
    token_name: str | None = None
    token_id: int | None = None  # the access token's row (a Xet CAS token names it, to die with it)
    # A space's token reads only its owner org's private repos (and public ones), whatever else its user may.
    namespace_scope: str | None = None

    @property
    def can_write(self) -> bool:
        return self.user is not None and self.token_role in ("write", "admin")

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin and self.can_write


ANONYMOUS = Principal(user=None)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def authenticate_password(session: Session, *, name: str, password: str) -> User | None:
    """The user with this name and password, or None. Takes the same time whether the name exists or not (an
    unknown user, or one without a password, is checked against a dummy scrypt hash): no user enumeration."""
    user = session.scalar(select(User).where(User.name_key == name.strip().lower()))
    stored = user.password_hash if user is not None and user.password_hash else None
    matches = verify_password(password, stored or _dummy_hash())
    return user if matches and stored is not None else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Names that would collide with the URL space (``/datasets/...``, ``/api/...``, web pages).
RESERVED_NAMES = frozenset(
    "api datasets spaces models settings login logout join new docs healthz readyz metrics static organizations orgs "
    "collections papers search notifications admin users hubstead jobs train buckets evaluations".split()
)


def namespace_taken(session: Session, name: str) -> bool:
    key = name.lower()
    if key in RESERVED_NAMES:
        return True
    return bool(
        session.scalar(select(User.id).where(User.name_key == key))
        or session.scalar(select(Org.id).where(Org.name_key == key))
    )


def create_user(
    session: Session,
    *,
    name: str,
    password: str | None = None,
    is_admin: bool = False,
    email: str | None = None,
    actor: User | Principal | None = None,
) -> User:
    """Create a user. Raises ConflictError when the name is taken by a user or an org. ``actor``: who did it, for
    the audit log (unless named, the new user, as when signing up)."""
    validate_name(name, what="user name")
    if namespace_taken(session, name):
        raise ConflictError(f"The name {name!r} is already taken")
    user = User(
        name=name,
        name_key=name.lower(),
        fullname=name,
        email=email,
        password_hash=hash_password(password) if password else None,
        is_admin=is_admin,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor or user, action="user.create", namespace=user.name, target=user.name,
                 detail={"admin": is_admin})  # fmt: skip
    return user


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name_key == name.lower()))
    if user is None:
        raise NotFoundError(f"User {name!r} not found")
    return user


def get_org(session: Session, name: str) -> Org:
    org = session.scalar(select(Org).where(Org.name_key == name.lower()))
    if org is None:
        raise NotFoundError(f"Organization {name!r} not found")
    return org


def create_org(session: Session, *, name: str, owner: User, actor: User | Principal | None = None) -> Org:
    """Create an org with ``owner`` as its first admin (``actor``: who did it, the owner unless named)."""
    validate_name(name, what="organization name")
    if namespace_taken(session, name):
        raise ConflictError(f"The name {name!r} is already taken")
    org = Org(name=name, name_key=name.lower(), fullname=name)
    session.add(org)
    session.flush()
    session.add(Membership(org_id=org.id, user_id=owner.id, role="admin"))
    session.flush()
    audit.record(session, actor=actor or owner, action="org.create", namespace=org.name, target=org.name,
                 detail={"owner": owner.name})  # fmt: skip
    return org


def set_membership(
    session: Session, *, org: Org, user: User, role: str, actor: User | Principal | None = None
) -> Membership:
    """Add ``user`` to ``org`` with ``role``, or change their role (``actor``: who did it; None, the system)."""
    if role not in ROLES:
        raise BadRequestError(f"Invalid role {role!r}: expected one of {', '.join(ROLES)}")
    membership = session.scalar(select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id))
    if membership is None:
        membership = Membership(org_id=org.id, user_id=user.id, role=role)
        session.add(membership)
        audit.record(session, actor=actor, action="org.member.add", namespace=org.name, target=user.name,
                     detail={"role": role})  # fmt: skip
    elif membership.role != role:
        audit.record(session, actor=actor, action="org.member.role", namespace=org.name, target=user.name,
                     detail={"old": membership.role, "new": role})  # fmt: skip
        membership.role = role
    session.flush()
    return membership


# The name of the read token a space's app gets (``spaces``): "space:{owner}/{name}", plus "@{org}" for an org's space,
# which scopes the token to that org (``Principal.namespace_scope``).
SPACE_TOKEN_PREFIX = "space:"
# A compute job's HF_TOKEN (``compute``): "job:{namespace}/{job id}@{namespace}", a write token scoped to the
# job's owner namespace: it reads that namespace's private repos and public ones, and writes only there.
JOB_TOKEN_PREFIX = "job:"


def create_token(
    session: Session, *, user: User, role: str = "read", name: str = "", actor: User | Principal | None = None
) -> str:
    """Create an access token and return it; only its hash is kept. A person's token is audited (``actor``: who
    made it, the user unless named); a space's or a job's own token, made by the hub, is not."""
    if role not in ("read", "write"):
        raise BadRequestError(f"Invalid token role {role!r}: expected 'read' or 'write'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, role=role, name=name, token_hash=hash_token(token)))
    session.flush()
    if not name.startswith((SPACE_TOKEN_PREFIX, JOB_TOKEN_PREFIX)):
        audit.record(session, actor=actor or user, action="token.create", namespace=user.name, target=name,
                     detail={"role": role})  # fmt: skip
    return token


# Built once: constructing the statement cost more CPU than running it (every API read with a token runs it).
_PRINCIPAL_BY_TOKEN = (
    select(Token.id, Token.name, Token.role, Token.last_used_at, User)
    .join(User, User.id == Token.user_id)
    .where(Token.token_hash == bindparam("token_hash"))
    .options(lazyload(User.memberships))
)


def principal_for_token(session: Session, token: str) -> Principal | None:
    """The caller behind a bearer token, or None when the token is unknown.

    Every API read with a token runs this, so it is one query: the token's four columns and its user, without
    the user's memberships (``User.memberships`` is select-in by default: a second query no token check needs;
    it still loads on first access). Nothing is cached: a revoked token, a user made non-admin or a membership
    removed is seen by the next request of every process, since each request reads the rows afresh."""
    row = session.execute(_PRINCIPAL_BY_TOKEN, {"token_hash": hash_token(token)}).first()
    if row is None:
        return None
    token_id, name, role, last_used_at, user = row
    if user.disabled_at is not None:
        return None  # a disabled account's tokens are refused like unknown ones (``auth.accounts``)
    now = utcnow()
    if last_used_at is None or (now - last_used_at).total_seconds() > 60:
        session.execute(update(Token).where(Token.id == token_id).values(last_used_at=now))
    scope = None
    if name.startswith((SPACE_TOKEN_PREFIX, JOB_TOKEN_PREFIX)) and "@" in name:
        scope = name.rsplit("@", 1)[1].lower()  # "space:org/name@org": an org space's token
    return Principal(user=user, token_role=role, token_name=name, token_id=token_id, namespace_scope=scope)


def org_role(session: Session, *, user: User, namespace: str) -> str | None:
    """The user's role in the org called ``namespace``, or None."""
    return session.scalar(
        select(Membership.role)
        .join(Org, Org.id == Membership.org_id)
        .where(Org.name_key == namespace.lower(), Membership.user_id == user.id)
    )


def namespace_role(session: Session, principal: Principal, namespace: str) -> str | None:
    """The caller's standing in a namespace: ``admin`` for their own, their role in an org, else None."""
    user = principal.user
    if user is None:
        return None
    if principal.namespace_scope is not None and namespace.lower() != principal.namespace_scope:
        return None  # a space's or a job's token stands only in its own namespace
    if user.name_key == namespace.lower() or user.is_admin:
        return "admin"
    return org_role(session, user=user, namespace=namespace)


def user_orgs(session: Session, user: User) -> list[tuple[Org, str]]:
    rows = session.execute(
        select(Org, Membership.role).join(Membership, Membership.org_id == Org.id).where(Membership.user_id == user.id)
    )
    return [(org, role) for org, role in rows]


def org_members(session: Session, org: Org) -> list[tuple[User, str]]:
    """Each member of ``org`` with their role."""
    rows = session.execute(
        select(User, Membership.role).join(Membership, Membership.user_id == User.id).where(Membership.org_id == org.id)
    )
    return [(user, role) for user, role in rows]


def find_account(session: Session, name: str) -> User | Org | None:
    """The user, else the org, called ``name`` (case-insensitive), or None: a namespace's owner."""
    key = name.lower()
    user = session.scalar(select(User).where(User.name_key == key))
    return user if user is not None else session.scalar(select(Org).where(Org.name_key == key))


def list_tokens(session: Session, user: User) -> list[Token]:
    return list(session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.created_at.desc())))


def revoke_token(session: Session, *, user: User, token_id: int, actor: User | Principal | None = None) -> None:
    """Delete one of the user's tokens. Raises NotFoundError for someone else's or a missing token."""
    token = session.get(Token, token_id)
    if token is None or token.user_id != user.id:
        raise NotFoundError("Token not found")
    audit.record(session, actor=actor or user, action="token.revoke", namespace=user.name, target=token.name,
                 detail={"role": token.role})  # fmt: skip
    session.delete(token)
    session.flush()
