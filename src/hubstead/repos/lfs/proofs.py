"""The one rule of the content-addressed store: a repo comes to reference an LFS object only with proof of
its bytes.

The blob store (and Xet) deduplicate by sha256 across every user, so a sha256 alone must never open an
object: sha256s of private or gated files show in file listings, logs, model cards. A repo may reference
(commit an ``lfsFile`` of) object ``oid`` only when

* the caller sent its bytes into this repo and the hub checked them (a ``LfsUploadProof``: a basic PUT
  whose sha256 and size matched, a multipart upload whose joined parts did, or a Xet shard whose file was
  rebuilt from chunks and hashed), or
* the caller can already read the file content of a repo whose revisions reference it (``RepoLfsObject``,
  written by commits): a copy, or a re-upload of something they can download anyway.

Everything that decides whether an upload may be skipped (LFS batch ``upload``), whether an upload is
confirmed (``verify``, multipart ``complete``, Xet shard registration) or whether a commit may name an
object calls ``may_reference`` or ``proven``; nothing else decides it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.repos.models import LfsUploadProof, Repo, RepoLfsObject
from hubstead.repos.service import can_read, has_file_content_access


def content_readable(session: Session, principal: Principal, repo: Repo) -> bool:
    """Whether the caller may read the repo's file bytes: it is visible to them, and not gated against them."""
    return can_read(session, principal, repo) and has_file_content_access(session, repo, principal)


def record_proof(session: Session, *, repo_pk: int, user_id: int, oid: str, size: int) -> None:
    """Remember that ``user_id`` sent the bytes of ``oid`` (checked to hash to it) into repo ``repo_pk``."""
    if session.get(LfsUploadProof, (repo_pk, user_id, oid)) is None:
        session.add(LfsUploadProof(repo_pk=repo_pk, user_id=user_id, oid=oid, size=size))
    session.flush()


def proven(session: Session, *, repo_pk: int, user_id: int | None, oid: str, size: int | None = None) -> bool:
    """Whether ``user_id`` proved the bytes of ``oid`` (of ``size`` bytes, when given) for repo ``repo_pk``."""
    if user_id is None:
        return False
    proof = session.get(LfsUploadProof, (repo_pk, user_id, oid))
    return proof is not None and (size is None or proof.size == size)


def readable_reference(session: Session, principal: Principal, oid: str) -> bool:
    """Whether some repo whose revisions reference ``oid`` has file content the caller may read."""
    owners = session.scalars(select(RepoLfsObject.repo_pk).where(RepoLfsObject.oid == oid)).all()
    return any(
        (owner := session.get(Repo, pk)) is not None and content_readable(session, principal, owner) for pk in owners
    )


def may_reference(session: Session, principal: Principal, repo: Repo, oid: str) -> bool:
    """Whether ``repo`` may come to reference ``oid`` for this caller without sending its bytes (again)."""
    user_id = principal.user.id if principal.user is not None else None
    return proven(session, repo_pk=repo.pk, user_id=user_id, oid=oid) or readable_reference(session, principal, oid)
