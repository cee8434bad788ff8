"""LFS objects on S3 (a real SeaweedFS server, the ``s3`` fixture) through huggingface_hub and plain HTTP: the
bytes come back equal, a large download is a 302 to a presigned URL (Range included) handed out only after the
access check, forged bytes never land, and an unreachable store answers 503 + Retry-After, then recovers."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubstead.devtools.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from hubstead.storage.s3 import object_key
from support import SMALL_PARTS_ENV, Account, LiveServer, client_env, last_json, run_client

PREFIX = "hub-a"


@pytest.fixture(scope="module")
def s3_hub(s3: S3Server, own_server_with: Callable[[dict[str, str]], LiveServer]) -> LiveServer:
    # Multipart from 1 MiB (both the client's transfer to the hub and the hub's to S3), presigned from 1 MiB.
    return own_server_with({**s3.env(PREFIX), **SMALL_PARTS_ENV, "HUBSTEAD_S3_PRESIGN_MIN": str(1024 * 1024)})


@pytest.fixture(scope="module")
def owner(s3_hub: LiveServer) -> Account:
    """One account for the module's repos (each test its own repo): accounts cost three CLI runs each."""
    return s3_hub.account("s3owner")


def _client(s3: S3Server) -> Any:
    import boto3

    return boto3.client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )  # fmt: skip


def _in_bucket(s3: S3Server, oid: str) -> int | None:
    from botocore.exceptions import ClientError

    try:
        return int(_client(s3).head_object(Bucket=s3.bucket, Key=object_key(PREFIX, oid))["ContentLength"])
    except ClientError:
        return None


def _upload(server: LiveServer, account: Account, repo: str, files: dict[str, Path], home: Path, **kw: str) -> None:
    adds = ", ".join(f'CommitOperationAdd("{name}", "{path}")' for name, path in files.items())
    run_client(
        f"""
        from huggingface_hub import HfApi, CommitOperationAdd
        api = HfApi()
        api.create_repo("{repo}", exist_ok=True, private={kw.get("private") == "1"})
        api.create_commit("{repo}", operations=[{adds}], commit_message="add")
        """,
        client_env(server, account.write_token, home),
    )


def test_lfs_files_live_in_s3_and_large_downloads_redirect(
    s3_hub: LiveServer, owner: Account, s3: S3Server, tmp_path: Path
) -> None:
    server = s3_hub
    account = owner
    repo = f"{account.name}/weights"
    big = os.urandom(3 * 1024 * 1024 + 777)  # three 1 MiB parts and a tail: multipart into the hub and into S3
    small = os.urandom(200 * 1024)  # LFS (.bin), under the presign threshold: streamed by the hub from S3
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.bin").write_bytes(small)
    _upload(server, account, repo, {"big.bin": tmp_path / "big.bin", "small.bin": tmp_path / "small.bin"}, tmp_path)
    big_oid, small_oid = hashlib.sha256(big).hexdigest(), hashlib.sha256(small).hexdigest()
    assert _in_bucket(s3, big_oid) == len(big)
    assert _in_bucket(s3, small_oid) == len(small)
    assert not any((server.data_dir / "lfs").rglob(big_oid)), "nothing of the object stays on the data dir"

    out = last_json(
        run_client(
            f"""
            import json, hashlib
            from huggingface_hub import hf_hub_download
            print(json.dumps({{name: hashlib.sha256(open(hf_hub_download("{repo}", name), "rb").read()).hexdigest()
                              for name in ("big.bin", "small.bin")}}))
            """,
            client_env(server, account.read_token, tmp_path / "home"),
        )
    )
    assert out == {"big.bin": big_oid, "small.bin": small_oid}

    auth = {"authorization": f"Bearer {account.read_token}"}
    for method in ("HEAD", "GET"):
        first = httpx.request(method, f"{server.url}/{repo}/resolve/main/big.bin", headers=auth)
        assert first.status_code == 302, first.text
        location = first.headers["location"]
        assert location.startswith(f"{s3.endpoint}/{s3.bucket}/{PREFIX}/"), location
        assert first.headers["x-linked-size"] == str(len(big))
        assert first.headers["x-linked-etag"] == f'"{big_oid}"'
        assert len(first.headers["x-repo-commit"]) == 40
    part = httpx.get(location, headers={"range": "bytes=1048570-1048589"})
    assert part.status_code == 206 and part.content == big[1048570:1048590]
    assert httpx.get(location.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403

    streamed = httpx.get(f"{server.url}/{repo}/resolve/main/small.bin", headers={**auth, "range": "bytes=10-19"})
    assert streamed.status_code == 206 and streamed.content == small[10:20]
    assert streamed.headers["content-range"] == f"bytes 10-19/{len(small)}"


def test_forged_bytes_never_reach_the_bucket(s3_hub: LiveServer, owner: Account, s3: S3Server, tmp_path: Path) -> None:
    server = s3_hub
    account = owner
    repo = f"{account.name}/forged"
    created = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": "forged"},
        headers={"authorization": f"Bearer {account.write_token}"},
    )
    assert created.status_code == 200, created.text
    claimed = os.urandom(4096)
    oid = hashlib.sha256(claimed).hexdigest()
    batch = httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(claimed)}]},
        headers={"authorization": f"Bearer {account.write_token}"},
    ).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    forged = httpx.put(href, content=os.urandom(4096))
    assert forged.status_code == 400, forged.text
    assert _in_bucket(s3, oid) is None


