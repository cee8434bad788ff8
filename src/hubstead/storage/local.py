"""Blob store on a local directory: ``<root>/<aa>/<bb>/<sha256>``, written by atomic rename."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LocalBlobStore:
    """A content-addressed directory. Files land by ``rename`` after ``fsync``, so a crash never leaves a
    partial object under its final name; a stored object is removed only by ``delete``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, oid: str) -> Path:
        if not _SHA256.match(oid):
            raise ValueError(f"not a sha256: {oid!r}")
        return self.root / oid[:2] / oid[2:4] / oid

    def exists(self, oid: str) -> bool:
        return self._path(oid).is_file()

    def size(self, oid: str) -> int | None:
        try:
            return self._path(oid).stat().st_size
        except FileNotFoundError:
            return None

    def put_file(self, oid: str, source: Path) -> None:
        target = self._path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(source, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def open_range(self, oid: str, start: int, end: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with open(self._path(oid), "rb") as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = handle.read(min(chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def delete(self, oid: str) -> bool:
        path = self._path(oid)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True

    def local_path(self, oid: str) -> Path | None:
        path = self._path(oid)
        return path if path.is_file() else None
