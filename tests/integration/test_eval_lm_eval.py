"""The ``lm-eval`` runner (``hubstead.evals.runners_lm_eval.run_task``) run as the evaluation program runs it: a
subprocess with this hub's ``HF_ENDPOINT``/``HF_TOKEN`` and a HOME of its own, reading the model and the
benchmark's data from the live test hub. The model is a tiny random Llama built from a config with a word-level
tokenizer built offline; the expected scores are log-likelihoods computed here by hand with the same model.

The hub's database plays no part in a runner, so these run on the SQLite server only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eval_support import choice_rows, foreign_hosts, foreign_stacks, push_benchmark, run_runner
from support import LiveServer
from train_support import VOCAB, push_model, tiny_llama, word_tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server", ["sqlite"], indirect=True)]

INLINE_YAML = """\
name: Where they live
evaluation_framework: lm-eval
tasks:
  - id: places
    split: test
    metric: acc
    doc_to_text: "{{question}}"
    doc_to_choice: "{{choices}}"
    doc_to_target: "{{answer}}"
"""


@pytest.fixture(scope="module")
def hub(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from huggingface_hub import HfApi

    account = server.account("lmeval")
    root = tmp_path_factory.mktemp("lm-eval-models")
    model = f"{account.name}/tiny-llama"
    folder = tiny_llama(root / "llama")
    push_model(server, account.write_token, model, folder)
    sha = HfApi(endpoint=server.url, token=account.write_token).model_info(model).sha
    return {"account": account, "model": model, "model_sha": sha, "folder": folder, "ns": account.name,
            "root": root}


def _spec(hub: dict[str, Any], benchmark: str, sha: str, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": hub["model"], "model_revision": hub["model_sha"], "benchmark": benchmark,
            "benchmark_revision": sha, "framework": "lm-eval", "tasks": tasks, "batch_size": 4, **extra}


def _task(**options: Any) -> dict[str, Any]:
    base = {"id": "places", "config": "default", "split": "test", "metric": "acc", "higher_is_better": True,
            "baseline": 0.25, "name": None}
    return {**base, **options}


def _loglikelihoods(folder: Path, docs: list[tuple[str, list[str]]]) -> list[list[float]]:
    """Each choice's log-likelihood as lm-eval defines it, computed here: the continuation " " + choice scored
    after its context (the tokenizer's BOS first)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    found = []
    for context, choices in docs:
        context_ids = tok(context)["input_ids"]
        lls = []
        for choice in choices:
            whole = tok(context + " " + choice)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([whole[:-1]])).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            lls.append(sum(float(logprobs[i - 1, whole[i]]) for i in range(len(context_ids), len(whole))))
        found.append(lls)
    return found


def _picks(folder: Path, docs: list[tuple[str, list[str]]]) -> tuple[list[int], list[int]]:
    """The choice the model ranks first for each doc: by log-likelihood (acc) and by log-likelihood per character
    of the choice (acc_norm)."""
    picks, picks_norm = [], []
    for (_, choices), lls in zip(docs, _loglikelihoods(folder, docs), strict=True):
        picks.append(max(range(len(choices)), key=lambda i: lls[i]))
        picks_norm.append(max(range(len(choices)), key=lambda i: lls[i] / len(choices[i])))
    return picks, picks_norm


def _answer_some(picks: list[int], right: int) -> list[int]:
    """Answers that make the model right on exactly the first ``right`` docs (a score strictly between 0 and 1,
    so that a runner scoring other log-likelihoods, or none, cannot match it by chance)."""
    return [pick if i < right else (pick + 1) % 4 for i, pick in enumerate(picks)]


