"""The read cache (model_info's git part, keyed by the head commit) never serves a stale or unauthorized answer:
new commits, visibility changes, deletions and other readers all see the truth at once."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.utils import RepositoryNotFoundError

from support import LiveServer


def _info(server: LiveServer, repo: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/api/models/{repo}", params=params, headers=headers, timeout=30)


def _files(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(s["rfilename"] for s in response.json()["siblings"])


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_model_info_follows_each_commit_at_once(server: LiveServer) -> None:
    owner = server.account("cacheowner")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/follows"
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo)
    first = _info(server, repo, owner.read_token)
    assert _files(first) == [".gitattributes", "a.txt"]
    assert _files(_info(server, repo, owner.read_token)) == [".gitattributes", "a.txt"]  # answered again (cached)
    with_blobs = _info(server, repo, owner.read_token, blobs="true").json()
    assert {s["rfilename"]: s["size"] for s in with_blobs["siblings"]}["a.txt"] == 3

    api.create_commit(repo, [CommitOperationAdd("b.txt", b"two!"), CommitOperationAdd("a.txt", b"longer one")],
                      commit_message="more")  # fmt: skip
    second = _info(server, repo, owner.read_token)
    assert second.json()["sha"] != first.json()["sha"]
    assert _files(second) == [".gitattributes", "a.txt", "b.txt"]
    sizes = {s["rfilename"]: s["size"] for s in _info(server, repo, owner.read_token, blobs="true").json()["siblings"]}
    assert sizes["a.txt"] == len(b"longer one") and sizes["b.txt"] == 4
    # The client's own view, and the old head still answers its own files at its revision.
    assert sorted(s.rfilename for s in api.model_info(repo).siblings or []) == [".gitattributes", "a.txt", "b.txt"]
    old = httpx.get(f"{server.url}/api/models/{repo}/revision/{first.json()['sha']}", timeout=30)
    assert _files(old) == [".gitattributes", "a.txt"]

    api.create_commit(repo, [CommitOperationDelete("a.txt")], commit_message="drop a")
    assert _files(_info(server, repo, owner.read_token)) == [".gitattributes", "b.txt"]
    # A card committed shows in the index fields at once, at main and not at the older revision.
    api.upload_file(path_or_fileobj=b"---\npipeline_tag: fill-mask\n---\n", path_in_repo="README.md", repo_id=repo)
    assert _info(server, repo, None).json().get("pipeline_tag") == "fill-mask"
    assert "pipeline_tag" not in httpx.get(f"{server.url}/api/models/{repo}/revision/{first.json()['sha']}").json()
    # The model page's rendered card (cached under the head) follows the card's commits too.
    assert "Card one" not in httpx.get(f"{server.url}/{repo}", timeout=30).text
    api.upload_file(path_or_fileobj=b"# Card one\n", path_in_repo="README.md", repo_id=repo)
    assert "Card one" in httpx.get(f"{server.url}/{repo}", timeout=30).text
    api.upload_file(path_or_fileobj=b"# Card two\n", path_in_repo="README.md", repo_id=repo)
    page = httpx.get(f"{server.url}/{repo}", timeout=30).text
    assert "Card two" in page and "Card one" not in page
    # A moved repo: its old id redirects, the new id answers the same files.
    files = _files(_info(server, repo, owner.read_token))
    api.move_repo(from_id=repo, to_id=f"{owner.name}/moved")
    old_id = _info(server, repo, owner.read_token)
    assert old_id.status_code == 307 and old_id.headers["location"].endswith(f"/api/models/{owner.name}/moved")
    assert _files(_info(server, f"{owner.name}/moved", owner.read_token)) == files


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_private_answers_stay_private_and_visibility_changes_at_once(server: LiveServer) -> None:
    owner = server.account("cacheprivate")
    other = server.account("cacheother")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/secret"
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"hidden", path_in_repo="secret.txt", repo_id=repo)
    # The owner's read warms the cache; nobody else gets that answer.
    assert _files(_info(server, repo, owner.read_token)) == [".gitattributes", "secret.txt"]
    assert _info(server, repo, other.read_token).status_code == 404
    assert _info(server, repo, None).status_code == 404
    assert _info(server, repo, other.read_token, blobs="true").status_code == 404
    assert httpx.get(f"{server.url}/{repo}", timeout=30).status_code == 404  # nor its page

    api.update_repo_settings(repo, private=False)
    assert _files(_info(server, repo, None)) == [".gitattributes", "secret.txt"]
    assert _info(server, repo, other.read_token).json()["private"] is False

    api.update_repo_settings(repo, private=True)
    assert _info(server, repo, None).status_code == 404
    assert _info(server, repo, other.read_token).status_code == 404
    assert _info(server, repo, owner.read_token).json()["private"] is True

    api.delete_repo(repo)
    assert _info(server, repo, owner.read_token).status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo)
    # The same id made again is a new repo: none of the old one's files show.
    api.create_repo(repo)
    assert _files(_info(server, repo, owner.read_token)) == [".gitattributes"]
