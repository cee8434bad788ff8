"""Xorb and shard byte layouts: parse and verify what ``hf_xet`` uploads, build dedup answers.

A xorb is a run of chunk records, each an 8-byte header (version 0, u24 compressed length, compression
scheme, u24 uncompressed length) and its payload; a shard (MDB format v2) lists files as segments of
xorb chunk ranges, and the xorbs new in the upload with their chunk hashes. All integers little-endian.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from hubstead.decompress import decompress_bounded
from hubstead.errors import BadRequestError, HubError
from hubstead.xet.cas.hashing import ZERO_HASH, chunk_hash, keyed, to_hex

SHARD_TAG = b"HFRepoMetaData\x00" + bytes(
    [85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169]
)
BOOKEND = b"\xff" * 32
MAX_CHUNK_BYTES = 128 * 1024
MAX_XORB_CHUNKS = 8192
MAX_XORB_BYTES = 80 * 1024 * 1024
FOOTER_IDENT = b"XETBLOB"
_RECORD = 48


class XetFormatError(BadRequestError):
    """A xorb or shard that does not parse or does not verify."""


@dataclass(frozen=True)
class Chunk:
    hash: bytes
    size: int  # uncompressed
    byte_start: int  # offset of the record header in the stored xorb
    byte_end: int  # exclusive


def _bg4_regroup(grouped: bytes) -> bytes:
    total = len(grouped)
    base, extra = divmod(total, 4)
    sizes = [base + (1 if extra > i else 0) for i in range(4)]
    out = bytearray(total)
    pos = 0
    for lane in range(4):
        out[lane::4] = grouped[pos : pos + sizes[lane]]
        pos += sizes[lane]
    return bytes(out)


def decode_chunk(scheme: int, payload: bytes, expected: int) -> bytes:
    """Uncompressed bytes of one chunk record. Raises XetFormatError for an unknown scheme or bad data."""
    try:
        if scheme == 0:
            data = payload
        elif scheme == 1:
            data = decompress_bounded(payload, "lz4", expected, what="chunk")
        elif scheme == 2:
            data = _bg4_regroup(decompress_bounded(payload, "lz4", expected, what="chunk"))
        else:
            raise XetFormatError(f"Unknown chunk compression scheme {scheme}")
    except HubError as exc:  # corrupt, or more bytes than the header says (never expanded past them)
        raise XetFormatError(f"Corrupt compressed chunk: {exc.message}") from exc
    if len(data) != expected:
        raise XetFormatError(f"Chunk decodes to {len(data)} bytes, its header says {expected}")
    return data


def iter_records(body: bytes, start: int = 0, end: int | None = None):  # type: ignore[no-untyped-def]
    """Yield ``(offset, scheme, payload, uncompressed_size)`` for the chunk records in ``body[start:end]``."""
    pos, stop = start, len(body) if end is None else end
    while pos < stop:
        if body[pos : pos + 7] == FOOTER_IDENT:
            return
        if pos + 8 > stop:
            raise XetFormatError(f"Truncated chunk header at byte {pos}")
        version = body[pos]
        compressed = int.from_bytes(body[pos + 1 : pos + 4], "little")
        scheme = body[pos + 4]
        size = int.from_bytes(body[pos + 5 : pos + 8], "little")
        if version != 0:
            raise XetFormatError(f"Unknown chunk header version {version} at byte {pos}")
        if size > MAX_CHUNK_BYTES or compressed > 2 * MAX_CHUNK_BYTES:
            raise XetFormatError(f"Chunk at byte {pos} is larger than {MAX_CHUNK_BYTES} bytes")
        if pos + 8 + compressed > stop:
            raise XetFormatError(f"Truncated chunk at byte {pos}")
        yield pos, scheme, body[pos + 8 : pos + 8 + compressed], size
        pos += 8 + compressed


def parse_xorb(body: bytes) -> list[Chunk]:
    """Decode every chunk of a xorb and hash it. Raises XetFormatError on any inconsistency."""
    if len(body) > MAX_XORB_BYTES:
        raise XetFormatError(f"Xorb is larger than {MAX_XORB_BYTES} bytes")
    chunks = []
    for offset, scheme, payload, size in iter_records(body):
        data = decode_chunk(scheme, payload, size)
        chunks.append(Chunk(hash=chunk_hash(data), size=size, byte_start=offset, byte_end=offset + 8 + len(payload)))
        if len(chunks) > MAX_XORB_CHUNKS:
            raise XetFormatError(f"Xorb has more than {MAX_XORB_CHUNKS} chunks")
    if not chunks:
        raise XetFormatError("Empty xorb")
    return chunks


@dataclass
class ShardSegment:
    xorb: bytes
    unpacked: int
    chunk_start: int
    chunk_end: int
    verification: bytes | None = None


@dataclass
class ShardFile:
    file_hash: bytes
    segments: list[ShardSegment] = field(default_factory=list)
    sha256: str | None = None

    @property
    def size(self) -> int:
        return sum(segment.unpacked for segment in self.segments)


@dataclass
class ShardXorb:
    xorb: bytes
    chunks: list[tuple[bytes, int, int]]  # (hash, unpacked offset, unpacked size)


@dataclass
class Shard:
    files: list[ShardFile]
    xorbs: list[ShardXorb]


def _record(body: bytes, pos: int) -> tuple[bytes, bytes]:
    if pos + _RECORD > len(body):
        raise XetFormatError("Truncated shard")
    return body[pos : pos + 32], body[pos + 32 : pos + _RECORD]


def parse_shard(body: bytes) -> Shard:
    """Read the file and xorb sections of an uploaded shard. Raises XetFormatError when malformed."""
    if body[:32] != SHARD_TAG:
        raise XetFormatError("Not a shard: bad header tag")
    if len(body) < 48:
        raise XetFormatError("Truncated shard header")
    version = struct.unpack_from("<Q", body, 32)[0]
    if version != 2:
        raise XetFormatError(f"Unsupported shard version {version}")
    pos = 48
    files: list[ShardFile] = []
    while True:
        head, rest = _record(body, pos)
        pos += _RECORD
        if head == BOOKEND:
            break
        flags, count, _ = struct.unpack("<IIQ", rest)
        if count > 1_000_000:
            raise XetFormatError("Shard file entry count is implausible")
        entry = ShardFile(file_hash=head)
        for _ in range(count):
            xorb, data = _record(body, pos)
            pos += _RECORD
            _flags, unpacked, start, end = struct.unpack("<IIII", data)
            entry.segments.append(ShardSegment(xorb=xorb, unpacked=unpacked, chunk_start=start, chunk_end=end))
        if flags & 0x80000000:
            for segment in entry.segments:
                segment.verification, _ = _record(body, pos)
                pos += _RECORD
        if flags & 0x40000000:
            raw_sha, _ = _record(body, pos)
            pos += _RECORD
            entry.sha256 = to_hex(raw_sha)
        files.append(entry)
    xorbs: list[ShardXorb] = []
    while True:
        head, rest = _record(body, pos)
        pos += _RECORD
        if head == BOOKEND:
            break
        _flags, count, _unpacked_total, _on_disk = struct.unpack("<IIII", rest)
        if count > MAX_XORB_CHUNKS:
            raise XetFormatError("Shard xorb entry has too many chunks")
        chunks = []
        for _ in range(count):
            raw, data = _record(body, pos)
            pos += _RECORD
            start, size, _cflags, _unused = struct.unpack("<IIII", data)
            chunks.append((raw, start, size))
        xorbs.append(ShardXorb(xorb=head, chunks=chunks))
    return Shard(files=files, xorbs=xorbs)


def build_dedup_shard(xorbs: list[tuple[bytes, list[tuple[bytes, int]]]], key: bytes, valid_for: int) -> bytes:
    """A full shard (xorb section, lookup tables, 200-byte footer) answering a global dedup query.

    Chunk hashes are keyed with ``key`` so the answer reveals nothing about chunks the client lacks.
    """
    out = bytearray(SHARD_TAG + struct.pack("<QQ", 2, 200))
    file_info_offset = len(out)
    out += BOOKEND + bytes(16)
    xorb_info_offset = len(out)
    xorb_lookup, chunk_lookup = [], []
    record_index = 0
    for xorb, chunks in sorted(xorbs, key=lambda item: int.from_bytes(item[0][:8], "little")):
        out += xorb + struct.pack("<IIII", 0, len(chunks), sum(size for _, size in chunks), 0)
        xorb_lookup.append((int.from_bytes(xorb[:8], "little"), record_index))
        offset = 0
        for index, (raw, size) in enumerate(chunks):
            shown = keyed(raw, key)
            out += shown + struct.pack("<IIII", offset, size, 0, 0)
            chunk_lookup.append((int.from_bytes(shown[:8], "little"), record_index, index))
            offset += size
        record_index += 1 + len(chunks)
    out += BOOKEND + bytes(16)
    file_lookup_offset = xorb_lookup_offset = len(out)
    for truncated, index in xorb_lookup:
        out += struct.pack("<QI", truncated, index)
    chunk_lookup_offset = len(out)
    for truncated, xorb_index, chunk_index in sorted(chunk_lookup):
        out += struct.pack("<QII", truncated, xorb_index, chunk_index)
    footer_offset = len(out)
    now = int(time.time())
    stored = sum(size for _, chunks in xorbs for _, size in chunks)
    out += struct.pack(
        "<9Q",
        1,
        file_info_offset,
        xorb_info_offset,
        file_lookup_offset,
        0,
        xorb_lookup_offset,
        len(xorb_lookup),
        chunk_lookup_offset,
        len(chunk_lookup),
    )
    out += (key if key != ZERO_HASH else ZERO_HASH) + struct.pack("<QQ", now, now + valid_for) + bytes(48)
    out += struct.pack("<QQQQ", 0, 0, stored, footer_offset)
    return bytes(out)
