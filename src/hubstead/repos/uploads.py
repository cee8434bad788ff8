"""The Git LFS batch API: upload actions with self-authorizing signed URLs, basic and multipart transfers.

The client sends no token with the byte PUTs (``huggingface_hub.lfs`` sends none), so each ``href`` carries
an HMAC signature of what it allows: one object (oid and size) into one repo, or one part of it, until a
deadline. Bytes stream to a temporary file beside the store while being hashed; the object enters the
store only once its sha256 and size match, by atomic rename.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ForbiddenError, LfsVerificationError, NotFoundError
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.objects import object_size
from hubstead.repos.service import can_read

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PARTS = 10000


@dataclass(frozen=True)
class UploadGrant:
    """What a signed URL allows: put object ``oid`` of ``size`` bytes into repo ``repo_pk``."""

    repo_pk: int
    oid: str
    size: int
    expires: int


def _signature(hub: Hub, grant: UploadGrant, purpose: str) -> str:
    message = f"{purpose}:{grant.repo_pk}:{grant.oid}:{grant.size}:{grant.expires}".encode()
    return hmac.new(hub.settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def signed_url(hub: Hub, base_url: str, grant: UploadGrant, purpose: str, **extra: int) -> str:
    query = {"size": grant.size, "exp": grant.expires, "sig": _signature(hub, grant, purpose), **extra}
    return f"{base_url}/api/lfs/{purpose}/{grant.repo_pk}/{grant.oid}?{urlencode(query)}"


def check_signature(
    hub: Hub, *, purpose: str, repo_pk: int, oid: str, size: int, expires: int, sig: str
) -> UploadGrant:
    """Raises ForbiddenError for a forged, altered or expired URL."""
    grant = UploadGrant(repo_pk=repo_pk, oid=oid, size=size, expires=expires)
    if not hmac.compare_digest(_signature(hub, grant, purpose), sig):
        raise ForbiddenError("Invalid upload signature")
    if expires < time.time():
        raise ForbiddenError("This upload URL has expired; ask the batch API for a new one")
    return grant


def object_visible_to(session: Session, principal: Principal, repo: Repo, oid: str) -> bool:
    """Whether ``oid`` is referenced by ``repo`` or by any repo the caller can read."""
    owners = session.scalars(select(RepoLfsObject.repo_pk).where(RepoLfsObject.oid == oid)).all()
    if repo.pk in owners:
        return True
    return any((owner := session.get(Repo, pk)) is not None and can_read(session, principal, owner) for pk in owners)


def _validate_object(obj: Any) -> tuple[str, int]:
    if not isinstance(obj, dict):
        raise BadRequestError("Invalid LFS batch request: each object must be an object with 'oid' and 'size'")
    oid, size = obj.get("oid"), obj.get("size")
    if not isinstance(oid, str) or not _SHA256_RE.match(oid):
        raise BadRequestError(f"Invalid LFS oid {oid!r}: expected a lowercase sha256 hex digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequestError(f"Invalid LFS size for {oid}")
    return oid, size


def batch(
    hub: Hub,
    session: Session,
    *,
    principal: Principal,
    repo: Repo,
    operation: str,
    objects: list[Any],
    transfers: list[str],
    base_url: str,
    verify_url: str,
) -> dict[str, Any]:
    """Answer a Git LFS batch request (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md)."""
    if operation not in ("upload", "download"):
        raise BadRequestError(f"Invalid LFS operation {operation!r}")
    if not isinstance(objects, list) or len(objects) > 10000:
        raise BadRequestError("Invalid LFS batch request: 'objects' must be a list of at most 10000 objects")
    expires = int(time.time()) + hub.settings.signed_url_ttl_seconds
    use_multipart = "multipart" in transfers
    answers = []
    for obj in objects:
        oid, size = _validate_object(obj)
        grant = UploadGrant(repo_pk=repo.pk, oid=oid, size=size, expires=expires)
        stored = object_size(hub, session, oid)
        if operation == "download":
            if stored is None or session.get(RepoLfsObject, (repo.pk, oid)) is None:
                answers.append({"oid": oid, "size": size, "error": {"code": 404, "message": "Object does not exist"}})
            else:
                answers.append(
                    {
                        "oid": oid,
                        "size": stored,
                        "actions": {"download": {"href": signed_url(hub, base_url, grant, "download")}},
                    }
                )
            continue
        if stored is not None and stored == size and object_visible_to(session, principal, repo, oid):
            # Already stored and readable by the caller: the client skips the upload. Record the reference so
            # the commit that follows may name it. An object only some unreadable repo holds must be uploaded
            # again (proving possession of the bytes), or knowing a hash would be enough to read a private file.
            if session.get(RepoLfsObject, (repo.pk, oid)) is None:
                session.add(RepoLfsObject(repo_pk=repo.pk, oid=oid, size=size))
            answers.append({"oid": oid, "size": size})
            continue
        upload: dict[str, Any] = {
            "href": signed_url(hub, base_url, grant, "upload"),
            "expires_in": hub.settings.signed_url_ttl_seconds,
        }
        if use_multipart and size > hub.settings.multipart_threshold:
            chunk = hub.settings.multipart_chunk_size
            parts = math.ceil(size / chunk)
            header: dict[str, Any] = {"chunk_size": str(chunk)}
            for number in range(1, parts + 1):
                header[str(number)] = signed_url(hub, base_url, grant, "part", part=number)
            upload = {"href": signed_url(hub, base_url, grant, "complete"), "header": header}
        answers.append(
            {
                "oid": oid,
                "size": size,
                "authenticated": True,
                "actions": {"upload": upload, "verify": {"href": verify_url}},
            }
        )
    session.flush()
    transfer = "multipart" if use_multipart else "basic"
    return {"transfer": transfer, "objects": answers, "hash_algo": "sha256"}


class IncomingFile:
    """A temporary file that hashes what is written to it, for one upload or one part."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.path = hub.settings.uploads_dir / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def close(self) -> str:
        self._handle.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self.path.unlink(missing_ok=True)


