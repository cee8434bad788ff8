"""``git push`` over smart HTTP with a token: the real git (and git-lfs) against the live server, the Hub API checking
the result. Refusals must reach the user as git's own output (``remote: ...`` and ``! [remote rejected] ... (why)``)
and leave the repo as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import LiveServer, run_client

pytestmark = pytest.mark.skipif(
    shutil.which("git-lfs") is None and not os.environ.get("CI"), reason="git-lfs is not installed"
)


def _git(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "HOME": str(home), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Pusher", "GIT_AUTHOR_EMAIL": "p@example.com",
        "GIT_COMMITTER_NAME": "Pusher", "GIT_COMMITTER_EMAIL": "p@example.com",
    }  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd or home, env=env, capture_output=True, text=True, timeout=120)


def _remote_main(server: LiveServer, home: Path, repo_id: str) -> str:
    listed = _git(home, "ls-remote", f"{server.url}/{repo_id}", "refs/heads/main")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()[0]


def _commit(home: Path, work: Path, name: str, data: bytes, message: str) -> str:
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    (work / name).write_bytes(data)
    assert _git(home, "add", name, cwd=work).returncode == 0
    done = _git(home, "commit", "-q", "-m", message, cwd=work)
    assert done.returncode == 0, done.stderr
    return _git(home, "rev-parse", "HEAD", cwd=work).stdout.strip()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_git_push_lands_like_a_commit_and_refusals_read_as_git(server: LiveServer, env_for, tmp_path: Path) -> None:
    owner, stranger = server.account("pusher"), server.account("other")
    repo_id = f"{owner.name}/pushed"
    secret = os.urandom(50_000)  # the stranger's LFS object, in their private repo: its sha256 is no proof
    (tmp_path / "secret.bin").write_bytes(secret)
    run_client(
        f"""
        from huggingface_hub import HfApi
        api = HfApi(token="{stranger.write_token}")
        api.create_repo("{stranger.name}/private", private=True)
        api.upload_file(path_or_fileobj="{tmp_path / "secret.bin"}", path_in_repo="s.bin", repo_id="{stranger.name}/private")
        api = HfApi(token="{owner.write_token}")
        api.create_repo("{repo_id}")
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="README.md", repo_id="{repo_id}")
        """,
        env_for(None),
    )
    home = tmp_path / "home"
    home.mkdir()
    assert _git(home, "lfs", "install", "--skip-repo").returncode == 0
    host = server.url.removeprefix("http://")
    write_url = f"http://{owner.name}:{owner.write_token}@{host}/{repo_id}"
    work = tmp_path / "work"
    cloned = _git(home, "clone", "-q", write_url, str(work))
    assert cloned.returncode == 0, cloned.stderr
    start = _remote_main(server, home, repo_id)

    # A read-only token: refused before the pack is sent, in the Hub's words, printed by git.
    _commit(home, work, "notes.txt", b"first notes\n", "Add notes")
    read_url = f"http://{owner.name}:{owner.read_token}@{host}/{repo_id}"
    refused = _git(home, "push", read_url, "HEAD:main", cwd=work)
    assert refused.returncode != 0
    assert "remote: This token has read access only" in refused.stderr, refused.stderr
    # No token at all: a 401 asking for credentials (git cannot prompt here, so it fails saying so).
    anonymous = _git(home, "push", f"{server.url}/{repo_id}", "HEAD:main", cwd=work)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr, anonymous.stderr
    assert _remote_main(server, home, repo_id) == start

    # A write token: the commit lands on main, the API and the index see it.
    pushed = _git(home, "push", "origin", "HEAD:main", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    first = _git(home, "rev-parse", "HEAD", cwd=work).stdout.strip()
    assert _remote_main(server, home, repo_id) == first

    # Refusals, each leaving main where it was: a force push (not a fast-forward), a pointer to an LFS object
    # never uploaded, a pointer to someone else's object, a file over 10 MiB outside LFS.
    _commit(home, work, "notes.txt", b"rewritten\n", "Rewrite notes")
    assert _git(home, "reset", "-q", "--hard", "HEAD~1", cwd=work).returncode == 0
    assert _git(home, "reset", "-q", "--soft", "HEAD~1", cwd=work).returncode == 0
    assert _git(home, "commit", "-q", "-m", "Rewritten history", cwd=work).returncode == 0
    forced = _git(home, "push", "--force", "origin", "HEAD:main", cwd=work)
    assert forced.returncode != 0
    assert "[remote rejected] HEAD -> main (non-fast-forward" in forced.stderr, forced.stderr
    assert _git(home, "reset", "-q", "--hard", first, cwd=work).returncode == 0

    for oid, size in (
        (hashlib.sha256(b"never uploaded").hexdigest(), 14),
        (hashlib.sha256(secret).hexdigest(), 50_000),
    ):
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()
        _commit(home, work, "weights/fake.txt", pointer, "Name an object")
        denied = _git(home, "push", "--no-verify", "origin", "HEAD:main", cwd=work)
        assert denied.returncode != 0
        assert f"(LFS object {oid} for 'weights/fake.txt' was not uploaded to this repo)" in denied.stderr, (
            denied.stderr
        )
        assert _git(home, "reset", "-q", "--hard", first, cwd=work).returncode == 0

    _commit(home, work, "big.txt", b"x" * (10 * 1024 * 1024 + 1), "A large file outside LFS")
    large = _git(home, "push", "origin", "HEAD:main", cwd=work)
    assert large.returncode != 0
    assert "remote: Your push was rejected because it contains files larger than 10 MiB." in large.stderr
    assert "remote:   - big.txt (ref: refs/heads/main)" in large.stderr, large.stderr
    assert _git(home, "reset", "-q", "--hard", first, cwd=work).returncode == 0
    assert _remote_main(server, home, repo_id) == first

    # An LFS file: git-lfs sends the bytes through the batch API (the pre-push hook), then the pointer lands.
    assert _git(home, "lfs", "install", "--local", cwd=work).returncode == 0
    payload = os.urandom(300_000)
    _commit(home, work, "README.md", b"---\ntags:\n- pushed-with-git\n---\n# Pushed\n", "Card")
    last = _commit(home, work, "weights/model.bin", payload, "Add weights")
    lfs_push = _git(home, "push", "origin", "HEAD:main", cwd=work)
    assert lfs_push.returncode == 0, lfs_push.stderr
    # A new branch, then a tag (tags are never moved).
    assert _git(home, "push", "origin", "HEAD:refs/heads/dev", cwd=work).returncode == 0
    assert _git(home, "push", "origin", f"{first}:refs/tags/v1", cwd=work).returncode == 0
    moved = _git(home, "push", "--force", "origin", "HEAD:refs/tags/v1", cwd=work)
    assert moved.returncode != 0 and "Reference refs/tags/v1 already exists" in moved.stderr, moved.stderr
    seen = run_client(
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        info = api.model_info("{repo_id}")
        refs = api.list_repo_refs("{repo_id}")
        path = hf_hub_download("{repo_id}", "weights/model.bin")
        listed = [m.id for m in api.list_models(filter="pushed-with-git")]
        print(json.dumps({{
            "sha": info.sha, "tags": info.tags, "files": sorted(api.list_repo_files("{repo_id}")),
            "weights": open(path, "rb").read().hex(), "listed": listed,
            "branches": {{b.name: b.target_commit for b in refs.branches}},
            "tags_refs": {{t.name: t.target_commit for t in refs.tags}},
        }}))
        """,
        env_for(owner.write_token),
    )
    answer = json.loads(seen.stdout.strip().splitlines()[-1])
    assert answer["sha"] == last
    assert answer["files"] == [".gitattributes", "README.md", "notes.txt", "weights/model.bin"]
    assert bytes.fromhex(answer["weights"]) == payload
    assert "pushed-with-git" in answer["tags"] and answer["listed"] == [repo_id]
    assert answer["branches"] == {"main": last, "dev": last}
    assert answer["tags_refs"] == {"v1": first}
    # Deleting: a branch as the API allows, never main.
    keep_main = _git(home, "push", "origin", ":refs/heads/main", cwd=work)
    assert keep_main.returncode != 0 and "(Cannot delete refs/heads/main)" in keep_main.stderr, keep_main.stderr
    assert _git(home, "push", "origin", ":refs/heads/dev", cwd=work).returncode == 0
    heads = _git(home, "ls-remote", "--heads", f"{server.url}/{repo_id}").stdout.split()
    assert heads == [last, "refs/heads/main"]
    assert not list(server.data_dir.glob("repos/**/objects/incoming-*")), "a quarantine was left behind"


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_git_push_to_own_pull_request_only(server: LiveServer, env_for, tmp_path: Path) -> None:
    owner, contributor = server.account("prowner"), server.account("contrib")
    repo_id = f"{owner.name}/target"
    run_client(
        f"""
        from huggingface_hub import HfApi
        HfApi(token="{owner.write_token}").create_repo("{repo_id}")
        HfApi(token="{owner.write_token}").upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id="{repo_id}")
        HfApi(token="{contributor.write_token}").upload_file(
            path_or_fileobj=b"v2", path_in_repo="a.txt", repo_id="{repo_id}", create_pr=True
        )
        """,
        env_for(None),
    )
    home = tmp_path / "home"
    home.mkdir()
    url = f"http://{contributor.name}:{contributor.write_token}@{server.url.removeprefix('http://')}/{repo_id}"
    work = tmp_path / "work"
    assert _git(home, "clone", "-q", url, str(work)).returncode == 0
    assert _git(home, "fetch", "-q", "origin", "refs/pr/1:pr1", cwd=work).returncode == 0
    assert _git(home, "checkout", "-q", "pr1", cwd=work).returncode == 0
    head = _commit(home, work, "b.txt", b"more\n", "Add b from git")
    to_main = _git(home, "push", "origin", "HEAD:main", cwd=work)
    assert to_main.returncode != 0
    assert f"[remote rejected] HEAD -> main (You don't have the rights to write in the namespace '{owner.name}')" in (
        to_main.stderr
    ), to_main.stderr
    new_pr = _git(home, "push", "origin", "HEAD:refs/pr/7", cwd=work)
    assert new_pr.returncode != 0 and "create_pr" in new_pr.stderr, new_pr.stderr
    pushed = _git(home, "push", "origin", "HEAD:refs/pr/1", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    seen = run_client(
        f"""
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        details = api.get_discussion_details("{repo_id}", 1)
        refs = api.list_repo_refs("{repo_id}", include_pull_requests=True)
        print(json.dumps({{
            "commits": [e.summary for e in details.events if e.type == "commit"],
            "prs": {{r.ref: r.target_commit for r in refs.pull_requests}},
            "main": [b.target_commit for b in refs.branches if b.name == "main"][0],
        }}))
        """,
        env_for(owner.write_token),
    )
    answer = json.loads(seen.stdout.strip().splitlines()[-1])
    assert answer["prs"] == {"refs/pr/1": head}
    assert answer["commits"][-1] == "Add b from git"
    assert answer["main"] == _git(home, "rev-parse", "origin/main", cwd=work).stdout.strip()
