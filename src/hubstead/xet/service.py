"""The CAS: store verified xorbs, register shards as files, answer dedup queries and reconstructions,
and stream a Xet file's bytes for plain HTTP downloads.

Access follows repos: a CAS token names one repo. A xorb is served, or may be referenced by a new shard,
only if some repo whose file content the caller can read holds it; a file is reconstructed only for a token
whose repo references the file's sha256 (or whose user uploaded it there). So a private or gated repo's
chunks never reach a token without access to it, even when another repo holds the same bytes. A file hash
→ sha256 mapping is recorded only after the file was rebuilt from its chunks and hashed; a later shard
for the same file hash must claim the same sha256, and one that lays it out over other xorbs is rebuilt
and hashed again. A registered file is the caller's upload proof (``repos/proofs``), nothing more.

A token may name a storage bucket instead of a repo (``grant.bucket_pk``): the buckets domain, registered as
the ``BucketScope``, then answers which xorbs the bucket holds and which files it may read, and records the
files uploaded under it (its upload proofs). Bucket uploads carry no sha256: the hub computes it.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.auth.models import User
from hubstead.auth.service import Principal
from hubstead.context import Hub
from hubstead.errors import BadRequestError, EntryNotFoundError, HubError, NotFoundError, UnauthorizedError
from hubstead.repos.lfs.proofs import content_readable, proven, record_proof
from hubstead.repos.models import Repo, RepoLfsObject
from hubstead.repos.quotas import require_room
from hubstead.xet import tokens
from hubstead.xet.cas.formats import (
    Chunk,
    XetFormatError,
    build_dedup_shard,
    parse_shard,
    parse_xorb,
)
from hubstead.xet.cas.hashing import file_hash, from_hex, is_dedup_eligible, merkle_root, range_hash, to_hex
from hubstead.xet.cas.models import XetDedupChunk, XetFile, XetFileLayout, XetShardXorb, XetXorbRepo
from hubstead.xet.cas.reader import iter_segments
from hubstead.xet.cas.store import XorbStore

DEDUP_SHARD_TTL = 7 * 24 * 3600
DEDUP_MAX_XORBS = 256
FETCH_URL_TTL = 3600


class RangeNotSatisfiable(HubError):
    status_code = 416


class BucketScope(Protocol):
    """What the CAS asks about a storage bucket's token (``grant.bucket_pk``). The buckets domain sits above
    this layer, so it registers itself (``register_bucket_scope``, called by ``wiring.connect_domains``)."""

    def holds(self, session: Session, bucket_pk: int, xorb_hex: str) -> bool:
        """Whether the bucket uploaded (so may read) this xorb."""
        ...

    def hold(self, session: Session, bucket_pk: int, xorb_hex: str) -> None: ...

    def record_upload(self, session: Session, bucket_pk: int, user_id: int, file_hex: str) -> None:
        """A file registered under a write token for the bucket: the proof a batch ``addFile`` needs."""
        ...

    def may_read_file(self, session: Session, bucket_pk: int, file_hex: str) -> bool:
        """Whether the bucket holds the file or a token for it uploaded it."""
        ...

    def readable_by(self, session: Session, principal: Principal, xorb_hex: str) -> bool:
        """Whether a bucket the caller may read holds this xorb."""
        ...


_bucket_scope: BucketScope | None = None


def register_bucket_scope(scope: BucketScope) -> None:
    global _bucket_scope
    _bucket_scope = scope


def _buckets() -> BucketScope:
    if _bucket_scope is None:
        raise NotFoundError("This hub does not serve buckets")
    return _bucket_scope


def _principal(session: Session, grant: tokens.CasGrant) -> Principal:
    user = session.get(User, grant.user_id) if grant.user_id is not None else None
    return Principal(user=user, token_role=grant.mode)


def xorb_visible(session: Session, grant: tokens.CasGrant, xorb_hex: str) -> bool:
    """Whether the token's repo or bucket, or any repo or bucket whose content its user can read, holds this xorb."""
    if grant.bucket_pk is not None and _buckets().holds(session, grant.bucket_pk, xorb_hex):
        return True
    holders = session.scalars(select(XetXorbRepo.repo_pk).where(XetXorbRepo.xorb_hash == xorb_hex)).all()
    if grant.bucket_pk is None and grant.repo_pk in holders:
        return True
    principal = _principal(session, grant)
    for pk in holders:
        if (repo := session.get(Repo, pk)) is not None and content_readable(session, principal, repo):
            return True
    # The same user's bucket may hold it: a client's local dedup cache reuses what it uploaded to a bucket.
    return _bucket_scope is not None and _bucket_scope.readable_by(session, principal, xorb_hex)


