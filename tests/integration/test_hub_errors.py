"""Errors that scripts match on say what the Hub says (issue 17, "Also missing on the same path"), through the real
``huggingface_hub`` client: an existing branch or tag, deleting main, tagging an unknown revision, a move onto an
existing repo, a path with ``..``, ``validate-yaml`` (warnings for an empty card header, errors for invalid
metadata) and the request id the client sends coming back in error answers. The newest client runs in this process;
the oldest and a 1.x client run the same calls from their own venvs (``test_old_clients_*``).
"""

from __future__ import annotations

import base64
import json
import warnings

import httpx
import pytest

from seed import auth, create_repo
from support import LiveServer, last_json, run_client


def _head(server: LiveServer, token: str, repo_id: str, repo_type: str = "model") -> str:
    r = httpx.get(f"{server.url}/api/{repo_type}s/{repo_id}/revision/main", headers=auth(token))
    assert r.status_code == 200, r.text
    return str(r.json()["sha"])


def test_existing_branch_and_tag_say_reference_already_exists(server: LiveServer) -> None:
    """Creating a branch or tag that exists is a 409 "Reference refs/heads/NAME already exists" (refs/tags/ for a
    tag), as on the Hub; ``exist_ok=True`` still passes over it."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    owner = server.account("refs")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/refs"
    api.create_repo(repo_id)
    api.create_branch(repo_id, branch="feature/x")
    with pytest.raises(HfHubHTTPError) as branch:
        api.create_branch(repo_id, branch="feature/x")
    assert branch.value.response.status_code == 409
    assert branch.value.server_message == "Reference refs/heads/feature/x already exists"
    api.create_branch(repo_id, branch="feature/x", exist_ok=True)
    api.create_tag(repo_id, tag="v1")
    with pytest.raises(HfHubHTTPError) as tag:
        api.create_tag(repo_id, tag="v1")
    assert tag.value.response.status_code == 409
    assert tag.value.server_message == "Reference refs/tags/v1 already exists"
    api.create_tag(repo_id, tag="v1", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as pr_ref:  # the client's docstring: refs/pr/5 is a bad branch name
        api.create_branch(repo_id, branch="refs/pr/5")
    assert pr_ref.value.response.status_code == 400


def test_deleting_main_says_cannot_delete(server: LiveServer) -> None:
    """``delete_branch("main")`` is a 400 "Cannot delete refs/heads/main" and main stays; any other branch goes."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import BadRequestError

    owner = server.account("delmain")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/keep"
    api.create_repo(repo_id)
    head = _head(server, owner.write_token, repo_id)
    with pytest.raises(BadRequestError) as refused:
        api.delete_branch(repo_id, branch="main")
    assert refused.value.response.status_code == 400
    assert refused.value.server_message == "Cannot delete refs/heads/main"
    assert _head(server, owner.write_token, repo_id) == head
    api.create_branch(repo_id, branch="dev")
    api.delete_branch(repo_id, branch="dev")
    assert [b.name for b in api.list_repo_refs(repo_id).branches] == ["main"]


def test_tag_on_unknown_revision_is_revision_not_found(server: LiveServer) -> None:
    """Tagging a branch or commit the repo does not have raises the client's ``RevisionNotFoundError`` (404 with
    ``X-Error-Code: RevisionNotFound``), and no tag appears."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    owner = server.account("tagrev")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/tags"
    api.create_repo(repo_id)
    for revision in ("no-such-branch", "0" * 40):
        with pytest.raises(RevisionNotFoundError) as missing:
            api.create_tag(repo_id, tag="v1", revision=revision)
        assert missing.value.response.status_code == 404
        assert missing.value.response.headers["x-error-code"] == "RevisionNotFound"
    assert api.list_repo_refs(repo_id).tags == []


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_move_onto_existing_repo_names_its_type(server: LiveServer, repo_type: str) -> None:
    """``move_repo`` onto an id that is taken is a 409 "A model repository called NS/NAME already exists"
    ("dataset"/"space" for the others); both repos stay where they were."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    owner = server.account("move")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    source, target = f"{owner.name}/source", f"{owner.name}/Target"
    sdk = "static" if repo_type == "space" else None
    api.create_repo(source, repo_type=repo_type, space_sdk=sdk)
    api.create_repo(target, repo_type=repo_type, space_sdk=sdk)
    with pytest.raises(HfHubHTTPError) as clash:
        api.move_repo(source, f"{owner.name}/target", repo_type=repo_type)
    assert clash.value.response.status_code == 409
    assert clash.value.server_message == f"A {repo_type} repository called {owner.name}/target already exists"
    assert api.repo_exists(source, repo_type=repo_type) and api.repo_exists(target, repo_type=repo_type)