def test_private_file_redirect_only_after_access_check(s3_hub: LiveServer, owner: Account, tmp_path: Path) -> None:
    server = s3_hub
    other = server.account("s3other")
    repo = f"{owner.name}/secret"
    (tmp_path / "w.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    _upload(server, owner, repo, {"w.bin": tmp_path / "w.bin"}, tmp_path, private="1")
    url = f"{server.url}/{repo}/resolve/main/w.bin"
    mine = httpx.get(url, headers={"authorization": f"Bearer {owner.read_token}"})
    assert mine.status_code == 302
    for headers in ({}, {"authorization": f"Bearer {other.read_token}"}):
        answer = httpx.get(url, headers=headers)
        assert answer.status_code in (401, 404), answer.status_code
        assert "location" not in answer.headers and "X-Amz" not in answer.text


OUTAGE_S = 30.0  # issue 22: the S3 server unreachable for 30 s


def test_store_outage_answers_503_then_recovers(
    s3_hub: LiveServer, owner: Account, s3: S3Server, tmp_path: Path
) -> None:
    server = s3_hub
    account = owner
    repo = f"{account.name}/outage"
    kept = os.urandom(1536 * 1024)
    (tmp_path / "kept.bin").write_bytes(kept)
    _upload(server, account, repo, {"kept.bin": tmp_path / "kept.bin"}, tmp_path)
    head_before = httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"]
    payload = os.urandom(512 * 1024)
    oid = hashlib.sha256(payload).hexdigest()
    auth = {"authorization": f"Bearer {account.write_token}"}
    s3.stop(remove=False)
    outage_started = time.monotonic()
    try:
        batch = httpx.post(
            f"{server.url}/{repo}.git/info/lfs/objects/batch",
            json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(payload)}]},
            headers=auth,
            timeout=60,
        )
        if batch.status_code == 200:
            href = batch.json()["objects"][0]["actions"]["upload"]["href"]
            put = httpx.put(href, content=payload, timeout=60)
            assert put.status_code == 503, put.text
            assert int(put.headers["retry-after"]) >= 1
        else:
            assert batch.status_code == 503 and int(batch.headers["retry-after"]) >= 1
        # The store stays unreachable for OUTAGE_S: every try in that time is a retryable 503, none hangs.
        probes = 0
        while time.monotonic() - outage_started < OUTAGE_S:
            tried = time.monotonic()
            down = httpx.get(f"{server.url}/{repo}/resolve/main/kept.bin", headers=auth, timeout=60)
            assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1
            assert httpx.get(f"{server.url}/readyz", timeout=60).status_code == 503
            assert time.monotonic() - tried < 20, "a request during the outage waited too long"
            probes += 1
            time.sleep(3)
        assert probes >= 5
    finally:
        s3.start()
    assert httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"] == head_before
    assert _in_bucket(s3, oid) is None, "nothing half-written"
    assert httpx.get(f"{server.url}/readyz", timeout=60).status_code == 200
    (tmp_path / "new.bin").write_bytes(payload)
    _upload(server, account, repo, {"new.bin": tmp_path / "new.bin"}, tmp_path)
    out = last_json(
        run_client(
            f"""
            import json, hashlib
            from huggingface_hub import hf_hub_download
            print(json.dumps([hashlib.sha256(open(hf_hub_download("{repo}", n), "rb").read()).hexdigest()
                              for n in ("kept.bin", "new.bin")]))
            """,
            client_env(server, account.read_token, tmp_path / "home2"),
        )
    )
    assert out == [hashlib.sha256(kept).hexdigest(), oid]
    assert not list((server.data_dir / "uploads").glob("put-*")), "the failed upload's temp file is gone"