def store_upload(hub: Hub, session: Session, grant: UploadGrant, incoming: IncomingFile) -> None:
    """Check the received bytes against the grant and store them. Raises LfsVerificationError on mismatch."""
    digest = incoming.close()
    if incoming.size != grant.size or digest != grant.oid:
        incoming.discard()
        raise LfsVerificationError(
            f"Uploaded content does not match: expected sha256 {grant.oid} and {grant.size} bytes, "
            f"received sha256 {digest} and {incoming.size} bytes"
        )
    if hub.blobs.exists(grant.oid):
        incoming.discard()
    else:
        hub.blobs.put_file(grant.oid, incoming.path)
    _remember(session, grant)


def _remember(session: Session, grant: UploadGrant) -> None:
    if session.get(RepoLfsObject, (grant.repo_pk, grant.oid)) is None:
        session.add(RepoLfsObject(repo_pk=grant.repo_pk, oid=grant.oid, size=grant.size))
    session.flush()


class PartWriter:
    """Writes one part of a multipart upload straight into its place in the object's file (no join later),
    hashing it for the part's ETag. The part's ETag file is removed first and written only once the whole
    part has arrived, so a part is complete exactly when its ETag file exists."""

    def __init__(self, hub: Hub, grant: UploadGrant, number: int) -> None:
        total = part_count(hub, grant.size)
        if not 1 <= number <= total:
            raise BadRequestError(f"Invalid part number {number}: this upload has {total} parts")
        chunk = hub.settings.multipart_chunk_size
        self.number = number
        self.expected = grant.size - chunk * (total - 1) if number == total else chunk
        self.folder = part_dir(hub, grant)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.etag_path = self.folder / f"{number:05d}.etag"
        self.etag_path.unlink(missing_ok=True)
        self._fd = os.open(self.folder / "data", os.O_RDWR | os.O_CREAT, 0o644)
        self._offset = chunk * (number - 1)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.expected:
            raise LfsVerificationError(f"Part {self.number} is larger than {self.expected} bytes")
        os.pwrite(self._fd, chunk, self._offset + self.size)
        self._hash.update(chunk)
        self.size += len(chunk)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def finish(self) -> str:
        """Check the part's size and record its ETag (its sha256). Raises LfsVerificationError."""
        os.fsync(self._fd)
        self.discard()
        if self.size != self.expected:
            raise LfsVerificationError(f"Part {self.number} has {self.size} bytes, expected {self.expected}")
        digest = self._hash.hexdigest()
        self.etag_path.write_text(digest)
        return digest


def part_dir(hub: Hub, grant: UploadGrant) -> Path:
    return hub.settings.uploads_dir / f"multipart-{grant.repo_pk}-{grant.oid}"


def part_count(hub: Hub, size: int) -> int:
    return max(1, math.ceil(size / hub.settings.multipart_chunk_size))


def complete_multipart(hub: Hub, session: Session, grant: UploadGrant, payload: Any) -> None:
    """Check the parts named in the completion payload, verify the whole object, and store it."""
    if hub.blobs.size(grant.oid) == grant.size:
        _remember(session, grant)
        shutil.rmtree(part_dir(hub, grant), ignore_errors=True)
        return
    if not isinstance(payload, dict) or payload.get("oid") != grant.oid or not isinstance(payload.get("parts"), list):
        raise BadRequestError("Invalid completion payload: expected {'oid', 'parts': [{'partNumber', 'etag'}]}")
    total = part_count(hub, grant.size)
    parts = payload["parts"]
    if len(parts) != total:
        raise BadRequestError(f"Expected {total} parts, got {len(parts)}")
    folder = part_dir(hub, grant)
    for index, part in enumerate(parts, start=1):
        if not isinstance(part, dict) or part.get("partNumber") != index:
            raise BadRequestError("Parts must be listed in order, numbered from 1")
        etag_file = folder / f"{index:05d}.etag"
        if not etag_file.exists():
            raise NotFoundError(f"Part {index} was never uploaded")
        if etag_file.read_text() != str(part.get("etag", "")).strip('"'):
            raise BadRequestError(f"ETag of part {index} does not match the uploaded part")
    data = folder / "data"
    digest = hashlib.sha256()
    with open(data, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    if data.stat().st_size != grant.size or digest.hexdigest() != grant.oid:
        shutil.rmtree(folder, ignore_errors=True)
        raise LfsVerificationError(
            f"Uploaded parts do not add up to the object: expected sha256 {grant.oid} and {grant.size} bytes"
        )
    if not hub.blobs.exists(grant.oid):
        hub.blobs.put_file(grant.oid, data)
    _remember(session, grant)
    shutil.rmtree(folder, ignore_errors=True)


def verify(hub: Hub, session: Session, *, repo: Repo, payload: Any) -> None:
    """The batch API's verify action: the object must be stored with the announced size."""
    oid, size = _validate_object(payload)
    stored = object_size(hub, session, oid)
    if stored is None:
        raise NotFoundError(f"LFS object {oid} was not uploaded")
    if stored != size:
        raise LfsVerificationError(f"LFS object {oid} has size {stored}, not {size}")
    _remember(session, UploadGrant(repo_pk=repo.pk, oid=oid, size=size, expires=0))