def _hold(session: Session, grant: tokens.CasGrant, xorb_hex: str) -> None:
    if grant.bucket_pk is not None:
        _buckets().hold(session, grant.bucket_pk, xorb_hex)
    elif session.get(XetXorbRepo, (xorb_hex, grant.repo_pk)) is None:
        session.add(XetXorbRepo(xorb_hash=xorb_hex, repo_pk=grant.repo_pk))


def upload_xorb(hub: Hub, session: Session, grant: tokens.CasGrant, xorb_hex: str, body: bytes) -> bool:
    """Verify a xorb against its hash and store it. Returns False when it was already stored.

    Raises:
        XetFormatError: the body does not parse, or its chunks do not hash to ``xorb_hex``.
    """
    grant.require_write()
    store = hub.xorbs
    try:
        from_hex(xorb_hex)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    # Verified even when already stored: holding a xorb (and so reading it) requires sending its bytes.
    chunks = parse_xorb(body)
    computed = to_hex(merkle_root([(c.hash, c.size) for c in chunks]))
    if computed != xorb_hex:
        raise XetFormatError(f"Xorb content hashes to {computed}, not {xorb_hex}")
    if store.exists(xorb_hex):
        _hold(session, grant, xorb_hex)
        return False
    store.put(xorb_hex, body, chunks)
    _hold(session, grant, xorb_hex)
    for chunk in chunks:
        if is_dedup_eligible(chunk.hash):
            _index_chunk(session, to_hex(chunk.hash), xorb_hex)
    return True


def _index_chunk(session: Session, chunk_hex: str, xorb_hex: str) -> None:
    if session.get(XetDedupChunk, chunk_hex) is None:
        session.add(XetDedupChunk(chunk_hash=chunk_hex, xorb_hash=xorb_hex))


