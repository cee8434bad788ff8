"""Issue 16, content-addressed storage: knowing a file's sha256 never gives its bytes, over raw HTTP.

Each test reproduces one finding of the hostile-user probe (named in its docstring) and failed before the fix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubstead.repos.lfs.uploads import UploadGrant, signature
from support import SMALL_PARTS_ENV, Account, LiveServer
from xet_builders import random_chunks, shard_for_file, xorb_from_chunks

LFS = {"accept": "application/vnd.git-lfs+json", "content-type": "application/vnd.git-lfs+json"}


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _repo(server: LiveServer, account: Account, name: str, *, private: bool = False) -> str:
    repo = f"{account.name}/{name}"
    r = httpx.post(
        f"{server.url}/api/repos/create", json={"name": repo, "private": private}, headers=_auth(account.write_token)
    )
    assert r.status_code == 200, r.text
    return repo


def _batch(
    server: LiveServer, token: str | None, repo: str, oid: str, size: int, *, operation: str = "upload",
    transfers: tuple[str, ...] = ("basic",),
) -> httpx.Response:  # fmt: skip
    return httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        json={"operation": operation, "transfers": list(transfers), "objects": [{"oid": oid, "size": size}]},
        headers={**LFS, **(_auth(token) if token else {})},
    )


def _verify(server: LiveServer, token: str, repo: str, oid: str, size: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/verify", json={"oid": oid, "size": size}, headers={**LFS, **_auth(token)}
    )


def _upload(server: LiveServer, account: Account, repo: str, data: bytes) -> str:
    """Upload ``data`` through the LFS batch API the way huggingface_hub does (basic transfer, then verify)."""
    oid = hashlib.sha256(data).hexdigest()
    answer = _batch(server, account.write_token, repo, oid, len(data)).json()["objects"][0]
    actions = answer.get("actions")
    if actions:
        assert httpx.put(actions["upload"]["href"], content=data).status_code == 200
        assert httpx.post(actions["verify"]["href"], json={"oid": oid, "size": len(data)},
                          headers={**LFS, **_auth(account.write_token)}).status_code == 200  # fmt: skip
    return oid


def _commit(server: LiveServer, token: str, repo: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=body,
        headers={**_auth(token), "content-type": "application/x-ndjson"},
        timeout=60,
    )


def _commit_lfs(server: LiveServer, token: str, repo: str, oid: str, size: int | None, path: str = "w.bin") -> httpx.Response:
    value: dict[str, Any] = {"path": path, "algo": "sha256", "oid": oid}
    if size is not None:
        value["size"] = size
    lines = [{"key": "header", "value": {"summary": "add"}}, {"key": "lfsFile", "value": value}]
    return _commit(server, token, repo, "\n".join(json.dumps(line) for line in lines).encode())


def _private_lfs_file(server: LiveServer, prefix: str) -> tuple[Account, str, bytes, str]:
    """A victim with a private repo holding a committed LFS file: (victim, repo, bytes, oid)."""
    victim = server.account(prefix)
    repo = _repo(server, victim, "secret", private=True)
    data = os.urandom(5000)
    oid = _upload(server, victim, repo, data)
    assert _commit_lfs(server, victim.write_token, repo, oid, len(data)).status_code == 200
    return victim, repo, data, oid


def _error(r: httpx.Response) -> str:
    return str(r.json()["error"]).replace(r.request.url.host, "")


def _cas_token(server: LiveServer, token: str, repo: str, mode: str = "write") -> tuple[str, str]:
    r = httpx.get(f"{server.url}/api/models/{repo}/xet-{mode}-token/main", headers=_auth(token))
    assert r.status_code == 200, r.text
    return r.json()["casUrl"], r.json()["accessToken"]


def _xet_file(server: LiveServer, account: Account, repo: str, chunks: list[bytes], sha256: str | None = None) -> httpx.Response:
    cas, token = _cas_token(server, account.write_token, repo)
    xorb_hex, body = xorb_from_chunks(chunks)
    assert httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=_auth(token)).status_code == 200
    return httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex, sha256=sha256), headers=_auth(token))


def test_verify_does_not_link_someone_elses_object(server: LiveServer) -> None:
    """Finding 1 (LFS verify): verify accepted any stored oid of the right size, linked it to the caller's repo
    and told the real size; a following commit then served the victim's private bytes from the attacker's repo."""
    _, _, data, oid = _private_lfs_file(server, "vvictim")
    attacker = server.account("vattack")
    repo = _repo(server, attacker, "loot")
    unknown = hashlib.sha256(b"nobody has this").hexdigest()
    wrong_size = _verify(server, attacker.write_token, repo, oid, 1)
    right_size = _verify(server, attacker.write_token, repo, oid, len(data))
    absent = _verify(server, attacker.write_token, repo, unknown, len(data))
    assert wrong_size.status_code == right_size.status_code == absent.status_code
    assert 400 <= right_size.status_code < 500
    # One answer for "absent", "wrong size" and "not yours": nothing about the object leaks.
    assert _error(wrong_size).replace(oid, "X") == _error(right_size).replace(oid, "X") == _error(absent).replace(unknown, "X")
    assert str(len(data)) not in wrong_size.text
    commit = _commit_lfs(server, attacker.write_token, repo, oid, len(data))
    never = _commit_lfs(server, attacker.write_token, repo, unknown, len(data))
    assert commit.status_code == never.status_code == 422, commit.text
    assert _error(commit).replace(oid, "X") == _error(never).replace(unknown, "X")
    assert httpx.get(f"{server.url}/{repo}/resolve/main/w.bin").status_code == 404
    # The batch API still asks the attacker for the bytes.
    answer = _batch(server, attacker.write_token, repo, oid, len(data)).json()["objects"][0]
    assert "upload" in answer["actions"]


def test_verify_does_not_link_someone_elses_xet_file(server: LiveServer) -> None:
    """Finding 1 (LFS verify, Xet-stored object): the same link through verify worked for a file stored by Xet."""
    victim = server.account("xvictim")
    private = _repo(server, victim, "secret", private=True)
    chunks = random_chunks(2, 3000)
    data = b"".join(chunks)
    sha = hashlib.sha256(data).hexdigest()
    assert _xet_file(server, victim, private, chunks).status_code == 200
    assert _commit_lfs(server, victim.write_token, private, sha, len(data)).status_code == 200
    attacker = server.account("xattack")
    repo = _repo(server, attacker, "loot")
    assert _verify(server, attacker.write_token, repo, sha, len(data)).status_code in (400, 404)
    assert _commit_lfs(server, attacker.write_token, repo, sha, len(data)).status_code == 422
    assert _commit_lfs(server, attacker.write_token, repo, sha, None).status_code == 422


def test_xet_shard_reregistration_cannot_point_at_another_sha256(server: LiveServer) -> None:
    """Finding 3 (Xet shard re-registration): a second shard for a file hash already registered was never
    compared with the stored sha256, so a forged mapping pointed the attacker's file at the victim's object."""
    _, _, data, victim_oid = _private_lfs_file(server, "rvictim")
    attacker = server.account("rattack")
    repo = _repo(server, attacker, "loot")
    chunks = random_chunks(2, 3000)
    assert _xet_file(server, attacker, repo, chunks).status_code == 200  # the attacker's own file, honestly
    forged = _xet_file(server, attacker, repo, chunks, sha256=victim_oid)
    assert forged.status_code == 400, forged.text
    assert "sha256" in forged.json()["error"]
    assert _commit_lfs(server, attacker.write_token, repo, victim_oid, len(data)).status_code == 422
    assert httpx.get(f"{server.url}/{repo}/resolve/main/w.bin").status_code == 404


def test_upload_of_known_bytes_needs_the_bytes_unless_readable(server: LiveServer) -> None:
    """Finding 4 (LFS batch upload): an oid the store holds but the caller cannot read is still uploaded and
    checked; a caller who can read a repo referencing it skips the upload, as the Hub's dedup promises."""
    victim, private, data, oid = _private_lfs_file(server, "bvictim")
    other = server.account("bother")
    repo = _repo(server, other, "same")
    first = _batch(server, other.write_token, repo, oid, len(data)).json()["objects"][0]
    assert "upload" in first["actions"]
    # Someone who really has the bytes uploads them: checked, then the commit may name the object.
    href = first["actions"]["upload"]["href"]
    assert httpx.put(href, content=data[:-1] + b"?").status_code == 400
    assert _verify(server, other.write_token, repo, oid, len(data)).status_code in (400, 404)
    assert httpx.put(href, content=data).status_code == 200
    assert _verify(server, other.write_token, repo, oid, len(data)).status_code == 200
    assert _commit_lfs(server, other.write_token, repo, oid, len(data)).status_code == 200
    assert httpx.get(f"{server.url}/{repo}/resolve/main/w.bin").content == data
    # The owner re-uploading into another repo of theirs, and a reader of the now public copy, skip it.
    again = _repo(server, victim, "again", private=True)
    assert "actions" not in _batch(server, victim.write_token, again, oid, len(data)).json()["objects"][0]
    assert _commit_lfs(server, victim.write_token, again, oid, len(data)).status_code == 200
    reader = server.account("breader")
    theirs = _repo(server, reader, "copy")
    assert "actions" not in _batch(server, reader.write_token, theirs, oid, len(data)).json()["objects"][0]
    assert _commit_lfs(server, reader.write_token, theirs, oid, None).status_code == 200