def _ndjson(lines: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b", "a/.."])
def test_dotdot_path_in_commit_or_preupload_is_422(server: LiveServer, path: str) -> None:
    """A path with a ``..`` segment is a 422 with the Hub's error shape, in a commit (inline or LFS line) and in
    the preupload step, and nothing is written. The newest client refuses such a path itself; older clients and
    other tools send it."""
    from huggingface_hub import CommitOperationAdd

    owner = server.account("dotdot")
    repo_id = f"{owner.name}/paths"
    create_repo(server, owner.write_token, repo_id, "model", private=False)
    before = _head(server, owner.write_token, repo_id)
    header: dict[str, object] = {"key": "header", "value": {"summary": "climb", "description": ""}}
    inline: dict[str, object] = {"key": "file", "value": {"path": path, "content": base64.b64encode(b"x").decode(), "encoding": "base64"}}
    lfs: dict[str, object] = {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": "a" * 64, "size": 1}}
    for line in (inline, lfs):
        r = httpx.post(
            f"{server.url}/api/models/{repo_id}/commit/main",
            content=_ndjson([header, line]),
            headers={**auth(owner.write_token), "content-type": "application/x-ndjson"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"] == r.headers["x-error-message"] and ".." in r.json()["error"]
    pre = httpx.post(
        f"{server.url}/api/models/{repo_id}/preupload/main",
        json={"files": [{"path": path, "sample": "eA==", "size": 1}]},
        headers=auth(owner.write_token),
    )
    assert pre.status_code == 422, pre.text
    assert _head(server, owner.write_token, repo_id) == before
    with pytest.raises(ValueError):
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=b"x")


def test_validate_yaml_warns_on_empty_header_and_refuses_invalid_metadata(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /api/validate-yaml`` as the client reads it: a README without a YAML header (or an empty one) gets a
    ``warnings`` entry, which the client shows as a warning and then commits; invalid metadata (a license the Hub
    does not know, tags that are not strings, YAML that does not parse) is a 400 with ``errors``, which the client
    turns into ``ValueError("Invalid metadata in README.md ...")`` before uploading anything; a valid card passes
    silently. ``RepoCard.validate`` reads the same endpoint."""
    from huggingface_hub import HfApi, ModelCard, constants

    monkeypatch.setattr(constants, "ENDPOINT", server.url)  # RepoCard.validate reads the global endpoint
    owner = server.account("cards")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    repo_id = f"{owner.name}/card"
    api.create_repo(repo_id)
    for readme in (b"# Just a title\n", b"---\n---\n# Empty header\n"):
        with pytest.warns(UserWarning, match="Empty or missing yaml metadata in repo card"):
            api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=repo_id)
        assert _readme(server, owner.write_token, repo_id) == readme
    head = _head(server, owner.write_token, repo_id)
    bad_cards = {
        "---\nlicense: not-a-license\n---\n": '"license" must be one of',
        "---\ntags: {a: b}\n---\n": '"tags"',
        "---\nlicense: [mit, nope]\n---\n": '"license',
        "---\nmodel-index:\n- name: x\n  results: [{task: {}}]\n---\n": '"model-index',
        "---\nlicense: mit\n  bad: [indent\n---\n": "YAML",
    }
    for card, expected in bad_cards.items():
        with pytest.raises(ValueError, match="Invalid metadata in README.md") as refused:
            api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo_id)
        assert expected in str(refused.value), (card, str(refused.value))
    with pytest.raises(ValueError, match='^"license" must be one of'):  # the plain-text answer RepoCard asks for
        ModelCard("---\nlicense: not-a-license\n---\n").validate()
    assert _head(server, owner.write_token, repo_id) == head
    good = (
        "---\nlicense: apache-2.0\nlanguage: [en, fr]\ntags: [text-classification]\npipeline_tag: text-classification\n"
        "model-index:\n- name: tiny\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: imdb, type: imdb}\n    metrics: [{type: accuracy, value: 0.9}]\n---\n# Tiny\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api.upload_file(path_or_fileobj=good.encode(), path_in_repo="README.md", repo_id=repo_id)
        ModelCard(good).validate()
    assert _readme(server, owner.write_token, repo_id) == good.encode()
    answer = httpx.post(f"{server.url}/api/validate-yaml", json={"content": good, "repoType": "model"})
    assert answer.status_code == 200 and answer.json() == {"errors": [], "warnings": []}


def _readme(server: LiveServer, token: str, repo_id: str) -> bytes:
    r = httpx.get(f"{server.url}/{repo_id}/resolve/main/README.md", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.content


def test_error_answers_carry_the_clients_request_id(server: LiveServer) -> None:
    """The client sends ``X-Amzn-Trace-Id`` (a uuid, or the ``X-Request-Id`` a caller set); error answers carry it
    back as ``X-Request-Id`` and the client appends it to the message, so a user's error report names the request.
    An explicit ``X-Request-Id`` wins; with neither header the server makes one up."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    owner = server.account("reqid")
    api = HfApi(endpoint=server.url, token=owner.write_token)
    with pytest.raises(RepositoryNotFoundError) as missing:
        api.repo_info(f"{owner.name}/missing")
    sent = missing.value.response.request.headers["X-Amzn-Trace-Id"]
    assert missing.value.response.headers["x-request-id"] == sent
    assert f"(Request ID: {sent})" in str(missing.value)
    traced = httpx.get(f"{server.url}/api/models/{owner.name}/missing", headers={"X-Amzn-Trace-Id": "Root=1-abc"})
    assert traced.status_code == 404 and traced.headers["x-request-id"] == "Root=1-abc"
    both = httpx.get(
        f"{server.url}/api/models/{owner.name}/missing", headers={"X-Amzn-Trace-Id": "amzn", "X-Request-Id": "mine"}
    )
    assert both.headers["x-request-id"] == "mine"
    made_up = httpx.get(f"{server.url}/api/models/{owner.name}/missing")
    assert len(made_up.headers["x-request-id"]) == 32


def test_unexpected_errors_carry_the_request_id_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 500 from an unexpected exception (answered by Starlette's outermost error middleware, outside the request
    id middleware) still carries the caller's ``X-Request-Id`` and the Hub's error shape."""
    from fastapi.testclient import TestClient

    from hubstead.app import create_app
    from hubstead.config import load_settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(load_settings(data_dir=tmp_path))

    @app.get("/api/test-boom")
    def boom() -> None:
        raise RuntimeError("boom")

    app.router.routes.insert(0, app.router.routes.pop())  # before the catch-all page routes
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/test-boom", headers={"X-Amzn-Trace-Id": "trace-500"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "trace-500"
    assert answer.json()["error"] == answer.headers["x-error-message"] and "boom" not in answer.text


# --- the same through the oldest and a 1.x client --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.30.2", "1.33.0"])
def test_old_clients_see_the_hub_errors(server: LiveServer, env_for, version: str) -> None:  # type: ignore[no-untyped-def]
    """The messages, statuses, validate-yaml and request id through the oldest client we claim and a 1.x one (their
    own venvs): the same exceptions and texts as the newest."""
    from client_venvs import client_python

    owner = server.account("olderr")
    repo_id = f"{owner.name}/errs"
    result = run_client(
        f"""
        import json, warnings
        import huggingface_hub
        from huggingface_hub import HfApi
        assert huggingface_hub.__version__ == {version!r}
        def outcome(fn):
            try:
                fn()
                return ["ok"]
            except Exception as exc:
                response = getattr(exc, "response", None)
                status = getattr(response, "status_code", None)
                sent = response.request.headers.get("X-Amzn-Trace-Id") if response is not None else None
                echoed = response.headers.get("x-request-id") if response is not None else None
                return [type(exc).__name__, status, str(exc), sent == echoed and sent is not None]
        api, out = HfApi(), {{}}
        api.create_repo("{repo_id}")
        api.create_repo("{repo_id}-b")
        api.create_branch("{repo_id}", branch="dev")
        out["branch"] = outcome(lambda: api.create_branch("{repo_id}", branch="dev"))
        api.create_tag("{repo_id}", tag="v1")
        out["tag"] = outcome(lambda: api.create_tag("{repo_id}", tag="v1"))
        out["main"] = outcome(lambda: api.delete_branch("{repo_id}", branch="main"))
        out["unknown"] = outcome(lambda: api.create_tag("{repo_id}", tag="v2", revision="nope"))
        out["move"] = outcome(lambda: api.move_repo("{repo_id}", "{repo_id}-b"))
        out["invalid"] = outcome(lambda: api.upload_file(path_or_fileobj=b"---\\nlicense: nope\\n---\\n",
                                                         path_in_repo="README.md", repo_id="{repo_id}"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            api.upload_file(path_or_fileobj=b"# no header", path_in_repo="README.md", repo_id="{repo_id}")
        out["warned"] = any("Empty or missing yaml metadata" in str(w.message) for w in caught)
        print(json.dumps(out))
        """,
        env_for(owner.write_token),
        python=client_python(version),
    )
    out = last_json(result)
    assert out["branch"][1] == 409 and "Reference refs/heads/dev already exists" in out["branch"][2]
    assert out["tag"][1] == 409 and "Reference refs/tags/v1 already exists" in out["tag"][2]
    assert out["main"][:2] == ["BadRequestError", 400] and "Cannot delete refs/heads/main" in out["main"][2]
    assert out["unknown"][:2] == ["RevisionNotFoundError", 404]
    assert out["move"][1] == 409 and f"A model repository called {repo_id}-b already exists" in out["move"][2]
    assert out["invalid"][0] == "ValueError" and '"license" must be one of' in out["invalid"][2]
    assert out["warned"] is True
    for key in ("branch", "tag", "main", "unknown", "move"):
        assert out[key][3] is True, (key, out[key])
        assert "Request ID:" in out[key][2], (key, out[key])
