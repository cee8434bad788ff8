"""Evaluation runs through HTTP, the CLI and the real client: ``POST /api/evaluations`` refuses in words, before any
job exists, what cannot run (a model that does not fit, an invalid ``eval.yaml``, an unknown task, a limit out of
range, a model or benchmark the caller cannot read); a run by the model's owner goes end to end as a compute job and
its result, committed by the hub, reads back verified through ``model_info(expand=["evalResults"])`` with the
accuracy scikit-learn computes in this test on the same rows with the same model; ``hubstead evaluate --follow`` by a
user who cannot write the model opens a pull request; a new ``config.json`` re-queues a ``reevaluate: true`` run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from eval_support import push_benchmark
from support import Account, LiveServer
from train_support import VOCAB, push_model, sentiment_rows, tiny_llama, word_tokenizer

pytestmark = pytest.mark.slow

ROWS = sentiment_rows(20, seed=3)
TICKETS = ("name: Sentiment (20 rows)\nevaluation_framework: hubstead\nreevaluate: {reevaluate}\ntasks:\n"
           "  - id: sentiment\n    split: test\n    metric: accuracy\n    task_type: text-classification\n"
           "    text_column: text\n    label_column: label\n")


def tiny_classifier(folder: Path) -> Path:
    """A tiny BERT with a two-label sequence-classification head (random weights) and its tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(7)
    word_tokenizer(folder)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=0, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny classifier\n")
    return folder


def expected_accuracy(folder: Path) -> float:
    """The accuracy of the model in ``folder`` on :data:`ROWS`, computed here with scikit-learn."""
    import torch
    from sklearn.metrics import accuracy_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        predicted = [int(model(**tokenizer(row["text"], return_tensors="pt")).logits.argmax(-1)) for row in ROWS]
    return float(accuracy_score([row["label"] for row in ROWS], predicted))


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.write_token}"}


