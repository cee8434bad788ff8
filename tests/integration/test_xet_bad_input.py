"""The CAS refuses bad xorbs, bad shards, foreign private content and bad tokens; nothing gets stored."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest

from hubstead.xet import tokens
from support import Account, LiveServer
from xet_builders import random_chunks, shard_for_file, xorb_from_chunks


def _repo(server: LiveServer, account: Account, name: str, *, private: bool = False) -> str:
    repo = f"{account.name}/{name}"
    r = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": repo, "private": private},
        headers={"authorization": f"Bearer {account.write_token}"},
    )
    assert r.status_code == 200, r.text
    return repo


def _cas_token(server: LiveServer, token: str, repo: str, mode: str = "write") -> tuple[str, str]:
    r = httpx.get(f"{server.url}/api/models/{repo}/xet-{mode}-token/main", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-xet-access-token"] == body["accessToken"] and r.headers["x-xet-cas-url"] == body["casUrl"]
    return body["casUrl"], body["accessToken"]


def _xorbs_on_disk(server: LiveServer) -> set[str]:
    return set(server.xorbs())


def test_xorb_hash_mismatch_and_corruption_store_nothing(server: LiveServer) -> None:
    account = server.account("xbad")
    repo = _repo(server, account, "bad")
    cas, token = _cas_token(server, account.write_token, repo)
    auth = {"authorization": f"Bearer {token}"}
    xorb_hex, body = xorb_from_chunks(random_chunks())
    other_hex, _ = xorb_from_chunks(random_chunks())
    before = _xorbs_on_disk(server)
    cases = [
        (other_hex, body),  # hash does not match content
        (xorb_hex, body[:-10]),  # truncated
        (xorb_hex, b"\x09" + body[1:]),  # bad chunk version
        (xorb_hex, b""),  # empty
        ("not-a-hash", body),
    ]
    for name, data in cases:
        r = httpx.post(f"{cas}/v1/xorbs/default/{name}", content=data, headers=auth)
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.json()["error"]
    assert _xorbs_on_disk(server) == before
    ok = httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=auth)
    assert ok.status_code == 200 and ok.json() == {"was_inserted": True}
    again = httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=auth)
    assert again.json() == {"was_inserted": False}


def test_shards_must_reference_real_matching_content(server: LiveServer) -> None:
    account = server.account("xshard")
    repo = _repo(server, account, "shard")
    cas, token = _cas_token(server, account.write_token, repo)
    auth = {"authorization": f"Bearer {token}"}
    chunks = random_chunks()
    xorb_hex, body = xorb_from_chunks(chunks)
    # A shard naming a xorb that was never uploaded.
    r = httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex), headers=auth)
    assert r.status_code == 400 and "never uploaded" in r.json()["error"]
    assert httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=auth).status_code == 200
    # A shard whose file claims a sha256 its bytes do not have.
    lie = shard_for_file(chunks, xorb_hex, sha256=hashlib.sha256(b"something else").hexdigest())
    r = httpx.post(f"{cas}/v1/shards", content=lie, headers=auth)
    assert r.status_code == 400 and "sha256" in r.json()["error"]
    # Truncated and garbage shards.
    good = shard_for_file(chunks, xorb_hex)
    for bad in (good[:60], b"garbage" * 10, good[:-20]):
        r = httpx.post(f"{cas}/v1/shards", content=bad, headers=auth)
        assert r.status_code == 400, r.text
    # Nothing registered: committing the file's sha256 is refused.
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    commit = _commit_lfs(server, account, repo, sha, len(b"".join(chunks)))
    assert commit.status_code == 422, commit.text
    # The good shard registers the file; then the commit goes through and the file downloads.
    r = httpx.post(f"{cas}/v1/shards", content=good, headers=auth)
    assert r.status_code == 200 and r.json() == {"result": 1}
    commit = _commit_lfs(server, account, repo, sha, len(b"".join(chunks)))
    assert commit.status_code == 200, commit.text
    assert httpx.get(f"{server.url}/{repo}/resolve/main/data.bin").content == b"".join(chunks)


def _commit_lfs(server: LiveServer, account: Account, repo: str, sha: str, size: int) -> httpx.Response:
    body = "\n".join(
        json.dumps(line)
        for line in (
            {"key": "header", "value": {"summary": "xet file"}},
            {"key": "lfsFile", "value": {"path": "data.bin", "algo": "sha256", "oid": sha, "size": size}},
        )
    )
    return httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=body.encode(),
        headers={"authorization": f"Bearer {account.write_token}", "content-type": "application/x-ndjson"},
    )


def test_private_xorbs_are_not_reachable_from_other_repos(server: LiveServer) -> None:
    owner = server.account("xowner")
    stranger = server.account("xstranger")
    private_repo = _repo(server, owner, "private", private=True)
    cas, owner_token = _cas_token(server, owner.write_token, private_repo)
    chunks = random_chunks(4, 30_000)
    xorb_hex, body = xorb_from_chunks(chunks)
    owner_auth = {"authorization": f"Bearer {owner_token}"}
    assert httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=owner_auth).status_code == 200
    assert httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex), headers=owner_auth).status_code == 200
    # The stranger cannot even get a token for the private repo.
    r = httpx.get(
        f"{server.url}/api/models/{private_repo}/xet-read-token/main",
        headers={"authorization": f"Bearer {stranger.write_token}"},
    )
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    own_repo = _repo(server, stranger, "mine")
    _, stranger_token = _cas_token(server, stranger.write_token, own_repo)
    stranger_auth = {"authorization": f"Bearer {stranger_token}"}
    # A shard of the stranger's that references the owner's private xorb is refused ...
    r = httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex, include_xorb=False), headers=stranger_auth)
    assert r.status_code == 400 and "cannot read" in r.json()["error"]
    # ... the dedup index does not reveal it ...
    from hubstead.xet.cas.hashing import chunk_hash, to_hex

    r = httpx.get(f"{cas}/v1/chunks/default/{to_hex(chunk_hash(chunks[0]))}", headers=stranger_auth)
    assert r.status_code == 404
    owner_view = httpx.get(f"{cas}/v1/chunks/default/{to_hex(chunk_hash(chunks[0]))}", headers=owner_auth)
    assert owner_view.status_code == 200 and owner_view.content[:14] == b"HFRepoMetaData"
    # ... and its reconstruction is not served to the stranger's token.
    from hubstead.xet.cas.hashing import file_hash

    file_hex = to_hex(file_hash([(chunk_hash(c), len(c)) for c in chunks]))
    r = httpx.get(f"{cas}/v1/reconstructions/{file_hex}", headers=stranger_auth)
    assert r.status_code == 404
    r = httpx.get(f"{cas}/v1/reconstructions/{file_hex}", headers=owner_auth)
    assert r.status_code == 200 and r.json()["terms"][0]["hash"] == xorb_hex
    # A fetch URL only works as signed.
    url = r.json()["fetch_info"][xorb_hex][0]["url"]
    assert httpx.get(url, headers={"range": "bytes=0-99"}).content == body[:100]
    assert httpx.get(url.replace("sig=", "sig=00")).status_code == 403


def test_bad_expired_and_read_only_tokens(server: LiveServer) -> None:
    account = server.account("xtok")
    repo = _repo(server, account, "tok")
    cas, read_token = _cas_token(server, account.read_token, repo, mode="read")
    xorb_hex, body = xorb_from_chunks(random_chunks(1, 1000))
    r = httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers={"authorization": f"Bearer {read_token}"})
    assert r.status_code == 403
    r = httpx.get(f"{server.url}/api/models/{repo}/xet-write-token/main", headers={"authorization": f"Bearer {account.read_token}"})
    assert r.status_code == 403
    for bad in ("", "Bearer nope", f"Bearer {read_token}x", "Bearer xet1.e30.0000"):
        r = httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers={"authorization": bad} if bad else {})
        assert r.status_code == 401, bad
    secret = (server.data_dir / "secret.key").read_text().strip()
    expired, _ = tokens.issue(secret, repo_pk=1, user_id=1, mode="write", now=time.time() - 7200)
    r = httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers={"authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "Expired" in r.json()["error"]


@pytest.mark.slow
def test_kill_during_xorb_upload_leaves_no_partial_xorb(own_server: LiveServer) -> None:
    import threading

    server = own_server
    account = server.account("xkill")
    repo = _repo(server, account, "kill")
    cas, token = _cas_token(server, account.write_token, repo)
    chunks = random_chunks(300, 100_000)
    xorb_hex, body = xorb_from_chunks(chunks)
    started = threading.Event()

    def slow():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 1 << 20):
            yield body[i : i + (1 << 20)]
            started.set()
            time.sleep(0.05)

    def send() -> None:
        try:
            httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=slow(), headers={"authorization": f"Bearer {token}"}, timeout=60)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=send)
    thread.start()
    assert started.wait(30)
    time.sleep(0.3)
    server.kill()
    thread.join(60)
    server.start()
    assert xorb_hex not in _xorbs_on_disk(server)
    cas, token = _cas_token(server, account.write_token, repo)
    auth = {"authorization": f"Bearer {token}"}
    r = httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex), headers=auth)
    assert r.status_code == 400, "a shard may not reference the xorb that never fully arrived"
    assert httpx.post(f"{cas}/v1/xorbs/default/{xorb_hex}", content=body, headers=auth, timeout=60).status_code == 200
    assert httpx.post(f"{cas}/v1/shards", content=shard_for_file(chunks, xorb_hex), headers=auth, timeout=60).status_code == 200