def test_inline_multiple_choice_matches_log_likelihoods_by_hand(server: LiveServer, hub: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """An inline multiple-choice benchmark (10 generated questions, templates from eval.yaml) with ``limit=5``
    scores acc over the first 5 questions as log-likelihoods computed here by hand say (the answers are set so
    that the model is right on exactly 3 of them), and acc_norm as the per-character ranking says; progress goes
    from the start to 5 of 5; the process contacts no host but this hub."""
    rows = choice_rows(10)
    docs = [(r["question"], r["choices"]) for r in rows]
    picks, picks_norm = _picks(hub["folder"], docs)
    for row, answer in zip(rows, _answer_some(picks, 3), strict=True):
        row["answer"] = answer
    benchmark = f"{hub['ns']}/places"
    sha = push_benchmark(server, hub["account"].write_token, benchmark, INLINE_YAML, {"test": rows})
    task = _task(doc_to_text="{{question}}", doc_to_choice="{{choices}}", doc_to_target="{{answer}}")
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home",
                                        _spec(hub, benchmark, sha, [task], limit=5))
    assert result.returncode == 0 and failed is None, result.stdout[-3000:] + result.stderr[-6000:]
    [score] = scores
    assert score["samples"] == 5
    assert score["value"] == pytest.approx(3 / 5)
    assert score["metrics"]["acc"] == score["value"]
    norm = sum(picks_norm[i] == rows[i]["answer"] for i in range(5)) / 5
    assert score["metrics"]["acc_norm"] == pytest.approx(norm)
    assert score["progress"][0][0] == 0 and score["progress"][-1] == [5, 5]
    assert (tmp_path / "home" / "connects.log").exists()  # the audit saw the hub
    assert foreign_hosts(server, tmp_path / "home") == [], foreign_stacks(tmp_path / "home")


def _classifier(folder: Path) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    word_tokenizer(folder)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder


def test_a_classifier_on_an_lm_eval_benchmark_fails_in_words(server: LiveServer, hub: dict[str, Any],
                                                            tmp_path: Path) -> None:
    """A text classifier given an lm-eval benchmark is an EvalFailed naming its architecture and what lm-eval
    needs (before any data is read); an inline task whose metric is not acc/acc_norm is refused in words."""
    from huggingface_hub import HfApi

    benchmark = f"{hub['ns']}/places-bad"
    sha = push_benchmark(server, hub["account"].write_token, benchmark, INLINE_YAML, {"test": choice_rows(4)})
    classifier = f"{hub['ns']}/tiny-classifier"
    push_model(server, hub["account"].write_token, classifier, _classifier(hub["root"] / "classifier"))
    classifier_sha = HfApi(endpoint=server.url, token=hub["account"].write_token).model_info(classifier).sha
    task = _task(doc_to_text="{{question}}", doc_to_choice="{{choices}}", doc_to_target="{{answer}}")
    spec = {**_spec(hub, benchmark, sha, [task]), "model": classifier, "model_revision": classifier_sha}
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home", spec)
    assert result.returncode == 1 and scores == []
    assert failed is not None and "BertForSequenceClassification" in failed and "generative" in failed

    wrong = {**task, "metric": "f1"}
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home2",
                                        _spec(hub, benchmark, sha, [wrong]))
    assert result.returncode == 1 and failed is not None and "'f1'" in failed and "acc, acc_norm" in failed


