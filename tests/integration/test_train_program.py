"""The Train program (``python -m hubstead.train.program``) run as a compute job runs it: a subprocess with the
hub's URL, a write token, a HOME of its own and the spec in ``HUBSTEAD_TRAIN_SPEC``, against a live hub holding a
tiny base model and a generated dataset. Each run trains a 32-wide model for a few steps (seconds).

The hub's database plays no part in training, so these run on the SQLite server only."""

from __future__ import annotations

import os
import re
import signal
import time
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
    start_program,
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


def test_lora_text_classification_pushes_an_adapter_to_a_branch(server: LiveServer, hub: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """LoRA on the same task, pushed to a branch of a new repo: the adapter loads with PeftModel over the base from
    the hub and predicts; the card says ``base_model_relation: adapter`` and ``library_name: peft``."""
    account = hub["account"]
    spec = _spec(hub, "text-classification", hub["bert"], "sentiment", "sentiment-lora", method="lora",
                 eval_split="test", output={"push": "branch", "branch": "lora-run"},
                 hyperparameters={"learning_rate": 2e-2, "lora_r": 4, "lora_alpha": 8})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    out = program_output(result)
    assert out["revision"] == "lora-run"
    answer = _client(server, account, tmp_path / "client", f"""
        import json, torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        base = AutoModelForSequenceClassification.from_pretrained({hub['bert']!r}, num_labels=2)
        model = PeftModel.from_pretrained(base, {out['repo_id']!r}, revision="lora-run")
        tok = AutoTokenizer.from_pretrained({out['repo_id']!r}, revision="lora-run")
        with torch.no_grad():
            logits = model(**tok(["the film was great"], return_tensors="pt")).logits
        print(json.dumps({{"shape": list(logits.shape), "peft": type(model).__name__}}))
    """)
    assert answer == {"shape": [1, 2], "peft": "PeftModelForSequenceClassification"}
    card = _file(server, account, out["repo_id"], "README.md", revision="lora-run")
    assert "base_model_relation: adapter" in card and "library_name: peft" in card


def test_sentence_embeddings_push_a_sentence_transformer(server: LiveServer, hub: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """MultipleNegativesRankingLoss on (anchor, positive) pairs with a 10% holdout: the pushed model loads with
    SentenceTransformer from the hub and encodes; the final retrieval accuracy is reported."""
    account = hub["account"]
    spec = _spec(hub, "sentence-embeddings", hub["bert"], "pairs", "pairs-st",
                 hyperparameters={"max_steps": 12, "batch_size": 8})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    out = program_output(result)
    assert "eval_accuracy" in out["metrics"] and _losses(_metrics(result.stdout))
    answer = _client(server, account, tmp_path / "client", f"""
        import json
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer({out['repo_id']!r})
        print(json.dumps({{"shape": list(model.encode(["a good film", "a bad film"]).shape)}}))
    """)
    assert answer == {"shape": [2, 32]}
    assert "library_name: sentence-transformers" in _file(server, account, out["repo_id"], "README.md")


def test_sft_with_lora_on_a_tiny_llama(server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """SFT (prompt/completion) with LoRA and merge_adapter: the adapter repo and the merged full model repo are both
    pushed; the merged model loads with AutoModelForCausalLM; eval loss and perplexity are reported."""
    account = hub["account"]
    spec = _spec(hub, "sft", hub["llama"], "sft", "sft-lora", method="lora", output={"merge_adapter": True},
                 hyperparameters={"max_steps": 10, "learning_rate": 1e-2, "lora_r": 4, "lora_alpha": 8})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    out = program_output(result)
    assert out["merged_repo_id"] == f"{hub['ns']}/sft-lora-merged"
    assert "eval_perplexity" in out["metrics"] and "eval_loss" in out["metrics"]
    answer = _client(server, account, tmp_path / "client", f"""
        import json
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained({out['merged_repo_id']!r})
        print(json.dumps({{"kind": type(model).__name__}}))
    """)
    assert answer == {"kind": "LlamaForCausalLM"}
    files = HfApi(endpoint=server.url, token=account.write_token).list_repo_files(out["repo_id"])
    assert "adapter_config.json" in files and "training_curve.svg" in files


def test_dpo_on_a_tiny_llama(server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """DPO with LoRA on (prompt, chosen, rejected): trains, reports eval reward accuracy, pushes an adapter."""
    account = hub["account"]
    spec = _spec(hub, "dpo", hub["llama"], "prefs", "dpo-lora", method="lora",
                 hyperparameters={"max_steps": 6, "batch_size": 4, "learning_rate": 1e-2, "lora_r": 4})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    out = program_output(result)
    assert "eval_loss" in out["metrics"] and "eval_rewards/accuracies" in out["metrics"], out
    card = _file(server, account, out["repo_id"], "README.md")
    assert "rewards_accuracies" in card and "base_model_relation: adapter" in card


def test_token_classification_as_a_pull_request(server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """Token classification on (tokens, tags) with ClassLabel tags, pushed as a pull request on an existing repo:
    entity F1 computed by the program is reported, main is untouched, the model on the PR's revision loads with
    AutoModelForTokenClassification and keeps the tag names."""
    account = hub["account"]
    api = HfApi(endpoint=server.url, token=account.write_token)
    repo_id = f"{hub['ns']}/people-ner"
    api.create_repo(repo_id)
    spec = _spec(hub, "token-classification", hub["bert"], "people", "people-ner", hyperparameters={"max_steps": 20},
                 output={"push": "pull-request"})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    out = program_output(result)
    assert {"eval_f1", "eval_precision", "eval_recall"} <= set(out["metrics"]), out
    assert out["revision"].startswith("refs/pr/") and out["pr_url"], out
    assert "config.json" not in api.list_repo_files(repo_id)
    answer = _client(server, account, tmp_path / "client", f"""
        import json
        from transformers import AutoModelForTokenClassification
        model = AutoModelForTokenClassification.from_pretrained({repo_id!r}, revision={out['revision']!r})
        print(json.dumps(sorted(model.config.id2label.values())))
    """)
    assert answer == ["B-LOC", "B-PER", "O"]


def test_a_killed_run_resumes_from_its_last_checkpoint(server: LiveServer, hub: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """SIGKILL after the first checkpoint is written, then the same job (same HOME) again: a checkpoint cut short
    by the kill is discarded and it resumes from the last complete one. SIGTERM on that rerun (the runner's stop)
    saves a checkpoint at the step it stops on and fails without pushing. The third run logs "Resuming from
    checkpoint-N" for that step, its global steps continue past N (none before N is logged again), and it pushes
    (into the empty output repo an attempt stopped between creating and uploading would leave)."""
    account = hub["account"]
    spec = _spec(hub, "text-classification", hub["bert"], "sentiment", "sentiment-resumed", eval_split="test",
                 hyperparameters={"max_steps": 400, "save_steps": 5, "eval_steps": 200, "logging_steps": 5,
                                  "batch_size": 4})
    home = tmp_path / "home"
    process = start_program(server, account.write_token, home, spec, tmp_path / "killed.log")
    deadline = time.time() + 120
    while time.time() < deadline and not list((home / "checkpoints").glob("checkpoint-*/trainer_state.json")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    states = (home / "checkpoints").glob("checkpoint-*/trainer_state.json")
    saved = sorted(int(p.parent.name.split("-")[1]) for p in states)
    assert saved, "no checkpoint was written before the kill"
    torn = home / "checkpoints" / "checkpoint-9999"  # what a kill while a checkpoint is being written leaves
    torn.mkdir(exist_ok=True)
    (torn / "trainer_state.json").write_text('{"global_step": 99')
    # SIGTERM (the runner's stop) on the rerun: the step under way ends, a checkpoint is saved, nothing is pushed.
    log = tmp_path / "stopped.log"
    process = start_program(server, account.write_token, home, spec, log)

    def trained_after_resuming() -> bool:
        text = log.read_text()
        return "Resuming from" in text and '"loss"' in text.split("Resuming from", 1)[1]

    while time.time() < deadline and not trained_after_resuming():
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 1
    text = log.read_text()
    stopped = re.search(r"HUBSTEAD-ERROR stopped by SIGTERM at step (\d+)", text)
    assert stopped and "Discarding incomplete checkpoint-9999" in text and not torn.exists(), text[-3000:]
    at = int(stopped.group(1))
    assert at > saved[-1] and (home / "checkpoints" / f"checkpoint-{at}" / "trainer_state.json").exists()
    assert not HfApi(endpoint=server.url, token=account.write_token).repo_exists(spec["output"]["repo_id"])
    spec["hyperparameters"]["max_steps"] = at + 10
    HfApi(endpoint=server.url, token=account.write_token).create_repo(spec["output"]["repo_id"])
    result = run_program(server, account.write_token, home, spec)
    out = program_output(result)
    resumed = [line for line in result.stdout.splitlines() if line.startswith("Resuming from checkpoint-")]
    assert resumed, result.stdout[-3000:]
    step = int(resumed[0].rsplit("-", 1)[1])
    assert step == at
    points = _metrics(result.stdout)
    steps = [p["step"] for p in points if "loss" in p]
    assert steps and min(steps) > step and max(steps) <= step + 10, (step, steps)
    assert [p["step"] for p in points if "eval_loss" in p][-1] == step + 10  # the final evaluation
    assert out["revision"] == "main"


def test_a_bad_column_fails_in_words_and_pushes_nothing(server: LiveServer, hub: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """A spec naming a column the dataset lacks: exit 1, one ``HUBSTEAD-ERROR`` line naming the column, and no repo
    created."""
    account = hub["account"]
    spec = _spec(hub, "text-classification", hub["bert"], "sentiment", "never-made", columns={"text": "review"})
    result = run_program(server, account.write_token, tmp_path / "home", spec)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("HUBSTEAD-ERROR ")]
    assert len(errors) == 1 and "'review'" in errors[0] and "not in the dataset" in errors[0], result.stderr[-2000:]
    assert not HfApi(endpoint=server.url, token=account.write_token).repo_exists(f"{hub['ns']}/never-made")
    taken = _spec(hub, "text-classification", hub["bert"], "sentiment", "tiny-bert")
    result = run_program(server, account.write_token, tmp_path / "home2", taken)
    assert result.returncode == 1 and "HUBSTEAD-ERROR the output repo" in result.stderr
    assert "already exists" in result.stderr