def register_shard(hub: Hub, session: Session, grant: tokens.CasGrant, body: bytes) -> int:
    """Check an uploaded shard and record its files. Returns how many files were new.

    Every xorb it names must be stored and visible to the caller, every segment must lie inside its xorb
    with the right size and verification hash, each file hash must match its chunks, and the file's bytes
    must hash to the sha256 the shard claims (the commit will name the file by it).
    """
    grant.require_write()
    if grant.user_id is None:
        raise UnauthorizedError("Registering files needs a signed-in user's token")
    store = hub.xorbs
    shard = parse_shard(body)
    shard_hash = hashlib.sha256(body).hexdigest()
    chunk_lists: dict[str, list[Chunk]] = {}

    def chunks_of(xorb_hex: str) -> list[Chunk]:
        if xorb_hex not in chunk_lists:
            if not store.exists(xorb_hex):
                raise XetFormatError(f"Shard references xorb {xorb_hex}, which was never uploaded")
            if not xorb_visible(session, grant, xorb_hex):
                raise XetFormatError(f"Shard references xorb {xorb_hex}, which this token cannot read")
            chunk_lists[xorb_hex] = store.chunks(xorb_hex)
        return chunk_lists[xorb_hex]

    for listed in shard.xorbs:
        xorb_hex = to_hex(listed.xorb)
        stored = chunks_of(xorb_hex)
        if [(raw, size) for raw, _, size in listed.chunks] != [(c.hash, c.size) for c in stored]:
            raise XetFormatError(f"Shard's chunk list for xorb {xorb_hex} does not match the uploaded xorb")
    new_files = 0
    claimed: dict[str, int] = {}  # sha256 -> size of the repo files this shard registers (the storage quota)
    for entry in shard.files:
        file_hex = to_hex(entry.file_hash)
        all_chunks: list[tuple[bytes, int]] = []
        segments: list[list[Any]] = []
        for segment in entry.segments:
            xorb_hex = to_hex(segment.xorb)
            stored = chunks_of(xorb_hex)
            if not 0 <= segment.chunk_start < segment.chunk_end <= len(stored):
                raise XetFormatError(
                    f"Segment chunks {segment.chunk_start}..{segment.chunk_end} outside xorb {xorb_hex}"
                )
            picked = stored[segment.chunk_start : segment.chunk_end]
            if sum(c.size for c in picked) != segment.unpacked:
                raise XetFormatError(
                    f"Segment of file {file_hex} announces {segment.unpacked} bytes, its chunks differ"
                )
            if segment.verification is not None and segment.verification != range_hash([c.hash for c in picked]):
                raise XetFormatError(f"Verification hash of a segment of file {file_hex} does not match")
            all_chunks += [(c.hash, c.size) for c in picked]
            segments.append([xorb_hex, segment.chunk_start, segment.chunk_end, segment.unpacked])
        if to_hex(file_hash(all_chunks)) != file_hex:
            raise XetFormatError(f"File hash {file_hex} does not match its chunks")
        size = sum(size for _, size in all_chunks)
        sha256, verified = entry.sha256, False
        if sha256 is None:
            if grant.bucket_pk is None:
                raise XetFormatError(f"File {file_hex} has no sha256 metadata; the hub names files by sha256")
            # Bucket uploads skip the sha256 (files are named by their Xet hash): the hub computes it.
            sha256, verified = _sha256_of(store, segments), True
        for xorb_hex, *_ in segments:
            _hold(session, grant, str(xorb_hex))
        if all_chunks:
            _index_chunk(session, to_hex(all_chunks[0][0]), str(segments[0][0]))
        existing = session.get(XetFile, file_hex)
        if existing is None:
            if not verified:
                _check_sha256(store, file_hex, segments, sha256)
            session.add(XetFile(file_hash=file_hex, sha256=sha256, size=size, segments=segments))
            new_files += 1
        else:
            # The file hash is known: its sha256 was proven when it was first registered, and the same chunks
            # cannot have another. A shard claiming another one is a forged mapping.
            if existing.sha256 != sha256 or existing.size != size:
                raise XetFormatError(f"File {file_hex} does not reconstruct to sha256 {sha256}")
            if _layout_for(session, grant, existing) is None:
                # Same file, other xorbs (the first uploader's are not readable here): rebuilt and hashed before
                # it is kept as another layout others may be served from.
                if not verified:
                    _check_sha256(store, file_hex, segments, sha256)
                session.add(XetFileLayout(file_hash=file_hex, segments=segments))
        if grant.bucket_pk is not None:
            _buckets().record_upload(session, grant.bucket_pk, grant.user_id, file_hex)
        else:
            record_proof(session, repo_pk=grant.repo_pk, user_id=grant.user_id, oid=sha256, size=size)
            claimed[sha256] = size
    if claimed:  # refused before the files are recorded: the whole registration rolls back
        require_room(hub, session, session.get_one(Repo, grant.repo_pk), claimed)
    for xorb_hex in chunk_lists:
        if session.get(XetShardXorb, (shard_hash, xorb_hex)) is None:
            session.add(XetShardXorb(shard_hash=shard_hash, xorb_hash=xorb_hex))
    session.flush()
    return new_files


def _check_sha256(store: XorbStore, file_hex: str, segments: list[list[Any]], claimed: str) -> None:
    actual = _sha256_of(store, segments)
    if actual != claimed:
        raise XetFormatError(f"File {file_hex} reconstructs to sha256 {actual}, not {claimed}")


def _sha256_of(store: XorbStore, segments: list[list[Any]]) -> str:
    digest = hashlib.sha256()
    for piece in iter_segments(store, segments, 0, sum(int(s[3]) for s in segments)):
        digest.update(piece)
    return digest.hexdigest()


def _layout_for(session: Session, grant: tokens.CasGrant, record: XetFile) -> list[list[Any]] | None:
    """A layout of the file made only of xorbs the token may read, or None."""
    layouts = [record.segments] + [
        layout.segments
        for layout in session.scalars(select(XetFileLayout).where(XetFileLayout.file_hash == record.file_hash))
    ]
    for segments in layouts:
        if all(xorb_visible(session, grant, str(xorb_hex)) for xorb_hex, *_ in segments):
            return segments
    return None


def _readable_file(session: Session, grant: tokens.CasGrant, file_hex: str) -> tuple[XetFile, list[list[Any]]]:
    record = session.get(XetFile, file_hex)
    if grant.bucket_pk is not None:
        if record is None or not _buckets().may_read_file(session, grant.bucket_pk, file_hex):
            raise EntryNotFoundError(f"File {file_hex} not found")
    elif record is None or (
        session.get(RepoLfsObject, (grant.repo_pk, record.sha256)) is None
        and not proven(session, repo_pk=grant.repo_pk, user_id=grant.user_id, oid=record.sha256)
    ):
        raise EntryNotFoundError(f"File {file_hex} not found")
    segments = _layout_for(session, grant, record)
    if segments is None:
        raise EntryNotFoundError(f"File {file_hex} not found")
    return record, segments


