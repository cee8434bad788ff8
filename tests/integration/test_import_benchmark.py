"""``hubstead import-benchmark``: an air-gapped site brings a well-known benchmark in from a copied Hugging Face cache
(or a team's own folder with an ``eval.yaml``), and the real client sees a benchmark dataset."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import RepoFile

from hubstead.evals.benchmark import parse_benchmark
from hubstead.evals.catalog import CATALOG
from support import Account, LiveServer, client_env, last_json, run_client

# The import is a CLI over the repo layer (tested on both databases elsewhere): one database is enough here.
pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)

REV = "0123456789abcdef0123456789abcdef01234567"


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def fake_hub_cache(cache: Path, dataset_id: str, files: dict[str, bytes], revision: str = REV) -> Path:
    """The layout ``huggingface_hub`` leaves in ``$HF_HOME/hub``: ``datasets--org--name/blobs/<hash>`` holding the
    bytes, ``snapshots/<rev>/<path>`` relative links to them, ``refs/main`` naming the revision."""
    root = cache / ("datasets--" + dataset_id.replace("/", "--"))
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    snapshot = root / "snapshots" / revision
    for path, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * (path.count("/") + 2)) / "blobs" / blob.name)
    return snapshot


ARC_README = """---
configs:
- config_name: ARC-Challenge
  data_files:
  - split: test
    path: ARC-Challenge/test-*
---
# ai2_arc (a tiny stand-in)
"""
ARC_ROWS = [{"id": f"q{i}", "question": f"Question {i}?", "choices": {"text": ["a", "b", "c", "d"],
             "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[i % 4]} for i in range(6)]
STS_ROWS = [{"sentence1": f"a cat sits {i}", "sentence2": f"a cat is sitting {i}", "score": i / 2} for i in range(8)]


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Account:
    """One site admin for the module's imports (each account costs three CLI runs)."""
    return server.account("benchadmin", admin=True)


def _api(server: LiveServer, token: str) -> HfApi:
    return HfApi(endpoint=server.url, token=token)


def _benchmarks(api: HfApi) -> set[str]:
    return {d.id for d in api.list_datasets(benchmark=True, limit=1000)}


def _wait_benchmark(api: HfApi, repo_id: str) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if repo_id in _benchmarks(api):
            return
        time.sleep(0.3)
    raise AssertionError(f"{repo_id} is not listed by list_datasets(benchmark=True)")


