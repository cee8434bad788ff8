"""Storage buckets through the real client (huggingface_hub's create_bucket, bucket_info, list_buckets,
batch_bucket_files, list_bucket_tree, get_bucket_paths_info, download_bucket_files, get_bucket_file_metadata,
delete_bucket) with hf_xet moving the bytes through the hub's CAS; who may see and change a bucket; a forged
Xet hash refused; and the compute executor's volume calls (materialize, sync_back) on the live hub's data."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import BucketNotFoundError, HfHubHTTPError

from support import Account, LiveServer


def _api(server: LiveServer, account: Account) -> HfApi:
    return HfApi(endpoint=server.url, token=account.write_token)


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_create_info_list_settings_delete(server: LiveServer) -> None:
    """create_bucket (private, exist_ok, a second create is a 409 naming the url), bucket_info, list_buckets
    (the owner sees private ones, others only public ones), update_bucket_settings, delete_bucket (then a
    BucketNotFoundError; missing_ok)."""
    owner, other = server.account("bko"), server.account("bkx")
    api = _api(server, owner)
    url = api.create_bucket(f"{owner.name}/data", private=True)
    assert url.bucket_id == f"{owner.name}/data" and url.url == f"{server.url}/buckets/{owner.name}/data"
    assert api.create_bucket(f"{owner.name}/data", exist_ok=True, private=True).bucket_id == f"{owner.name}/data"
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_bucket(f"{owner.name}/data")
    assert exists.value.response.status_code == 409
    assert exists.value.response.json()["url"] == url.url
    api.create_bucket("open")  # no namespace: the caller's own ("me")
    info = api.bucket_info(f"{owner.name}/data")
    assert info.id == f"{owner.name}/data" and info.private is True and info.size == 0 and info.total_files == 0
    assert info.created_at is not None
    assert sorted(b.id for b in api.list_buckets(owner.name)) == [f"{owner.name}/data", f"{owner.name}/open"]
    assert [b.id for b in api.list_buckets()] == [f"{owner.name}/data", f"{owner.name}/open"]
    assert [b.id for b in api.list_buckets(owner.name, search="dat")] == [f"{owner.name}/data"]
    assert list(api.list_buckets(owner.name, search=owner.name)) == []  # names are searched, not namespaces
    page = httpx.get(f"{server.url}/api/buckets/{owner.name}?limit=1", headers=_auth(owner.read_token))
    assert len(page.json()) == 1 and 'rel="next"' in page.headers["link"]
    assert [b.id for b in _api(server, other).list_buckets(owner.name)] == [f"{owner.name}/open"]
    assert [b.id for b in HfApi(endpoint=server.url, token=False).list_buckets(owner.name)] == [f"{owner.name}/open"]
    api.update_bucket_settings(f"{owner.name}/open", private=True)
    assert api.bucket_info(f"{owner.name}/open").private is True
    with pytest.raises(HfHubHTTPError) as bad:
        api.create_bucket(f"{owner.name}/bad..name")
    assert bad.value.response.status_code == 400
    api.delete_bucket(f"{owner.name}/data")
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(f"{owner.name}/data")
    api.delete_bucket(f"{owner.name}/data", missing_ok=True)
    with pytest.raises(BucketNotFoundError):
        api.delete_bucket(f"{owner.name}/data")


def test_files_round_trip_through_xet(server: LiveServer, tmp_path: Path) -> None:
    """batch_bucket_files adds a local file, bytes and an empty file (hf_xet uploads to the hub's CAS); the
    tree (recursive, by folder, paged by Link), paths-info, download_bucket_files, get_bucket_file_metadata and
    a plain GET give the same bytes back; a delete removes the file; info counts files and bytes."""
    owner = server.account("bkf")
    api = _api(server, owner)
    bucket = f"{owner.name}/files"
    api.create_bucket(bucket, private=True)
    local = tmp_path / "script.py"
    # 1 MB of bytes no other test uploads: hf_xet's local shard cache is shared by every client in this process,
    # and a repo upload of the same chunks by another user would reference this private bucket's xorb (refused).
    big = random.Random("bucket round trip").randbytes(1_024_000) + b"tail"
    local.write_bytes(big)
    api.batch_bucket_files(
        bucket, add=[(local, "jobs/run1/script.py"), (b"hello bucket", "notes/a.txt"), (b"", "jobs/run1/.keep")]
    )
    everything = list(api.list_bucket_tree(bucket, recursive=True))
    files = {item.path: item for item in everything if item.type == "file"}
    assert set(files) == {"jobs/run1/script.py", "notes/a.txt", "jobs/run1/.keep"}
    assert {item.path for item in everything if item.type == "directory"} == {"jobs", "jobs/run1", "notes"}
    assert files["jobs/run1/script.py"].size == len(big) and files["jobs/run1/.keep"].size == 0
    assert files["notes/a.txt"].mtime is not None and files["notes/a.txt"].uploaded_at is not None
    assert sorted(item.path for item in api.list_bucket_tree(bucket)) == ["jobs", "notes"]
    assert [item.path for item in api.list_bucket_tree(bucket, prefix="jobs/run1")] == [
        "jobs/run1/.keep", "jobs/run1/script.py",
    ]  # fmt: skip
    page = httpx.get(f"{server.url}/api/buckets/{bucket}/tree?recursive=true&limit=2", headers=_auth(owner.read_token))
    assert len(page.json()) == 2 and 'rel="next"' in page.headers["link"]
    infos = list(api.get_bucket_paths_info(bucket, ["notes/a.txt", "missing.txt"]))
    assert [info.path for info in infos] == ["notes/a.txt"] and infos[0].xet_hash == files["notes/a.txt"].xet_hash
    out = tmp_path / "out"
    api.download_bucket_files(
        bucket,
        [("jobs/run1/script.py", out / "script.py"), ("notes/a.txt", out / "a.txt"), ("jobs/run1/.keep", out / "k")],
    )
    assert (out / "script.py").read_bytes() == big and (out / "a.txt").read_bytes() == b"hello bucket"
    assert (out / "k").read_bytes() == b""
    meta = api.get_bucket_file_metadata(bucket, "jobs/run1/script.py")
    assert meta.size == len(big) and meta.xet_file_data.file_hash == files["jobs/run1/script.py"].xet_hash
    plain = httpx.get(f"{server.url}/buckets/{bucket}/resolve/notes/a.txt", headers=_auth(owner.read_token))
    assert plain.status_code == 200 and plain.content == b"hello bucket"
    ranged = httpx.get(
        f"{server.url}/buckets/{bucket}/resolve/jobs/run1/script.py",
        headers={**_auth(owner.read_token), "range": "bytes=1000-1009"},
    )
    assert ranged.status_code == 206 and ranged.content == big[1000:1010]
    info = api.bucket_info(bucket)
    assert info.total_files == 3 and info.size == len(big) + len(b"hello bucket")
    api.batch_bucket_files(bucket, delete=["notes/a.txt"])
    assert "notes/a.txt" not in {item.path for item in api.list_bucket_tree(bucket, recursive=True)}
    assert httpx.get(f"{server.url}/buckets/{bucket}/resolve/notes/a.txt", headers=_auth(owner.read_token)).status_code == 404


def test_private_buckets_are_invisible_and_others_cannot_write(server: LiveServer) -> None:
    """Another user (and anonymous) gets the same 404 for a private bucket as for a missing one, on info, tree,
    Xet tokens, resolve and batch; on a public bucket they read but a write (batch, settings, delete, Xet
    write token) is a 403; a read token cannot write even its own bucket."""
    owner, other = server.account("bkp"), server.account("bkq")
    api, intruder = _api(server, owner), _api(server, other)
    secret, shared = f"{owner.name}/secret", f"{owner.name}/shared"
    api.create_bucket(secret, private=True)
    api.create_bucket(shared, private=False)
    api.batch_bucket_files(secret, add=[(b"private bytes", "a.txt")])
    api.batch_bucket_files(shared, add=[(b"public bytes", "a.txt")])
    for bucket_id in (secret, f"{owner.name}/nothing"):
        with pytest.raises(BucketNotFoundError):
            intruder.bucket_info(bucket_id)
        for path in ("", "/tree", "/xet-read-token", "/xet-write-token"):
            r = httpx.get(f"{server.url}/api/buckets/{bucket_id}{path}", headers=_auth(other.write_token))
            assert r.status_code == 404, (path, r.text)
            assert httpx.get(f"{server.url}/api/buckets/{bucket_id}{path}").status_code == 404
        assert httpx.get(f"{server.url}/buckets/{bucket_id}/resolve/a.txt").status_code == 404
        with pytest.raises(HfHubHTTPError) as refused:
            intruder.batch_bucket_files(bucket_id, delete=["a.txt"])
        assert refused.value.response.status_code == 404
        with pytest.raises(ConnectionError, match="404"):  # hf_xet's upload stops at the write token
            intruder.batch_bucket_files(bucket_id, add=[(b"x", "b.txt")])
    assert [item.path for item in intruder.list_bucket_tree(shared)] == ["a.txt"]
    assert httpx.get(f"{server.url}/buckets/{shared}/resolve/a.txt").content == b"public bytes"
    with pytest.raises(HfHubHTTPError) as forbidden:
        intruder.batch_bucket_files(shared, delete=["a.txt"])
    assert forbidden.value.response.status_code == 403
    for call in (
        lambda: intruder.update_bucket_settings(shared, private=True),
        lambda: intruder.delete_bucket(shared),
    ):
        with pytest.raises(HfHubHTTPError) as denied:
            call()
        assert denied.value.response.status_code == 403
    r = httpx.get(f"{server.url}/api/buckets/{shared}/xet-write-token", headers=_auth(other.write_token))
    assert r.status_code == 403
    r = httpx.post(
        f"{server.url}/api/buckets/{secret}/batch",
        content=b'{"type": "deleteFile", "path": "a.txt"}\n',
        headers=_auth(owner.read_token),
    )
    assert r.status_code == 403
    assert [item.path for item in api.list_bucket_tree(secret)] == ["a.txt"]


def test_a_forged_xet_hash_is_refused(server: LiveServer) -> None:
    """A Xet hash seen elsewhere (another user's private bucket file) does not open its bytes: adding it to the
    attacker's own bucket, or copying it from the private bucket, is a 422 with nothing written, and the
    attacker's CAS token cannot reconstruct it; bad paths and bad lines are refused the same way."""
    owner, attacker = server.account("bkv"), server.account("bka")
    api, evil = _api(server, owner), _api(server, attacker)
    api.create_bucket(f"{owner.name}/vault", private=True)
    api.batch_bucket_files(f"{owner.name}/vault", add=[(b"the secret formula " * 100, "formula.txt")])
    stolen = next(iter(api.get_bucket_paths_info(f"{owner.name}/vault", ["formula.txt"]))).xet_hash
    mine = f"{attacker.name}/loot"
    evil.create_bucket(mine)
    lines = [
        {"type": "addFile", "path": "ok.txt", "xetHash": "0" * 64, "mtime": 1},
        {"type": "addFile", "path": "formula.txt", "xetHash": stolen, "mtime": 1},
        {"type": "copyFile", "path": "copy.txt", "xetHash": stolen, "sourceRepoType": "bucket",
         "sourceRepoId": f"{owner.name}/vault"},
        {"type": "addFile", "path": "../escape", "xetHash": "0" * 64},
        {"type": "addFile", "path": "/abs", "xetHash": "0" * 64},
        {"type": "addFile", "path": "nul\u0000x", "xetHash": "0" * 64},
        {"type": "addFile", "path": "x" * 2000, "xetHash": "0" * 64},
        {"type": "addFile", "path": "h.txt", "xetHash": "zz"},
        {"type": "moveFile", "path": "m.txt"},
    ]  # fmt: skip
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    r = httpx.post(f"{server.url}/api/buckets/{mine}/batch", content=body, headers=_auth(attacker.write_token))
    assert r.status_code == 422, r.text
    failed = r.json()["failed"]
    assert len(failed) == len(lines) - 1 and all(item["error"] for item in failed)
    assert list(evil.list_bucket_tree(mine, recursive=True)) == []  # not even ok.txt: all or nothing
    token = httpx.get(f"{server.url}/api/buckets/{mine}/xet-read-token", headers=_auth(attacker.write_token)).json()
    recon = httpx.get(f"{token['casUrl']}/v1/reconstructions/{stolen}", headers=_auth(token["accessToken"]))
    assert recon.status_code == 404
    not_json = httpx.post(f"{server.url}/api/buckets/{mine}/batch", content=b"{nope\n", headers=_auth(attacker.write_token))
    assert not_json.status_code == 400
    too_many = b'{"type": "deleteFile", "path": "a"}\n' * 5001
    r = httpx.post(f"{server.url}/api/buckets/{mine}/batch", content=too_many, headers=_auth(attacker.write_token))
    assert r.status_code == 400
    # The owner may copy within what they can read.
    api.create_bucket(f"{owner.name}/backup", private=True)
    api.batch_bucket_files(f"{owner.name}/backup", copy=[("bucket", f"{owner.name}/vault", stolen, "f.txt")])
    assert [f.path for f in api.list_bucket_tree(f"{owner.name}/backup")] == ["f.txt"]


_DOMAIN_SCRIPT = """
import json, sys
from pathlib import Path
from hubstead.buckets import service
from hubstead.config import load_settings
from hubstead.context import Hub
from hubstead.errors import RepoNotFoundError
hub = Hub.from_settings(load_settings(), migrate=False)
from hubstead.auth.service import get_user
bucket, work = sys.argv[1], Path(sys.argv[2])
with hub.db.session() as session:
    user_id = get_user(session, bucket.split("/")[0]).id
service.materialize(hub, bucket, "run1", work / "in")
src = work / "out"
(src / "ckpt").mkdir(parents=True)
(src / "ckpt" / "model.bin").write_bytes(bytes(range(256)) * 600)
(src / "log.txt").write_text("step 1")
(src / "script.py").write_bytes((work / "in" / "script.py").read_bytes())
(src / "empty").write_bytes(b"")
(src / "link").symlink_to("/etc/passwd")
first = service.sync_back(hub, bucket, "run1", src, user_id=user_id)
again = service.sync_back(hub, bucket, "run1", src, user_id=user_id)
(src / "log.txt").write_text("step 2")
changed = service.sync_back(hub, bucket, "run1", src, user_id=user_id)
service.materialize(hub, bucket, "run1", work / "back")
try:
    service.materialize(hub, bucket + "-missing", "", work / "none")
    missing = "no error"
except RepoNotFoundError:
    missing = "RepoNotFoundError"
print(json.dumps({"first": first, "again": again, "changed": changed, "missing": missing}))
"""


def test_materialize_and_sync_back_round_trip(server: LiveServer, tmp_path: Path) -> None:
    """The executor's volume calls on the live hub's data: materialize writes a bucket folder's files (uploaded
    by the client through Xet) into a directory; sync_back stores a job's new and changed regular files back
    (links left out; unchanged files, like the script it got, not rewritten) through the same Xet store, so the client lists them and
    hf_xet downloads them byte for byte; a missing bucket is RepoNotFoundError."""
    owner = server.account("bkm")
    api = _api(server, owner)
    bucket = f"{owner.name}/jobs-artifacts"
    api.create_bucket(bucket, private=True)
    script = b"print('hello from a bucket')\n" * 50
    api.batch_bucket_files(bucket, add=[(script, "run1/script.py"), (b"other", "run2/x.txt")])
    result = subprocess.run(
        [sys.executable, "-c", _DOMAIN_SCRIPT, bucket, str(tmp_path)],
        env=server.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts == {"first": 3, "again": 0, "changed": 1, "missing": "RepoNotFoundError"}, counts
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["script.py"]
    assert (tmp_path / "in" / "script.py").read_bytes() == script
    back = tmp_path / "back"
    assert (back / "ckpt" / "model.bin").read_bytes() == bytes(range(256)) * 600
    assert (back / "log.txt").read_text() == "step 2" and not (back / "link").exists()
    listed = {f.path: f for f in api.list_bucket_tree(bucket, prefix="run1", recursive=True) if f.type == "file"}
    assert set(listed) == {"run1/script.py", "run1/ckpt/model.bin", "run1/log.txt", "run1/empty"}
    out = tmp_path / "dl"
    api.download_bucket_files(bucket, [("run1/ckpt/model.bin", out / "m"), ("run1/log.txt", out / "l")])
    assert (out / "m").read_bytes() == bytes(range(256)) * 600 and (out / "l").read_text() == "step 2"


LOCAL_SCRIPT = '''
import pathlib, sys
here = pathlib.Path(__file__).resolve()
print("running", here.name, "from", here.parent)
pathlib.Path("/data/result.txt").write_text("answer " + sys.argv[1])
'''


@pytest.mark.slow
def test_run_uv_job_with_a_local_script_goes_through_the_artifacts_bucket(server: LiveServer, tmp_path: Path) -> None:
    """run_uv_job on a LOCAL file: the client creates the private ``jobs-artifacts`` bucket and uploads the script
    through Xet; the job runs it from the bucket volume mounted at /data, and what it writes there is saved back
    into the bucket's folder for the job, where the client reads it."""
    account = server.account("bkjob")
    api = _api(server, account)
    script = tmp_path / "local_job.py"
    script.write_text(LOCAL_SCRIPT)
    job = api.run_uv_job(str(script), script_args=["42"], namespace=account.name, timeout=300)
    done = api.wait_for_job(job.id, namespace=account.name, timeout=300, poll_interval=0.3)
    text = "\n".join(api.fetch_job_logs(job_id=job.id, namespace=account.name))
    assert done.status.stage == "COMPLETED", (done.status, text[-3000:])
    assert "running local_job.py" in text
    bucket = f"{account.name}/jobs-artifacts"
    assert api.bucket_info(bucket).private is True
    files = {f.path.split("/", 1)[1]: f for f in api.list_bucket_tree(bucket, recursive=True) if f.type == "file"}
    assert set(files) == {"local_job.py", "result.txt"}, files
    out = tmp_path / "result.txt"
    api.download_bucket_files(bucket, [(files["result.txt"], out)])
    assert out.read_text() == "answer 42"


def test_org_buckets_follow_the_members_roles(server: LiveServer) -> None:
    """An org's private bucket: its members see it (and list it), a reader cannot write or create one there, a
    writer uploads through Xet and the batch, a non-member gets the 404 a missing bucket gets."""
    owner, reader, writer, outsider = (server.account(p) for p in ("bkorg", "bkread", "bkwrite", "bkout"))
    org = server.unique("bucketorg")
    server.cli("orgs", "create", org, "--owner", owner.name)
    server.cli("orgs", "add-member", org, reader.name, "--role", "read")
    server.cli("orgs", "add-member", org, writer.name, "--role", "write")
    bucket = f"{org}/team"
    _api(server, owner).create_bucket(bucket, private=True)
    _api(server, writer).batch_bucket_files(bucket, add=[(b"from the writer", "w.txt")])
    assert [b.id for b in _api(server, reader).list_buckets(org)] == [bucket]
    assert [f.path for f in _api(server, reader).list_bucket_tree(bucket)] == ["w.txt"]
    r = httpx.get(f"{server.url}/buckets/{bucket}/resolve/w.txt", headers=_auth(reader.read_token))
    assert r.content == b"from the writer"
    for call in (
        lambda: _api(server, reader).batch_bucket_files(bucket, delete=["w.txt"]),
        lambda: _api(server, reader).create_bucket(f"{org}/mine"),
    ):
        with pytest.raises(HfHubHTTPError) as denied:
            call()
        assert denied.value.response.status_code == 403
    with pytest.raises(BucketNotFoundError):
        _api(server, outsider).bucket_info(bucket)
    assert list(_api(server, outsider).list_buckets(org)) == []
