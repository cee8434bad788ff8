"""The Git LFS batch API: upload actions with self-authorizing signed URLs, basic and multipart transfers.

The client sends no token with the byte PUTs (``huggingface_hub.lfs`` sends none), so each ``href`` carries
an HMAC signature of what it allows: one object (oid and size) into one repo by one user, or one part of it,
until a deadline (an hour for uploads, longer only as a very large object needs; 15 minutes for downloads).
Bytes stream to a temporary file beside the store while being hashed; the object enters the store only once
its sha256 and size match, by atomic rename, and the upload is recorded as that user's proof of the bytes
(``repos/proofs``). An object the store already holds is still uploaded and checked unless the caller may
reference it already; ``verify`` and multipart ``complete`` confirm only what the caller proved.
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

from sqlalchemy.orm import Session

from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, ForbiddenError, LfsVerificationError, NotFoundError
from hubstead.repos.lfs.objects import object_size
from hubstead.repos.lfs.proofs import may_reference, proven, record_proof
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.quotas import require_room

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PARTS = 10000
# An upload href lasts an hour, plus the time a slow link (4 MiB/s) needs for a very large object, so a
# multipart upload of tens of GB can still start its last parts; the setting ``signed_url_ttl_seconds`` caps it.
UPLOAD_URL_TTL = 3600
UPLOAD_SLOW_RATE = 4 * 1024 * 1024
# A download href given out by the batch API: the client starts the transfer at once (git-lfs asks again for
# actions that have expired); a transfer started in time runs to its end.
DOWNLOAD_URL_TTL = 15 * 60
NOT_PROVEN = "was never uploaded to this repository by you (with this size); upload its bytes through the LFS batch API"


@dataclass(frozen=True)
class UploadGrant:
    """What a signed URL allows: user ``user_id`` puts object ``oid`` of ``size`` bytes into repo ``repo_pk``
    (``user_id`` 0 for a download href, which anyone holding it may use)."""

    repo_pk: int
    user_id: int
    oid: str
    size: int
    expires: int


def signature(secret: str, grant: UploadGrant, purpose: str) -> str:
    message = f"{purpose}:{grant.repo_pk}:{grant.oid}:{grant.size}:{grant.user_id}:{grant.expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_url(hub: Hub, base_url: str, grant: UploadGrant, purpose: str, **extra: int) -> str:
    sig = signature(hub.settings.secret_key, grant, purpose)
    query = {"size": grant.size, "u": grant.user_id, "exp": grant.expires, "sig": sig, **extra}
    return f"{base_url}/api/lfs/{purpose}/{grant.repo_pk}/{grant.oid}?{urlencode(query)}"


def check_signature(
    hub: Hub, *, purpose: str, repo_pk: int, user_id: int, oid: str, size: int, expires: int, sig: str
) -> UploadGrant:
    """Raises ForbiddenError for a forged, altered or expired URL."""
    grant = UploadGrant(repo_pk=repo_pk, user_id=user_id, oid=oid, size=size, expires=expires)
    if not hmac.compare_digest(signature(hub.settings.secret_key, grant, purpose), sig):
        raise ForbiddenError("Invalid upload signature")
    if expires < time.time():
        raise ForbiddenError("This URL has expired; ask the batch API for a new one")
    return grant


def upload_ttl(hub: Hub, size: int) -> int:
    return min(UPLOAD_URL_TTL + size // UPLOAD_SLOW_RATE, hub.settings.signed_url_ttl_seconds)


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
    use_multipart = "multipart" in transfers
    user_id = principal.user.id if principal.user is not None else 0
    answers = []
    for obj in objects:
        oid, size = _validate_object(obj)
        stored = object_size(hub, session, oid)
        if operation == "download":
            # The route checked that the caller may read this repo's file content; the object must be one
            # this repo's revisions reference.
            if stored is None or session.get(RepoLfsObject, (repo.pk, oid)) is None:
                answers.append({"oid": oid, "size": size, "error": {"code": 404, "message": "Object does not exist"}})
                continue
            ttl = min(DOWNLOAD_URL_TTL, hub.settings.signed_url_ttl_seconds)
            grant = UploadGrant(repo_pk=repo.pk, user_id=0, oid=oid, size=stored, expires=int(time.time()) + ttl)
            href = signed_url(hub, base_url, grant, "download")
            answers.append({"oid": oid, "size": stored, "actions": {"download": {"href": href, "expires_in": ttl}}})
            continue
        if stored is not None and stored == size and may_reference(session, principal, repo, oid):
            # The caller can already read these bytes (or sent them here before): the client skips the upload.
            # Anyone else must send them, even if the store holds them, or knowing a hash would open a file.
            answers.append({"oid": oid, "size": size})
            continue
        ttl = upload_ttl(hub, size)
        grant = UploadGrant(repo_pk=repo.pk, user_id=user_id, oid=oid, size=size, expires=int(time.time()) + ttl)
        upload: dict[str, Any] = {"href": signed_url(hub, base_url, grant, "upload"), "expires_in": ttl}
        if use_multipart and size > hub.settings.multipart_threshold:
            chunk = hub.settings.multipart_chunk_size
            parts = math.ceil(size / chunk)
            header: dict[str, Any] = {"chunk_size": str(chunk)}
            for number in range(1, parts + 1):
                header[str(number)] = signed_url(hub, base_url, grant, "part", part=number)
            upload = {"href": signed_url(hub, base_url, grant, "complete"), "header": header, "expires_in": ttl}
        answers.append(
            {
                "oid": oid,
                "size": size,
                "authenticated": True,
                "actions": {"upload": upload, "verify": {"href": verify_url}},
            }
        )
    if operation == "upload":  # the namespace's storage quota, before any byte is sent (repos/quotas)
        require_room(hub, session, repo, dict(map(_validate_object, objects)))
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
    _prove(session, grant)


def _prove(session: Session, grant: UploadGrant) -> None:
    if grant.user_id <= 0:
        raise ForbiddenError("This URL does not allow uploads")
    record_proof(session, repo_pk=grant.repo_pk, user_id=grant.user_id, oid=grant.oid, size=grant.size)


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
    return hub.settings.uploads_dir / f"multipart-{grant.repo_pk}-{grant.user_id}-{grant.oid}"


def part_count(hub: Hub, size: int) -> int:
    return max(1, math.ceil(size / hub.settings.multipart_chunk_size))


def complete_multipart(hub: Hub, session: Session, grant: UploadGrant, payload: Any) -> None:
    """Check the parts named in the completion payload, verify the whole object, and store it.

    Only the parts this user sent for this repo count, even when the store already holds the object; a
    completion repeated after it succeeded (a retry whose answer was lost) answers the same."""
    if proven(session, repo_pk=grant.repo_pk, user_id=grant.user_id, oid=grant.oid, size=grant.size):
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
    _prove(session, grant)
    shutil.rmtree(folder, ignore_errors=True)


def verify(hub: Hub, session: Session, *, principal: Principal, repo: Repo, payload: Any) -> None:
    """The batch API's verify action: this caller uploaded this object, with this size, into this repo.

    Raises:
        LfsVerificationError: one answer for an object never uploaded, one of another size and one uploaded by
            someone else, so the answer tells nothing about what the store holds.
    """
    oid, size = _validate_object(payload)
    user_id = principal.user.id if principal.user is not None else None
    if not proven(session, repo_pk=repo.pk, user_id=user_id, oid=oid, size=size) or (
        object_size(hub, session, oid) != size
    ):
        raise LfsVerificationError(f"LFS object {oid} {NOT_PROVEN}")
