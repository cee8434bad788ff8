"""Bad input over raw HTTP: each answered with a clear 4xx, the repo unchanged, nothing stored."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
from pathlib import Path

import httpx

from support import Account, LiveServer


def _auth(account: Account) -> dict[str, str]:
    return {"authorization": f"Bearer {account.write_token}"}


def _make_repo(server: LiveServer, account: Account, name: str) -> str:
    repo = f"{account.name}/{name}"
    r = httpx.post(f"{server.url}/api/repos/create", json={"name": repo, "type": "model"}, headers=_auth(account))
    assert r.status_code == 200, r.text
    return repo


def _head(server: LiveServer, repo: str) -> str:
    r = httpx.get(f"{server.url}/api/models/{repo}/refs")
    return r.json()["branches"][0]["targetCommit"]


def _commit(
    server: LiveServer, account: Account, repo: str, lines: list[object] | bytes, **params: str
) -> httpx.Response:
    body = lines if isinstance(lines, bytes) else ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    return httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=body,
        params=params,
        headers={**_auth(account), "content-type": "application/x-ndjson"},
        timeout=60,
    )


def _file(path: str, data: bytes = b"x") -> dict[str, object]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


HEADER = {"key": "header", "value": {"summary": "bad", "description": ""}}


def test_path_traversal_and_odd_paths_are_refused(server: LiveServer) -> None:
    """A few refused paths sent in commits over HTTP are each a 422 with the Hub's error shape, and the branch does
    not move. (Every odd path, case by case, is refused by the commit parser in ``tests/unit/test_commits.py`` and
    by the path rule in ``tests/unit/test_paths_and_lfs.py``; this checks the route's wiring.)"""
    account = server.account("paths")
    repo = _make_repo(server, account, "paths")
    before = _head(server, repo)
    for path in ("../escape.txt", ".git/config", "nul\u0000byte", "/".join(["d"] * 2000)):
        r = _commit(server, account, repo, [HEADER, _file(path)])
        assert r.status_code == 422, (path, r.text)  # the Hub's status for a path it refuses
        assert r.headers["x-error-message"] and r.json()["error"]
    assert _head(server, repo) == before


def test_invalid_repo_ids(server: LiveServer) -> None:
    account = server.account("ids")
    for name in ["bad name", "-lead", "trail-", "a--b", "x" * 97, "dots..", "ok.git", ""]:
        r = httpx.post(
            f"{server.url}/api/repos/create", json={"name": name, "organization": account.name}, headers=_auth(account)
        )
        assert r.status_code == 400, (name, r.text)
        assert "error" in r.json()
    r = httpx.post(f"{server.url}/api/repos/create", json={"name": "fine", "type": "notatype"}, headers=_auth(account))
    assert r.status_code == 400


def test_malformed_ndjson_and_unknown_keys(server: LiveServer) -> None:
    account = server.account("ndjson")
    repo = _make_repo(server, account, "nd")
    before = _head(server, repo)
    cases = [
        b"{not json\n",
        b"",
        (json.dumps(HEADER) + "\n" + json.dumps({"key": "mystery", "value": {}}) + "\n").encode(),
        (
            json.dumps(HEADER)
            + "\n"
            + json.dumps({"key": "file", "value": {"path": "a", "content": "%%%notbase64"}})
            + "\n"
        ).encode(),
        (json.dumps(HEADER) + "\n" + json.dumps([1, 2, 3]) + "\n").encode(),
        (json.dumps({"key": "header", "value": {"summary": "x", "parentCommit": "zz"}}) + "\n").encode(),
    ]
    for body in cases:
        r = _commit(server, account, repo, body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]
    assert _head(server, repo) == before


def test_commit_naming_missing_lfs_object_changes_nothing(server: LiveServer) -> None:
    account = server.account("lfsmiss")
    repo = _make_repo(server, account, "lfs")
    before = _head(server, repo)
    oid = hashlib.sha256(b"never uploaded").hexdigest()
    r = _commit(
        server,
        account,
        repo,
        [
            HEADER,
            _file("ok.txt"),
            {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": 14}},
        ],
    )
    assert r.status_code == 422, r.text
    assert "never uploaded" in r.json()["error"]
    assert _head(server, repo) == before


def test_lfs_upload_with_wrong_bytes_is_refused_and_not_stored(server: LiveServer) -> None:
    account = server.account("lfsbad")
    repo = _make_repo(server, account, "up")
    data = os.urandom(50_000)
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": len(data)}],
            "hash_algo": "sha256",
        },
        headers={**_auth(account), "accept": "application/vnd.git-lfs+json"},
    )
    assert batch.status_code == 200, batch.text
    href = batch.json()["objects"][0]["actions"]["upload"]["href"]
    wrong = httpx.put(href, content=data[:-1] + b"\x00")
    assert wrong.status_code == 400 and "does not match" in wrong.json()["error"]
    short = httpx.put(href, content=data[:100])
    assert short.status_code == 400
    longer = httpx.put(href, content=data + b"extra")
    assert longer.status_code == 400
    assert not server.has_blob(oid)
    assert not any(p.is_file() for p in (server.data_dir / "uploads").glob("put-*"))
    forged = httpx.put(href.replace("sig=", "sig=0"), content=data)
    assert forged.status_code == 403
    ok = httpx.put(href, content=data)
    assert ok.status_code == 200 and server.has_blob(oid)
    verify = httpx.post(
        batch.json()["objects"][0]["actions"]["verify"]["href"],
        json={"oid": oid, "size": len(data) + 1},
        headers=_auth(account),
    )
    assert verify.status_code == 400


