"""Tables of the Xet store: files as chunk ranges of xorbs, which repos hold which xorbs, the dedup index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow


class XetFile(Base):
    """A file stored through Xet: its reconstruction, and the sha256 its bytes were verified to have."""

    __tablename__ = "xet_files"

    file_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # [[xorb_hash, chunk_start, chunk_end, unpacked_bytes], ...] in file order.
    segments: Mapped[list[list[Any]]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class XetXorbRepo(Base):
    """A repo that uploaded or references a xorb: its chunks are served only to those who can read one."""

    __tablename__ = "xet_xorb_repos"

    xorb_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True, index=True)


class XetDedupChunk(Base):
    """The global dedup index: a sample of chunk hashes (one in 1024, and each file's first) to their xorb."""

    __tablename__ = "xet_dedup_chunks"

    chunk_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    xorb_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class XetFileLayout(Base):
    """Another way to rebuild a file, from other xorbs: the same bytes uploaded by someone who could not
    use the first uploader's xorbs. A reader is served a layout made only of xorbs they may read."""

    __tablename__ = "xet_file_layouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_hash: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    segments: Mapped[list[list[Any]]] = mapped_column(JSON, nullable=False)


class XetShardXorb(Base):
    """The xorbs one registered shard (one upload) introduced or used: a dedup answer about one of them
    lists them all, so a re-upload of a large file learns every xorb of the earlier upload at once."""

    __tablename__ = "xet_shard_xorbs"

    shard_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    xorb_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
