"""The service container built once at start and handed to every route and command."""

from __future__ import annotations

from dataclasses import dataclass

from hubstead.config import Settings
from hubstead.coordination.downloads import SharedDownloadPairs
from hubstead.db import Database
from hubstead.storage.base import BlobStore
from hubstead.storage.local import LocalBlobStore
from hubstead.xet.cas.store import XorbStore


@dataclass
class Hub:
    """Settings plus the parts they choose: the database, the blob store and the Xet xorb store (each built once)."""

    settings: Settings
    db: Database
    blobs: BlobStore
    xorbs: XorbStore
    downloads: SharedDownloadPairs  # counting a HEAD-then-GET once, whichever processes the two reach

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> Hub:
        settings.repos_dir.mkdir(parents=True, exist_ok=True)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        if migrate:
            db.migrate()
        return cls(
            settings=settings,
            db=db,
            blobs=blob_store(settings),
            xorbs=xorb_store(settings),
            downloads=SharedDownloadPairs(db),
        )


def blob_store(settings: Settings) -> BlobStore:
    """The store the settings choose: S3 for ``s3://bucket/prefix``, else the data dir's ``lfs/``."""
    if settings.blob_store:
        from hubstead.storage.s3 import S3BlobStore

        return S3BlobStore(
            settings.blob_store,
            endpoint_url=settings.s3_endpoint,
            region=settings.s3_region,
            cache_dir=settings.data_dir / "cache" / "s3",
            multipart_chunk_size=max(5 * 2**20, min(settings.multipart_chunk_size, 64 * 2**20)),
            presign_ttl=settings.s3_presign_ttl,
        )
    return LocalBlobStore(settings.blobs_dir)


def xorb_store(settings: Settings) -> XorbStore:
    """Xet xorbs and their chunk indexes: beside the LFS objects on S3 (``<prefix>/xet/...``), else the data dir."""
    root = settings.data_dir / "xet"
    location = settings.blob_store
    if location:
        from hubstead.storage.s3 import S3BlobStore

        def part(name: str) -> S3BlobStore:
            return S3BlobStore(
                f"{location.rstrip('/')}/xet/{name}",
                endpoint_url=settings.s3_endpoint,
                region=settings.s3_region,
                cache_dir=settings.data_dir / "cache" / "s3-xet" / name,
            )

        return XorbStore(root, bodies=part("xorbs"), indexes=part("chunk-index"))
    return XorbStore(root)