def test_gated_objects_need_accepted_access(server: LiveServer) -> None:
    """Gated repos: LFS batch download served a gated repo's objects to users without accepted access
    (anonymous included), and a commit could copy a gated object by its (public) sha256 into another repo."""
    owner = server.account("gown")
    repo = _repo(server, owner, "gated")
    data = os.urandom(3000)
    oid = _upload(server, owner, repo, data)
    assert _commit_lfs(server, owner.write_token, repo, oid, len(data)).status_code == 200
    r = httpx.put(f"{server.url}/api/models/{repo}/settings", json={"gated": "manual"}, headers=_auth(owner.write_token))
    assert r.status_code == 200, r.text
    visitor = server.account("gvisit")
    for token in (None, visitor.read_token):
        r = _batch(server, token, repo, oid, len(data), operation="download")
        assert r.status_code == 403 and r.headers["x-error-code"] == "GatedRepo", r.text
    r = _batch(server, owner.read_token, repo, oid, len(data), operation="download")
    href = r.json()["objects"][0]["actions"]["download"]["href"]
    assert httpx.get(href).content == data
    mine = _repo(server, visitor, "copy")
    assert _commit_lfs(server, visitor.write_token, mine, oid, None).status_code == 422
    assert "upload" in _batch(server, visitor.write_token, mine, oid, len(data)).json()["objects"][0]["actions"]


