"""The model card a train run pushes: a YAML header the Hub reads (base model and how it relates, datasets, task,
library, tags, model-index with the final eval results) and a body a person reads (what it is, the hyperparameters,
the training curve, how to load it). Pure: the hub's card validator (``repos/cards.validate_card``) accepts it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import yaml

from hubstead.train.spec import PIPELINE_TAGS, TrainSpec

# Metric keys (without ``eval_``) and the words the model-index shows for them.
_METRIC_NAMES = {
    "accuracy": "Accuracy", "f1": "F1", "precision": "Precision", "recall": "Recall", "spearman": "Spearman (cosine)",
    "loss": "Loss", "perplexity": "Perplexity", "rewards/accuracies": "Reward accuracy",
}
_TASK_NAMES = {
    "text-classification": "Text Classification", "token-classification": "Token Classification",
    "sentence-similarity": "Sentence Similarity", "text-generation": "Text Generation",
}


def library_name(spec: TrainSpec, merged: bool = False) -> str:
    if spec.task == "sentence-embeddings":
        return "sentence-transformers"
    if spec.method in ("lora", "qlora") and not merged:
        return "peft"
    return "transformers"


def model_card(spec: TrainSpec, repo_id: str, final_metrics: Mapping[str, Any], *, merged: bool = False,
               labels: list[str] | None = None, eval_split_name: str | None = None) -> str:
    """The README of the pushed model ``repo_id``. ``final_metrics`` are the last evaluation's (``eval_*`` keys);
    ``merged`` says this is the full model with the adapter merged in (a fine-tune of the base, not an adapter)."""
    pipeline_tag = PIPELINE_TAGS[spec.task]
    adapter = spec.method in ("lora", "qlora") and not merged
    library = library_name(spec, merged)
    split = eval_split_name or spec.eval_split or f"{spec.train_split} (10% holdout)"
    metrics = []
    for key, value in sorted(final_metrics.items()):
        name = key.removeprefix("eval_")
        if not key.startswith("eval_") or name not in _METRIC_NAMES or isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            metrics.append({"type": name.replace("/", "_"), "value": round(float(value), 6),
                            "name": _METRIC_NAMES[name]})
    dataset: dict[str, Any] = {"name": spec.dataset, "type": spec.dataset, "split": split}
    if spec.dataset_config:
        dataset["config"] = spec.dataset_config
    tags = ["hubstead-train", spec.task, {"full": "full-fine-tune", "lora": "lora", "qlora": "qlora"}[spec.method]]
    if spec.task in ("sft", "dpo"):
        tags.append("trl")
    if merged:
        tags.append("merged-adapter")
    header: dict[str, Any] = {
        "base_model": spec.base_model,
        "base_model_relation": "adapter" if adapter else "finetune",
        "datasets": [spec.dataset],
        "pipeline_tag": pipeline_tag,
        "library_name": library,
        "tags": tags,
    }
    if metrics:
        header["model-index"] = [{"name": repo_id.split("/")[-1], "results": [{
            "task": {"type": pipeline_tag, "name": _TASK_NAMES[pipeline_tag]},
            "dataset": dataset,
            "metrics": metrics,
        }]}]
    body = [f"# {repo_id.split('/')[-1]}", ""]
    what = {"full": "a full fine-tune", "lora": "a LoRA adapter", "qlora": "a QLoRA adapter"}[spec.method]
    if merged:
        what = "the base model with a LoRA adapter merged in"
    body += [f"This model is {what} of [{spec.base_model}](/{spec.base_model}) for **{spec.task}**, trained on the "
             f"dataset [{spec.dataset}](/datasets/{spec.dataset}) (split `{spec.train_split}`, evaluated on "
             f"`{split}`) by Hubstead Train.", ""]
    if labels:
        body += ["Labels: " + ", ".join(f"`{label}`" for label in labels) + ".", ""]
    if metrics:
        body += ["## Results", "", "| Metric | Value |", "| --- | --- |"]
        body += [f"| {m['name']} | {m['value']:.4f} |" for m in metrics]
        body.append("")
    body += ["## Training", "", "| Hyperparameter | Value |", "| --- | --- |"]
    for key, value in asdict(spec.hyperparameters).items():
        if value is None or (key.startswith("lora_") and spec.method == "full"):
            continue
        body.append(f"| {key} | {value} |")
    body += ["", "![training curve](training_curve.svg)", "", "## How to use", "", "```python"]
    body += _usage(spec, repo_id, adapter)
    body += ["```", ""]
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(body)


def _usage(spec: TrainSpec, repo_id: str, adapter: bool) -> list[str]:
    if spec.task == "sentence-embeddings":
        return ["from sentence_transformers import SentenceTransformer", "",
                f'model = SentenceTransformer("{repo_id}")',
                'embeddings = model.encode(["A first sentence", "A second one"])']
    auto = {"text-classification": "AutoModelForSequenceClassification",
            "token-classification": "AutoModelForTokenClassification"}.get(spec.task, "AutoModelForCausalLM")
    if adapter:
        peft_auto = {"AutoModelForSequenceClassification": "AutoPeftModelForSequenceClassification",
                     "AutoModelForTokenClassification": "AutoPeftModelForTokenClassification"}.get(
            auto, "AutoPeftModelForCausalLM")
        return [f"from peft import {peft_auto}", "from transformers import AutoTokenizer", "",
                f'model = {peft_auto}.from_pretrained("{repo_id}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")']
    return [f"from transformers import {auto}, AutoTokenizer", "",
            f'model = {auto}.from_pretrained("{repo_id}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")']
