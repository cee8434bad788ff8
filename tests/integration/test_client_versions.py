"""The oldest huggingface_hub we claim (0.30.2) and a 1.x release against a live server, each from its own venv.

The newest client is the one in the project venv and is covered by test_hub_api.py. The venvs come from
``client_venvs.client_python`` and hold no ``hf_xet``, so large files travel over the LFS batch API. The scripts use
only calls both generations share; where they differ (``direction`` in ``list_models``, the error class for a missing
remote file) the script branches on the client's major version.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from client_venvs import client_python
from support import LiveServer, last_json, run_client

pytestmark = pytest.mark.slow

VERSIONS = ["0.30.2", "1.33.0"]

# Every script starts with this: the interpreter really holds the pinned client and no Xet, plus a helper that
# names the exception a call raises (class name and HTTP status) instead of letting it escape.
PRELUDE = """
import importlib.util, json, os, sys, tempfile
import huggingface_hub
from huggingface_hub import (HfApi, hf_hub_download, snapshot_download, CommitOperationAdd,
                             CommitOperationDelete, CommitOperationCopy)
from huggingface_hub.errors import (HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError,
                                    EntryNotFoundError, LocalEntryNotFoundError)
assert huggingface_hub.__version__ == {version!r}, huggingface_hub.__version__
assert importlib.util.find_spec("hf_xet") is None, "hf_xet must not be installed in the client venv"
MAJOR = int(huggingface_hub.__version__.split(".")[0])
api = HfApi()
out = {{}}
work = tempfile.mkdtemp()
import atexit, shutil
atexit.register(shutil.rmtree, work, True)

def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as exc:
        response = getattr(exc, "response", None)
        return [type(exc).__name__, getattr(response, "status_code", None)]
"""


@pytest.fixture(params=VERSIONS)
def client(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(version, python of a venv holding exactly that huggingface_hub)."""
    return request.param, client_python(request.param)


def script(version: str, body: str) -> str:
    return PRELUDE.format(version=version) + body