def test_catalog_benchmarks_from_a_copied_hub_cache(server: LiveServer, admin: Account, tmp_path: Path) -> None:
    """ARC-Challenge (parquet) and STSBenchmark (jsonl) are imported from a hub-cache layout into a new org: the
    dataset holds the snapshot's files and the catalog's eval.yaml, is listed as a benchmark, and importing again
    makes no second commit."""
    org = server.unique("benchorg")
    cache = tmp_path / "hub"
    fake_hub_cache(cache, "allenai/ai2_arc", {
        ".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": ARC_README.encode(),
        "ARC-Challenge/test-00000-of-00001.parquet": _parquet(ARC_ROWS),
    })
    fake_hub_cache(cache, "mteb/stsbenchmark-sts", {"test.jsonl": _jsonl(STS_ROWS), "README.md": b"# STS\n"})
    api = _api(server, admin.write_token)
    for name, repo_id, data_file in [("arc-challenge", f"{org}/ai2_arc", "ARC-Challenge/test-00000-of-00001.parquet"),
                                     ("stsbenchmark", f"{org}/stsbenchmark-sts", "test.jsonl")]:
        out = server.cli("import-benchmark", name, "--repo-id", repo_id, "--cache-dir", str(cache),
                         "--user", admin.name).stdout
        assert repo_id in out and REV[:12] in out, out
        files = set(api.list_repo_files(repo_id, repo_type="dataset"))
        assert {"README.md", data_file, "eval.yaml"} <= files, files
        eval_yaml = Path(api.hf_hub_download(repo_id, "eval.yaml", repo_type="dataset", cache_dir=tmp_path / "dl"))
        assert parse_benchmark(eval_yaml.read_bytes()) == parse_benchmark(CATALOG[name].eval_yaml_text())
        data = Path(api.hf_hub_download(repo_id, data_file, repo_type="dataset", cache_dir=tmp_path / "dl"))
        assert data.read_bytes() == (cache / f"datasets--{CATALOG[name].dataset_id.replace('/', '--')}" / "snapshots"
                                     / REV / data_file).read_bytes()
        head = api.dataset_info(repo_id).sha
        again = server.cli("import-benchmark", name, "--repo-id", repo_id, "--cache-dir", str(cache),
                           "--user", admin.name).stdout
        assert "up to date" in again, again
        assert api.dataset_info(repo_id).sha == head
        assert len(api.list_repo_commits(repo_id, repo_type="dataset")) == 2  # the repo's initial commit + the import
    arc = api.list_repo_files(f"{org}/ai2_arc", repo_type="dataset")
    assert ".gitattributes" in arc
    # What lm-eval does with the imported copy: datasets reads the ARC-Challenge config's test split from this hub.
    script = f"""
        import json, datasets
        rows = datasets.load_dataset("{org}/ai2_arc", "ARC-Challenge", split="test")
        print(json.dumps([row["answerKey"] for row in rows]))
    """
    loaded = run_client(script, client_env(server, admin.read_token, tmp_path / "client-home"), timeout=300)
    assert last_json(loaded) == [row["answerKey"] for row in ARC_ROWS]
    _wait_benchmark(api, f"{org}/ai2_arc")
    _wait_benchmark(api, f"{org}/stsbenchmark-sts")


def test_the_default_repo_id_is_the_hub_dataset_id(server: LiveServer, admin: Account, tmp_path: Path) -> None:
    """Without --repo-id the data lands under the Hub's own id (lm-eval's dataset_path for gsm8k), found in
    $HF_HOME/hub like huggingface_hub's cache, with the org created for it; a changed snapshot commits only what
    changed."""
    home = tmp_path / "hf-home"
    rows = [{"question": f"{i} + {i}?", "answer": f"#### {2 * i}"} for i in range(4)]
    fake_hub_cache(home / "hub", "openai/gsm8k", {"main/test-00000-of-00001.parquet": _parquet(rows),
                                                  "README.md": b"# gsm8k\n"})
    env_home = {"HF_HOME": str(home)}
    server.extra_env.update(env_home)
    try:
        out = server.cli("import-benchmark", "gsm8k", "--user", admin.name).stdout
        assert "openai/gsm8k" in out, out
        api = _api(server, admin.write_token)
        info = api.dataset_info("openai/gsm8k", files_metadata=True)
        assert {s.rfilename for s in info.siblings or []} >= {"main/test-00000-of-00001.parquet", "eval.yaml"}
        head = info.sha
        # A newer snapshot (new revision, one file changed): one commit with that file only.
        fake_hub_cache(home / "hub", "openai/gsm8k", {"main/test-00000-of-00001.parquet": _parquet(rows[:2]),
                                                      "README.md": b"# gsm8k\n"}, revision="f" * 40)
        server.cli("import-benchmark", "gsm8k", "--user", admin.name)
        commits = api.list_repo_commits("openai/gsm8k", repo_type="dataset")
        assert commits[1].commit_id == head
        assert commits[0].title.startswith("Import benchmark")
        newest = api.list_repo_tree("openai/gsm8k", repo_type="dataset", recursive=True, expand=True)
        changed = {f.path for f in newest if isinstance(f, RepoFile) and f.last_commit is not None
                   and f.last_commit.oid == commits[0].commit_id}
        assert changed == {"main/test-00000-of-00001.parquet"}, changed
    finally:
        server.extra_env.pop("HF_HOME", None)


