"""The ``mteb`` runner (``hubstead.evals.runners_mteb.run_task``) run as the evaluation program runs it: a
subprocess with this hub's ``HF_ENDPOINT``/``HF_TOKEN`` and a HOME of its own, reading the model and the
benchmark's data from the live test hub. (The runner is called by the real ``python -m hubstead.evals.program``.) The model is a tiny random BERT built from a config (mean pooling).

The hub's database plays no part in a runner, so these run on the SQLite server only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval_support import (
    cache_snapshot,
    foreign_hosts,
    foreign_stacks,
    new_cache_entries,
    push_benchmark,
    run_runner,
    sts_rows,
)
from support import LiveServer
from train_support import push_model, sentiment_rows, tiny_bert

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server", ["sqlite"], indirect=True)]

STS_YAML = """\
name: Tiny STS
evaluation_framework: mteb
tasks:
  - id: sts
    split: test
    metric: cosine_spearman
    mteb_type: STS
    sentence1_column: left
    sentence2_column: right
    score_column: similarity
"""


@pytest.fixture(scope="module")
def hub(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    account = server.account("mteb")
    root = tmp_path_factory.mktemp("mteb-models")
    model = f"{account.name}/tiny-bert"
    folder = tiny_bert(root / "bert")
    push_model(server, account.write_token, model, folder)
    from huggingface_hub import HfApi

    sha = HfApi(endpoint=server.url, token=account.write_token).model_info(model).sha
    return {"account": account, "model": model, "model_sha": sha, "folder": folder, "ns": account.name}


def _spec(hub: dict[str, Any], benchmark: str, sha: str, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": hub["model"], "model_revision": hub["model_sha"], "benchmark": benchmark,
            "benchmark_revision": sha, "framework": "mteb", "tasks": tasks, **extra}


def _task(**options: Any) -> dict[str, Any]:
    base = {"id": "sts", "config": "default", "split": "test", "metric": "cosine_spearman", "higher_is_better": True,
            "baseline": 0.0, "name": None}
    return {**base, **options}


def _expected_spearman(folder: Path, rows: list[dict[str, Any]]) -> float:
    """Spearman correlation of the gold scores with the cosine similarities of the same model's mean-pooled
    embeddings, computed here."""
    import numpy as np
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    left = model.encode([r["left"] for r in rows], convert_to_numpy=True)
    right = model.encode([r["right"] for r in rows], convert_to_numpy=True)
    cos = (left * right).sum(1) / (np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1))
    return float(spearmanr([r["similarity"] for r in rows], cos)[0])


def test_sts_benchmark_scores_spearman_of_cosines(server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """An STS benchmark of 20 pairs (columns named by eval.yaml) evaluated through mteb scores the Spearman
    correlation of cosine similarities computed here with the same model; ``limit`` caps the rows; no cache is
    written outside the job's HOME and the process contacts no host but this hub."""
    rows = sts_rows(20)
    benchmark = f"{hub['ns']}/tiny-sts"
    sha = push_benchmark(server, hub["account"].write_token, benchmark, STS_YAML, {"test": rows})
    sts = _task(mteb_type="STS", sentence1_column="left", sentence2_column="right", score_column="similarity")
    before = cache_snapshot()
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home",
                                        _spec(hub, benchmark, sha, [sts]))
    assert result.returncode == 0 and failed is None, result.stdout[-3000:] + result.stderr[-6000:]
    [score] = scores
    assert score["samples"] == 20
    assert score["value"] == pytest.approx(_expected_spearman(hub["folder"], rows), abs=1e-4)
    assert score["metrics"]["cosine_spearman"] == score["value"]
    assert "cosine_pearson" in score["metrics"]
    assert score["progress"][0] == [0, 20] and score["progress"][-1] == [20, 20]
    assert new_cache_entries(before) == []
    assert (tmp_path / "home" / "connects.log").exists()  # the audit saw the hub
    assert foreign_hosts(server, tmp_path / "home") == [], foreign_stacks(tmp_path / "home")

    limited, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home2",
                                         _spec(hub, benchmark, sha, [sts], limit=12))
    assert limited.returncode == 0, limited.stderr[-4000:]
    assert scores[0]["samples"] == 12
    assert scores[0]["value"] == pytest.approx(_expected_spearman(hub["folder"], rows[:12]), abs=1e-4)


def test_classification_and_bad_columns(server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """A Classification benchmark (train + test splits) gives mteb's accuracy in [0, 1]; a column the benchmark
    does not have is an EvalFailed naming it and the columns there are."""
    yaml = ("name: Tiny sentiment\nevaluation_framework: mteb\ntasks:\n  - id: sentiment\n    split: test\n"
            "    metric: accuracy\n    mteb_type: Classification\n    text_column: text\n    label_column: label\n")
    benchmark = f"{hub['ns']}/tiny-sentiment"
    sha = push_benchmark(server, hub["account"].write_token, benchmark, yaml,
                         {"train": sentiment_rows(40), "test": sentiment_rows(20, seed=1)})
    task = _task(id="sentiment", metric="accuracy", mteb_type="Classification", text_column="text",
                 label_column="label")
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home",
                                        _spec(hub, benchmark, sha, [task]))
    assert result.returncode == 0 and failed is None, result.stdout[-3000:] + result.stderr[-6000:]
    assert 0.0 <= scores[0]["value"] <= 1.0 and scores[0]["metrics"]["accuracy"] == scores[0]["value"]
    assert scores[0]["samples"] == 20

    wrong = {**task, "text_column": "sentence"}
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home2",
                                        _spec(hub, benchmark, sha, [wrong]))
    assert result.returncode == 1 and scores == []
    assert failed is not None and "'sentence'" in failed and "text, label" in failed


