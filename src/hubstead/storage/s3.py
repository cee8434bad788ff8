"""Blob store on S3 (or any S3-compatible object store): ``<prefix>/<aa>/<bb>/<sha256>`` in one bucket.

An object is written by one PUT, or a multipart upload above ``multipart_threshold`` (boto3's transfer
manager: parts in parallel, the upload aborted when a part fails), and S3 makes a key visible only once the
whole PUT or CompleteMultipartUpload succeeded: ``put_file`` returns after that, so a commit (which names a
blob only after ``put_file`` returned) never names one that is not durably stored. Large downloads need not
pass through the hub: ``presigned_url`` signs a GET the client follows (Range included).

When the store cannot be reached, every method raises ``StorageUnavailableError`` (503 with Retry-After):
the request can be retried once it is back, and nothing was recorded in between.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hubstead.errors import StorageUnavailableError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str


def parse_location(url: str) -> S3Location:
    """``s3://bucket/some/prefix`` into bucket and prefix (no slashes at either end). ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3://bucket/prefix location: {url!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", parts.netloc):
        raise ValueError(f"not a valid bucket name: {parts.netloc!r}")
    return S3Location(bucket=parts.netloc, prefix=parts.path.strip("/"))


def object_key(prefix: str, oid: str) -> str:
    """The key of the object with this sha256 under ``prefix`` (the local store's fan-out)."""
    if not _SHA256.match(oid):
        raise ValueError(f"not a sha256: {oid!r}")
    tail = f"{oid[:2]}/{oid[2:4]}/{oid}"
    return f"{prefix}/{tail}" if prefix else tail


class S3BlobStore:
    """Content-addressed objects in an S3 bucket. ``local_path`` is always None; ``cached_copy`` gives a
    local file for readers that need one (Parquet, safetensors headers), kept in ``cache_dir``."""

    def __init__(
        self,
        location: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        cache_dir: Path | None = None,
        multipart_threshold: int = 64 * 2**20,
        multipart_chunk_size: int = 16 * 2**20,
        presign_ttl: int = 3600,
        retry_after: int = 10,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        where = parse_location(location)
        self.bucket = where.bucket
        self.prefix = where.prefix
        self.presign_ttl = presign_ttl
        self.retry_after = retry_after
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "hubstead-s3-cache"
        self._lock = threading.Lock()
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self.client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=config,
        )  # fmt: skip
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunk_size, max_concurrency=4
        )

    def _key(self, oid: str) -> str:
        return object_key(self.prefix, oid)

    def _unavailable(self, exc: Exception) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"The blob store is unreachable ({type(exc).__name__}); try again shortly", retry_after=self.retry_after
        )

    def _call(self, method: str, **kwargs: Any) -> Any:
        """One S3 call; a missing object is None, an unreachable store StorageUnavailableError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                return None
            if status >= 500 or status == 0:
                raise self._unavailable(exc) from exc
            raise
        except BotoCoreError as exc:
            raise self._unavailable(exc) from exc

    def exists(self, oid: str) -> bool:
        return self.size(oid) is not None

    def size(self, oid: str) -> int | None:
        head = self._call("head_object", Key=self._key(oid))
        return None if head is None else int(head["ContentLength"])

    def put_file(self, oid: str, source: Path) -> None:
        """Upload ``source`` (verified to hash to ``oid``); it is removed only once the object is stored, so a
        failed upload leaves it for the caller to retry or discard."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        size = source.stat().st_size
        try:
            self.client.upload_file(str(source), self.bucket, self._key(oid), Config=self.transfer)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise self._unavailable(exc) from exc
        stored = self.size(oid)
        if stored != size:
            raise StorageUnavailableError(
                f"The blob store holds {stored} bytes for {oid}, expected {size}", retry_after=self.retry_after
            )
        source.unlink(missing_ok=True)

    def open_range(self, oid: str, start: int, end: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError

        if end < start:
            return
        answer = self._call("get_object", Key=self._key(oid), Range=f"bytes={start}-{end}")
        if answer is None:
            raise FileNotFoundError(oid)
        body = answer["Body"]
        try:
            while chunk := body.read(chunk_size):
                yield chunk
        except BotoCoreError as exc:
            raise self._unavailable(exc) from exc
        finally:
            body.close()

    def delete(self, oid: str) -> bool:
        if not self.exists(oid):
            return False
        self._call("delete_object", Key=self._key(oid))
        (self.cache_dir / oid).unlink(missing_ok=True)
        return True

    def local_path(self, oid: str) -> Path | None:
        return None

    def presigned_url(self, oid: str, *, filename: str | None = None, ttl: int | None = None) -> str:
        """A URL anyone holding it may GET the object from (Range too) for ``ttl`` seconds. Signing is local:
        it does not check the object exists."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(oid)}
        if filename:
            safe = filename.replace('"', "").replace("\\", "")
            params["ResponseContentDisposition"] = f'attachment; filename="{safe}"'
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl or self.presign_ttl))

    def cached_copy(self, oid: str) -> Path | None:
        """A local file with the object's bytes (downloaded once into ``cache_dir``), or None if not stored."""
        target = self.cache_dir / oid
        if target.is_file():
            return target
        size = self.size(oid)
        if size is None:
            return None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in self.open_range(oid, 0, size - 1, 8 * 2**20):
                    handle.write(chunk)
            if tmp.stat().st_size != size:
                raise StorageUnavailableError(f"Short read of {oid} from the blob store", retry_after=self.retry_after)
            with self._lock:
                os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
