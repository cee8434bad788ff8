"""Xorbs: the body exactly as uploaded, plus a chunk index beside it, each in a blob store (the data dir's, by
atomic rename, or S3's, visible once the PUT completed).

The index (per chunk: hash, uncompressed size, byte range in the body) is written before the body, so a
xorb that exists always has its index; a crash leaves at most an unreferenced index.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from hubstead.storage.base import BlobStore, readable_path
from hubstead.storage.local import LocalBlobStore
from hubstead.xet.cas.formats import Chunk

_ENTRY = struct.Struct("<32sIII")


class XorbStore:
    def __init__(self, root: Path, *, bodies: BlobStore | None = None, indexes: BlobStore | None = None) -> None:
        self.bodies: BlobStore = bodies or LocalBlobStore(root / "xorbs")
        self.indexes: BlobStore = indexes or LocalBlobStore(root / "chunk-index")
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def exists(self, xorb_hex: str) -> bool:
        return self.bodies.exists(xorb_hex)

    def put(self, xorb_hex: str, body: bytes, chunks: list[Chunk]) -> None:
        index = b"".join(_ENTRY.pack(c.hash, c.size, c.byte_start, c.byte_end) for c in chunks)
        for store, data in ((self.indexes, index), (self.bodies, body)):
            tmp = self.tmp / f"{xorb_hex}.{os.getpid()}.{time.time_ns()}"
            tmp.write_bytes(data)
            store.put_file(xorb_hex, tmp)

    def chunks(self, xorb_hex: str) -> list[Chunk]:
        path = readable_path(self.indexes, xorb_hex)
        if path is None:
            raise FileNotFoundError(xorb_hex)
        raw = path.read_bytes()
        return [Chunk(*_ENTRY.unpack_from(raw, offset)) for offset in range(0, len(raw), _ENTRY.size)]

    def body_path(self, xorb_hex: str) -> Path | None:
        return self.bodies.local_path(xorb_hex)

    def size(self, xorb_hex: str) -> int | None:
        """The stored body's size, or None when the xorb is not stored."""
        return self.bodies.size(xorb_hex)

    def read(self, xorb_hex: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of the stored body."""
        path = self.bodies.local_path(xorb_hex)
        if path is None:
            if self.bodies.size(xorb_hex) is None:
                raise FileNotFoundError(xorb_hex)
            return b"".join(self.bodies.open_range(xorb_hex, start, end - 1)) if end > start else b""
        with open(path, "rb") as handle:
            handle.seek(start)
            return handle.read(end - start)
