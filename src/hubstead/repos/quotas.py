"""Storage quotas per namespace (a user or an org): what it uses, what it may use, and the check every upload and
commit makes before anything is written (docs/quotas.md).

The counting rule, as the Hub counts deduplicated storage: a namespace uses the sum of the sizes of the DISTINCT
LFS objects (LFS and Xet files: sha256 oids in ``repo_lfs_objects``) that its repos' revisions reference, once
per object however many of its repos, branches or revisions name it; public and private repos are two pools, each
counted on its own (an object in a public and a private repo counts in both). Small files kept in git are not
counted in the usage (their packs are tiny next to the LFS store and are not tracked per namespace); a commit
that adds them counts their bytes towards what it needs, so a namespace at its limit cannot grow through git.

Limits: a row in ``namespace_quotas`` overrides the site default (``Settings.quota_user_bytes`` ...) for one
namespace and one pool; a NULL column falls back to the default; a default of None is no limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import pygit2
from sqlalchemy import BigInteger, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hubstead.auth.models import Org
from hubstead.auth.service import find_account
from hubstead.context import Hub
from hubstead.db import Base, UTCDateTime, utcnow
from hubstead.errors import BadRequestError, ForbiddenError, NotFoundError
from hubstead.repos.lfs.pointers import MAX_POINTER_SIZE, parse_pointer
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.service import open_git

POOLS = ("public", "private")


class NamespaceQuota(Base):
    """A site admin's limits for one namespace (bytes); NULL = the site default for its kind."""

    __tablename__ = "namespace_quotas"

    namespace_key: Mapped[str] = mapped_column(String(96), primary_key=True)  # lower-cased
    public_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    private_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


class QuotaExceededError(ForbiddenError):
    """An upload or commit would take a namespace's pool past its limit: a 403, as the Hub answers one."""


def format_bytes(size: int) -> str:
    """Decimal units, as the Hub shows sizes: ``950 bytes``, ``1.2 MB``, ``9.5 GB``."""
    if size < 1000:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 999.95 or unit == "PB":
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def needed_bytes(new: Mapping[str, int], already: set[str], extra: int = 0) -> int:
    """What an upload adds to a pool: the objects the pool does not reference yet, once each, plus ``extra``."""
    return sum(size for oid, size in new.items() if oid not in already) + max(0, extra)


def _pool_repos(namespace: str, private: bool):  # type: ignore[no-untyped-def]
    """The pks of the pool's repos (a namespace has few repos next to their objects: the objects are then read
    through their primary key, ``(repo_pk, oid)``, never by a scan of every namespace's)."""
    return select(Repo.pk).where(func.lower(Repo.namespace) == namespace.lower(), Repo.private.is_(private))


def used_bytes(session: Session, namespace: str, *, private: bool) -> int:
    """The pool's usage: distinct objects referenced by the namespace's public (or private) repos."""
    per_oid = (
        select(RepoLfsObject.oid, func.max(RepoLfsObject.size).label("size"))
        .where(RepoLfsObject.repo_pk.in_(_pool_repos(namespace, private)))
        .group_by(RepoLfsObject.oid)
        .subquery()
    )
    return int(session.scalar(select(func.coalesce(func.sum(per_oid.c.size), 0))) or 0)


def _referenced(session: Session, namespace: str, private: bool, oids: Iterable[str]) -> set[str]:
    wanted = list(set(oids))
    if not wanted:
        return set()
    query = select(RepoLfsObject.oid).where(
        RepoLfsObject.repo_pk.in_(_pool_repos(namespace, private)), RepoLfsObject.oid.in_(wanted)
    )
    return set(session.scalars(query))


@dataclass(frozen=True)
class Pool:
    used: int
    limit: int | None  # None: no limit

    def answer(self) -> dict[str, int | None]:
        return {"usedBytes": self.used, "limitBytes": self.limit}


def _override(session: Session, namespace: str) -> NamespaceQuota | None:
    return session.get(NamespaceQuota, namespace.lower())


def limit_for(hub: Hub, session: Session, namespace: str, *, private: bool) -> int | None:
    """The pool's limit: the namespace's override, else the site default for a user or an org."""
    row = _override(session, namespace)
    value = None if row is None else (row.private_bytes if private else row.public_bytes)
    if value is not None:
        return value
    settings = hub.settings
    if private and settings.quota_user_private_bytes is None and settings.quota_org_private_bytes is None:
        return None  # no default for this pool: no need to ask whose namespace it is
    if not private and settings.quota_user_bytes is None and settings.quota_org_bytes is None:
        return None
    if isinstance(find_account(session, namespace), Org):
        return settings.quota_org_private_bytes if private else settings.quota_org_bytes
    return settings.quota_user_private_bytes if private else settings.quota_user_bytes


