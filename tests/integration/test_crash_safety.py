"""SIGKILL the server in the middle of an upload and of a commit; after restart every branch is on a valid
commit, ``git fsck`` is clean, committed data is intact, and the client's retry succeeds."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from support import LiveServer, client_env, last_json, run_client

pytestmark = pytest.mark.slow


def _git_dirs(server: LiveServer) -> list[Path]:
    return sorted((server.data_dir / "repos").glob("*/*.git"))


def _fsck(server: LiveServer) -> None:
    for git_dir in _git_dirs(server):
        result = subprocess.run(
            ["git", f"--git-dir={git_dir}", "fsck", "--full", "--strict", "--no-dangling"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"git fsck failed for {git_dir}:\n{result.stdout}\n{result.stderr}"


def _all_files(url: str) -> set[str]:
    """Every file of a recursive tree listing, following the ``Link`` pages."""
    paths: set[str] = set()
    next_url: str | None = url
    while next_url:
        response = httpx.get(next_url)
        paths.update(e["path"] for e in response.json() if e["type"] == "file")
        next_url = response.links.get("next", {}).get("url")
    return paths


def test_kill_during_large_upload_then_retry(own_server: LiveServer, tmp_path: Path) -> None:
    server = own_server
    account = server.account("crash")
    repo = f"{account.name}/upload"
    env = client_env(server, account.write_token, tmp_path / "home")
    run_client(
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("{repo}")
        api.upload_file(path_or_fileobj=b"kept", path_in_repo="kept.txt", repo_id="{repo}")
        """,
        env,
    )
    head_before = httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"]
    payload = os.urandom(1024 * 1024) * 48  # 48 MiB
    oid = hashlib.sha256(payload).hexdigest()
    batch = httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(payload)}]},
        headers={"authorization": f"Bearer {account.write_token}"},
    ).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    sent = threading.Event()

    def slow_body():  # type: ignore[no-untyped-def]
        for start in range(0, len(payload), 1024 * 1024):
            yield payload[start : start + 1024 * 1024]
            if start >= 10 * 1024 * 1024:
                sent.set()
                time.sleep(0.05)

    errors: list[Exception] = []

    def upload() -> None:
        try:
            httpx.put(href, content=slow_body(), timeout=60)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    assert sent.wait(30)
    partial = list((server.data_dir / "uploads").glob("put-*"))
    assert partial and partial[0].stat().st_size > 0, "the upload should be in flight"
    server.kill()
    thread.join(60)
    assert errors, "the client must see the connection die"
    server.start()
    _fsck(server)
    store = server.data_dir / "lfs" / oid[:2] / oid[2:4] / oid
    assert not store.exists(), "a half-received object must never enter the store"
    assert httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"] == head_before
    (tmp_path / "big.bin").write_bytes(payload)
    out = last_json(
        run_client(
            f"""
            import json, hashlib
            from huggingface_hub import HfApi, hf_hub_download
            api = HfApi()
            api.upload_file(path_or_fileobj="{tmp_path / "big.bin"}", path_in_repo="big.bin", repo_id="{repo}")
            data = open(hf_hub_download("{repo}", "big.bin"), "rb").read()
            kept = open(hf_hub_download("{repo}", "kept.txt"), "rb").read().decode()
            print(json.dumps({{"sha": hashlib.sha256(data).hexdigest(), "kept": kept}}))
            """,
            env,
        )
    )
    assert out == {"sha": oid, "kept": "kept"}


