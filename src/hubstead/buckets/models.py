"""Tables of the buckets domain: buckets, their files (path → Xet file hash), and what their Xet tokens
uploaded (the xorbs a bucket's token may read back, and the files it proved it uploaded)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow


class Bucket(Base):
    """One bucket, owned by a user's or an org's namespace."""

    __tablename__ = "buckets"
    __table_args__ = (UniqueConstraint("id_key"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(96), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(96), nullable=False)
    # "namespace/name" lower-cased: bucket ids compare case-insensitively, like repo ids.
    id_key: Mapped[str] = mapped_column(String(200), nullable=False)
    private: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    @property
    def bucket_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class BucketFile(Base):
    """A file of a bucket: its Xet file hash (the bytes live in the CAS), size, and the client's mtime."""

    __tablename__ = "bucket_files"
    __table_args__ = (
        UniqueConstraint("bucket_pk", "path"),
        Index("ix_bucket_files_bucket_hash", "bucket_pk", "xet_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_pk: Mapped[int] = mapped_column(ForeignKey("buckets.pk", ondelete="CASCADE"), nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)
    xet_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    mtime: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # milliseconds since the epoch
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class BucketXorb(Base):
    """A xorb uploaded (or referenced by a registered shard) under one of the bucket's Xet tokens."""

    __tablename__ = "bucket_xorbs"

    bucket_pk: Mapped[int] = mapped_column(ForeignKey("buckets.pk", ondelete="CASCADE"), primary_key=True)
    xorb_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class BucketUpload(Base):
    """A Xet file registered under a write token for the bucket: what lets a batch ``addFile`` name it."""

    __tablename__ = "bucket_uploads"

    bucket_pk: Mapped[int] = mapped_column(ForeignKey("buckets.pk", ondelete="CASCADE"), primary_key=True)
    file_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
