"""``git clone`` over smart HTTP (read-only), with ``git lfs`` fetching large files through the batch API."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import LiveServer, run_client

pytestmark = pytest.mark.skipif(
    shutil.which("git-lfs") is None and not os.environ.get("CI"), reason="git-lfs is not installed"
)


def _git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "HOME": str(cwd or Path.cwd())}
    return subprocess.run(["git", *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=120)


def test_clone_public_and_private_with_lfs(server: LiveServer, env_for, tmp_path: Path) -> None:
    owner = server.account("cloner")
    payload = os.urandom(200_000)
    (tmp_path / "w.bin").write_bytes(payload)
    run_client(
        f"""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("{owner.name}/open")
        api.upload_file(path_or_fileobj="{tmp_path / 'w.bin'}", path_in_repo="weights/w.bin", repo_id="{owner.name}/open")
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="README.md", repo_id="{owner.name}/open")
        api.create_repo("{owner.name}/closed", private=True)
        api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id="{owner.name}/closed")
        """,
        env_for(owner.write_token),
    )
    home = tmp_path / "home"
    home.mkdir()
    assert _git("lfs", "install", "--skip-repo", cwd=home).returncode == 0
    public = _git("clone", f"{server.url}/{owner.name}/open", str(tmp_path / "open"), cwd=home)
    assert public.returncode == 0, public.stderr
    assert (tmp_path / "open" / "README.md").read_text() == "hello"
    assert (tmp_path / "open" / "weights" / "w.bin").read_bytes() == payload
    log = _git("log", "--format=%s", cwd=tmp_path / "open")
    assert "Upload README.md with huggingface_hub" in log.stdout
    anonymous = _git("clone", f"{server.url}/{owner.name}/closed", str(tmp_path / "nope"), cwd=home)
    assert anonymous.returncode != 0 and not (tmp_path / "nope" / "s.txt").exists()
    url = server.url.replace("http://", f"http://{owner.name}:{owner.read_token}@")
    private = _git("clone", f"{url}/{owner.name}/closed.git", str(tmp_path / "closed"), cwd=home)
    assert private.returncode == 0, private.stderr
    assert (tmp_path / "closed" / "s.txt").read_text() == "secret"
    stranger = server.account("stranger")
    url = server.url.replace("http://", f"http://{stranger.name}:{stranger.read_token}@")
    denied = _git("clone", f"{url}/{owner.name}/closed", str(tmp_path / "denied"), cwd=home)
    assert denied.returncode != 0
    push = _git("push", "origin", "HEAD:main", cwd=tmp_path / "open")
    assert push.returncode != 0, "pushes go through the Hub API, not git"
