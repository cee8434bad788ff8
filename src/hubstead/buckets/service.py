"""Buckets: who may see and change one, its files (paths → Xet file hashes), batches of changes, and the
two calls the compute executor makes for bucket volumes (``materialize`` into a job, ``sync_back`` after it).

Access: a public bucket is readable by anyone; a private one only by its namespace (the user, or the org's
members); a missing bucket and a private one the caller may not see are the same ``RepoNotFoundError`` (the
client turns it into ``BucketNotFoundError``). Changes need a write token and write rights in the namespace
(``auth.namespace_role``: its user, an org's admin or writer; a job's or space's token only in its own).

A file is added by its Xet hash, and a hash alone never opens bytes: a batch may name a hash only when the
CAS registered it under a write token for this bucket (``BucketUpload``, recorded through ``BucketScope``),
the bucket already holds it, or it is copied from a repo or bucket the caller may read that holds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hubstead.auth import service as auth
from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.buckets.models import Bucket, BucketFile, BucketUpload, BucketXorb
from hubstead.context import Hub
from hubstead.dates import iso
from hubstead.db import utcnow
from hubstead.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidPathError,
    NotFoundError,
    RepoNotFoundError,
    UnauthorizedError,
)
from hubstead.names import validate_name
from hubstead.repos.lfs.proofs import content_readable
from hubstead.repos.models import RepoLfsObject
from hubstead.repos.service import find_repo
from hubstead.xet import service as xet_service
from hubstead.xet.cas.formats import Chunk
from hubstead.xet.cas.hashing import ZERO_HASH, chunk_hash, file_hash, is_hex_hash, merkle_root, to_hex
from hubstead.xet.cas.models import XetFile
from hubstead.xet.cas.reader import iter_segments

EMPTY_FILE_HASH = to_hex(ZERO_HASH)  # an empty file has no chunks: its Xet hash is all zeros
MAX_PATH_CHARS = 1024
MAX_BATCH_OPERATIONS = 5000  # the client sends at most 1000 of a kind per call
MAX_BATCH_LINE_BYTES = 16 * 1024
MAX_PATHS_INFO = 1000
MAX_CONTENT_TYPE = 255
MAX_SYNC_FILES = 10000
TREE_PAGE = 1000
SYNC_CHUNK_BYTES = 64 * 1024
SYNC_XORB_CHUNKS = 1024  # 64 MiB of data per xorb (the format allows 8192 chunks, 80 MiB)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SOURCE_TYPES = ("model", "dataset", "space", "bucket")


class BucketExistsError(ConflictError):
    """The bucket exists already (the client's ``exist_ok`` reads the 409)."""

    def __init__(self, bucket_id: str) -> None:
        super().__init__(f"You already created a bucket named {bucket_id}")
        self.bucket_id = bucket_id


# -- who may --------------------------------------------------------------------------------------------------


def split_id(bucket_id: str) -> tuple[str, str]:
    """``namespace/name`` of a bucket id. Raises RepoNotFoundError for anything else (a 404, like the Hub)."""
    parts = bucket_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise RepoNotFoundError(f"Bucket {bucket_id} not found")
    return parts[0], parts[1]


def find_bucket(session: Session, bucket_id: str) -> Bucket | None:
    return session.scalar(select(Bucket).where(Bucket.id_key == bucket_id.lower()))


def may_read(session: Session, principal: Principal, bucket: Bucket) -> bool:
    return not bucket.private or auth.namespace_role(session, principal, bucket.namespace) is not None


def check_readable(session: Session, principal: Principal, bucket_id: str) -> Bucket:
    """The bucket, when the caller may see it. Raises RepoNotFoundError (404) when it is missing or private
    and not the caller's: the same answer for both."""
    bucket = find_bucket(session, bucket_id) if bucket_id.count("/") == 1 else None
    if bucket is None or not may_read(session, principal, bucket):
        raise RepoNotFoundError(f"Bucket {bucket_id} not found")
    return bucket


def _require_namespace_write(session: Session, principal: Principal, namespace: str) -> None:
    if principal.user is None:
        raise UnauthorizedError("Changing a bucket needs a token: log in with `hf auth login` or pass token=...")
    if not principal.can_write:
        raise ForbiddenError("Changing a bucket needs a write token")
    if auth.namespace_role(session, principal, namespace) not in ("admin", "write"):
        raise ForbiddenError(f"You need write access in {namespace} to change its buckets")


def check_writable(session: Session, principal: Principal, bucket_id: str) -> Bucket:
    """The bucket, when the caller may change it: readable (else the 404 above), a write token, and write rights
    in its namespace (else ForbiddenError, 403)."""
    bucket = check_readable(session, principal, bucket_id)
    _require_namespace_write(session, principal, bucket.namespace)
    return bucket


# -- buckets --------------------------------------------------------------------------------------------------


def resolve_namespace(principal: Principal, namespace: str) -> str:
    """``me`` is the caller's own namespace (the client sends it when the id has none)."""
    if namespace == "me":
        if principal.user is None:
            raise UnauthorizedError("Log in to use your own namespace")
        return principal.user.name
    return namespace


def create_bucket(session: Session, principal: Principal, namespace: str, name: str, *, private: bool) -> Bucket:
    """A new bucket. Raises UnauthorizedError/ForbiddenError without write rights in the namespace,
    InvalidRepoIdError for a bad name, NotFoundError for an unknown namespace, BucketExistsError (409)."""
    namespace = resolve_namespace(principal, namespace)
    validate_name(name, what="bucket name")
    owner = auth.find_account(session, namespace)
    if owner is None:
        raise NotFoundError(f"Namespace {namespace} not found")
    _require_namespace_write(session, principal, owner.name)
    bucket_id = f"{owner.name}/{name}"
    if find_bucket(session, bucket_id) is not None:
        raise BucketExistsError(bucket_id)
    user = principal.user
    bucket = Bucket(
        namespace=owner.name, name=name, id_key=bucket_id.lower(), private=private,
        created_by_id=user.id if isinstance(user, User) else None,
    )  # fmt: skip
    session.add(bucket)
    session.flush()
    return bucket


def delete_bucket(session: Session, principal: Principal, bucket_id: str) -> None:
    bucket = check_writable(session, principal, bucket_id)
    for table in (BucketFile, BucketUpload, BucketXorb):
        session.execute(delete(table).where(table.bucket_pk == bucket.pk))
    session.delete(bucket)
    session.flush()


def update_settings(session: Session, principal: Principal, bucket_id: str, *, private: bool) -> Bucket:
    bucket = check_writable(session, principal, bucket_id)
    bucket.private = private
    bucket.updated_at = utcnow()
    return bucket


def list_buckets(session: Session, principal: Principal, namespace: str, search: str | None = None) -> list[Bucket]:
    """The namespace's buckets the caller may see (private ones only to its members), by name."""
    namespace = resolve_namespace(principal, namespace)
    query = select(Bucket).where(func.lower(Bucket.namespace) == namespace.lower()).order_by(Bucket.id_key)
    if search:
        query = query.where(func.lower(Bucket.name).contains(search.lower()[:96], autoescape=True))
    member = auth.namespace_role(session, principal, namespace) is not None
    return [bucket for bucket in session.scalars(query) if member or not bucket.private]


def bucket_json(session: Session, bucket: Bucket) -> dict[str, Any]:
    """The answer ``BucketInfo`` reads."""
    count, size = session.execute(
        select(func.count(BucketFile.id), func.coalesce(func.sum(BucketFile.size), 0)).where(
            BucketFile.bucket_pk == bucket.pk
        )
    ).one()
    return {
        "id": bucket.bucket_id, "private": bucket.private, "createdAt": iso(bucket.created_at),
        "updatedAt": iso(bucket.updated_at), "size": int(size), "totalFiles": int(count),
    }  # fmt: skip


# -- files ----------------------------------------------------------------------------------------------------


def validate_path(path: object) -> str:
    """A file path in a bucket: relative, ``/``-separated, no empty, ``.`` or ``..`` part, no control
    characters, at most 1024 characters. Raises InvalidPathError."""
    if not isinstance(path, str) or not path:
        raise InvalidPathError("A bucket path must be a non-empty string")
    if len(path) > MAX_PATH_CHARS:
        raise InvalidPathError(f"Bucket path longer than {MAX_PATH_CHARS} characters")
    if _CONTROL.search(path) or "\\" in path:
        raise InvalidPathError(f"Bucket path {path[:80]!r} has a control character or a backslash")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidPathError(f"Bucket path {path[:80]!r} must be relative, with no empty, '.' or '..' part")
    return path


def _prefix(subpath: str) -> str:
    """``subpath`` as a folder prefix ("" for the whole bucket), checked like a path."""
    subpath = subpath.strip("/")
    return validate_path(subpath) + "/" if subpath else ""


def file_json(row: BucketFile) -> dict[str, Any]:
    mtime = iso(_from_ms(row.mtime)) if row.mtime is not None else None
    return {
        "type": "file", "path": row.path, "size": row.size, "xetHash": row.xet_hash, "mtime": mtime,
        "uploadedAt": iso(row.updated_at), **({"contentType": row.content_type} if row.content_type else {}),
    }  # fmt: skip


def _from_ms(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _files_under(session: Session, bucket: Bucket, prefix: str) -> Iterator[BucketFile]:
    query = select(BucketFile).where(BucketFile.bucket_pk == bucket.pk).order_by(BucketFile.path)
    if prefix:
        query = query.where(BucketFile.path.startswith(prefix, autoescape=True))
    return iter(session.scalars(query))


def tree(
    session: Session, bucket: Bucket, prefix: str, *, recursive: bool, after: str | None = None, limit: int = TREE_PAGE
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the entries under ``prefix`` (a folder, or a file's exact path), by path: every file
    and folder when ``recursive``, else the folder's own files and subfolders. Returns (entries, the path
    the next page starts after, or None)."""
    prefix = prefix.strip("/")
    exact = session.scalar(select(BucketFile).where(BucketFile.bucket_pk == bucket.pk, BucketFile.path == prefix))
    entries: list[dict[str, Any]] = [file_json(exact)] if exact is not None else []
    folder = _prefix(prefix) if prefix else ""
    seen: set[str] = set()
    for row in _files_under(session, bucket, folder):
        rest = row.path[len(folder) :]
        parts = rest.split("/")
        for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
            directory = folder + "/".join(parts[:depth])
            if directory not in seen:
                seen.add(directory)
                entries.append({"type": "directory", "path": directory, "uploadedAt": iso(row.updated_at)})
        if recursive or len(parts) == 1:
            entries.append(file_json(row))
    if not entries and prefix:
        raise NotFoundError(f"No file or folder {prefix} in bucket {bucket.bucket_id}")
    entries.sort(key=lambda entry: entry["path"])
    if after is not None:
        entries = [entry for entry in entries if entry["path"] > after]
    page = entries[:limit]
    return page, (page[-1]["path"] if len(entries) > limit else None)


def paths_info(session: Session, bucket: Bucket, paths: object) -> list[dict[str, Any]]:
    """The files among ``paths`` (missing ones are left out, as the client expects)."""
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        raise BadRequestError("Expected {'paths': [path, ...]}")
    if len(paths) > MAX_PATHS_INFO:
        raise BadRequestError(f"At most {MAX_PATHS_INFO} paths per call")
    if not paths:
        return []
    rows = session.scalars(
        select(BucketFile).where(BucketFile.bucket_pk == bucket.pk, BucketFile.path.in_(set(paths)))
    ).all()
    return [file_json(row) for row in sorted(rows, key=lambda row: row.path)]


def get_file(session: Session, bucket: Bucket, path: str) -> BucketFile:
    row = session.scalar(select(BucketFile).where(BucketFile.bucket_pk == bucket.pk, BucketFile.path == path))
    if row is None:
        from hubstead.errors import EntryNotFoundError

        raise EntryNotFoundError(f"{path} not found in bucket {bucket.bucket_id}")
    return row


def stream(hub: Hub, session: Session, row: BucketFile, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start``..``end`` (exclusive) of a bucket file, rebuilt from its xorbs."""
    if row.size == 0:
        return iter(())
    record = session.get(XetFile, row.xet_hash)
    if record is None:
        raise NotFoundError(f"The bytes of {row.path} are gone")
    return iter_segments(hub.xorbs, record.segments, start, end)


# -- batches --------------------------------------------------------------------------------------------------


@dataclass
class _Write:
    path: str
    xet_hash: str
    size: int
    mtime: int | None
    content_type: str | None


def parse_batch(body: bytes) -> list[dict[str, Any]]:
    """The NDJSON lines of a batch, each a JSON object. Raises BadRequestError past the bounds."""
    import json

    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH_OPERATIONS:
        raise BadRequestError(f"At most {MAX_BATCH_OPERATIONS} operations per batch")
    operations = []
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_BATCH_LINE_BYTES:
            raise BadRequestError(f"Line {number} of the batch is longer than {MAX_BATCH_LINE_BYTES} bytes")
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise BadRequestError(f"Line {number} of the batch is not JSON") from exc
        if not isinstance(item, dict):
            raise BadRequestError(f"Line {number} of the batch is not a JSON object")
        operations.append(item)
    return operations


def _may_name(session: Session, principal: Principal, bucket: Bucket, op: dict[str, Any], xet_hash: str) -> int:
    """The size of the file ``xet_hash`` when the operation may name it (see the module's rule), else raises."""
    if xet_hash == EMPTY_FILE_HASH:
        return 0
    record = session.get(XetFile, xet_hash)
    if record is None:
        raise BadRequestError(f"Unknown Xet file {xet_hash}: upload it first")
    if op.get("type") == "copyFile":
        source_type, source_id = op.get("sourceRepoType"), op.get("sourceRepoId")
        if source_type not in SOURCE_TYPES or not isinstance(source_id, str):
            raise BadRequestError(f"sourceRepoType must be one of {', '.join(SOURCE_TYPES)}, with a sourceRepoId")
        if source_type == "bucket":
            source = check_readable(session, principal, source_id)
            held = session.scalar(
                select(BucketFile.id).where(BucketFile.bucket_pk == source.pk, BucketFile.xet_hash == xet_hash).limit(1)
            ) is not None
        else:
            repo, _ = find_repo(session, repo_type=source_type, repo_id=source_id)
            if repo is None or not content_readable(session, principal, repo):
                raise RepoNotFoundError(f"{source_type} {source_id} not found")
            held = session.get(RepoLfsObject, (repo.pk, record.sha256)) is not None
        if not held:
            raise BadRequestError(f"{source_type} {source_id} holds no file {xet_hash}")
        return record.size
    uploaded = session.get(BucketUpload, (bucket.pk, xet_hash)) is not None
    held = uploaded or session.scalar(
        select(BucketFile.id).where(BucketFile.bucket_pk == bucket.pk, BucketFile.xet_hash == xet_hash).limit(1)
    )
    if not held:
        raise ForbiddenError(f"Xet file {xet_hash} was not uploaded to this bucket: upload its bytes first")
    return record.size


def apply_batch(
    session: Session, principal: Principal, bucket: Bucket, operations: list[dict[str, Any]]
) -> tuple[int, list[dict[str, str]]]:
    """Apply add, copy and delete operations, all or none. Returns (how many applied, failures): with any
    failure (each ``{"path", "error"}``) nothing is written."""
    writes: list[_Write] = []
    deletes: list[str] = []
    failures: list[dict[str, str]] = []
    for op in operations:
        raw_path = op.get("path")
        shown = raw_path[:200] if isinstance(raw_path, str) else repr(raw_path)[:200]
        try:
            kind = op.get("type")
            path = validate_path(raw_path)
            if kind == "deleteFile":
                deletes.append(path)
                continue
            if kind not in ("addFile", "copyFile"):
                raise BadRequestError(f"Unknown operation type {kind!r}")
            xet_hash = op.get("xetHash")
            if not isinstance(xet_hash, str) or not is_hex_hash(xet_hash):
                raise BadRequestError("xetHash must be a 64-character hex Xet hash")
            mtime = op.get("mtime")
            if mtime is not None and (not isinstance(mtime, int) or isinstance(mtime, bool) or not 0 <= mtime < 2**53):
                raise BadRequestError("mtime must be milliseconds since the epoch")
            content_type = op.get("contentType")
            if content_type is not None and (
                not isinstance(content_type, str)
                or len(content_type) > MAX_CONTENT_TYPE
                or _CONTROL.search(content_type)
            ):
                raise BadRequestError("contentType must be a short string")
            size = _may_name(session, principal, bucket, op, xet_hash)
            writes.append(_Write(path, xet_hash, size, mtime, content_type))
        except (BadRequestError, ForbiddenError, RepoNotFoundError) as exc:
            failures.append({"path": shown, "error": exc.message})
    if failures:
        return 0, failures
    if deletes:
        session.execute(delete(BucketFile).where(BucketFile.bucket_pk == bucket.pk, BucketFile.path.in_(deletes)))
    for write in writes:
        _put(session, bucket, write)
    bucket.updated_at = utcnow()
    session.flush()
    return len(writes) + len(deletes), []


def _put(session: Session, bucket: Bucket, write: _Write) -> None:
    row = session.scalar(select(BucketFile).where(BucketFile.bucket_pk == bucket.pk, BucketFile.path == write.path))
    if row is None:
        row = BucketFile(bucket_pk=bucket.pk, path=write.path)
        session.add(row)
    row.xet_hash, row.size, row.mtime, row.content_type = write.xet_hash, write.size, write.mtime, write.content_type
    row.updated_at = utcnow()


# -- the CAS's questions about a bucket's token (registered by wiring) --------------------------------------


class XetBucketScope:
    """``xet.service.BucketScope`` over this domain's tables."""

    def holds(self, session: Session, bucket_pk: int, xorb_hex: str) -> bool:
        return session.get(BucketXorb, (bucket_pk, xorb_hex)) is not None

    def hold(self, session: Session, bucket_pk: int, xorb_hex: str) -> None:
        if session.get(BucketXorb, (bucket_pk, xorb_hex)) is None:
            session.add(BucketXorb(bucket_pk=bucket_pk, xorb_hash=xorb_hex))

    def record_upload(self, session: Session, bucket_pk: int, user_id: int, file_hex: str) -> None:
        if session.get(BucketUpload, (bucket_pk, file_hex)) is None:
            session.add(BucketUpload(bucket_pk=bucket_pk, file_hash=file_hex, user_id=user_id))

    def readable_by(self, session: Session, principal: Principal, xorb_hex: str) -> bool:
        """Whether a bucket the caller may read holds this xorb (a client dedups against what it uploaded to a
        bucket: the same bytes may then go to a repo as references to the bucket's xorb)."""
        holders = session.scalars(select(BucketXorb.bucket_pk).where(BucketXorb.xorb_hash == xorb_hex)).all()
        return any((bucket := session.get(Bucket, pk)) is not None and may_read(session, principal, bucket)
                   for pk in holders)  # fmt: skip

    def may_read_file(self, session: Session, bucket_pk: int, file_hex: str) -> bool:
        if session.get(BucketUpload, (bucket_pk, file_hex)) is not None:
            return True
        return (
            session.scalar(
                select(BucketFile.id).where(BucketFile.bucket_pk == bucket_pk, BucketFile.xet_hash == file_hex).limit(1)
            )
            is not None
        )


def connect_xet() -> None:
    """Let the CAS answer bucket tokens (``wiring.connect_domains`` calls it)."""
    xet_service.register_bucket_scope(XetBucketScope())


# -- job volumes (the compute executor's calls) -------------------------------------------------------------


def materialize(hub: Hub, bucket_id: str, subpath: str, dest: Path) -> None:
    """Write the files under ``subpath/`` of the bucket (all of it for "") into ``dest``, keeping their paths
    relative to ``subpath``; a ``subpath`` naming one file writes that file. Raises RepoNotFoundError when the
    bucket is gone, InvalidPathError for a bad ``subpath``. No access check: the caller checked the job's owner
    at submit (``check_readable``)."""
    dest.mkdir(parents=True, exist_ok=True)
    prefix = _prefix(subpath)
    with hub.db.session() as session:
        bucket = find_bucket(session, bucket_id)
        if bucket is None:
            raise RepoNotFoundError(f"Bucket {bucket_id} not found")
        rows = list(_files_under(session, bucket, prefix))
        if not rows and prefix:
            single = session.scalar(
                select(BucketFile).where(BucketFile.bucket_pk == bucket.pk, BucketFile.path == prefix[:-1])
            )
            rows = [single] if single is not None else []
            prefix = prefix[:-1].rsplit("/", 1)[0] + "/" if "/" in prefix[:-1] else ""
        for row in rows:
            target = dest / row.path[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                for piece in stream(hub, session, row, 0, row.size):
                    handle.write(piece)
            os.replace(tmp, target)
            if row.mtime is not None:
                os.utime(target, ns=(time.time_ns(), row.mtime * 1_000_000))


def _local_files(src: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, file) for the regular files under ``src``; links are not followed or kept."""
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            full = Path(root) / name
            if full.is_symlink() or not full.is_file():
                continue
            yield full.relative_to(src).as_posix(), full


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _store_file(hub: Hub, session: Session, bucket: Bucket, path: Path, sha256: str, size: int) -> str:
    """Chunk ``path`` into xorbs in the CAS store and register it as a Xet file (as a shard upload would).
    Returns its Xet file hash."""
    store = hub.xorbs
    segments: list[list[Any]] = []
    all_chunks: list[tuple[bytes, int]] = []
    with open(path, "rb") as handle:
        while True:
            body = bytearray()
            chunks: list[Chunk] = []
            while len(chunks) < SYNC_XORB_CHUNKS and (data := handle.read(SYNC_CHUNK_BYTES)):
                start = len(body)
                body += bytes([0]) + len(data).to_bytes(3, "little") + bytes([0]) + len(data).to_bytes(3, "little")
                body += data
                chunks.append(Chunk(hash=chunk_hash(data), size=len(data), byte_start=start, byte_end=len(body)))
            if not chunks:
                break
            xorb_hex = to_hex(merkle_root([(c.hash, c.size) for c in chunks]))
            if not store.exists(xorb_hex):
                store.put(xorb_hex, bytes(body), chunks)
            XetBucketScope().hold(session, bucket.pk, xorb_hex)
            segments.append([xorb_hex, 0, len(chunks), sum(c.size for c in chunks)])
            all_chunks += [(c.hash, c.size) for c in chunks]
    file_hex = to_hex(file_hash(all_chunks))
    if sum(size for _, size in all_chunks) != size:
        raise ConflictError(f"{path.name} changed while it was being saved")
    if session.get(XetFile, file_hex) is None:
        session.add(XetFile(file_hash=file_hex, sha256=sha256, size=size, segments=segments))
    return file_hex


def sync_back(hub: Hub, bucket_id: str, subpath: str, src: Path, *, user_id: int) -> int:
    """Store every new or changed regular file under ``src`` into the bucket under ``subpath/`` (through the
    Xet store: chunked into xorbs and registered as files), and return how many were written. Files the
    bucket holds that ``src`` lacks are kept. Raises RepoNotFoundError when the bucket is gone,
    InvalidPathError for a bad ``subpath``, BadRequestError past ``MAX_SYNC_FILES`` files (nothing written)."""
    prefix = _prefix(subpath)
    local = list(_local_files(src)) if src.is_dir() else []
    if len(local) > MAX_SYNC_FILES:
        raise BadRequestError(f"More than {MAX_SYNC_FILES} files to save back; nothing was saved")
    written = 0
    with hub.db.session() as session:
        bucket = find_bucket(session, bucket_id)
        if bucket is None:
            raise RepoNotFoundError(f"Bucket {bucket_id} not found")
        existing = {row.path: row for row in _files_under(session, bucket, prefix)}
        for rel, full in local:
            try:
                path = validate_path(prefix + rel)
            except InvalidPathError:
                continue  # a name the bucket cannot hold (a control character): left out
            sha256, size = _sha256_file(full)
            row = existing.get(path)
            if row is not None and row.size == size:
                if size == 0:
                    continue
                record = session.get(XetFile, row.xet_hash)
                if record is not None and record.sha256 == sha256:
                    continue
            if size == 0:
                file_hex = EMPTY_FILE_HASH
            else:
                known = session.scalar(
                    select(XetFile).where(XetFile.sha256 == sha256, XetFile.size == size).limit(1)
                )
                # Same bytes already in the store: reuse them only through this bucket's own xorbs.
                scope = XetBucketScope()
                if known is not None and all(scope.holds(session, bucket.pk, str(s[0])) for s in known.segments):
                    file_hex = known.file_hash
                else:
                    file_hex = _store_file(hub, session, bucket, full, sha256, size)
            if user_id:
                XetBucketScope().record_upload(session, bucket.pk, user_id, file_hex)
            mtime = int(full.stat().st_mtime * 1000)
            _put(session, bucket, _Write(path, file_hex, size, mtime, None))
            written += 1
            session.flush()
        if written:
            bucket.updated_at = utcnow()
    return written