def reconstruction(
    hub: Hub, session: Session, grant: tokens.CasGrant, file_hex: str, range_header: str | None, cas_url: str
) -> dict[str, Any]:
    """The v1 reconstruction answer for bytes of ``file_hex``: terms (xorb chunk ranges) and signed fetch URLs."""
    record, layout = _readable_file(session, grant, file_hex)
    size = record.size
    start, end = 0, size
    if range_header:
        spec = range_header.strip().removeprefix("bytes=")
        first, _, last = spec.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise BadRequestError(f"Invalid Range {range_header!r}")
        start = int(first)
        end = min(int(last) + 1, size) if last else size
        if start >= size and size > 0:
            raise RangeNotSatisfiable("Range starts past the end of the file")
    store = hub.xorbs
    terms: list[dict[str, Any]] = []
    fetch: dict[str, list[dict[str, Any]]] = {}
    offset_into_first: int | None = None
    position = 0
    expires = int(time.time()) + FETCH_URL_TTL
    for xorb_hex, chunk_start, chunk_end, unpacked in layout:
        if position + int(unpacked) <= start or position >= end:
            position += int(unpacked)
            continue
        chunks = store.chunks(str(xorb_hex))
        kept: list[int] = []
        offset = position
        for index in range(int(chunk_start), int(chunk_end)):
            size_k = chunks[index].size
            if offset + size_k > start and offset < end:
                if not kept and offset_into_first is None:
                    offset_into_first = start - offset
                kept.append(index)
            offset += size_k
        position += int(unpacked)
        c0, c1 = kept[0], kept[-1] + 1
        terms.append(
            {
                "hash": xorb_hex,
                "unpacked_length": sum(chunks[i].size for i in range(c0, c1)),
                "range": {"start": c0, "end": c1},
            }
        )
        ranges = fetch.setdefault(str(xorb_hex), [])
        byte_start, byte_end = chunks[c0].byte_start, chunks[c1 - 1].byte_end - 1
        if ranges and ranges[-1]["range"]["end"] >= c0 and ranges[-1]["range"]["start"] <= c0:
            merged = ranges[-1]
            merged["range"]["end"] = max(merged["range"]["end"], c1)
            merged["url_range"]["end"] = max(merged["url_range"]["end"], byte_end)
        else:
            ranges.append(
                {"range": {"start": c0, "end": c1}, "url": "", "url_range": {"start": byte_start, "end": byte_end}}
            )
    for xorb_hex, ranges in fetch.items():
        for item in ranges:
            # Each URL is signed for its byte range only: it opens nothing else in the xorb.
            span = f"{item['url_range']['start']}-{item['url_range']['end']}"
            signature = tokens.sign_fetch(hub.settings.secret_key, xorb_hex, expires, span)
            item["url"] = f"{cas_url}/xorb-data/{xorb_hex}?r={span}&exp={expires}&sig={signature}"
    return {"offset_into_first_range": offset_into_first or 0, "terms": terms, "fetch_info": fetch}


def dedup_query(hub: Hub, session: Session, grant: tokens.CasGrant, chunk_hex: str) -> bytes:
    """A shard describing the xorb that holds ``chunk_hex`` and the other xorbs of the uploads that used it
    (the client asks about few chunks, about one per xorb, so one answer must cover a whole earlier upload).
    Only xorbs the caller may read are listed. Raises NotFoundError when there is nothing to offer."""
    entry = session.get(XetDedupChunk, chunk_hex)
    if entry is None or not xorb_visible(session, grant, entry.xorb_hash):
        raise NotFoundError("Chunk not known")
    shards = select(XetShardXorb.shard_hash).where(XetShardXorb.xorb_hash == entry.xorb_hash).limit(16)
    related = session.scalars(
        select(XetShardXorb.xorb_hash).where(XetShardXorb.shard_hash.in_(shards)).distinct().limit(DEDUP_MAX_XORBS)
    ).all()
    listed = [entry.xorb_hash] + [x for x in related if x != entry.xorb_hash and xorb_visible(session, grant, x)]
    store = hub.xorbs
    xorbs = [(from_hex(x), [(c.hash, c.size) for c in store.chunks(x)]) for x in listed]
    return build_dedup_shard(xorbs, os.urandom(32), DEDUP_SHARD_TTL)
