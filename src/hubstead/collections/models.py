"""Tables for collections and their items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow

THEMES = ("orange", "blue", "green", "purple", "pink", "indigo")
ITEM_TYPES = ("model", "dataset", "space", "collection")
MAX_TITLE_CHARS = 60
MAX_DESCRIPTION_CHARS = 150  # as the client documents it
MAX_NOTE_CHARS = 500  # as the client documents it


class Collection(Base):
    """One collection. Its slug is ``{namespace}/{title slug}-{public_id}``: only the id names it, so a slug
    taken before a rename still finds it. ``position`` orders the owner's collections (0 first)."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("namespace_key", "title_key"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id clients see: 24 random hex digits, as the Hub's object ids.
    public_id: Mapped[str] = mapped_column(String(24), unique=True, nullable=False)
    namespace: Mapped[str] = mapped_column(String(96), nullable=False)  # the owner (user or org), as spelled
    namespace_key: Mapped[str] = mapped_column(String(96), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS), nullable=False)
    title_key: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS), nullable=False)  # lower-cased: one per owner
    description: Mapped[str | None] = mapped_column(String(MAX_DESCRIPTION_CHARS), nullable=True)
    private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    theme: Mapped[str] = mapped_column(String(16), nullable=False, default="orange")
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    upvotes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class CollectionItem(Base):
    """One entry of a collection: a repo (``repo_pk``) or another collection (``item_collection_pk``). Deleting
    the repo or that collection deletes the entry (the foreign keys cascade)."""

    __tablename__ = "collection_items"
    __table_args__ = (
        UniqueConstraint("collection_pk", "repo_pk"),
        UniqueConstraint("collection_pk", "item_collection_pk"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True, nullable=False)
    collection_pk: Mapped[int] = mapped_column(
        ForeignKey("collections.pk", ondelete="CASCADE"), nullable=False, index=True
    )
    item_type: Mapped[str] = mapped_column(String(16), nullable=False)
    repo_pk: Mapped[int | None] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), nullable=True, index=True)
    item_collection_pk: Mapped[int | None] = mapped_column(
        ForeignKey("collections.pk", ondelete="CASCADE"), nullable=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    note: Mapped[str | None] = mapped_column(String(MAX_NOTE_CHARS), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
