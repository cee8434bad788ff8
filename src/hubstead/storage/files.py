"""Small content-addressed files in the data dir (comment attachments, avatars): ``<folder>/<aa>/<sha256>.<ext>``,
written durably (a temporary file, fsynced, renamed) and never twice."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def store_by_hash(folder: Path, data: bytes, ext: str) -> str:
    """Keep ``data`` under ``folder`` as ``<sha256>.<ext>`` (its name is returned); the same bytes are stored once."""
    name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
    shard = folder / name[:2]
    target = shard / name
    if not target.exists():
        shard.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=shard, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return name