def test_create_upload_commit_and_read_back(server: LiveServer, env_for, client) -> None:
    version, python = client
    user = server.account("old")
    repo, private_repo = f"{user.name}/compat", f"{user.name}/compat-private"
    seed = random.randrange(1 << 30)
    big = random.Random(seed).randbytes(2_000_000)
    result = run_client(
        script(
            version,
            f"""
import random, hashlib
big = random.Random({seed}).randbytes(2_000_000)
out["whoami"] = api.whoami()["name"]
out["url"] = str(api.create_repo("{repo}"))
out["url_again"] = str(api.create_repo("{repo}", exist_ok=True))
out["dup"] = outcome(lambda: api.create_repo("{repo}"))
out["private_url"] = str(api.create_repo("{private_repo}", private=True))
out["private_again"] = str(api.create_repo("{private_repo}", private=True, exist_ok=True))
out["private_flags"] = [api.model_info("{repo}").private, api.model_info("{private_repo}").private]

card = "---\\nlicense: apache-2.0\\ntags: [compat]\\n---\\n# Compat\\n"
readme = api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="{repo}")
api.upload_file(path_or_fileobj=b"small text", path_in_repo="small.txt", repo_id="{repo}")
big_path = os.path.join(work, "model.bin")
open(big_path, "wb").write(big)
lfs_commit = api.upload_file(path_or_fileobj=big_path, path_in_repo="weights/model.bin", repo_id="{repo}",
                             commit_message="weights")
out["lfs_commit_oid"] = lfs_commit.oid
api.upload_file(path_or_fileobj=big_path, path_in_repo="weights/model.bin", repo_id="{private_repo}")

ops = [
    CommitOperationAdd("config.json", json.dumps({{"model_type": "bert"}}).encode()),
    CommitOperationAdd("nested/a/b.txt", b"deep"),
    CommitOperationDelete("small.txt"),
    CommitOperationCopy("weights/model.bin", "weights/copy.bin"),
    CommitOperationCopy("README.md", "docs/README-copy.md"),
]
commit = api.create_commit("{repo}", ops, commit_message="mixed", commit_description="add, delete and copy")
out["commit_oid"] = commit.oid
out["commit_url"] = commit.commit_url

out["files"] = sorted(api.list_repo_files("{repo}"))
def entry(e):
    lfs = getattr(e, "lfs", None)
    if not hasattr(e, "size") or type(e).__name__ == "RepoFolder":
        return ["folder"]
    return ["file", e.size, e.blob_id, lfs.sha256 if lfs else None, lfs.size if lfs else None]
out["tree"] = {{e.path: entry(e) for e in api.list_repo_tree("{repo}", recursive=True)}}
out["top"] = sorted(e.path for e in api.list_repo_tree("{repo}"))
out["weights_dir"] = sorted(e.path for e in api.list_repo_tree("{repo}", path_in_repo="weights"))
out["paths_info"] = {{e.path: entry(e) for e in api.get_paths_info(
    "{repo}", ["weights/model.bin", "config.json", "nested", "does/not/exist.txt"])}}

mi = api.model_info("{repo}", files_metadata=True)
out["info_sha"] = mi.sha
out["siblings"] = {{s.rfilename: [s.size, s.lfs.sha256 if s.lfs else None, s.lfs.size if s.lfs else None]
                    for s in mi.siblings}}
out["card_license"] = mi.card_data.license if mi.card_data else None

out["big_ok"] = open(hf_hub_download("{repo}", "weights/model.bin"), "rb").read() == big
out["copy_ok"] = open(hf_hub_download("{repo}", "weights/copy.bin"), "rb").read() == big
out["readme_copy"] = open(hf_hub_download("{repo}", "docs/README-copy.md"), "rb").read().decode()
out["nested"] = open(hf_hub_download("{repo}", "nested/a/b.txt"), "rb").read().decode()
out["private_big_ok"] = open(hf_hub_download("{private_repo}", "weights/model.bin"), "rb").read() == big
snap = snapshot_download("{repo}")
out["snapshot"] = sorted(os.path.relpath(os.path.join(d, f), snap) for d, _, fs in os.walk(snap) for f in fs)
local = os.path.join(work, "local")
snapshot_download("{repo}", local_dir=local, allow_patterns=["weights/*"])
out["local_dir"] = sorted(os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local)
                          for f in fs if ".cache" not in d)
out["history"] = [c.title for c in api.list_repo_commits("{repo}")]
print(json.dumps(out))
""",
        ),
        env_for(user.write_token),
        python=python,
    )
    out = last_json(result)
    sha = hashlib.sha256(big).hexdigest()
    assert out["whoami"] == user.name
    assert out["url"] == f"{server.url}/{repo}" and out["url_again"] == out["url"]
    assert out["dup"] == ["HfHubHTTPError", 409]
    assert out["private_url"] == f"{server.url}/{private_repo}" and out["private_again"] == out["private_url"]
    assert out["private_flags"] == [False, True]
    assert out["private_big_ok"] is True

    files = [
        ".gitattributes",
        "README.md",
        "config.json",
        "docs/README-copy.md",
        "nested/a/b.txt",
        "weights/copy.bin",
        "weights/model.bin",
    ]
    assert out["files"] == files
    assert len(out["commit_oid"]) == 40 and out["commit_oid"] != out["lfs_commit_oid"]
    assert out["commit_url"].endswith(f"/{repo}/commit/{out['commit_oid']}")
    assert out["info_sha"] == out["commit_oid"]

    tree = out["tree"]
    assert set(tree) == set(files) | {"docs", "nested", "nested/a", "weights"}
    assert tree["weights"] == tree["nested"] == tree["nested/a"] == ["folder"]
    for path in ("weights/model.bin", "weights/copy.bin"):
        kind, size, _blob, lfs_sha, lfs_size = tree[path]
        assert (kind, size, lfs_sha, lfs_size) == ("file", 2_000_000, sha, 2_000_000), path
    assert tree["config.json"][:2] == ["file", len('{"model_type": "bert"}')] and tree["config.json"][3] is None
    assert tree["docs/README-copy.md"][2] == tree["README.md"][2]  # a copy is the same git blob
    assert out["top"] == sorted([".gitattributes", "README.md", "config.json", "docs", "nested", "weights"])
    assert out["weights_dir"] == ["weights/copy.bin", "weights/model.bin"]
    assert out["paths_info"] == {p: tree[p] for p in ("weights/model.bin", "config.json", "nested")}

    siblings = out["siblings"]
    assert set(siblings) == set(files)
    assert siblings["weights/model.bin"] == siblings["weights/copy.bin"] == [2_000_000, sha, 2_000_000]
    assert siblings["nested/a/b.txt"] == [4, None, None]
    assert out["card_license"] == "apache-2.0"

    assert out["big_ok"] is True and out["copy_ok"] is True
    assert out["readme_copy"].startswith("---\nlicense: apache-2.0") and out["nested"] == "deep"
    assert out["snapshot"] == files
    assert out["local_dir"] == ["weights/copy.bin", "weights/model.bin"]
    assert out["history"][:4] == [
        "mixed",
        "weights",
        "Upload small.txt with huggingface_hub",
        "Upload README.md with huggingface_hub",
    ]
    assert out["history"][-1] == "initial commit"


