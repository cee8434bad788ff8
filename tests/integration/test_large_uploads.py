"""The multipart LFS transfer and gated repos, through huggingface_hub against a live server."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from support import SMALL_PARTS_ENV, LiveServer, client_env, last_json, run_client


@pytest.fixture()
def multipart_server() -> LiveServer:
    root = Path(tempfile.mkdtemp(prefix="hubstead-multipart-"))
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


def test_multipart_upload_round_trip(multipart_server: LiveServer, tmp_path: Path) -> None:
    server = multipart_server
    account = server.account("multi")
    payload = os.urandom(5 * 1024 * 1024 + 12345)
    source = tmp_path / "weights.safetensors"
    source.write_bytes(payload)
    out = last_json(
        run_client(
            f"""
            import json, hashlib
            from huggingface_hub import HfApi, hf_hub_download
            api = HfApi()
            api.create_repo("{account.name}/multi")
            api.upload_file(path_or_fileobj="{source}", path_in_repo="weights.safetensors", repo_id="{account.name}/multi")
            data = open(hf_hub_download("{account.name}/multi", "weights.safetensors"), "rb").read()
            print(json.dumps({{"sha": hashlib.sha256(data).hexdigest(), "size": len(data)}}))
            """,
            client_env(server, account.write_token, tmp_path / "home"),
        )
    )
    assert out == {"sha": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    assert not list((server.data_dir / "uploads").glob("multipart-*")), "parts are removed once joined"
    log = server.log_path.read_text() if server.log_path else ""
    assert "Traceback" not in log


def test_gated_repo_requires_accepted_access(server: LiveServer, env_for) -> None:
    owner = server.account("gowner")
    visitor = server.account("gvisitor")
    repo = f"{owner.name}/gated"
    run_client(
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("{repo}")
        api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.txt", repo_id="{repo}")
        api.update_repo_settings("{repo}", gated="auto")
        """,
        env_for(owner.write_token),
    )
    script = f"""
        import json, os, httpx
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import GatedRepoError
        out = {{"gated": HfApi().model_info("{repo}").gated, "exists": HfApi().repo_exists("{repo}")}}
        try:
            out["content"] = open(hf_hub_download("{repo}", "w.txt"), "rb").read().decode()
        except GatedRepoError:
            out["content"] = "GatedRepoError"
        print(json.dumps(out))
    """
    assert last_json(run_client(script, env_for(visitor.write_token))) == {
        "gated": "auto",
        "exists": True,
        "content": "GatedRepoError",
    }
    assert last_json(run_client(script, env_for(None)))["content"] == "GatedRepoError"
    import httpx

    asked = httpx.post(
        f"{server.url}/api/models/{repo}/ask-access", headers={"authorization": f"Bearer {visitor.read_token}"}
    )
    assert asked.status_code == 200 and asked.json() == {"status": "accepted"}
    assert last_json(run_client(script, env_for(visitor.write_token)))["content"] == "weights"
    assert last_json(run_client(script, env_for(owner.read_token)))["content"] == "weights"


def test_multipart_parts_are_checked_and_a_bad_whole_is_refused(multipart_server: LiveServer) -> None:
    import httpx

    server = multipart_server
    account = server.account("parts")
    auth = {"authorization": f"Bearer {account.write_token}"}
    assert httpx.post(f"{server.url}/api/repos/create", json={"name": f"{account.name}/parts"}, headers=auth).status_code == 200
    payload = os.urandom(3 * 1024 * 1024 + 10)
    oid = hashlib.sha256(payload).hexdigest()
    batch = httpx.post(
        f"{server.url}/{account.name}/parts.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic", "multipart"], "objects": [{"oid": oid, "size": len(payload)}]},
        headers=auth,
    ).json()
    action = batch["objects"][0]["actions"]["upload"]
    header = action["header"]
    chunk = int(header["chunk_size"])
    part_urls = [header[str(i)] for i in range(1, 5)]
    # A part larger than announced is refused.
    assert httpx.put(part_urls[0], content=payload[: chunk + 5]).status_code == 400
    etags = []
    for index, url in enumerate(part_urls):
        body = payload[index * chunk : (index + 1) * chunk]
        if index == 1:
            body = b"\x00" * len(body)  # wrong bytes, right size
        response = httpx.put(url, content=body)
        assert response.status_code == 200 and response.headers["etag"]
        etags.append(response.headers["etag"])
    complete = httpx.post(action["href"], json={"oid": oid, "parts": [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]})
    assert complete.status_code == 400 and "do not add up" in complete.json()["error"]
    assert not server.has_blob(oid)
    # The client retries the whole transfer with the right bytes: it succeeds.
    etags = [httpx.put(url, content=payload[i * chunk : (i + 1) * chunk]).headers["etag"] for i, url in enumerate(part_urls)]
    complete = httpx.post(action["href"], json={"oid": oid, "parts": [{"partNumber": i + 1, "etag": e} for i, e in enumerate(etags)]})
    assert complete.status_code == 200, complete.text
    assert server.blob_bytes(oid) == payload