def _arc_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """ARC-shaped rows (id, question, choices {text, label}, answerKey) over the tokenizer's words."""
    return [{"id": f"q{seed}-{i}", "question": r["question"],
             "choices": {"text": r["choices"], "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[r["answer"]]}
            for i, r in enumerate(choice_rows(n, seed=seed))]


def test_stock_arc_easy_reads_allenai_ai2_arc_from_this_hub(server: LiveServer, hub: dict[str, Any],
                                                            tmp_path: Path) -> None:
    """``lm_eval_task: arc_easy`` reads ``allenai/ai2_arc`` (config ARC-Easy) from this hub, pinned at the
    benchmark's commit, with lm-eval's own prompt ("Question: ...\\nAnswer:"), and scores acc as log-likelihoods
    computed here say (answers set so that the model is right on exactly 2 of the 4)."""
    server.cli("orgs", "create", "allenai", "--owner", hub["ns"], check=False)
    server.cli("orgs", "add-member", "allenai", hub["ns"], "--role", "write", check=False)
    yaml = ("name: ARC-Easy (imported)\nevaluation_framework: lm-eval\ntasks:\n  - id: arc_easy\n"
            "    config: ARC-Easy\n    split: test\n    metric: acc\n    lm_eval_task: arc_easy\n")
    test_rows = _arc_rows(6, seed=5)
    prompt: Callable[[dict[str, Any]], str] = lambda r: f"Question: {r['question']}\nAnswer:"  # noqa: E731
    picks, _ = _picks(hub["folder"], [(prompt(r), r["choices"]["text"]) for r in test_rows])
    for row, answer in zip(test_rows, _answer_some(picks, 2), strict=True):
        row["answerKey"] = "ABCD"[answer]
    sha = push_benchmark(server, hub["account"].write_token, "allenai/ai2_arc", yaml,
                         {"train": _arc_rows(4, seed=6), "validation": _arc_rows(4, seed=7), "test": test_rows},
                         config="ARC-Easy")
    task = _task(id="arc_easy", config="ARC-Easy", lm_eval_task="arc_easy")
    # A second benchmark task reading another metric of the same lm-eval task (as IFEval's two levels do) reuses
    # the one run.
    norm = _task(id="arc_easy_norm", config="ARC-Easy", lm_eval_task="arc_easy", metric="acc_norm")
    result, scores, failed = run_runner(server, hub["account"].read_token, tmp_path / "home",
                                        _spec(hub, "allenai/ai2_arc", sha, [task, norm], limit=4), timeout=600)
    assert result.returncode == 0 and failed is None, result.stdout[-3000:] + result.stderr[-6000:]
    assert scores[0]["samples"] == 4 and scores[0]["value"] == pytest.approx(2 / 4)
    assert scores[1]["task_id"] == "arc_easy_norm" and scores[1]["metrics"] == scores[0]["metrics"]
    log = result.stdout + result.stderr
    assert log.count("Running loglikelihood requests: 100%") == 1, log[-6000:]  # lm-eval ran once
    assert foreign_hosts(server, tmp_path / "home") == [], foreign_stacks(tmp_path / "home")


def test_a_generative_evaluation_through_the_api_is_committed_verified(server: LiveServer, hub: dict[str, Any]) -> None:
    """``POST /api/evaluations`` of the tiny Llama on the inline multiple-choice benchmark with ``limit: 4`` runs as
    a compute job and the hub commits acc as computed here by hand (right on exactly 1 of 4), read back through
    ``model_info(expand=["evalResults"])`` as a verified entry."""
    import httpx
    from huggingface_hub import HfApi

    from eval_support import wait_evaluation

    account, ns = hub["account"], hub["ns"]
    rows = choice_rows(6, seed=11)
    picks, _ = _picks(hub["folder"], [(r["question"], r["choices"]) for r in rows])
    for row, answer in zip(rows, _answer_some(picks, 1), strict=True):
        row["answer"] = answer
    benchmark = f"{ns}/places-api"
    push_benchmark(server, account.write_token, benchmark, INLINE_YAML, {"test": rows})
    answer = httpx.post(f"{server.url}/api/evaluations",
                        json={"model": hub["model"], "benchmark": benchmark, "limit": 4},
                        headers={"Authorization": f"Bearer {account.write_token}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    view = wait_evaluation(server, account.write_token, ns, answer.json()["jobId"])
    assert view["stage"] == "COMPLETED", view["logTail"]
    assert view["tasks"][0]["value"] == pytest.approx(1 / 4)
    info = HfApi(endpoint=server.url, token=account.write_token).model_info(hub["model"], expand=["evalResults"])
    entries = [e for e in info.eval_results or [] if e.dataset_id == benchmark and e.verify_token]
    assert len(entries) == 1 and entries[0].task_id == "places" and entries[0].value == pytest.approx(1 / 4)