def test_a_teams_folder_with_its_own_eval_yaml(server: LiveServer, admin: Account, tmp_path: Path) -> None:
    """A folder of csv/jsonl data and a hand-written eval.yaml becomes a benchmark dataset in the user's namespace;
    importing it again commits nothing."""
    folder = tmp_path / "tickets"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\nmy card broke,card\nwhere is my money,transfer\n")
    (folder / "test.jsonl").write_bytes(_jsonl([{"text": "card lost", "label": "card"}]))
    (folder / "eval.yaml").write_text(yaml.safe_dump({
        "name": "Support tickets", "evaluation_framework": "hubstead",
        "tasks": [{"id": "intent", "split": "test", "metric": "accuracy", "task_type": "text-classification",
                   "text_column": "text", "label_column": "label"}]}))
    repo_id = f"{admin.name}/{server.unique('tickets')}"
    out = server.cli("import-benchmark", str(folder), "--repo-id", repo_id).stdout
    assert "Support tickets" in out, out
    api = _api(server, admin.write_token)
    assert {"train.csv", "test.jsonl", "eval.yaml"} <= set(api.list_repo_files(repo_id, repo_type="dataset"))
    head = api.dataset_info(repo_id).sha
    assert "up to date" in server.cli("import-benchmark", str(folder), "--repo-id", repo_id).stdout
    assert api.dataset_info(repo_id).sha == head
    _wait_benchmark(api, repo_id)
    plain = api.create_repo(f"{admin.name}/{server.unique('plain-data')}", repo_type="dataset").repo_id
    assert plain in {d.id for d in api.list_datasets(author=admin.name)}
    assert plain not in _benchmarks(api)  # only datasets with an eval.yaml are benchmarks


def test_an_invalid_eval_yaml_is_refused_and_nothing_is_created(server: LiveServer, tmp_path: Path) -> None:
    """A folder whose eval.yaml is wrong (or missing) is refused with every reason, and neither the repo nor its
    namespace is created."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "test.csv").write_text("text,label\na,b\n")
    (folder / "eval.yaml").write_text("name: Broken\nevaluation_framework: magic\ntasks: []\n")
    org = server.unique("neverorg")
    repo_id = f"{org}/broken"
    result = server.cli("import-benchmark", str(folder), "--repo-id", repo_id, check=False)
    assert result.returncode == 2
    assert "evaluation_framework must be one of" in result.stderr and "tasks must be a non-empty list" in result.stderr
    api = HfApi(endpoint=server.url, token=False)
    assert not api.repo_exists(repo_id, repo_type="dataset")
    (folder / "eval.yaml").unlink()
    result = server.cli("import-benchmark", str(folder), "--repo-id", repo_id, check=False)
    assert result.returncode == 2 and "has no eval.yaml" in result.stderr, result.stderr
    assert not api.repo_exists(repo_id, repo_type="dataset")
    with pytest.raises(HfHubHTTPError):  # the org the import would have created does not exist either
        api.get_organization_overview(org)


def test_a_catalog_name_whose_data_is_not_in_the_cache(server: LiveServer, tmp_path: Path) -> None:
    """A catalog benchmark missing from the cache is an error naming the folder looked at and how to fetch it on a
    connected machine; an unknown name points at --list."""
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    result = server.cli("import-benchmark", "mmlu-pro", "--cache-dir", str(cache), check=False)
    assert result.returncode == 2
    assert str(cache / "datasets--TIGER-Lab--MMLU-Pro") in result.stderr, result.stderr
    assert "huggingface-cli download --repo-type dataset TIGER-Lab/MMLU-Pro" in result.stderr, result.stderr
    unknown = server.cli("import-benchmark", "no-such-bench", check=False)
    assert unknown.returncode == 2 and "--list" in unknown.stderr, unknown.stderr


def test_list_prints_the_catalog(server: LiveServer) -> None:
    """--list prints every catalog entry with its dataset id, framework and tasks."""
    out = server.cli("import-benchmark", "--list").stdout
    for entry in CATALOG.values():
        assert any(line.split()[:3] == [entry.name, entry.dataset_id, entry.framework] for line in out.splitlines())
