"""Repos with a little history, built through the HTTP API as a client would: inline files, an LFS object
uploaded through the batch API, a branch and a tag. Used by the private-repo sweep and the schema fuzz."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass

import httpx

from support import LiveServer

PLURALS = {"model": "models", "dataset": "datasets", "space": "spaces"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def auth(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


@dataclass
class SeededRepo:
    repo_type: str
    repo_id: str
    commit: str  # main's head
    lfs_oid: str
    lfs_size: int
    branch: str = "dev"
    tag: str = "v1"
    lfs_path: str = "weights.bin"
    pr_num: int = 1  # an open pull request adding ``folder/pr.txt`` (with the secret), described with it
    comment_id: str = ""  # a comment on it holding the secret

    @property
    def plural(self) -> str:
        return PLURALS[self.repo_type]

    @property
    def prefix(self) -> str:
        """The repo's path on the file and git routes: ``[datasets/|spaces/]ns/name``."""
        return URL_PREFIX[self.repo_type] + self.repo_id


def create_repo(server: LiveServer, token: str, repo_id: str, repo_type: str, *, private: bool) -> None:
    body: dict[str, object] = {"name": repo_id, "type": repo_type, "private": private}
    if repo_type == "space":
        body["sdk"] = "static"
    answer = httpx.post(f"{server.url}/api/repos/create", json=body, headers=auth(token), timeout=60)
    assert answer.status_code == 200, answer.text


def upload_lfs(server: LiveServer, token: str, prefix: str, data: bytes) -> str:
    """Upload ``data`` as an LFS object of the repo at ``prefix`` (batch, PUT, verify); its oid."""
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(
        f"{server.url}/{prefix}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}],
              "hash_algo": "sha256"},  # fmt: skip
        headers={**auth(token), "accept": "application/vnd.git-lfs+json"},
        timeout=60,
    )
    assert batch.status_code == 200, batch.text
    actions = batch.json()["objects"][0].get("actions") or {}
    if "upload" in actions:
        upload = actions["upload"]
        put = httpx.put(upload["href"], content=data, headers=upload.get("header") or {}, timeout=60)
        assert put.status_code == 200, put.text
    if "verify" in actions:
        verify = actions["verify"]
        answer = httpx.post(verify["href"], json={"oid": oid, "size": len(data)},
                            headers={**auth(token), **(verify.get("header") or {})}, timeout=60)  # fmt: skip
        assert answer.status_code == 200, answer.text
    return oid


def commit(server: LiveServer, token: str, plural: str, repo_id: str, lines: list[dict[str, object]],
           revision: str = "main") -> str:  # fmt: skip
    """Commit NDJSON ``lines`` (after a header) to ``revision``; the new commit id."""
    header = {"key": "header", "value": {"summary": "seed", "description": ""}}
    body = "\n".join(json.dumps(line) for line in [header, *lines]) + "\n"
    answer = httpx.post(
        f"{server.url}/api/{plural}/{repo_id}/commit/{revision}",
        content=body.encode(),
        headers={**auth(token), "content-type": "application/x-ndjson"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["commitOid"])


def inline_file(path: str, data: bytes) -> dict[str, object]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def seed_repo(
    server: LiveServer, token: str, repo_id: str, repo_type: str, *, private: bool, secret: str = ""
) -> SeededRepo:
    """A repo with a card, a folder, an LFS file, a branch ``dev`` and a tag ``v1``; ``secret`` is written
    into the card and into ``folder/notes.txt`` (so a test can look for it in answers)."""
    create_repo(server, token, repo_id, repo_type, private=private)
    plural, prefix = PLURALS[repo_type], URL_PREFIX[repo_type] + repo_id
    data = os.urandom(2048)
    oid = upload_lfs(server, token, prefix, data)
    card = f"---\nlicense: mit\ntags:\n- seeded\n---\n# Seeded\n\nA repo with a little history. {secret}\n".encode()
    files = [inline_file("README.md", card), inline_file("config.json", b'{"model_type": "bert"}'),
             inline_file("folder/notes.txt", f"hello {secret}\n".encode())]  # fmt: skip
    if repo_type == "dataset":
        files.append(inline_file("data/train.csv", b"text,label\nhello,1\nworld,0\n"))
    lfs = {"key": "lfsFile", "value": {"path": "weights.bin", "algo": "sha256", "oid": oid, "size": len(data)}}
    head = commit(server, token, plural, repo_id, [*files, lfs])
    for kind, ref, body in (("branch", "dev", {}), ("tag", "v1", {"tag": "v1"})):
        url = f"{server.url}/api/{plural}/{repo_id}/{kind}/{'main' if kind == 'tag' else ref}"
        answer = httpx.post(url, json=body, headers=auth(token), timeout=60)
        assert answer.status_code == 200, answer.text
    header = {"key": "header", "value": {"summary": "seed PR", "description": f"A pull request. {secret}"}}
    body = "\n".join(json.dumps(line) for line in [header, inline_file("folder/pr.txt", f"pr {secret}\n".encode())])
    answer = httpx.post(
        f"{server.url}/api/{plural}/{repo_id}/commit/main?create_pr=1",
        content=body.encode() + b"\n",
        headers={**auth(token), "content-type": "application/x-ndjson"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    pr_num = int(answer.json()["pullRequestUrl"].rsplit("/", 1)[1])
    answer = httpx.post(
        f"{server.url}/api/{plural}/{repo_id}/discussions/{pr_num}/comment",
        json={"comment": f"A comment. {secret}"},
        headers=auth(token),
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return SeededRepo(
        repo_type=repo_type,
        repo_id=repo_id,
        commit=head,
        lfs_oid=oid,
        lfs_size=len(data),
        pr_num=pr_num,
        comment_id=answer.json()["newMessage"]["id"],
    )