def _org_member(server: LiveServer, org: str, user: str) -> None:
    """``user`` may write to ``org`` (created here unless another test made it first)."""
    server.cli("orgs", "create", org, "--owner", user, check=False)
    server.cli("orgs", "add-member", org, user, "--role", "write", check=False)


def test_known_mteb_task_reads_its_dataset_from_this_hub(server: LiveServer, hub: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """``mteb_task: STSBenchmark`` reads ``mteb/stsbenchmark-sts`` from this hub (mteb's pinned revision is not
    here: the benchmark's commit is used) and scores the Spearman correlation computed here; a task whose dataset
    this hub does not hold is an EvalFailed that says to import it."""
    _org_member(server, "mteb", hub["ns"])
    rows = [{"sentence1": r["left"], "sentence2": r["right"], "score": r["similarity"]} for r in sts_rows(16, seed=3)]
    yaml = ("name: STSBenchmark (imported)\nevaluation_framework: mteb\ntasks:\n  - id: stsb\n    split: test\n"
            "    metric: cosine_spearman\n    mteb_task: STSBenchmark\n")
    benchmark = "mteb/stsbenchmark-sts"
    sha = push_benchmark(server, hub["account"].write_token, benchmark, yaml, {"test": rows})
    task = _task(id="stsb", mteb_task="STSBenchmark")
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home",
                                        _spec(hub, benchmark, sha, [task]))
    assert result.returncode == 0 and failed is None, result.stdout[-3000:] + result.stderr[-6000:]
    expected = _expected_spearman(hub["folder"], [{"left": r["sentence1"], "right": r["sentence2"],
                                                   "similarity": r["score"]} for r in rows])
    assert scores[0]["samples"] == 16 and scores[0]["value"] == pytest.approx(expected, abs=1e-4)
    assert foreign_hosts(server, tmp_path / "home") == [], foreign_stacks(tmp_path / "home")

    missing = _task(id="sts12", mteb_task="STS12")
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home2",
                                        _spec(hub, benchmark, sha, [missing]))
    assert result.returncode == 1 and failed is not None
    assert "mteb/sts12-sts" in failed and "does not hold" in failed


def test_an_embeddings_evaluation_through_the_api_is_committed_verified(server: LiveServer, hub: dict[str, Any]) -> None:
    """``POST /api/evaluations`` of the tiny encoder on an mteb STS benchmark runs as a compute job (the runner
    inside ``hubstead.evals.program``), and the hub commits the Spearman correlation computed here into the model's
    ``.eval_results``, read back through ``model_info(expand=["evalResults"])`` as a verified entry."""
    import httpx
    from huggingface_hub import HfApi

    from eval_support import wait_evaluation

    account, ns = hub["account"], hub["ns"]
    rows = sts_rows(20, seed=9)
    benchmark = f"{ns}/tiny-sts-api"
    push_benchmark(server, account.write_token, benchmark, STS_YAML, {"test": rows})
    answer = httpx.post(f"{server.url}/api/evaluations", json={"model": hub["model"], "benchmark": benchmark},
                        headers={"Authorization": f"Bearer {account.write_token}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    view = wait_evaluation(server, account.write_token, ns, answer.json()["jobId"])
    assert view["stage"] == "COMPLETED", view["logTail"]
    expected = _expected_spearman(hub["folder"], rows)
    assert view["tasks"][0]["value"] == pytest.approx(expected, abs=1e-4)
    info = HfApi(endpoint=server.url, token=account.write_token).model_info(hub["model"], expand=["evalResults"])
    entries = [e for e in info.eval_results or [] if e.dataset_id == benchmark and e.verify_token]
    assert len(entries) == 1 and entries[0].task_id == "sts"
    assert entries[0].value == pytest.approx(expected, abs=1e-4)


def test_pair_classification_scores_the_metric_eval_yaml_names(server: LiveServer, hub: dict[str, Any],
                                                               tmp_path: Path) -> None:
    """A PairClassification benchmark whose eval.yaml names ``cosine_ap`` (not mteb's main score, ``max_ap``)
    scores the average precision scikit-learn computes here from the same model's cosine similarities."""
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from sklearn.metrics import average_precision_score

    rows = [{"a": r["left"], "b": r["right"], "same": int(r["similarity"] >= 3)} for r in sts_rows(20, seed=4)]
    assert 0 < sum(r["same"] for r in rows) < 20
    yaml = ("name: Tiny pairs\nevaluation_framework: mteb\ntasks:\n  - id: pairs\n    split: test\n"
            "    metric: cosine_ap\n    mteb_type: PairClassification\n    sentence1_column: a\n"
            "    sentence2_column: b\n    label_column: same\n")
    benchmark = f"{hub['ns']}/tiny-pairs"
    sha = push_benchmark(server, hub["account"].write_token, benchmark, yaml, {"test": rows})
    task = _task(id="pairs", metric="cosine_ap", mteb_type="PairClassification", sentence1_column="a",
                 sentence2_column="b", label_column="same")
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home",
                                        _spec(hub, benchmark, sha, [task]))
    assert result.returncode == 0 and failed is None, result.stdout[-3000:] + result.stderr[-6000:]
    model = SentenceTransformer(str(hub["folder"]), device="cpu")
    left, right = model.encode([r["a"] for r in rows]), model.encode([r["b"] for r in rows])
    cos = (left * right).sum(1) / (np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1))
    expected = float(average_precision_score([r["same"] for r in rows], cos))
    assert scores[0]["value"] == pytest.approx(expected, abs=1e-4)
    assert scores[0]["metrics"]["cosine_ap"] == scores[0]["value"] and "max_ap" in scores[0]["metrics"]
