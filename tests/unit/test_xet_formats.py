"""Xet hashing against upstream reference vectors, and xorb/shard parsing of good and bad input."""

from __future__ import annotations

import lz4.frame
import pytest

from hubstead.xet.cas.formats import XetFormatError, build_dedup_shard, parse_shard, parse_xorb
from hubstead.xet.cas.hashing import ZERO_HASH, chunk_hash, file_hash, from_hex, merkle_root, to_hex
from xet_builders import random_chunks, shard_for_file, xorb_from_chunks

VECTOR = [
    ("cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100),
    ("c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200),
    ("0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37", 300),
]


def test_merkle_and_file_hash_match_upstream_vectors() -> None:
    nodes = [(from_hex(h), size) for h, size in VECTOR]
    assert to_hex(merkle_root(nodes)) == "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc"
    assert to_hex(file_hash(nodes)) == "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715"
    assert to_hex(file_hash([(ZERO_HASH, 0)])) == "638a6bc391964a85939d48f008e8bdbae6a7975e7ca2d87a3ce2492f4e4d8a4c"


def test_hex_round_trip_and_byte_order() -> None:
    raw = bytes(range(32))
    assert to_hex(raw).startswith("0706050403020100")
    assert from_hex(to_hex(raw)) == raw
    with pytest.raises(ValueError):
        from_hex("xyz")


def test_parse_xorb_all_schemes() -> None:
    plain = b"a" * 1000
    floats = bytes(range(256)) * 16
    grouped = b"".join(floats[i::4] for i in range(4))
    records = [
        (0, plain, plain),
        (1, lz4.frame.compress(plain), plain),
        (2, lz4.frame.compress(grouped), floats),
    ]
    body = b"".join(
        bytes([0]) + len(p).to_bytes(3, "little") + bytes([s]) + len(d).to_bytes(3, "little") + p for s, p, d in records
    )
    chunks = parse_xorb(body)
    assert [c.hash for c in chunks] == [chunk_hash(d) for _, _, d in records]
    assert chunks[0].byte_start == 0 and chunks[1].byte_start == chunks[0].byte_end


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-5],  # truncated payload
        lambda b: b[:5],  # truncated header
        lambda b: b"\x01" + b[1:],  # unknown version
        lambda b: b[:4] + b"\x07" + b[5:],  # unknown scheme
        lambda b: b[:5] + (1).to_bytes(3, "little") + b[8:],  # wrong uncompressed length
        lambda b: b"",  # empty
    ],
)
def test_parse_xorb_refuses_corruption(mutate) -> None:  # type: ignore[no-untyped-def]
    _, body = xorb_from_chunks(random_chunks(2, 5000))
    with pytest.raises(XetFormatError):
        parse_xorb(mutate(body))


def test_parse_xorb_refuses_corrupt_lz4() -> None:
    payload = b"\x04\x22\x4d\x18garbage-not-lz4"
    body = bytes([0]) + len(payload).to_bytes(3, "little") + bytes([1]) + (100).to_bytes(3, "little") + payload
    with pytest.raises(XetFormatError):
        parse_xorb(body)


def test_shard_round_trip_and_corruption() -> None:
    chunks = random_chunks(3, 10_000)
    xorb_hex, _ = xorb_from_chunks(chunks)
    shard = parse_shard(shard_for_file(chunks, xorb_hex))
    assert len(shard.files) == 1 and len(shard.xorbs) == 1
    assert shard.files[0].size == 30_000 and shard.files[0].sha256 is not None
    assert [h for h, _, _ in shard.xorbs[0].chunks] == [chunk_hash(c) for c in chunks]
    good = shard_for_file(chunks, xorb_hex)
    for bad in (b"nope" + good[4:], good[:100], good[:48]):
        with pytest.raises(XetFormatError):
            parse_shard(bad)


def test_dedup_shard_is_parseable_with_keyed_hashes() -> None:
    chunks = random_chunks(2, 1000)
    xorb_hex, _ = xorb_from_chunks(chunks)
    key = bytes(range(32))
    body = build_dedup_shard([(from_hex(xorb_hex), [(chunk_hash(c), len(c)) for c in chunks])], key, 3600)
    assert len(body) > 200 and body[-8:] == (len(body) - 200).to_bytes(8, "little")
    parsed = parse_shard(body)
    assert [h for h, _, _ in parsed.xorbs[0].chunks] != [chunk_hash(c) for c in chunks]  # keyed, not raw
