"""``python -m hubstead.evals.program``, run as a compute job runs it (a subprocess whose ``HF_ENDPOINT`` and
``HF_TOKEN`` are the live test hub's, with a HOME of its own): tiny classifiers built from configs and a 20-row
generated benchmark (with its ``eval.yaml``) pushed to the hub; the ``HUBSTEAD-EVAL`` lines' scores are checked
against the same metrics computed in the test by running the same model on the same rows; a team's metric script
scores predictions (exact match of generated text, and of label names); a script that crashes and a column the
split lacks end the job with a ``HUBSTEAD-ERROR`` line naming the cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from hubstead.evals.benchmark import parse_benchmark
from hubstead.evals.spec import EVAL_MARK, PROGRESS_MARK, read_marks
from support import LiveServer
from train_support import ner_rows, push_model, sentiment_rows, tiny_llama, word_tokenizer

# The program is the job process: it talks to the hub over HTTP only, so one database is enough here (the hub's side
# of an evaluation runs on both in test_eval_runs.py).
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server", ["sqlite"], indirect=True)]

LABELS = ["negative", "positive"]
TAGS = ["O", "B-PER", "B-LOC"]
ROWS = 20

EVAL_YAML = """\
name: Tiny program benchmark
evaluation_framework: hubstead
tasks:
  - id: sentiment
    split: test
    metric: accuracy
    task_type: text-classification
    text_column: text
    label_column: label
  - id: ner
    config: ner
    split: test
    metric: overall_f1
    task_type: token-classification
    tokens_column: tokens
    tags_column: tags
"""

EXACT_MATCH = """\
def compute(predictions, references):
    hits = [p.strip() == str(r).strip() for p, r in zip(predictions, references)]
    return {"exact_match": sum(hits) / len(hits), "count": len(hits)}
"""

CRASH = """\
def compute(predictions, references):
    raise RuntimeError("the metric's own bug at row 7")
"""


def _tiny_classifier(folder: Path, kind: str) -> Path:
    """A tiny BERT with a sequence- or token-classification head (random weights, seed 0), its label names in the
    config, and the word tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

    from train_support import VOCAB

    torch.manual_seed(0)
    tokenizer = word_tokenizer(folder)
    names = LABELS if kind == "text" else TAGS
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
                        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    model_class = BertForSequenceClassification if kind == "text" else BertForTokenClassification
    model = model_class(config)
    _fit(model, tokenizer, kind, steps=12 if kind == "text" else 3)
    model.save_pretrained(str(folder))
    return folder


def _fit(model: Any, tokenizer: Any, kind: str, steps: int = 12) -> None:
    """A few optimiser steps on other generated rows (seed 0; the benchmark's are seeds 1 and 2), so the model is
    partly right: neither constant nor perfect, and a wrong score cannot match by chance."""
    import torch

    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    if kind == "text":
        rows = sentiment_rows(40, seed=0)
        enc = tokenizer([row["text"] for row in rows], padding=True, return_tensors="pt")
        labels = torch.tensor([row["label"] for row in rows])
    else:
        rows = ner_rows(40, seed=0)
        enc = tokenizer([row["tokens"] for row in rows], is_split_into_words=True, padding=True, return_tensors="pt")
        labels = torch.full(enc["input_ids"].shape, -100)
        for i, row in enumerate(rows):
            for position, word in enumerate(enc.word_ids(batch_index=i)):
                if word is not None:
                    labels[i, position] = row["tags"][word]
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        model(**enc, labels=labels).loss.backward()
        optimiser.step()
    model.eval()


def _generation_rows(n: int) -> list[dict[str, Any]]:
    rows = sentiment_rows(n, seed=3)
    return [{"prompt": row["text"], "answer": "answer yes" if i % 3 else "", "gold": LABELS[row["label"]]}
            for i, row in enumerate(rows)]


