"""HfApi calls that failed on the way to a pull request (issue 17, "Also missing on the same path"), through the
real ``huggingface_hub`` client: ``list_lfs_files`` / ``permanently_delete_lfs_files``, the typed not-found
answer for an id without a namespace, ``auth_check`` on a gated repo, and ``InferenceClient`` waiting for a
model to load. The newest client runs in this process; the oldest and a 1.x client run the same calls from
their own venvs (``test_old_clients_*``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seed import auth, commit, create_repo, upload_lfs
from support import LiveServer, last_json, run_client


def _lfs_line(path: str, oid: str, size: int) -> dict[str, object]:
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}


# --- 1. list_lfs_files / permanently_delete_lfs_files -------------------------------------------------------


def test_list_and_permanently_delete_lfs_files(server: LiveServer) -> None:
    """``list_lfs_files`` pages through the repo's LFS objects with filename, ref, size, pushedAt and pusher; only
    writers may list and only admins delete; ``permanently_delete_lfs_files`` drops the repo's reference (a
    download is then a 404 EntryNotFound, never a 500) and removes the bytes only when no other repo holds them."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    alice, bob, carol = server.account("lfsown"), server.account("lfswriter"), server.account("lfsout")
    org = server.unique("lfsorg")
    server.cli("orgs", "create", org, "--owner", alice.name)
    server.cli("orgs", "add-member", org, bob.name, "--role", "write")
    repo_id, other_id = f"{org}/weights", f"{carol.name}/copy"
    create_repo(server, alice.write_token, repo_id, "model", private=False)
    own, shared, on_dev = os.urandom(3000), os.urandom(2000), os.urandom(1000)
    oids = {name: upload_lfs(server, alice.write_token, repo_id, data)
            for name, data in (("own", own), ("shared", shared), ("dev", on_dev))}  # fmt: skip
    commit(server, alice.write_token, "models", repo_id,
           [_lfs_line("ckpt/own.bin", oids["own"], len(own)), _lfs_line("shared.bin", oids["shared"], len(shared))])  # fmt: skip
    branch = httpx.post(f"{server.url}/api/models/{repo_id}/branch/dev", json={}, headers=auth(alice.write_token))
    assert branch.status_code == 200, branch.text
    commit(server, alice.write_token, "models", repo_id, [_lfs_line("dev.bin", oids["dev"], len(on_dev))], "dev")
    # Another repo holds the same bytes as shared.bin (its owner sent them again).
    create_repo(server, carol.write_token, other_id, "model", private=True)
    assert upload_lfs(server, carol.write_token, other_id, shared) == oids["shared"]
    commit(server, carol.write_token, "models", other_id, [_lfs_line("same.bin", oids["shared"], len(shared))])

    api = HfApi(endpoint=server.url, token=alice.write_token)
    listed = {f.filename: f for f in api.list_lfs_files(repo_id)}
    assert set(listed) == {"ckpt/own.bin", "shared.bin", "dev.bin"}
    for name, key, data in (("ckpt/own.bin", "own", own), ("shared.bin", "shared", shared), ("dev.bin", "dev", on_dev)):
        item = listed[name]
        assert item.file_oid == item.oid == oids[key] and item.size == len(data)
        assert isinstance(item.pushed_at, dt.datetime)
        assert abs((dt.datetime.now(dt.UTC) - item.pushed_at).total_seconds()) < 600
        assert item.pusher["user"] == alice.name  # type: ignore[attr-defined]
    assert listed["ckpt/own.bin"].ref == "refs/heads/main" and listed["dev.bin"].ref == "refs/heads/dev"

    # Paging by Link header (the client follows it; one item a page here).
    url, seen = f"{server.url}/api/models/{repo_id}/lfs-files?limit=1", []
    while url:
        page = httpx.get(url, headers=auth(alice.write_token))
        assert page.status_code == 200, page.text
        assert len(page.json()) <= 1
        seen += [item["fileOid"] for item in page.json()]
        url = page.links.get("next", {}).get("url")
    assert sorted(seen) == sorted(oids.values())

    # Who may: a writer lists but may not delete; an outsider and an anonymous caller may do neither.
    writer = HfApi(endpoint=server.url, token=bob.write_token)
    assert {f.filename for f in writer.list_lfs_files(repo_id)} == set(listed)
    with pytest.raises(HfHubHTTPError) as refused:
        writer.permanently_delete_lfs_files(repo_id, [listed["ckpt/own.bin"]])
    assert refused.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as outsider:
        list(HfApi(endpoint=server.url, token=carol.write_token).list_lfs_files(repo_id))
    assert outsider.value.response.status_code == 403
    anonymous = httpx.get(f"{server.url}/api/models/{repo_id}/lfs-files")
    assert anonymous.status_code == 401
    # Bad input: a body without shas, a sha that is not one of the repo's files: refused, nothing deleted.
    batch = f"{server.url}/api/models/{repo_id}/lfs-files/batch"
    assert httpx.post(batch, json={"deletions": {}}, headers=auth(alice.write_token)).status_code == 400
    assert httpx.post(batch, json={"deletions": {"sha": ["nothex"]}}, headers=auth(alice.write_token)).status_code == 400
    unknown = httpx.post(batch, json={"deletions": {"sha": [oids["own"], "ab" * 32]}}, headers=auth(alice.write_token))
    assert unknown.status_code == 404 and unknown.headers["x-error-code"] == "EntryNotFound"
    assert {f.filename for f in api.list_lfs_files(repo_id)} == set(listed)

    api.permanently_delete_lfs_files(repo_id, [listed["ckpt/own.bin"], listed["shared.bin"]])
    assert [f.filename for f in api.list_lfs_files(repo_id)] == ["dev.bin"]
    assert not server.has_blob(oids["own"])  # no other repo referenced it
    assert server.blob_bytes(oids["shared"]) == shared  # carol's repo still does
    with tempfile.TemporaryDirectory() as cache:
        for path in ("ckpt/own.bin", "shared.bin"):
            with pytest.raises(EntryNotFoundError) as gone:
                hf_hub_download(repo_id, path, endpoint=server.url, token=alice.write_token, cache_dir=cache)
            assert gone.value.response.status_code == 404
        kept = hf_hub_download(other_id, "same.bin", endpoint=server.url, token=carol.write_token, cache_dir=cache)
        assert Path(kept).read_bytes() == shared
        dev = hf_hub_download(repo_id, "dev.bin", revision="dev", endpoint=server.url, cache_dir=cache)
        assert Path(dev).read_bytes() == on_dev
    # The git-LFS path agrees: the object is no longer this repo's.
    lfs = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
                     json={"operation": "download", "objects": [{"oid": oids["own"], "size": len(own)}]},
                     headers={"accept": "application/vnd.git-lfs+json"})  # fmt: skip
    assert lfs.json()["objects"][0]["error"]["code"] == 404
    # Sending the bytes again brings the file back (the upload is not skipped: the proof went too).
    again = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
                       json={"operation": "upload", "objects": [{"oid": oids["own"], "size": len(own)}]},
                       headers={**auth(alice.write_token), "accept": "application/vnd.git-lfs+json"})  # fmt: skip
    assert "upload" in again.json()["objects"][0]["actions"]


