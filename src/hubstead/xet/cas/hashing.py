"""Xet hashes: keyed blake3 over chunks, a merkle tree for xorbs and files, range verification hashes.

Hex strings follow Xet's convention: the 32 bytes are four little-endian u64 printed in order, so each
8-byte group appears reversed compared with ``bytes.hex()``.
"""

from __future__ import annotations

import re

import blake3

DATA_KEY = bytes(
    [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
     157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41]
)  # fmt: skip
INTERNAL_NODE_KEY = bytes(
    [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
     93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63]
)  # fmt: skip
VERIFICATION_KEY = bytes(
    [127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
     164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195]
)  # fmt: skip
ZERO_HASH = bytes(32)
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


def to_hex(raw: bytes) -> str:
    """Xet hex form of a 32-byte hash."""
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, 32, 8))


def from_hex(text: str) -> bytes:
    """The 32 raw bytes of a Xet hex hash. Raises ValueError for anything else."""
    if not _HEX_RE.match(text):
        raise ValueError(f"not a Xet hash: {text!r}")
    return b"".join(bytes.fromhex(text[i : i + 16])[::-1] for i in range(0, 64, 16))


def is_hex_hash(text: str) -> bool:
    return bool(_HEX_RE.match(text))


def chunk_hash(data: bytes) -> bytes:
    """The hash of one chunk's uncompressed bytes."""
    return blake3.blake3(data, key=DATA_KEY).digest()


def _last_u64_mod(raw: bytes, modulus: int) -> int:
    return int.from_bytes(raw[24:32], "little") % modulus


def _merge(nodes: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = b"".join(f"{to_hex(h)} : {size}\n".encode() for h, size in nodes)
    return blake3.blake3(text, key=INTERNAL_NODE_KEY).digest(), sum(size for _, size in nodes)


def _next_cut(nodes: list[tuple[bytes, int]], start: int) -> int:
    """End (exclusive) of the group starting at ``start``: 2 to 9 nodes, cut after a hash that is 0 mod 4."""
    remaining = len(nodes) - start
    if remaining <= 2:
        return len(nodes)
    end = start + min(9, remaining)
    for index in range(start + 2, end):
        if _last_u64_mod(nodes[index][0], 4) == 0:
            return index + 1
    return end


def merkle_root(chunks: list[tuple[bytes, int]]) -> bytes:
    """The aggregated hash of ``(chunk_hash, size)`` pairs (a xorb's hash)."""
    if not chunks:
        return ZERO_HASH
    level = list(chunks)
    while len(level) > 1:
        merged, start = [], 0
        while start < len(level):
            end = _next_cut(level, start)
            merged.append(_merge(level[start:end]))
            start = end
        level = merged
    return level[0][0]


def file_hash(chunks: list[tuple[bytes, int]]) -> bytes:
    """A file's hash: the merkle root of all its chunks, hashed again with an all-zero key."""
    if not chunks:
        return ZERO_HASH
    return blake3.blake3(merkle_root(chunks), key=ZERO_HASH).digest()


def range_hash(chunk_hashes: list[bytes]) -> bytes:
    """The verification hash of a file segment: proves the uploader knows the chunks it references."""
    return blake3.blake3(b"".join(chunk_hashes), key=VERIFICATION_KEY).digest()


def keyed(raw: bytes, key: bytes) -> bytes:
    """A chunk hash as a global-dedup answer shows it (HMAC-like, so other people's hashes do not leak)."""
    return raw if key == ZERO_HASH else blake3.blake3(raw, key=key).digest()


def is_dedup_eligible(raw: bytes) -> bool:
    """Chunks the client asks the global dedup index about (one in 1024, plus each file's first chunk)."""
    return _last_u64_mod(raw, 1024) == 0