@pytest.fixture(scope="module")
def hub(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An account with a tiny text classifier, token classifier and causal LM, and a benchmark dataset of three
    configs, each a ``test`` split: ``default`` (text, ClassLabel label), ``ner`` (tokens, ClassLabel tags), ``gen``
    (prompt, answer), with its ``eval.yaml`` and two metric scripts."""
    import datasets

    account = server.account("evalprog")
    root = tmp_path_factory.mktemp("eval-program")
    ns = account.name
    api = HfApi(endpoint=server.url, token=account.write_token)
    folders = {"text": _tiny_classifier(root / "text", "text"), "ner": _tiny_classifier(root / "ner", "ner"),
               "llama": tiny_llama(root / "llama")}
    shas = {}
    for key, folder in folders.items():
        push_model(server, account.write_token, f"{ns}/tiny-{key}", folder)
        shas[key] = api.model_info(f"{ns}/tiny-{key}").sha
    benchmark = f"{ns}/tiny-bench"
    api.create_repo(benchmark, repo_type="dataset")
    text = sentiment_rows(ROWS, seed=1)
    ner = ner_rows(ROWS, seed=2)
    with tempfile.TemporaryDirectory(prefix="hubstead-eval-program-") as tmp:
        data = Path(tmp) / "data"
        for folder in ("data", "ner", "gen"):
            (Path(tmp) / folder).mkdir()
        configs = "".join(f"- config_name: {name}\n  data_files:\n  - split: test\n    path: {folder}/test.parquet\n"
                          for name, folder in (("default", "data"), ("ner", "ner"), ("gen", "gen")))
        (Path(tmp) / "README.md").write_text(f"---\nconfigs:\n{configs}---\n# Tiny program benchmark\n")
        text_features = datasets.Features({"text": datasets.Value("string"),
                                           "label": datasets.ClassLabel(names=LABELS)})
        datasets.Dataset.from_list(text, features=text_features).to_parquet(str(data / "test.parquet"))
        ner_features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                          "tags": datasets.Sequence(datasets.ClassLabel(names=TAGS))})
        datasets.Dataset.from_list(ner, features=ner_features).to_parquet(str(Path(tmp) / "ner" / "test.parquet"))
        datasets.Dataset.from_list(_generation_rows(ROWS)).to_parquet(str(Path(tmp) / "gen" / "test.parquet"))
        (Path(tmp) / "eval.yaml").write_text(EVAL_YAML)
        (Path(tmp) / "metrics").mkdir()
        (Path(tmp) / "metrics" / "exact_match.py").write_text(EXACT_MATCH)
        (Path(tmp) / "metrics" / "crash.py").write_text(CRASH)
        info = api.upload_folder(repo_id=benchmark, repo_type="dataset", folder_path=tmp)
    return {"account": account, "ns": ns, "folders": folders, "shas": shas, "benchmark": benchmark,
            "benchmark_sha": str(info.oid), "text": text, "ner": ner, "root": root}


def _spec(hub: dict[str, Any], model: str, framework: str, tasks: list[dict[str, Any]], **extra: Any
          ) -> dict[str, Any]:
    return {"model": f"{hub['ns']}/tiny-{model}", "model_revision": hub["shas"][model], "benchmark": hub["benchmark"],
            "benchmark_revision": hub["benchmark_sha"], "framework": framework, "tasks": tasks, "batch_size": 8,
            "seed": 0, **extra}


def _run(server: LiveServer, hub: dict[str, Any], home: Path, spec: dict[str, Any]
         ) -> subprocess.CompletedProcess[str]:
    """The program, as a compute job runs it: this hub, a token, its own HOME, nothing else of the caller's."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "PYTHONUNBUFFERED": "1", "HF_ENDPOINT": server.url, "HF_TOKEN": hub["account"].write_token,
           "HF_HUB_DISABLE_TELEMETRY": "1", "HUBSTEAD_EVAL_SPEC": json.dumps(spec), "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "hubstead.evals.program"], env=env, capture_output=True, text=True,
                          timeout=300, cwd=str(home))


