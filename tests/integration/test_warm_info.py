"""model_info's warm answer (``repos.info_answer``: one query, a body cached under the repo's index row) answers
exactly what the long way answers, and every change to what the answer depends on (a like, a gate, the repo made
private, a move, a space naming the model, a token revoked, an account disabled) is seen by the next request,
however warm the cache."""

from __future__ import annotations

import json

import httpx
from huggingface_hub import HfApi

from support import LiveServer

CARD = b"---\npipeline_tag: text-classification\nlibrary_name: transformers\nlicense: mit\ntags:\n- warm\n---\n# Warm\n"


def _get(server: LiveServer, path: str, token: str | None = None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30, follow_redirects=False)


def _warm(server: LiveServer, path: str, token: str | None = None, **params: str) -> httpx.Response:
    """The answer after the cache has certainly been filled for it (asked twice before)."""
    for _ in range(2):
        _get(server, path, token, **params)
    return _get(server, path, token, **params)


def test_the_warm_answer_is_the_long_ways_answer(server: LiveServer) -> None:
    owner = server.account("warmsame")
    reader = server.account("warmreader")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    model, dataset = f"{owner.name}/m", f"{owner.name}/d"
    api.create_repo(model)
    api.create_repo(dataset, repo_type="dataset")
    api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=model)
    api.upload_file(path_or_fileobj=b"\0" * 2048, path_in_repo="weights.bin", repo_id=model)  # an LFS file
    api.upload_file(path_or_fileobj=b"---\npretty_name: Warm data\n---\n", path_in_repo="README.md",
                    repo_id=dataset, repo_type="dataset")  # fmt: skip

    for plural, repo in (("models", model), ("datasets", dataset)):
        # ``/revision/main`` is answered by the long way (the router's ``info``); the bare URL by the warm one.
        long_way = _get(server, f"/api/{plural}/{repo}/revision/main").json()
        for token in (None, reader.read_token, owner.write_token):
            warm = _warm(server, f"/api/{plural}/{repo}", token)
            assert warm.status_code == 200 and warm.headers["content-type"] == "application/json"
            assert warm.json() == long_way
        long_blobs = _get(server, f"/api/{plural}/{repo}/revision/main", blobs="true").json()
        assert _warm(server, f"/api/{plural}/{repo}", reader.read_token, blobs="true").json() == long_blobs
    warm_model = _warm(server, f"/api/models/{model}").json()
    assert warm_model["pipeline_tag"] == "text-classification" and warm_model["spaces"] == []
    lfs = {s["rfilename"]: s for s in _warm(server, f"/api/models/{model}", blobs="true").json()["siblings"]}
    assert lfs["weights.bin"]["lfs"]["size"] == 2048
    # The client reads it as before; ``expand`` (the long way) still answers only the asked fields.
    assert api.model_info(model).pipeline_tag == "text-classification"
    assert set(_get(server, f"/api/models/{model}", expand="likes").json()) == {"_id", "id", "likes"}
    assert _get(server, f"/api/models/{model}", blobs="maybe").status_code == 400


def test_the_warm_answer_follows_every_change_at_once(server: LiveServer) -> None:
    owner = server.account("warmowner")
    reader = server.account("warmfan")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo = f"{owner.name}/follows"
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=repo)
    path = f"/api/models/{repo}"
    first = _warm(server, path, reader.read_token).json()
    assert first["likes"] == 0 and first["gated"] is False

    assert httpx.post(f"{server.url}/api/models/{repo}/like", headers={"authorization": f"Bearer {reader.write_token}"},
                      timeout=30).status_code == 200  # fmt: skip
    assert _get(server, path, reader.read_token).json()["likes"] == 1

    api.update_repo_settings(repo, gated="auto")
    assert _get(server, path).json()["gated"] == "auto"

    api.upload_file(path_or_fileobj=b"x", path_in_repo="new.txt", repo_id=repo)
    after_commit = _get(server, path, reader.read_token).json()
    assert after_commit["sha"] != first["sha"] and "new.txt" in {s["rfilename"] for s in after_commit["siblings"]}

    # A space that names the model in its card: listed at once (the warm answer steps aside for it).
    space = f"{owner.name}/uses-it"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=f"---\nsdk: gradio\nmodels:\n- {repo}\n---\n".encode(), path_in_repo="README.md",
                    repo_id=space, repo_type="space")  # fmt: skip
    assert _get(server, path).json()["spaces"] == [space]

    # Private: strangers and anonymous callers get the 404 of a missing repo, the owner still reads it.
    api.update_repo_settings(repo, private=True)
    assert _get(server, path).status_code == 404
    assert _get(server, path, reader.read_token).status_code == 404
    assert _get(server, path, owner.read_token).json()["private"] is True
    api.update_repo_settings(repo, private=False)
    assert _warm(server, path, reader.read_token).status_code == 200

    # Moved: the old id redirects, the new id answers under its own name.
    moved = f"{owner.name}/moved"
    api.move_repo(repo, moved)
    old = _get(server, path, reader.read_token)
    assert old.status_code == 307 and old.headers["location"].endswith(f"/api/models/{moved}")
    assert _get(server, f"/api/models/{moved}", reader.read_token).json()["id"] == moved

    # A revoked token and a disabled account are refused on the next request, warm cache or not.
    path = f"/api/models/{moved}"
    assert _warm(server, path, reader.read_token).status_code == 200
    tokens = json.loads(server.cli("tokens", "list", "--user", reader.name, "--json").stdout)
    server.cli("tokens", "revoke", str(next(t["id"] for t in tokens if t["role"] == "read")))
    assert _get(server, path, reader.read_token).status_code == 401
    assert _warm(server, path, reader.write_token).status_code == 200
    server.cli("users", "disable", reader.name)
    assert _get(server, path, reader.write_token).status_code == 401
    assert _get(server, path).status_code == 200  # their public repos and everyone else's stay readable
