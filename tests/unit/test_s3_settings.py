"""Pure logic of the S3 blob store: where an object's key is, which locations and settings are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubstead.config import load_settings
from hubstead.context import blob_store
from hubstead.storage.base import presigned_url, readable_path
from hubstead.storage.local import LocalBlobStore
from hubstead.storage.s3 import S3BlobStore, object_key, parse_location

OID = "ab" + "cd" + "0" * 60


def test_location_and_key() -> None:
    assert parse_location("s3://blobs/site/lfs/") == parse_location("s3://blobs/site/lfs")
    where = parse_location("s3://blobs/site/lfs")
    assert (where.bucket, where.prefix) == ("blobs", "site/lfs")
    assert parse_location("s3://blobs").prefix == ""
    assert object_key("site/lfs", OID) == f"site/lfs/ab/cd/{OID}"
    assert object_key("", OID) == f"ab/cd/{OID}"
    for bad in ("http://blobs/x", "s3:///x", "s3://Bad_Bucket/x", "blobs/x"):
        with pytest.raises(ValueError):
            parse_location(bad)
    for bad_oid in ("../../etc/passwd", OID.upper(), OID[:-1]):
        with pytest.raises(ValueError):
            object_key("p", bad_oid)


def test_settings_choose_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HUBSTEAD_BLOB_STORE", "HUBSTEAD_S3_ENDPOINT", "HUBSTEAD_S3_PRESIGN", "HUBSTEAD_S3_PRESIGN_MIN"):
        monkeypatch.delenv(name, raising=False)
    local = load_settings(data_dir=tmp_path)
    assert local.blob_store is None and isinstance(blob_store(local), LocalBlobStore)
    monkeypatch.setenv("HUBSTEAD_BLOB_STORE", "s3://blobs/hub")
    monkeypatch.setenv("HUBSTEAD_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HUBSTEAD_S3_PRESIGN_MIN", "2MiB")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    remote = load_settings(data_dir=tmp_path)
    assert remote.s3_presign and remote.s3_presign_min_bytes == 2 * 2**20
    store = blob_store(remote)
    assert isinstance(store, S3BlobStore) and (store.bucket, store.prefix) == ("blobs", "hub")
    assert store.local_path(OID) is None
    # Signing is local (no request): the URL names the endpoint, the key, and carries a SigV4 signature.
    url = presigned_url(store, OID, filename='we"ights.bin')
    assert url is not None and url.startswith(f"http://127.0.0.1:9/blobs/hub/ab/cd/{OID}?")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    assert presigned_url(LocalBlobStore(tmp_path / "lfs"), OID) is None
    assert readable_path(LocalBlobStore(tmp_path / "lfs"), OID) is None
    monkeypatch.setenv("HUBSTEAD_BLOB_STORE", "gs://elsewhere")
    with pytest.raises(SystemExit):
        load_settings(data_dir=tmp_path)


def test_unreachable_store_is_retryable_and_keeps_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hubstead.devtools.postgres import free_port
    from hubstead.errors import StorageUnavailableError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    store = S3BlobStore(
        "s3://blobs/hub", endpoint_url=f"http://127.0.0.1:{free_port()}", connect_timeout=0.5, retry_after=7
    )
    with pytest.raises(StorageUnavailableError) as raised:
        store.size(OID)
    assert raised.value.status_code == 503 and raised.value.headers["Retry-After"] == "7"
    source = tmp_path / "verified"
    source.write_bytes(b"x" * 10)
    with pytest.raises(StorageUnavailableError):
        store.put_file(OID, source)
    assert source.read_bytes() == b"x" * 10, "a failed upload leaves the verified file for a retry"