def _evals(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, f"rc {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    return {mark["task_id"]: mark for mark in read_marks(result.stdout.splitlines(), EVAL_MARK)}


def _error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, f"rc {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    lines = [line for line in result.stdout.splitlines() if line.startswith("HUBSTEAD-ERROR ")]
    assert lines, result.stdout[-4000:] + result.stderr[-4000:]
    assert not read_marks(result.stdout.splitlines(), EVAL_MARK)
    return lines[-1].removeprefix("HUBSTEAD-ERROR ")


def _predict_text(folder: Path, texts: list[str]) -> list[int]:
    """The test's own run of the model: each text alone, its arg-max label."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return [int(model(**tokenizer(text, return_tensors="pt")).logits[0].argmax()) for text in texts]


def _predict_tags(folder: Path, sentences: list[list[str]]) -> list[list[str]]:
    """The test's own token predictions: each sentence alone, each word's tag on its first sub-token."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForTokenClassification.from_pretrained(str(folder)).eval()
    out = []
    with torch.no_grad():
        for words in sentences:
            enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
            best = model(**enc).logits[0].argmax(-1).tolist()
            tags: dict[int, str] = {}
            for position, word in enumerate(enc.word_ids()):
                if word is not None and word not in tags:
                    tags[word] = TAGS[best[position]]
            out.append([tags[i] for i in range(len(words))])
    return out


def test_classifier_and_token_classifier_scores_match_the_same_metrics_computed_here(
        server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """The eval.yaml's tasks (parsed as the hub parses them) run by the program give accuracy and f1 equal to
    scikit-learn's on the test's own predictions of the same model on the same rows, and seqeval's entity f1 for
    the token classifier; progress lines end at done == total; ``limit`` takes the first N rows."""
    from seqeval.metrics import accuracy_score as seq_accuracy
    from seqeval.metrics import f1_score as seq_f1
    from sklearn.metrics import accuracy_score, f1_score

    benchmark = parse_benchmark(EVAL_YAML)
    sentiment, ner = (task.as_json() for task in benchmark.tasks)
    text = _evals(_run(server, hub, tmp_path / "text", _spec(hub, "text", "hubstead", [sentiment])))["sentiment"]
    predicted = _predict_text(hub["folders"]["text"], [row["text"] for row in hub["text"]])
    gold = [row["label"] for row in hub["text"]]
    assert 0 < sum(predicted) < ROWS  # the random head is not constant: the check below can fail
    assert text["samples"] == ROWS
    assert text["value"] == pytest.approx(accuracy_score(gold, predicted))
    assert text["metrics"]["f1"] == pytest.approx(f1_score(gold, predicted))

    result = _run(server, hub, tmp_path / "ner", _spec(hub, "ner", "hubstead", [ner], limit=12))
    tags = _evals(result)["ner"]
    progress = read_marks(result.stdout.splitlines(), PROGRESS_MARK)
    assert progress[-1] == {"task_id": "ner", "done": 12, "total": 12}
    rows = hub["ner"][:12]
    gold_tags = [[TAGS[t] for t in row["tags"]] for row in rows]
    predicted_tags = _predict_tags(hub["folders"]["ner"], [row["tokens"] for row in rows])
    assert tags["samples"] == 12
    assert 0 < seq_f1(gold_tags, predicted_tags) < 1  # partly right: the check below can fail
    assert tags["value"] == pytest.approx(seq_f1(gold_tags, predicted_tags))
    assert tags["metrics"]["overall_accuracy"] == pytest.approx(seq_accuracy(gold_tags, predicted_tags))


def test_custom_metric_script_scores_generated_text_and_label_names(
        server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """A team's ``compute(predictions, references)`` from the benchmark repo scores a causal LM's greedy
    continuations (exact match, equal to the test's own generate) and a classifier's label names."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hubstead.evals.runners_custom import DEFAULT_MAX_NEW_TOKENS

    gen = {"id": "gen", "config": "gen", "split": "test", "metric": "exact_match", "task_type": "text-generation",
           "prompt_column": "prompt", "reference_column": "answer", "script": "metrics/exact_match.py",
           "max_new_tokens": 3}
    names = {"id": "names", "split": "test", "metric": "exact_match", "task_type": "text-classification",
             "text_column": "text", "label_column": "label", "script": "metrics/exact_match.py"}
    found = _evals(_run(server, hub, tmp_path / "gen", _spec(hub, "llama", "custom", [gen])))["gen"]
    folder = hub["folders"]["llama"]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    rows = _generation_rows(ROWS)
    hits = 0
    with torch.no_grad():
        for row in rows:
            enc = tokenizer(row["prompt"], return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            hits += tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip() == \
                row["answer"]
    assert found["value"] == pytest.approx(hits / ROWS) and found["metrics"]["count"] == ROWS
    assert DEFAULT_MAX_NEW_TOKENS == 64

    labelled = _evals(_run(server, hub, tmp_path / "names", _spec(hub, "text", "custom", [names])))["names"]
    predicted = _predict_text(hub["folders"]["text"], [row["text"] for row in hub["text"]])
    agree = sum(p == row["label"] for p, row in zip(predicted, hub["text"], strict=True))
    assert labelled["value"] == pytest.approx(agree / ROWS)


def test_a_crashing_metric_script_ends_the_job_with_its_error(
        server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """A script whose compute raises: exit 1, no EVAL line, HUBSTEAD-ERROR naming the script and its error line,
    the traceback in the log."""
    task = {"id": "crash", "split": "test", "metric": "accuracy", "task_type": "text-classification",
            "text_column": "text", "label_column": "label", "script": "metrics/crash.py"}
    result = _run(server, hub, tmp_path, _spec(hub, "text", "custom", [task]))
    reason = _error(result)
    assert "metrics/crash.py raised: RuntimeError: the metric's own bug at row 7" in reason
    assert "Traceback" in result.stderr


def test_a_missing_column_or_unknown_metric_ends_the_job_naming_it(
        server: LiveServer, hub: dict[str, Any], tmp_path: Path) -> None:
    """A task whose text_column the split lacks fails naming the column and listing those there are; an unknown
    metric name lists the known ones; a token task on a text classifier says the model does not fit."""
    missing = {"id": "sentiment", "split": "test", "metric": "accuracy", "task_type": "text-classification",
               "text_column": "sentence", "label_column": "label"}
    unknown = {**missing, "text_column": "text", "metric": "bleu"}
    wrong = {"id": "ner", "config": "ner", "split": "test", "metric": "overall_f1", "task_type": "token-classification",
             "tokens_column": "tokens", "tags_column": "tags"}
    reason = _error(_run(server, hub, tmp_path / "a", _spec(hub, "text", "hubstead", [missing])))
    assert "no column 'sentence' (text_column)" in reason and "text, label" in reason
    reason = _error(_run(server, hub, tmp_path / "b", _spec(hub, "text", "hubstead", [unknown])))
    assert "no metric 'bleu'" in reason and "accuracy" in reason and "matthews_correlation" in reason
    reason = _error(_run(server, hub, tmp_path / "c", _spec(hub, "text", "hubstead", [wrong])))
    assert "BertForSequenceClassification" in reason and "does not fit token-classification" in reason
