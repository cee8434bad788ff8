"""Tables for repositories: the index row kept current on every commit, tags, likes, moves, LFS ownership."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow

REPO_TYPES = ("model", "dataset", "space")


class Repo(Base):
    """One repository and its index: everything listing and search need, so they never read git."""

    __tablename__ = "repos"
    __table_args__ = (
        UniqueConstraint("repo_type", "id_key"),
        # Listings filter by type and sort by one of these (migration 0018): the index walk gives the order.
        Index("ix_repos_type_pk", "repo_type", "pk"),
        Index("ix_repos_type_downloads_30d", "repo_type", "downloads_30d"),
        Index("ix_repos_type_trending_score", "repo_type", "trending_score"),
        Index("ix_repos_type_likes", "repo_type", "likes"),
        Index("ix_repos_type_last_modified", "repo_type", "last_modified"),
        Index("ix_repos_type_created_at", "repo_type", "created_at"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_type: Mapped[str] = mapped_column(String(16), nullable=False)
    namespace: Mapped[str] = mapped_column(String(96), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(96), nullable=False)
    # "namespace/name" lower-cased: repo ids compare case-insensitively.
    id_key: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    # The bare git repository's folder name under the data dir; stable across renames.
    storage_key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    private: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    gated: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None, "auto" or "manual"
    sdk: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    sha: Mapped[str | None] = mapped_column(String(40), nullable=True)  # head of main
    downloads_all_time: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # Rollups of repo_daily_stats kept current by repos/stats (incremented live, recomputed periodically
    # as days leave the window), so sorting by them is an index scan.
    downloads_30d: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False, index=True)
    trending_score: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False, index=True)
    likes: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    card_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    pipeline_tag: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    library_name: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    license: Mapped[str | None] = mapped_column(String(64), nullable=True)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    base_models: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    datasets: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    used_storage: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    model_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Community: an admin may turn discussions (and pull requests) off; the last number handed to a
    # discussion or pull request (one sequence per repo, so refs/pr/N and discussion N never collide).
    discussions_disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    discussions_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class RepoTag(Base):
    """One row per (repo, tag) so that tag filters are indexed lookups on every database."""

    __tablename__ = "repo_tags"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class Like(Base):
    __tablename__ = "likes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class RepoRedirect(Base):
    """An old id of a moved repo, so that clients using it are redirected."""

    __tablename__ = "repo_redirects"
    __table_args__ = (UniqueConstraint("repo_type", "id_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_type: Mapped[str] = mapped_column(String(16), nullable=False)
    id_key: Mapped[str] = mapped_column(String(200), nullable=False)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False)


class RepoLfsObject(Base):
    """Which repos' revisions reference which LFS objects (written by commits): an object may be copied
    only by someone who can read the content of one of them."""

    __tablename__ = "repo_lfs_objects"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    oid: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LfsUploadProof(Base):
    """A user sent the bytes of LFS object ``oid`` into repo ``repo_pk`` (a checked PUT, a completed multipart
    upload, or a Xet shard whose files were rebuilt and hashed). Only such a proof, or read access to a repo
    whose revisions reference the object, lets a commit name an object: knowing its sha256 is not enough."""

    __tablename__ = "lfs_upload_proofs"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class GatedAccess(Base):
    """A user's access request to a gated repo and its status."""

    __tablename__ = "gated_access"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Set when someone with write access accepts, rejects, cancels or grants (repos/access_requests).
    rejection_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RepoDailyStat(Base):
    """Downloads and likes of one repo on one day: trending and "downloads last month" are sums of these."""

    __tablename__ = "repo_daily_stats"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    likes: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