def _secret(server: LiveServer) -> str:
    return (server.data_dir / "secret.key").read_text().strip()


def test_signed_urls_are_short_lived_and_expire(server: LiveServer) -> None:
    """Smaller item: signed LFS URLs lasted 24 h. Upload hrefs now last about an hour (longer only for very
    large objects), download hrefs 15 minutes; an expired signature is refused."""
    account = server.account("ttl")
    repo = _repo(server, account, "ttl")
    data = os.urandom(1000)
    oid = hashlib.sha256(data).hexdigest()
    answer = _batch(server, account.write_token, repo, oid, len(data)).json()["objects"][0]
    upload = answer["actions"]["upload"]
    assert upload["expires_in"] <= 3600
    assert int(httpx.URL(upload["href"]).params["exp"]) <= time.time() + 3601
    _upload(server, account, repo, data)
    assert _commit_lfs(server, account.write_token, repo, oid, len(data)).status_code == 200
    download = _batch(server, account.read_token, repo, oid, len(data), operation="download").json()["objects"][0]
    href = httpx.URL(download["actions"]["download"]["href"])
    assert int(href.params["exp"]) <= time.time() + 15 * 60 + 1
    assert download["actions"]["download"]["expires_in"] <= 15 * 60
    # The same URL signed (with the server's key) for a moment already past is refused.
    past = int(time.time()) - 5
    params = dict(href.params)
    grant = UploadGrant(
        repo_pk=int(href.path.split("/")[-2]), user_id=int(params["u"]), oid=oid, size=int(params["size"]), expires=past
    )
    params.update(exp=str(past), sig=signature(_secret(server), grant, "download"))
    expired = httpx.get(href.copy_with(params=params))
    assert expired.status_code == 403 and "expired" in expired.json()["error"]
    assert httpx.get(href).content == data


