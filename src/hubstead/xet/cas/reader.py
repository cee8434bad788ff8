"""Reading a stored Xet file back: which sha256s live in Xet, and their bytes rebuilt from the xorbs on the fly
(for plain HTTP downloads, LFS clients, inference snapshots and the viewer). No access checks here: callers
serve bytes only after ``repos.service.require_file_content_access``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubstead.xet.cas.formats import decode_chunk, iter_records
from hubstead.xet.cas.models import XetFile
from hubstead.xet.cas.store import XorbStore


def iter_segments(store: XorbStore, segments: list[list[Any]], start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``end`` (exclusive) of a file made of ``segments``, decoded chunk by chunk."""
    position = 0
    for xorb_hex, chunk_start, chunk_end, unpacked in segments:
        if position + unpacked <= start:
            position += unpacked
            continue
        if position >= end:
            return
        chunks = store.chunks(xorb_hex)[chunk_start:chunk_end]
        # Read only the chunks that overlap [start, end).
        first = last = None
        offset = position
        for index, chunk in enumerate(chunks):
            if offset + chunk.size > start and offset < end:
                if first is None:
                    first = (index, offset)
                last = index
            offset += chunk.size
        if first is not None and last is not None:
            body = store.read(xorb_hex, chunks[first[0]].byte_start, chunks[last].byte_end)
            offset = first[1]
            for _, scheme, payload, size in iter_records(body, 0, len(body)):
                data = decode_chunk(scheme, payload, size)
                lo, hi = max(start - offset, 0), min(end - offset, size)
                if hi > lo:
                    yield data[lo:hi]
                offset += size
        position += unpacked


def xet_hashes(session: Session, sha256s: list[str]) -> dict[str, str]:
    """sha256 → Xet file hash for those of ``sha256s`` stored in Xet (one query)."""
    if not sha256s:
        return {}
    rows = session.execute(select(XetFile.sha256, XetFile.file_hash).where(XetFile.sha256.in_(set(sha256s))))
    return {sha: file_hex for sha, file_hex in rows}


def file_for_sha256(session: Session, sha256: str) -> XetFile | None:
    return session.scalars(select(XetFile).where(XetFile.sha256 == sha256).limit(1)).first()


@dataclass(frozen=True)
class XetBacked:
    """What the hub needs to serve an LFS file that lives in Xet."""

    file_hash: str
    size: int
    segments: list[list[Any]]


def xet_backed(session: Session, sha256: str) -> XetBacked | None:
    record = file_for_sha256(session, sha256)
    if record is None:
        return None
    return XetBacked(file_hash=record.file_hash, size=record.size, segments=record.segments)


def stream_file(store: XorbStore, backed: XetBacked, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start``..``end`` inclusive of a Xet file, reconstructed on the fly."""
    yield from iter_segments(store, backed.segments, start, end + 1)