def test_kill_during_commits_keeps_branches_valid(own_server: LiveServer, tmp_path: Path) -> None:
    server = own_server
    account = server.account("crashc")
    repo = f"{account.name}/commits"
    auth = {"authorization": f"Bearer {account.write_token}"}
    assert httpx.post(f"{server.url}/api/repos/create", json={"name": repo}, headers=auth).status_code == 200
    rng = random.Random(1234)

    def body_for(prefix: str, parent: str | None) -> tuple[dict[str, bytes], bytes]:
        files = {f"{prefix}/f{i:05d}.txt": f"{prefix}-{i}".encode() for i in range(6000)}
        header = {"summary": prefix, **({"parentCommit": parent} if parent else {})}
        lines = [json.dumps({"key": "header", "value": header})]
        lines += [
            json.dumps(
                {"key": "file", "value": {"path": p, "content": base64.b64encode(d).decode(), "encoding": "base64"}}
            )
            for p, d in files.items()
        ]
        return files, ("\n".join(lines) + "\n").encode()

    # Time one whole commit of the same size, so the kills below land before, during and after it.
    warm_files, warm_body = body_for("warmup", None)
    started = time.monotonic()
    warm = httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=warm_body,
        headers={**auth, "content-type": "application/x-ndjson"},
        timeout=120,
    )
    duration = time.monotonic() - started
    assert warm.status_code == 200, warm.text
    committed: dict[str, bytes] = dict(warm_files)
    outcomes: list[str] = []
    for attempt in range(6):
        head = httpx.get(f"{server.url}/api/models/{repo}/refs").json()["branches"][0]["targetCommit"]
        files, body = body_for(f"round{attempt}", head)
        result: dict[str, object] = {}

        def send(body: bytes = body, result: dict[str, object] = result) -> None:
            try:
                r = httpx.post(
                    f"{server.url}/api/models/{repo}/commit/main",
                    content=body,
                    headers={**auth, "content-type": "application/x-ndjson"},
                    timeout=120,
                )
                result["status"] = r.status_code
                result["oid"] = r.json().get("commitOid")
            except httpx.HTTPError as exc:
                result["error"] = exc

        thread = threading.Thread(target=send)
        thread.start()
        time.sleep(duration * rng.uniform(0.1, 1.3))
        server.kill()
        thread.join(120)
        server.start()
        _fsck(server)
        refs = httpx.get(f"{server.url}/api/models/{repo}/refs").json()
        new_head = refs["branches"][0]["targetCommit"]
        info = httpx.get(f"{server.url}/api/models/{repo}").json()
        assert info["sha"] == new_head, "the index must follow the branch after a restart"
        listed = _all_files(f"{server.url}/api/models/{repo}/tree/main?recursive=true")
        if new_head == head:
            assert not any(p.startswith(f"round{attempt}/") for p in listed)
        else:
            assert all(p in listed for p in files), "a commit is all or nothing"
            committed.update(files)
        outcomes.append("new" if new_head != head else "old")
        # The client retries: whatever happened, a fresh commit now succeeds.
        retry_head = new_head
        retry = httpx.post(
            f"{server.url}/api/models/{repo}/commit/main",
            content=(
                json.dumps({"key": "header", "value": {"summary": "retry", "parentCommit": retry_head}})
                + "\n"
                + json.dumps(
                    {
                        "key": "file",
                        "value": {"path": f"retry{attempt}.txt", "content": "cmV0cnk=", "encoding": "base64"},
                    }
                )
                + "\n"
            ).encode(),
            headers={**auth, "content-type": "application/x-ndjson"},
            timeout=60,
        )
        assert retry.status_code == 200, retry.text
        committed[f"retry{attempt}.txt"] = b"retry"
    print(f"commit of 6000 files: {duration:.2f} s; outcomes of killed commits: {outcomes}")
    for path, data in rng.sample(sorted(committed.items()), min(20, len(committed))):
        assert httpx.get(f"{server.url}/{repo}/resolve/main/{path}").content == data
    _fsck(server)


def test_concurrent_commits_serialize_without_loss(server: LiveServer, tmp_path: Path) -> None:
    account = server.account("conc")
    repo = f"{account.name}/concurrent"
    auth = {"authorization": f"Bearer {account.write_token}"}
    assert httpx.post(f"{server.url}/api/repos/create", json={"name": repo}, headers=auth).status_code == 200

    def commit(i: int) -> int:
        body = (
            json.dumps({"key": "header", "value": {"summary": f"c{i}"}})
            + "\n"
            + json.dumps(
                {
                    "key": "file",
                    "value": {
                        "path": f"c/{i}.txt",
                        "content": base64.b64encode(str(i).encode()).decode(),
                        "encoding": "base64",
                    },
                }
            )
            + "\n"
        ).encode()
        r = httpx.post(
            f"{server.url}/api/models/{repo}/commit/main",
            content=body,
            headers={**auth, "content-type": "application/x-ndjson"},
            timeout=60,
        )
        return r.status_code

    statuses: list[int] = []
    threads = [threading.Thread(target=lambda i=i: statuses.append(commit(i))) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 24
    tree = httpx.get(f"{server.url}/api/models/{repo}/tree/main/c").json()
    assert sorted(e["path"] for e in tree) == sorted(f"c/{i}.txt" for i in range(24))
    commits = httpx.get(f"{server.url}/api/models/{repo}/commits/main").json()
    assert len(commits) == 25
