"""Build xorbs and shards by hand, the way hf_xet lays them out, to send malformed ones on purpose."""

from __future__ import annotations

import hashlib
import os
import struct

from hubstead.xet.cas.formats import BOOKEND, SHARD_TAG
from hubstead.xet.cas.hashing import chunk_hash, file_hash, from_hex, merkle_root, range_hash, to_hex


def xorb_from_chunks(chunks: list[bytes]) -> tuple[str, bytes]:
    """An uncompressed xorb (scheme 0) holding ``chunks``; returns (xorb hex hash, body)."""
    body = b"".join(
        bytes([0]) + len(c).to_bytes(3, "little") + bytes([0]) + len(c).to_bytes(3, "little") + c for c in chunks
    )
    return to_hex(merkle_root([(chunk_hash(c), len(c)) for c in chunks])), body


def shard_for_file(chunks: list[bytes], xorb_hex: str, *, sha256: str | None = None, include_xorb: bool = True) -> bytes:
    """A shard as hf_xet uploads it: one file made of all ``chunks`` of one xorb, and that xorb's chunk list."""
    hashes = [(chunk_hash(c), len(c)) for c in chunks]
    data = b"".join(chunks)
    out = bytearray(SHARD_TAG + struct.pack("<QQ", 2, 0))
    out += file_hash(hashes) + struct.pack("<IIQ", 0xC0000000, 1, 0)
    out += from_hex(xorb_hex) + struct.pack("<IIII", 0, len(data), 0, len(chunks))
    out += range_hash([h for h, _ in hashes]) + bytes(16)
    out += from_hex(sha256 or hashlib.sha256(data).hexdigest()) + bytes(16)
    out += BOOKEND + bytes(16)
    if include_xorb:
        out += from_hex(xorb_hex) + struct.pack("<IIII", 0, len(chunks), len(data), 0)
        offset = 0
        for h, size in hashes:
            out += h + struct.pack("<IIII", offset, size, 0, 0)
            offset += size
    out += BOOKEND + bytes(16)
    return bytes(out)


def random_chunks(count: int = 3, size: int = 20_000) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]