def test_refs_revisions_and_error_mapping(server: LiveServer, env_for, client) -> None:
    version, python = client
    user = server.account("refs")
    repo = f"{user.name}/revs"
    result = run_client(
        script(
            version,
            f"""
api.create_repo("{repo}")
first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="{repo}", commit_message="one").oid
api.create_branch("{repo}", branch="dev")
api.create_branch("{repo}", branch="dev", exist_ok=True)
out["dup_branch"] = outcome(lambda: api.create_branch("{repo}", branch="dev"))
dev = api.upload_file(path_or_fileobj=b"v2-dev", path_in_repo="f.txt", repo_id="{repo}", revision="dev",
                      commit_message="two on dev").oid
api.create_tag("{repo}", tag="v1.0", revision=first, tag_message="first release")
api.create_tag("{repo}", tag="light", revision="dev")
api.create_branch("{repo}", branch="from-tag", revision="v1.0")
out["dup_tag"] = outcome(lambda: api.create_tag("{repo}", tag="v1.0"))
out["first"], out["dev"] = first, dev

refs = api.list_repo_refs("{repo}")
out["branches"] = {{b.name: b.target_commit for b in refs.branches}}
out["tags"] = {{t.name: t.target_commit for t in refs.tags}}
out["commits_main"] = [[c.commit_id, c.title] for c in api.list_repo_commits("{repo}")]
out["commits_dev"] = [c.title for c in api.list_repo_commits("{repo}", revision="dev")]

read = lambda rev: open(hf_hub_download("{repo}", "f.txt", revision=rev), "rb").read().decode()
out["reads"] = {{rev: read(rev) for rev in ["main", "dev", "v1.0", "light", "from-tag", first, first[:7], dev[:7]]}}
out["info_dev_sha"] = api.model_info("{repo}", revision="dev").sha
out["info_tag_sha"] = api.model_info("{repo}", revision="v1.0").sha
out["files_at_short"] = api.list_repo_files("{repo}", revision=dev[:7])

def remote_missing_file():
    hf_hub_download("{repo}", "missing.txt")
out["missing_repo_info"] = outcome(lambda: api.model_info("{user.name}/nope"))
out["missing_repo_download"] = outcome(lambda: hf_hub_download("{user.name}/nope", "f.txt"))
out["missing_repo_files"] = outcome(lambda: api.list_repo_files("{user.name}/nope"))
out["bad_rev_download"] = outcome(lambda: hf_hub_download("{repo}", "f.txt", revision="nope"))
out["bad_rev_info"] = outcome(lambda: api.model_info("{repo}", revision="nope"))
out["bad_rev_tree"] = outcome(lambda: api.list_repo_files("{repo}", revision="nope"))
out["missing_file"] = outcome(remote_missing_file)
out["missing_file_is_entry"] = False
try:
    remote_missing_file()
except EntryNotFoundError as exc:
    out["missing_file_is_entry"] = not isinstance(exc, LocalEntryNotFoundError)

api.delete_branch("{repo}", branch="dev")
api.delete_tag("{repo}", tag="light")
refs = api.list_repo_refs("{repo}")
out["after"] = [sorted(b.name for b in refs.branches), sorted(t.name for t in refs.tags)]
print(json.dumps(out))
""",
        ),
        env_for(user.write_token),
        python=python,
    )
    out = last_json(result)
    first, dev = out["first"], out["dev"]
    assert out["dup_branch"] == ["HfHubHTTPError", 409]
    assert out["dup_tag"] == ["HfHubHTTPError", 409]
    assert out["branches"] == {"main": first, "dev": dev, "from-tag": first}
    assert out["tags"] == {"v1.0": first, "light": dev}
    assert out["commits_main"][0] == [first, "one"] and out["commits_main"][-1][1] == "initial commit"
    assert out["commits_dev"][:2] == ["two on dev", "one"]
    assert out["reads"] == {
        "main": "v1",
        "dev": "v2-dev",
        "v1.0": "v1",
        "light": "v2-dev",
        "from-tag": "v1",
        first: "v1",
        first[:7]: "v1",
        dev[:7]: "v2-dev",
    }
    assert out["info_dev_sha"] == dev and out["info_tag_sha"] == first
    assert sorted(out["files_at_short"]) == [".gitattributes", "f.txt"]

    assert out["missing_repo_info"] == ["RepositoryNotFoundError", 404]
    assert out["missing_repo_download"] == ["RepositoryNotFoundError", 404]
    assert out["missing_repo_files"] == ["RepositoryNotFoundError", 404]
    assert out["bad_rev_download"] == ["RevisionNotFoundError", 404]
    assert out["bad_rev_info"] == ["RevisionNotFoundError", 404]
    assert out["bad_rev_tree"] == ["RevisionNotFoundError", 404]
    remote_entry = "EntryNotFoundError" if version.startswith("0.") else "RemoteEntryNotFoundError"
    assert out["missing_file"] == [remote_entry, 404]
    assert out["missing_file_is_entry"] is True
    assert out["after"] == [["from-tag", "main"], ["v1.0"]]


