"""The blob store interface: LFS objects kept by sha256, the part a site swaps (local disk, S3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class BlobStore(Protocol):
    """Content-addressed storage of LFS objects. Objects are immutable once stored and never half-written;
    one leaves only through ``delete``."""

    def exists(self, oid: str) -> bool:
        """Whether the object with this sha256 is stored."""
        ...

    def size(self, oid: str) -> int | None:
        """The stored object's size in bytes, or None if it is not stored."""
        ...

    def put_file(self, oid: str, source: Path) -> None:
        """Take ownership of ``source`` (already verified to hash to ``oid``) and store it atomically."""
        ...

    def open_range(self, oid: str, start: int, end: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` inclusive of the object."""
        ...

    def delete(self, oid: str) -> bool:
        """Remove the object (permanently deleting LFS files, once no repo references it). False if absent."""
        ...

    def local_path(self, oid: str) -> Path | None:
        """A path on this machine holding the object, when the store has one (lets the server use sendfile)."""
        ...


def readable_path(store: BlobStore, oid: str) -> Path | None:
    """A local file holding the object, for readers that need a path (Parquet, safetensors headers, snapshots):
    the store's own (local disk), else its cached copy (S3), else None when the object is not stored."""
    path = store.local_path(oid)
    if path is not None:
        return path
    cached = getattr(store, "cached_copy", None)
    return cached(oid) if cached is not None else None


def presigned_url(store: BlobStore, oid: str, *, filename: str | None = None) -> str | None:
    """A URL the client may GET the object from directly (S3), or None when the store has none (local disk)."""
    sign = getattr(store, "presigned_url", None)
    return str(sign(oid, filename=filename)) if sign is not None else None