def _revoke(server: LiveServer, token: str) -> None:
    script = (
        "import hashlib, sys\n"
        "from sqlalchemy import delete\n"
        "from hubstead.auth.models import Token\n"
        "from hubstead.auth.service import hash_token\n"
        "from hubstead.config import load_settings\n"
        "from hubstead.context import Hub\n"
        "hub = Hub.from_settings(load_settings(), migrate=False)\n"
        "with hub.db.session() as session:\n"
        "    assert session.execute(delete(Token).where(Token.token_hash == hash_token(sys.argv[1]))).rowcount == 1\n"
    )
    subprocess.run([sys.executable, "-c", script, token], env=server.env(), check=True, timeout=60)


def test_cas_token_dies_with_its_parent_token(server: LiveServer) -> None:
    """Smaller item: a Xet CAS token minted before its user's token was revoked kept working up to an hour."""
    account = server.account("casrev")
    repo = _repo(server, account, "cas")
    parent = server.cli("tokens", "create", account.name, "--role", "write").stdout.strip().splitlines()[-1]
    cas, token = _cas_token(server, parent, repo)
    chunks = random_chunks(1, 2000)
    xorb_hex, body = xorb_from_chunks(chunks)
    assert httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=_auth(token)).status_code == 200
    _revoke(server, parent)
    r = httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex), headers=_auth(token))
    assert r.status_code == 401, r.text
    assert httpx.get(f"{cas}/v1/reconstructions/{'0' * 64}", headers=_auth(token)).status_code == 401


def test_hostile_commit_bodies_are_clear_400s(server: LiveServer) -> None:
    """Smaller items (commit parsing): a line with JSON nested 100k deep gave a 500 (RecursionError); a body of
    only newlines made an empty commit. Both are 400s now and the branch does not move."""
    account = server.account("cbody")
    repo = _repo(server, account, "body")
    head = httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"]
    deep = b'{"key": "header", "value": {"summary": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}\n"
    legacy = b'{"summary": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    header_only = json.dumps({"key": "header", "value": {"summary": "nothing"}}).encode() + b"\n"
    for body, words in ((deep, "nested"), (legacy, "nested"), (b"\n\n\n\n", "header"), (header_only, "operations")):
        r = _commit(server, account.write_token, repo, body)
        assert r.status_code == 400, (body[:40], r.status_code, r.text)
        assert words in r.json()["error"] and r.headers["x-error-message"]
    assert httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"] == head


@pytest.fixture(scope="module")
def small_parts() -> Iterator[LiveServer]:
    """A private SQLite server with 1 MiB multipart parts (a few MB exercise the multipart path), which the
    temp-file test restarts."""
    root = Path(tempfile.mkdtemp(prefix="hubstead-storage-"))
    live = LiveServer(
        data_dir=root / "data",
        database_url=None,
        backend="sqlite",
        extra_env=dict(SMALL_PARTS_ENV),
    )
    live.start()
    yield live
    live.kill()
    shutil.rmtree(root, ignore_errors=True)