# --- 2. ids without a namespace -------------------------------------------------------------------------


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_id_without_namespace_is_a_typed_repo_not_found(server: LiveServer, repo_type: str) -> None:
    """``repo_exists`` / ``file_exists`` / ``revision_exists`` / ``*_info`` on ``"gpt2"`` get the Hub's 404 with
    ``X-Error-Code: RepoNotFound`` (so they answer False or raise RepositoryNotFoundError), not a generic 404
    page or a 405."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    user = server.account("nons")
    api = HfApi(endpoint=server.url, token=user.write_token)
    assert api.repo_exists("gpt2", repo_type=repo_type) is False
    assert api.file_exists("gpt2", "config.json", repo_type=repo_type) is False
    assert api.revision_exists("gpt2", "main", repo_type=repo_type) is False
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("gpt2", repo_type=repo_type)
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("gpt2", repo_type=repo_type, revision="v1.0")
    with pytest.raises(RepositoryNotFoundError):
        list(api.list_repo_tree("gpt2", repo_type=repo_type))
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    for method, path in (("GET", f"/api/{repo_type}s/gpt2"), ("GET", f"/api/{repo_type}s/gpt2/revision/main"),
                         ("HEAD", f"/{prefix}gpt2/resolve/main/config.json")):  # fmt: skip
        answer = httpx.request(method, server.url + path)
        assert answer.status_code == 404 and answer.headers.get("x-error-code") == "RepoNotFound", (path, answer.text)
    # A real repo is still found, and a real repo named like an action word keeps its routes.
    real = f"{user.name}/revision"
    assert "revision" in str(api.create_repo(real, repo_type=repo_type, **({"space_sdk": "static"} if repo_type == "space" else {})))
    assert api.repo_exists(real, repo_type=repo_type) and api.revision_exists(real, "main", repo_type=repo_type)
    assert [r.name for r in api.list_repo_refs(real, repo_type=repo_type).branches] == ["main"]


# --- 3. auth_check on a gated repo ----------------------------------------------------------------------


def test_auth_check_on_a_gated_repo_raises_gated_repo_error(server: LiveServer) -> None:
    """``auth_check`` answers the Hub's 403 GatedRepo (``GatedRepoError``) to a user without accepted access,
    passes once access is granted, and passes for the owner (read and write)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    owner, reader = server.account("gateown"), server.account("gatereader")
    repo_id = f"{owner.name}/gated"
    owner_api = HfApi(endpoint=server.url, token=owner.write_token)
    owner_api.create_repo(repo_id)
    owner_api.update_repo_settings(repo_id, gated="manual")
    owner_api.auth_check(repo_id)
    owner_api.auth_check(repo_id, write=True)
    reader_api = HfApi(endpoint=server.url, token=reader.write_token)
    with pytest.raises(GatedRepoError):
        reader_api.auth_check(repo_id)
    with pytest.raises(GatedRepoError):
        HfApi(endpoint=server.url, token=False).auth_check(repo_id)
    asked = httpx.post(f"{server.url}/api/models/{repo_id}/ask-access", headers=auth(reader.write_token))
    assert asked.status_code == 200 and asked.json()["status"] == "pending"
    with pytest.raises(GatedRepoError):
        reader_api.auth_check(repo_id)  # pending is not accepted
    owner_api.update_repo_settings(repo_id, gated="auto")
    assert httpx.post(f"{server.url}/api/models/{repo_id}/ask-access", headers=auth(reader.write_token)).json() == {
        "status": "accepted"
    }
    reader_api.auth_check(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        reader_api.auth_check(f"{owner.name}/missing")


# --- 1-3 through the oldest and a 1.x client --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.30.2", "1.33.0"])
def test_old_clients_lfs_files_namespace_less_ids_and_gated_auth_check(server: LiveServer, env_for, version: str) -> None:
    """The same three gaps through the oldest client we claim and a 1.x one (their own venvs, no Xet)."""
    from client_venvs import client_python

    owner, other = server.account("oldgap"), server.account("oldgapb")
    repo_id, gated_id = f"{owner.name}/lfs", f"{owner.name}/gated"
    result = run_client(
        f"""
        import json, os, tempfile
        import huggingface_hub
        from huggingface_hub import HfApi, hf_hub_download
        assert huggingface_hub.__version__ == {version!r}
        def outcome(fn):
            try:
                return ["ok", fn()]
            except Exception as exc:
                return [type(exc).__name__, getattr(getattr(exc, "response", None), "status_code", None)]
        api, out = HfApi(), {{}}
        api.create_repo("{repo_id}")
        data = os.urandom(4000)
        api.upload_file(path_or_fileobj=data, path_in_repo="w/model.bin", repo_id="{repo_id}")
        files = list(api.list_lfs_files("{repo_id}"))
        out["listed"] = [[f.filename, f.size, f.ref] for f in files]
        api.permanently_delete_lfs_files("{repo_id}", files)
        out["after"] = [f.filename for f in api.list_lfs_files("{repo_id}")]
        out["download"] = outcome(lambda: hf_hub_download("{repo_id}", "w/model.bin", cache_dir=tempfile.mkdtemp()))
        for kind in ("model", "dataset", "space"):
            out["exists_" + kind] = [outcome(lambda: api.repo_exists("gpt2", repo_type=kind)),
                                     outcome(lambda: api.file_exists("gpt2", "config.json", repo_type=kind)),
                                     outcome(lambda: api.revision_exists("gpt2", "main", repo_type=kind))]
        api.create_repo("{gated_id}")
        api.update_repo_settings("{gated_id}", gated="manual")
        out["gated_owner"] = outcome(lambda: api.auth_check("{gated_id}"))
        out["gated_other"] = outcome(lambda: HfApi(token="{other.write_token}").auth_check("{gated_id}"))
        print(json.dumps(out))
        """,
        env_for(owner.write_token),
        python=client_python(version),
    )
    out = last_json(result)
    assert out["listed"] == [["w/model.bin", 4000, "refs/heads/main"]]
    assert out["after"] == [] and out["download"][1] == 404
    assert out["download"][0] in ("EntryNotFoundError", "RemoteEntryNotFoundError")
    for kind in ("model", "dataset", "space"):
        assert out["exists_" + kind][:2] == [["ok", False], ["ok", False]]
        assert out["exists_" + kind][2] in (["ok", False], ["RepositoryNotFoundError", 404])
    assert out["gated_owner"] == ["ok", None]
    assert out["gated_other"] == ["GatedRepoError", 403]


# --- 4. InferenceClient waits for a model to load --------------------------------------------------------


@pytest.fixture()
def tiny_classifier() -> Iterator[Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from inference_models import build

    folder = Path(tempfile.mkdtemp(prefix="hubstead-tiny-classifier-"))
    yield build("text-classification", folder / "model")
    shutil.rmtree(folder, ignore_errors=True)


def _inference_server(**env: str) -> LiveServer:
    root = Path(tempfile.mkdtemp(prefix="hubstead-load-wait-"))
    server = LiveServer(data_dir=root / "data", database_url=None, backend="sqlite",
                        extra_env={"HUBSTEAD_INFERENCE_REPLICAS": "1", "HUBSTEAD_INFERENCE_THREADS": "1", **env})  # fmt: skip
    server.start()
    return server


def _push(server: LiveServer, folder: Path, name: str) -> tuple[str, str]:
    """Push ``folder`` as ``owner/name``; (model URL, token)."""
    from huggingface_hub import HfApi

    user = server.account("infer")
    api = HfApi(endpoint=server.url, token=user.write_token)
    api.create_repo(f"{user.name}/{name}")
    api.upload_folder(folder_path=str(folder), repo_id=f"{user.name}/{name}")
    return f"{server.url}/models/{user.name}/{name}", user.read_token


def test_inference_client_first_call_waits_for_the_load(tiny_classifier: Path) -> None:
    """A model that is not loaded: the newest ``InferenceClient`` (which no longer retries a 503) gets its answer
    on the first call, because the hub waits for the load (default bound 120 s); a raw request that asks not to
    wait (``x-wait-for-model: false``) still gets the Hub's 503 with ``Retry-After``."""
    from huggingface_hub import InferenceClient

    server = _inference_server()
    try:
        url, token = _push(server, tiny_classifier, "cold")
        refused = httpx.post(url, json={"inputs": "hi"}, headers={**auth(token), "x-wait-for-model": "false"})
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1, refused.text
        url2, token2 = _push(server, tiny_classifier, "cold2")
        answer = InferenceClient(model=url2, token=token2).text_classification("I love this movie")
        assert answer and answer[0].label in ("NEGATIVE", "POSITIVE")
    finally:
        server.kill()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def test_inference_load_wait_bound_answers_503_with_retry_after(tiny_classifier: Path) -> None:
    """Past the site's bound (``HUBSTEAD_INFERENCE_LOAD_WAIT``, here 1 s: a worker starting torch takes longer)
    the first call, having waited that long, is a 503 with ``Retry-After``, which the newest ``InferenceClient``
    raises as ``HfHubHTTPError``; the load goes on and a later call is served."""
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    server = _inference_server(HUBSTEAD_INFERENCE_LOAD_WAIT="1")
    try:
        url, token = _push(server, tiny_classifier, "slow")
        client = InferenceClient(model=url, token=token)
        started = time.monotonic()
        with pytest.raises(HfHubHTTPError) as loading:
            client.text_classification("hello")
        assert time.monotonic() - started >= 1.0  # it waited up to the bound, not a 503 at once
        assert loading.value.response.status_code == 503
        assert int(loading.value.response.headers["retry-after"]) >= 1
        assert "loading" in loading.value.response.json()["error"]
        for _ in range(300):
            try:
                assert client.text_classification("hello")[0].label in ("NEGATIVE", "POSITIVE")
                break
            except HfHubHTTPError as exc:
                assert exc.response.status_code == 503
        else:
            raise AssertionError("the model never finished loading")
    finally:
        server.kill()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def test_inference_load_wait_flag_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--inference-load-wait`` (and ``HUBSTEAD_INFERENCE_LOAD_WAIT``) set the bound; 120 s by default; a negative
    or non-numeric value stops the server from starting, in words."""
    from hubstead.cli import _settings, build_parser

    monkeypatch.delenv("HUBSTEAD_INFERENCE_LOAD_WAIT", raising=False)

    def bound(*flags: str) -> float:
        args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path), *flags])
        return _settings(args).inference_load_wait_seconds

    assert bound() == 120.0
    assert bound("--inference-load-wait", "2.5") == 2.5
    monkeypatch.setenv("HUBSTEAD_INFERENCE_LOAD_WAIT", "7")
    assert bound() == 7.0 and bound("--inference-load-wait", "0") == 0.0
    monkeypatch.setenv("HUBSTEAD_INFERENCE_LOAD_WAIT", "soon")
    with pytest.raises(SystemExit, match="Invalid inference setting"):
        bound()
    with pytest.raises(SystemExit, match="0 or more seconds"):
        bound("--inference-load-wait", "-1")