def test_list_models_search_author_and_sort_by_downloads(server: LiveServer, env_for, client) -> None:
    version, python = client
    user = server.account("search")
    tag = server.unique("needle")
    repos = [f"{user.name}/{tag}-{suffix}" for suffix in ("rare", "popular", "medium")]
    downloads = {repos[0]: 0, repos[1]: 3, repos[2]: 1}
    result = run_client(
        script(
            version,
            f"""
repos, downloads = {repos!r}, {downloads!r}
for repo in repos:
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b'{{"model_type": "gpt2"}}', path_in_repo="config.json", repo_id=repo)
    for _ in range(downloads[repo]):
        hf_hub_download(repo, "config.json", force_download=True)
api.create_repo("{user.name}/unrelated")
out["info_downloads"] = {{repo: api.model_info(repo).downloads for repo in repos}}
sort_kwargs = {{"sort": "downloads", "direction": -1}} if MAJOR == 0 else {{"sort": "downloads"}}
out["by_downloads"] = [[m.id, m.downloads] for m in
                       api.list_models(search="{tag}-", author="{user.name}", **sort_kwargs)]
out["limited"] = [m.id for m in api.list_models(author="{user.name}", search="{tag}-", limit=1, **sort_kwargs)]
out["search_only"] = sorted(m.id for m in api.list_models(search="{tag}-"))
out["author_only"] = sorted(m.id for m in api.list_models(author="{user.name}"))
out["nothing"] = [m.id for m in api.list_models(search="{tag}-absent", author="{user.name}")]
print(json.dumps(out))
""",
        ),
        env_for(user.write_token),
        python=python,
    )
    out = last_json(result)
    rare, popular, medium = repos
    assert out["search_only"] == sorted(repos)
    assert out["author_only"] == sorted([*repos, f"{user.name}/unrelated"])
    assert out["nothing"] == []
    # The Hub counts downloads server-side from the requests for config.json; no client header is needed for it.
    assert out["info_downloads"] == downloads
    assert out["by_downloads"] == [[popular, 3], [medium, 1], [rare, 0]]
    assert out["limited"] == [popular]


def test_private_toggle_and_delete(server: LiveServer, env_for, client) -> None:
    version, python = client
    user = server.account("settings")
    target, other = f"{user.name}/toggled", f"{user.name}/stays"
    result = run_client(
        script(
            version,
            f"""
target = "{target}"
api.create_repo(target)
api.create_repo("{other}")
api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=target)
anon = HfApi(token=False)
api.update_repo_settings(target, private=True)
out["private_after_set"] = api.model_info(target).private
out["anon_private_info"] = outcome(lambda: anon.model_info(target))
out["anon_private_download"] = outcome(lambda: hf_hub_download(target, "x.txt", token=False))
out["anon_list_private"] = sorted(m.id for m in anon.list_models(author="{user.name}"))
out["owner_list_private"] = sorted(m.id for m in api.list_models(author="{user.name}"))
api.update_repo_settings(target, private=False)
out["private_after_unset"] = api.model_info(target).private
out["anon_public_info"] = anon.model_info(target).id
out["anon_public_download"] = open(hf_hub_download(target, "x.txt", token=False), "rb").read().decode()

api.delete_repo(target)
out["deleted_info"] = outcome(lambda: api.model_info(target))
out["deleted_download"] = outcome(lambda: hf_hub_download(target, "x.txt", cache_dir=os.path.join(work, "fresh")))
out["delete_again"] = outcome(lambda: api.delete_repo(target))
out["delete_missing_ok"] = outcome(lambda: api.delete_repo(target, missing_ok=True))
out["after_delete"] = sorted(m.id for m in api.list_models(author="{user.name}"))
out["recreated"] = outcome(lambda: api.create_repo(target))
out["recreated_files"] = sorted(api.list_repo_files(target))
print(json.dumps(out))
""",
        ),
        env_for(user.write_token),
        python=python,
    )
    out = last_json(result)
    assert out["private_after_set"] is True
    for key in ("anon_private_info", "anon_private_download"):
        assert out[key][0] == "RepositoryNotFoundError" and out[key][1] in (401, 404), key
    assert out["anon_list_private"] == [other]
    assert out["owner_list_private"] == sorted([target, other])
    assert out["private_after_unset"] is False
    assert out["anon_public_info"] == target and out["anon_public_download"] == "x"
    assert out["deleted_info"] == ["RepositoryNotFoundError", 404]
    assert out["deleted_download"] == ["RepositoryNotFoundError", 404]
    assert out["delete_again"] == ["RepositoryNotFoundError", 404]
    assert out["delete_missing_ok"] == "ok"
    assert out["after_delete"] == [other]
    assert out["recreated"] == "ok" and out["recreated_files"] == [".gitattributes"]