@pytest.fixture(scope="module")
def world(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """owner: a tiny classifier, a tiny Llama, a private model, a benchmark that re-evaluates, one that does not,
    one whose eval.yaml is invalid; other: a second user who reads them and writes none."""
    owner = server.account("evalowner")
    other = server.account("evalother")
    root = tmp_path_factory.mktemp("eval-runs")
    ns = owner.name
    classifier = tiny_classifier(root / "clf")
    push_model(server, owner.write_token, f"{ns}/clf", classifier)
    push_model(server, owner.write_token, f"{ns}/llama", tiny_llama(root / "llama"))
    push_model(server, owner.write_token, f"{ns}/secret", classifier)
    HfApi(endpoint=server.url, token=owner.write_token).update_repo_settings(f"{ns}/secret", private=True)
    push_benchmark(server, owner.write_token, f"{ns}/tickets", TICKETS.format(reevaluate="true"), {"test": ROWS})
    push_benchmark(server, owner.write_token, f"{ns}/static", TICKETS.format(reevaluate="false"), {"test": ROWS})
    push_benchmark(server, owner.write_token, f"{ns}/broken", "name: Broken\nevaluation_framework: magic\n",
                   {"test": ROWS})
    return {"owner": owner, "other": other, "ns": ns, "folder": classifier}


def _post(server: LiveServer, account: Account | None, form: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/api/evaluations", json=form, headers=_auth(account) if account else {},
                      timeout=60)


def _wait(server: LiveServer, account: Account, namespace: str, job_id: str, timeout: float = 300) -> dict[str, Any]:
    """The run view once its job ended and the hub wrote (or declined to write) its results."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        view = httpx.get(f"{server.url}/api/evaluations/{namespace}/{job_id}", headers=_auth(account),
                         timeout=30).json()
        if view["finished"] and (view["stage"] != "COMPLETED" or view["results"]
                                 or any("Results not written" in line for line in view["logTail"])):
            return view  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"evaluation {job_id} did not end: {view}")


def test_bad_evaluations_are_refused_before_any_job(server: LiveServer, world: dict[str, Any]) -> None:
    """Each refusal is a 4xx with the Hub's error shape and words a person can act on; no job is queued."""
    owner, other, ns = world["owner"], world["other"], world["ns"]
    cases: list[tuple[Account | None, dict[str, Any], int, str]] = [
        (owner, {"model": f"{ns}/llama", "benchmark": f"{ns}/tickets"}, 400,
         "has no sequence-classification head: task sentiment"),
        (owner, {"model": f"{ns}/clf", "benchmark": f"{ns}/broken"}, 400,
         "evaluation_framework must be one of hubstead, mteb, lm-eval, custom; tasks must be a non-empty list"),
        (owner, {"model": f"{ns}/clf", "benchmark": f"{ns}/tickets", "tasks": ["weather"]}, 400,
         "has no task 'weather' (its tasks: sentiment)"),
        (owner, {"model": f"{ns}/clf", "benchmark": f"{ns}/tickets", "limit": 0}, 400,
         "limit must be a whole number from 1 to 1,000,000"),
        (owner, {"model": f"{ns}/clf", "benchmark": f"{ns}/tickets", "num_fewshot": 99}, 400,
         "num_fewshot must be a whole number from 0 to 25"),
        (other, {"model": f"{ns}/secret", "benchmark": f"{ns}/tickets"}, 404, f"The model {ns}/secret was not found"),
        (other, {"model": f"{ns}/clf", "benchmark": f"{ns}/nothing"}, 404, "was not found"),
        (None, {"model": f"{ns}/clf", "benchmark": f"{ns}/tickets"}, 401, "Evaluating needs a token"),
    ]
    for account, form, status, words in cases:
        answer = _post(server, account, form)
        assert answer.status_code == status, (form, answer.text)
        assert words in answer.headers["X-Error-Message"] and words in answer.json()["error"], answer.text
    for account in (owner, other):
        runs = httpx.get(f"{server.url}/api/evaluations/{account.name}", headers=_auth(account)).json()
        assert runs == []


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # jobs: the suite's time; the hub's
# writes on PostgreSQL are covered by test_eval_index.py and test_leaderboard_api.py
def test_the_owner_s_evaluation_is_committed_and_reads_back_verified(server: LiveServer,
                                                                      world: dict[str, Any]) -> None:
    """The job measures the accuracy scikit-learn computes here; the hub commits it on main (the run view names the
    commit), the client reads the entry back and the API marks it verified; then a new config.json on main makes it
    stale and, the benchmark saying ``reevaluate: true``, queues one new run of the same tasks on the new head."""
    owner, ns = world["owner"], world["ns"]
    api = HfApi(endpoint=server.url, token=owner.write_token)
    answer = _post(server, owner, {"model": f"{ns}/clf", "benchmark": f"{ns}/tickets", "limit": 20})
    assert answer.status_code == 200, answer.text
    started = answer.json()
    assert started["labels"]["hubstead-eval"] == f"{ns}__tickets" and started["status"]["stage"] == "SCHEDULING"
    view = _wait(server, owner, ns, started["jobId"])
    assert view["stage"] == "COMPLETED", view["logTail"]
    expected = expected_accuracy(world["folder"])
    assert view["tasks"][0]["value"] == pytest.approx(expected, abs=1e-9)
    head = api.model_info(f"{ns}/clf").sha
    assert view["resultsUrl"] == f"{server.url}/{ns}/clf/commit/{head}" and view["pullRequest"] is None
    info = api.model_info(f"{ns}/clf", expand=["evalResults"])
    entries = [e for e in info.eval_results or [] if e.dataset_id == f"{ns}/tickets" and e.verify_token]
    assert len(entries) == 1 and entries[0].task_id == "sentiment"
    assert entries[0].value == pytest.approx(expected, abs=1e-9)
    assert entries[0].source_url == f"{server.url}/jobs/{ns}/{started['jobId']}" and entries[0].source_user == ns
    raw = httpx.get(f"{server.url}/api/models/{ns}/clf", params={"expand": "evalResults"},
                    headers=_auth(owner)).json()["evalResults"]
    assert [(e["verified"], e["stale"]) for e in raw if e["filename"] == f".eval_results/{ns}__tickets.yaml"] == [
        (True, False)]
    card = api.model_info(f"{ns}/clf").card_data
    assert card is not None and card.eval_results and card.eval_results[0].metric_value == pytest.approx(expected)

    config = json.loads((world["folder"] / "config.json").read_text())
    api.upload_file(path_or_fileobj=json.dumps({**config, "classifier_dropout": 0.2}).encode(),
                    path_in_repo="config.json", repo_id=f"{ns}/clf")
    new_head = api.model_info(f"{ns}/clf").sha
    runs = httpx.get(f"{server.url}/api/evaluations/{ns}", headers=_auth(owner)).json()
    assert len(runs) == 2 and runs[0]["reevaluates"] == started["jobId"]
    assert runs[0]["modelRevision"] == new_head and runs[0]["limit"] == 20 and runs[0]["benchmark"] == f"{ns}/tickets"
    raw = httpx.get(f"{server.url}/api/models/{ns}/clf", params={"expand": "evalResults"},
                    headers=_auth(owner)).json()["evalResults"]
    assert [e["stale"] for e in raw if e["filename"] == f".eval_results/{ns}__tickets.yaml"] == [True]
    api.cancel_job(job_id=runs[0]["jobId"], namespace=ns)  # the test has seen it queued; no need to run it


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # jobs: the suite's time; the hub's
# writes on PostgreSQL are covered by test_eval_index.py and test_leaderboard_api.py
def test_a_reader_s_evaluation_from_the_cli_opens_a_pull_request(server: LiveServer, world: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    """``hubstead evaluate MODEL BENCHMARK --follow`` by a user who cannot write the model: the results land in a pull
    request authored by that user (its number in the run view and in the command's output), main does not move."""
    owner, other, ns = world["owner"], world["other"], world["ns"]
    api = HfApi(endpoint=server.url, token=owner.write_token)
    before = api.model_info(f"{ns}/clf").sha
    result = subprocess.run(
        [sys.executable, "-m", "hubstead.cli", "evaluate", f"{ns}/clf", f"{ns}/static", "--tasks", "sentiment",
         "--follow", "--endpoint", server.url, "--token", other.write_token],
        capture_output=True, text=True, timeout=400, env={**server.env(), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert api.model_info(f"{ns}/clf").sha == before
    runs = httpx.get(f"{server.url}/api/evaluations/{other.name}", headers=_auth(other)).json()
    number = runs[0]["pullRequest"]
    assert isinstance(number, int)
    assert f"Results proposed in pull request #{number}: {server.url}/{ns}/clf/discussions/{number}" in result.stdout
    pull = api.get_discussion_details(f"{ns}/clf", number)
    assert pull.is_pull_request and pull.author == other.name and pull.status == "open"
    files = api.list_repo_files(f"{ns}/clf", revision=f"refs/pr/{number}")
    assert f".eval_results/{ns}__static.yaml" in files


STEAL = '''import os

from huggingface_hub import HfApi


def compute(predictions, references):
    """A hostile benchmark's metric: it tries to push into the evaluator's own namespace with the job's token."""
    api = HfApi(endpoint=os.environ["HF_ENDPOINT"], token=os.environ["HF_TOKEN"])
    try:
        api.upload_file(path_or_fileobj=b"owned", path_in_repo="owned.txt", repo_id=os.environ["TARGET"])
        return {"pushed": 1.0}
    except Exception:
        return {"pushed": 0.0}
'''


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the job's side: one database is enough
def test_a_benchmark_s_metric_script_cannot_write_with_the_evaluator_s_token(server: LiveServer,
                                                                             world: dict[str, Any]) -> None:
    """An evaluation runs the benchmark author's code (a custom metric script) with the evaluator's job token: the
    token reads (the model and the data load) but cannot write, so the script cannot push into the evaluator's own
    repos; the hub alone writes the results."""
    owner, other, ns = world["owner"], world["other"], world["ns"]
    victim = HfApi(endpoint=server.url, token=other.write_token)
    target = f"{other.name}/victim"
    victim.create_repo(target, exist_ok=True)
    hostile = ("name: Hostile\nevaluation_framework: custom\ntasks:\n  - id: steal\n    split: test\n"
               "    metric: pushed\n    task_type: text-classification\n    text_column: text\n"
               "    label_column: label\n    script: metrics/steal.py\n")
    push_benchmark(server, owner.write_token, f"{ns}/hostile", hostile, {"test": ROWS[:4]})
    HfApi(endpoint=server.url, token=owner.write_token).upload_file(
        path_or_fileobj=STEAL.replace('os.environ["TARGET"]', repr(target)).encode(),
        path_in_repo="metrics/steal.py", repo_id=f"{ns}/hostile", repo_type="dataset")
    answer = _post(server, other, {"model": f"{ns}/clf", "benchmark": f"{ns}/hostile"})
    assert answer.status_code == 200, answer.text
    view = _wait(server, other, other.name, answer.json()["jobId"])
    assert view["stage"] == "COMPLETED", view["logTail"]
    assert view["tasks"][0]["value"] == 0.0
    assert "owned.txt" not in victim.list_repo_files(target)


HANG = '''import time


def compute(predictions, references):
    """A metric script that never answers."""
    while True:
        time.sleep(1)
'''


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the job's side: one database is enough
def test_a_hanging_metric_script_ends_at_the_run_s_timeout(server: LiveServer, world: dict[str, Any]) -> None:
    """A metric script that never returns is ended by the evaluation's timeout: the job ends in ERROR saying so,
    and nothing is written into the model."""
    owner, ns = world["owner"], world["ns"]
    api = HfApi(endpoint=server.url, token=owner.write_token)
    hanging = ("name: Hanging\nevaluation_framework: custom\ntasks:\n  - id: hang\n    split: test\n"
               "    metric: score\n    task_type: text-classification\n    text_column: text\n"
               "    label_column: label\n    script: metrics/hang.py\n")
    push_benchmark(server, owner.write_token, f"{ns}/hanging", hanging, {"test": ROWS[:4]})
    api.upload_file(path_or_fileobj=HANG.encode(), path_in_repo="metrics/hang.py", repo_id=f"{ns}/hanging",
                    repo_type="dataset")
    before = api.model_info(f"{ns}/clf").sha
    answer = _post(server, owner, {"model": f"{ns}/clf", "benchmark": f"{ns}/hanging", "timeout": 20})
    assert answer.status_code == 200, answer.text
    view = _wait(server, owner, ns, answer.json()["jobId"])
    assert view["stage"] == "ERROR" and "time" in (view["message"] or "").lower(), view
    assert view["results"] is None and api.model_info(f"{ns}/clf").sha == before