def test_multipart_complete_needs_the_parts(small_parts: LiveServer) -> None:
    """Finding 2 (multipart complete): completing marked an object uploaded when a blob with that oid and size
    existed, without a single part received."""
    server = small_parts
    victim = server.account("mvictim")
    private = _repo(server, victim, "secret", private=True)
    data = os.urandom(2 * 1024 * 1024 + 100)
    oid = _upload(server, victim, private, data)  # a basic transfer: the object is in the store
    assert _commit_lfs(server, victim.write_token, private, oid, len(data)).status_code == 200
    attacker = server.account("mattack")
    repo = _repo(server, attacker, "loot")
    answer = _batch(server, attacker.write_token, repo, oid, len(data), transfers=("basic", "multipart")).json()
    upload = answer["objects"][0]["actions"]["upload"]
    parts = [{"partNumber": n, "etag": "x"} for n in range(1, 4)]
    done = httpx.post(upload["href"], json={"oid": oid, "parts": parts})
    assert 400 <= done.status_code < 500, done.text
    assert _verify(server, attacker.write_token, repo, oid, len(data)).status_code in (400, 404)
    assert _commit_lfs(server, attacker.write_token, repo, oid, len(data)).status_code == 422
    # Sending the parts for real completes it (and a retried completion answers the same).
    etags = []
    for number in range(1, 4):
        piece = data[(number - 1) * 1024 * 1024 : number * 1024 * 1024]
        r = httpx.put(upload["header"][str(number)], content=piece)
        assert r.status_code == 200
        etags.append({"partNumber": number, "etag": r.headers["etag"]})
    assert httpx.post(upload["href"], json={"oid": oid, "parts": etags}).status_code == 200
    assert httpx.post(upload["href"], json={"oid": oid, "parts": etags}).status_code == 200
    assert _verify(server, attacker.write_token, repo, oid, len(data)).status_code == 200
    assert _commit_lfs(server, attacker.write_token, repo, oid, len(data)).status_code == 200


def test_crash_leftovers_are_removed_at_start(small_parts: LiveServer) -> None:
    """Smaller item: after a crash, ``tmp_pack_*`` files in ``objects/pack`` and partial ``uploads/put-*``
    files were never removed. At start the hub removes those no live upload owns (their writer's process is
    gone, or they were left untouched for an hour) and keeps the rest."""
    server = small_parts
    account = server.account("crash")
    repo = _repo(server, account, "crash")
    body = json.dumps({"key": "header", "value": {"summary": "x"}}) + "\n" + json.dumps(
        {"key": "file", "value": {"path": "a.txt", "content": base64.b64encode(b"a").decode()}}
    )
    assert _commit(server, account.write_token, repo, body.encode()).status_code == 200
    server.kill()
    pack_dir = next(server.data_dir.glob("repos/*/*.git/objects/pack"))
    uploads = server.data_dir / "uploads"
    hour_ago = time.time() - 2 * 3600
    stale_pack, fresh_pack = pack_dir / "tmp_pack_dead", pack_dir / "tmp_pack_live"
    dead_put = uploads / f"put-{'a' * 64}-{2**22 + 12345}-1"  # above pid_max: that process cannot exist
    live_put = uploads / f"put-{'b' * 64}-{os.getpid()}-2"  # a live process (this one) owns it
    for path in (stale_pack, fresh_pack, dead_put, live_put):
        path.write_bytes(b"partial")
    os.utime(stale_pack, (hour_ago, hour_ago))
    # A git push's quarantines (repos.receive): one abandoned an hour ago, one whose pack is still arriving.
    stale_push, live_push = pack_dir.parent / "incoming-dead", pack_dir.parent / "incoming-live"
    for quarantine in (stale_push, live_push):
        (quarantine / "pack").mkdir(parents=True)
        (quarantine / "pack" / "tmp_pack_x").write_bytes(b"partial")
    for path in (stale_push / "pack" / "tmp_pack_x", stale_push / "pack", stale_push):
        os.utime(path, (hour_ago, hour_ago))
    os.utime(live_push, (hour_ago, hour_ago))  # the folder is old, the file inside it is not
    server.start()
    assert not stale_pack.exists() and not dead_put.exists() and not stale_push.exists()
    assert fresh_pack.exists() and live_put.exists() and live_push.exists()
    assert httpx.get(f"{server.url}/{repo}/resolve/main/a.txt").content == b"a"