def test_xet_upload_keeps_xorbs_in_s3(s3_hub: LiveServer, owner: Account, s3: S3Server, tmp_path: Path) -> None:
    server = s3_hub
    account = owner
    repo = f"{account.name}/xet"
    payload = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "x.bin").write_bytes(payload)
    env = client_env(server, account.write_token, tmp_path / "home")
    del env["HF_HUB_DISABLE_XET"]
    out = last_json(
        run_client(
            f"""
            import json, hashlib
            from huggingface_hub import HfApi, hf_hub_download
            api = HfApi()
            api.create_repo("{repo}")
            api.upload_file(path_or_fileobj="{tmp_path / "x.bin"}", path_in_repo="x.bin", repo_id="{repo}")
            print(json.dumps(hashlib.sha256(open(hf_hub_download("{repo}", "x.bin"), "rb").read()).hexdigest()))
            """,
            env,
        )
    )
    assert out == hashlib.sha256(payload).hexdigest()
    listed = _client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=f"{PREFIX}/xet/xorbs/")
    assert listed.get("KeyCount", 0) >= 1, "the xorbs went to the bucket"
    assert not any(p.is_file() for p in (server.data_dir / "xet" / "xorbs").rglob("*"))
    # A client without Xet gets the same bytes, rebuilt by the hub from the xorbs on S3 (with Range).
    part = httpx.get(f"{server.url}/{repo}/resolve/main/x.bin", headers={"range": "bytes=1048570-1048599"})
    assert part.status_code == 206 and part.content == payload[1048570:1048600]


def test_dataset_viewer_parquet_lives_in_s3(s3_hub: LiveServer, owner: Account, s3: S3Server) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    server = s3_hub
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/table"
    api.create_repo(repo_id, repo_type="dataset")
    csv = "id,text\n" + "".join(f"{i},row {i}\n" for i in range(300))
    commit = api.create_commit(
        repo_id, repo_type="dataset", operations=[CommitOperationAdd("data.csv", csv.encode())], commit_message="d"
    ).oid
    headers = {"authorization": f"Bearer {owner.read_token}"}
    deadline = time.time() + 120
    status: dict[str, Any] = {}
    while time.time() < deadline:
        status = httpx.get(f"{server.url}/api/datasets/{repo_id}/viewer-status", headers=headers).json()
        if status["job"] and status["job"]["revision"] == commit and status["job"]["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    assert status["job"]["status"] == "succeeded", json.dumps(status["job"])
    rows = httpx.get(
        f"{server.url}/datasets-server/rows",
        params={"dataset": repo_id, "config": "default", "split": "train", "offset": 290, "length": 20},
        headers=headers,
    ).json()
    assert rows["num_rows_total"] == 300 and [r["row"]["id"] for r in rows["rows"]] == list(range(290, 300))
    listing = httpx.get(f"{server.url}/api/datasets/{repo_id}/parquet/default/train", headers=headers).json()
    assert listing, "the split has Parquet files"
    keys = _client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=f"{PREFIX}/")["Contents"]
    parquet_on_disk = [p for p in (server.data_dir / "lfs").rglob("*") if p.is_file()]
    assert not parquet_on_disk, "the conversion's Parquet went to the bucket"
    assert len(keys) >= 1