def test_stale_parent_commit_is_412(server: LiveServer) -> None:
    account = server.account("stale")
    repo = _make_repo(server, account, "stale")
    parent = _head(server, repo)
    first = _commit(
        server, account, repo, [{"key": "header", "value": {"summary": "one", "parentCommit": parent}}, _file("a.txt")]
    )
    assert first.status_code == 200, first.text
    second = _commit(
        server, account, repo, [{"key": "header", "value": {"summary": "two", "parentCommit": parent}}, _file("b.txt")]
    )
    assert second.status_code == 412, second.text
    assert _head(server, repo) == first.json()["commitOid"]


def test_oversized_commit_body_is_413(server: LiveServer) -> None:
    account = server.account("big")
    repo = _make_repo(server, account, "big")
    # A raw socket: announce 10 GiB and send nothing; the server must refuse on the header alone.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /api/models/{repo}/commit/main HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {account.write_token}\r\nContent-Type: application/x-ndjson\r\n"
                f"Content-Length: {10 * 1024**3}\r\n\r\n"
            ).encode()
        )
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert b" 413 " in status_line, status_line


def test_bad_token_and_unknown_routes(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/api/whoami-v2", headers={"authorization": "Bearer hs_nope"})
    assert r.status_code == 401 and r.headers["x-error-message"] == "Invalid credentials in Authorization header"
    r = httpx.get(f"{server.url}/api/models/nobody/nothing")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    assert r.headers.get("x-request-id")
    r = httpx.head(f"{server.url}/nobody/nothing/resolve/main/x.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"


def test_create_pr_opens_a_pull_request_and_a_bad_one_leaves_nothing(server: LiveServer) -> None:
    """create_pr=1 answers the PR's URL; a commit that fails (a deleted file that is not there) opens no PR and
    takes no number."""
    account = server.account("pr")
    repo = _make_repo(server, account, "pr")
    bad = _commit(server, account, repo, [HEADER, {"key": "deletedFile", "value": {"path": "nope.txt"}}], create_pr="1")
    assert bad.status_code == 404 and bad.headers["x-error-code"] == "EntryNotFound"
    r = _commit(server, account, repo, [HEADER, _file("a.txt")], create_pr="1")
    assert r.status_code == 200 and r.json()["pullRequestUrl"].endswith(f"/{repo}/discussions/1")
    refs = httpx.get(f"{server.url}/api/models/{repo}/refs", params={"include_prs": 1}).json()
    assert [p["ref"] for p in refs["pullRequests"]] == ["refs/pr/1"]


def test_range_requests_and_missing_file_headers(server: LiveServer) -> None:
    account = server.account("range")
    repo = _make_repo(server, account, "range")
    data = bytes(range(256)) * 4
    assert _commit(server, account, repo, [HEADER, _file("r.txt", data)]).status_code == 200
    url = f"{server.url}/{repo}/resolve/main/r.txt"
    r = httpx.get(url, headers={"range": "bytes=10-19"})
    assert (
        r.status_code == 206 and r.content == data[10:20] and r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    )
    r = httpx.get(url, headers={"range": "bytes=0-100000"})
    assert r.status_code == 206 and r.content == data
    r = httpx.get(url, headers={"range": "bytes=-5"})
    assert r.content == data[-5:]
    r = httpx.get(url, headers={"range": "bytes=5000-"})
    assert r.status_code == 416
    head = httpx.head(url)
    assert head.headers["content-length"] == str(len(data)) and len(head.headers["x-repo-commit"]) == 40
    missing = httpx.head(f"{server.url}/{repo}/resolve/main/none.txt")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"
    assert len(missing.headers["x-repo-commit"]) == 40


def test_expand_ignores_unknown_values(server: LiveServer) -> None:
    account = server.account("expand")
    repo = _make_repo(server, account, "exp")
    r = httpx.get(
        f"{server.url}/api/models/{repo}",
        params=[("expand[]", "xetEnabled"), ("expand[]", "bogus"), ("expand", "downloads")],
    )
    assert r.status_code == 200
    assert r.json() == {"_id": r.json()["_id"], "id": repo, "xetEnabled": True, "downloads": 0}


def test_import_command_seeds_a_repo(server: LiveServer, tmp_path: Path) -> None:
    account = server.account("importer")
    folder = tmp_path / "snapshot"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(os.urandom(20_000))
    (folder / "sub" / "notes.txt").write_text("hello")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ignored")
    out = server.cli("import", str(folder), f"{account.name}/imported")
    assert "Imported 3 files (1 LFS)" in out.stdout
    info = httpx.get(f"{server.url}/api/models/{account.name}/imported", params={"blobs": "true"}).json()
    siblings = {s["rfilename"]: s for s in info["siblings"]}
    assert set(siblings) == {".gitattributes", "config.json", "model.safetensors", "sub/notes.txt"}
    assert siblings["model.safetensors"]["lfs"]["size"] == 20_000
    r = httpx.get(f"{server.url}/{account.name}/imported/resolve/main/model.safetensors")
    assert r.content == (folder / "model.safetensors").read_bytes()
    branch = server.cli("import", str(folder / "sub"), f"{account.name}/imported", "--revision", "notes")
    assert branch.returncode == 0
    bad = server.cli("import", str(tmp_path / "missing"), f"{account.name}/imported", check=False)
    assert bad.returncode != 0 and "not a folder" in bad.stderr