def test_eval_results_and_leaderboards(server: LiveServer, env_for, client) -> None:
    """Each claimed client writes results the ways it can (a card with ``model-index``, a ``.eval_results``
    file) and reads them back: the card's ``eval_results`` on every version; on clients that have
    them, ``model_info(expand=["evalResults"])``, ``list_datasets(benchmark=True)`` and
    ``get_dataset_leaderboard``."""
    version, python = client
    user = server.account("evalclient")
    bench, model = f"{user.name}/bench", f"{user.name}/model"
    result = run_client(
        script(
            version,
            f"""
from huggingface_hub import metadata_update
bench, model = {bench!r}, {model!r}
api.create_repo(bench, repo_type="dataset")
api.upload_file(path_or_fileobj=b"name: Bench\\nevaluation_framework: hubstead\\ntasks:\\n  - id: t\\n    split: test\\n"
                b"    metric: accuracy\\n    task_type: text-classification\\n    text_column: text\\n"
                b"    label_column: label\\n", path_in_repo="eval.yaml", repo_id=bench, repo_type="dataset")
api.create_repo(model)
api.upload_file(path_or_fileobj=b"- dataset: {{id: %s, task_id: t}}\\n  value: 0.75\\n" % bench.encode(),
                path_in_repo=".eval_results/bench.yaml", repo_id=model)
# A card first: with none, metadata_update builds one from a Jinja2 template (not installed in the client venvs).
api.upload_file(path_or_fileobj=b"---\\nlicense: mit\\n---\\n# Model\\n", path_in_repo="README.md", repo_id=model)
index = {{"model-index": [{{"name": "model", "results": [{{
    "task": {{"type": "text-classification"}}, "dataset": {{"name": "Other", "type": "{user.name}/other"}},
    "metrics": [{{"type": "accuracy", "value": 0.5}}]}}]}}]}}
# Before 2.x, metadata_update's RepoCard.validate posts to https://huggingface.co/api/validate-yaml whatever the
# endpoint (a client bug offline); 2.x posts to the hub (test_eval_index.py covers it).
if MAJOR < 2:
    header = json.dumps({{"license": "mit", **index}})  # JSON is YAML
    api.upload_file(path_or_fileobj=("---\\n" + header + "\\n---\\n# Model\\n").encode(), path_in_repo="README.md",
                    repo_id=model)
else:
    metadata_update(model, index, overwrite=True)
card = api.model_info(model).card_data
out["card"] = [[r.dataset_type, r.metric_value] for r in (card.eval_results or [])]
if hasattr(api, "get_dataset_leaderboard"):
    info = api.model_info(model, expand=["evalResults"])
    out["evalResults"] = sorted([e.dataset_id, e.task_id, e.value] for e in info.eval_results)
    out["benchmarks"] = [d.id for d in api.list_datasets(author="{user.name}", benchmark=True)]
    out["board"] = [[e.rank, e.model_id, e.value, e.verified] for e in api.get_dataset_leaderboard(bench)]
print(json.dumps(out))
""",
        ),
        env_for(user.write_token),
        python=python,
    )
    out = last_json(result)
    assert out["card"] == [[f"{user.name}/other", 0.5]]
    if version != "0.30.2":
        assert out["evalResults"] == [[bench, "t", 0.75], [f"{user.name}/other", "default", 0.5]]
        assert out["benchmarks"] == [bench]
        assert out["board"] == [[1, model, 0.75, False]]