def usage(hub: Hub, session: Session, namespace: str) -> dict[str, object]:
    """``GET /api/quotas/{namespace}``'s answer: each pool's used and allowed bytes and the admin's override."""
    account = find_account(session, namespace)
    if account is None:
        raise NotFoundError(f"No user or organization called {namespace!r}")
    row = _override(session, account.name)
    pools = {
        pool: Pool(used_bytes(session, account.name, private=pool == "private"),
                   limit_for(hub, session, account.name, private=pool == "private")).answer()
        for pool in POOLS
    }  # fmt: skip
    return {
        "namespace": account.name,
        "type": "org" if isinstance(account, Org) else "user",
        **pools,
        "override": {
            "publicBytes": row.public_bytes if row else None,
            "privateBytes": row.private_bytes if row else None,
        },
    }


def require_room(hub: Hub, session: Session, repo: Repo, objects: Mapping[str, int], extra_bytes: int = 0) -> None:
    """Refuse (403) an upload or commit to ``repo`` that would take its namespace's pool past the limit.

    ``objects`` maps LFS oids to sizes; those the pool already references do not count again (dedup).
    ``extra_bytes``: bytes outside the LFS store (a commit's small files kept in git).

    Raises:
        QuotaExceededError: with the used, allowed and needed sizes in the message.
    """
    limit = limit_for(hub, session, repo.namespace, private=repo.private)
    if limit is None:
        return
    already = _referenced(session, repo.namespace, repo.private, objects)
    needed = needed_bytes(objects, already, extra_bytes)
    if needed == 0:
        return
    used = used_bytes(session, repo.namespace, private=repo.private)
    if used + needed > limit:
        pool = "private" if repo.private else "public"
        raise QuotaExceededError(
            f"Storage quota exceeded for {repo.namespace} ({pool} repos): {format_bytes(used)} used of "
            f"{format_bytes(limit)} allowed; this upload needs {format_bytes(needed)}"
        )


def require_room_for_files(
    hub: Hub, session: Session, repo: Repo, files: Iterable[tuple[str, pygit2.Oid]], lfs_objects: Mapping[str, int]
) -> None:
    """``require_room`` for blobs already written to the repo (the web upload): the git bytes of its regular
    files plus the LFS objects the pool does not reference yet."""
    git = open_git(hub, repo)
    git_bytes = 0
    for _path, blob in files:
        obj = git.repo[blob]
        if isinstance(obj, pygit2.Blob):
            pointer = parse_pointer(obj.data) if obj.size <= MAX_POINTER_SIZE else None
            # An LFS file's pointer is counted as its object, as the NDJSON commit's lfsFile is.
            git_bytes += 0 if pointer is not None and pointer.oid in lfs_objects else obj.size
    require_room(hub, session, repo, lfs_objects, git_bytes)


def _limit_value(value: object, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequestError(f"Invalid {what}: expected a number of bytes (0 or more) or null for the site default")
    return value


def set_quota(session: Session, namespace: str, changes: Mapping[str, object]) -> None:
    """Set a namespace's overrides: ``changes`` may hold ``publicBytes`` and ``privateBytes`` (an int, or None
    for the site default); keys left out keep their value.

    Raises:
        NotFoundError: no user or org of that name.
        BadRequestError: a value that is not a byte count, or an unknown key.
    """
    account = find_account(session, namespace)
    if account is None:
        raise NotFoundError(f"No user or organization called {namespace!r}")
    unknown = set(changes) - {"publicBytes", "privateBytes"}
    if unknown:
        raise BadRequestError(f"Unknown quota field(s): {', '.join(sorted(unknown))}")
    values = {key: _limit_value(value, key) for key, value in changes.items()}
    row = _override(session, account.name)
    if row is None:
        row = NamespaceQuota(namespace_key=account.name.lower())
        session.add(row)
    if "publicBytes" in values:
        row.public_bytes = values["publicBytes"]
    if "privateBytes" in values:
        row.private_bytes = values["privateBytes"]
    session.flush()
