"""The Train program (``python -m hubstead.train.program``) run as a compute job runs it: a subprocess with the
hub's URL, a write token, a HOME of its own and the spec in ``HUBSTEAD_TRAIN_SPEC``, against a live hub holding a
tiny base model and a generated dataset. Each run trains a 32-wide model for a few steps (seconds).

The hub's database plays no part in training, so these run on the SQLite server only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from hubstead.train.metrics import parse_metric_lines
from support import Account, LiveServer, last_json, run_client
from train_support import (
    dpo_rows,
    ner_rows,
    pair_rows,
    program_output,
    push_dataset,
    push_model,
    run_program,
    sentiment_rows,
    sft_rows,
    tiny_bert,
    tiny_llama,
)

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server", ["sqlite"], indirect=True)]


@pytest.fixture(scope="module")
def hub(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One account holding the tiny bases and the datasets every test trains on."""
    import datasets

    account = server.account("trainer")
    root = tmp_path_factory.mktemp("train-bases")
    bert, llama = f"{account.name}/tiny-bert", f"{account.name}/tiny-llama"
    push_model(server, account.write_token, bert, tiny_bert(root / "bert"))
    push_model(server, account.write_token, llama, tiny_llama(root / "llama"))
    sentiment = datasets.Features({"text": datasets.Value("string"),
                                   "label": datasets.ClassLabel(names=["negative", "positive"])})
    push_dataset(server, account.write_token, f"{account.name}/sentiment",
                 {"train": sentiment_rows(160), "test": sentiment_rows(40, seed=1)}, sentiment)
    ner = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                             "tags": datasets.List(datasets.ClassLabel(names=["O", "B-PER", "B-LOC"]))})
    push_dataset(server, account.write_token, f"{account.name}/people", {"train": ner_rows(60)}, ner)
    push_dataset(server, account.write_token, f"{account.name}/pairs", {"train": pair_rows(60)})
    push_dataset(server, account.write_token, f"{account.name}/sft", {"train": sft_rows(60)})
    push_dataset(server, account.write_token, f"{account.name}/prefs", {"train": dpo_rows(40)})
    return {"account": account, "bert": bert, "llama": llama, "ns": account.name}


def _spec(hub: dict[str, Any], task: str, base: str, dataset: str, out: str, **extra: Any) -> dict[str, Any]:
    hyper = {"max_steps": 30, "batch_size": 16, "learning_rate": 5e-3, "logging_steps": 5, "eval_steps": 10,
             "save_steps": 10, "max_length": 32}
    hyper.update(extra.pop("hyperparameters", {}))
    return {"task": task, "base_model": base, "dataset": f"{hub['ns']}/{dataset}", "hyperparameters": hyper,
            "output": {"repo_id": f"{hub['ns']}/{out}", **extra.pop("output", {})}, **extra}


def _metrics(stdout: str) -> list[dict[str, Any]]:
    return parse_metric_lines(stdout.splitlines())


def _losses(points: list[dict[str, Any]]) -> list[float]:
    return [p["loss"] for p in points if "loss" in p]


def _client(server: LiveServer, account: Account, home: Path, script: str) -> Any:
    from support import client_env

    return last_json(run_client(script, client_env(server, account.write_token, home)))


def _file(server: LiveServer, account: Account, repo_id: str, path: str, revision: str = "main") -> str:
    api = HfApi(endpoint=server.url, token=account.write_token)
    with open(api.hf_hub_download(repo_id, path, revision=revision, cache_dir=str(Path(os.environ.get(
            "TMPDIR", "/tmp")) / f"train-dl-{os.getpid()}"), force_download=True)) as handle:
        return handle.read()


def test_text_classification_full_fine_tune_pushes_a_model_that_learned(server: LiveServer, hub: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    """A full fine-tune of a tiny BERT on positive/negative sentences (eval on the ``test`` split): the METRIC lines'
    loss goes down, the pushed model loads with AutoModelForSequenceClassification from the hub and predicts the
    held-out pattern better than chance; the card says finetune and carries the final accuracy; the curve is
    there."""
    account = hub["account"]
    spec = _spec(hub, "text-classification", hub["bert"], "sentiment", "sentiment-full", eval_split="test",
                 hyperparameters={"max_steps": 40})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    out = program_output(result)
    points = _metrics(result.stdout)
    losses = _losses(points)
    assert len(losses) >= 4 and min(losses[-2:]) < losses[0], losses
    assert any("eval_accuracy" in p for p in points)
    assert out["revision"] == "main" and out["metrics"]["eval_accuracy"] > 0.6, out
    answer = _client(server, account, tmp_path / "client", f"""
        import json, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        repo = {out['repo_id']!r}
        model = AutoModelForSequenceClassification.from_pretrained(repo, revision="main")
        tok = AutoTokenizer.from_pretrained(repo)
        texts = ["the film was great", "the movie was awful", "it was lovely", "a terrible plot"]
        with torch.no_grad():
            ids = model(**tok(texts, return_tensors="pt", padding=True)).logits.argmax(-1).tolist()
        print(json.dumps({{"labels": [model.config.id2label[i] for i in ids]}}))
    """)
    expected = ["positive", "negative", "positive", "negative"]
    assert sum(a == b for a, b in zip(answer["labels"], expected, strict=True)) >= 3, answer
    card = _file(server, account, out["repo_id"], "README.md")
    assert "base_model_relation: finetune" in card and "hubstead-train" in card and "accuracy" in card
    assert "<svg" in _file(server, account, out["repo_id"], "training_curve.svg")
