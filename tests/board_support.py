"""Seeding leaderboards through the real client: a benchmark dataset (its ``eval.yaml``, no data needed for a
board) and model repos holding ``.eval_results/*.yaml`` entries as the Hub writes them, with a card (license,
base model) and a ``model.safetensors`` whose header gives the model's parameter count (the hub reads sizes from
safetensors headers only, so a header that declares a large tensor is a large model to it)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import yaml
from huggingface_hub import CommitOperationAdd, HfApi

from support import LiveServer


def eval_yaml(name: str, tasks: list[tuple[str, str, bool]], *, description: str = "", aggregate: str = "mean",
              framework: str = "hubstead") -> str:
    """An ``eval.yaml`` of text-classification tasks: ``tasks`` is [(task id, metric, higher is better)]."""
    spec: dict[str, Any] = {"name": name, "evaluation_framework": framework, "aggregate": aggregate, "tasks": []}
    if description:
        spec["description"] = description
    for task_id, metric, higher in tasks:
        spec["tasks"].append({"id": task_id, "split": "test", "metric": metric, "higher_is_better": higher,
                              "task_type": "text-classification", "text_column": "text",
                              "label_column": "label"})
    return yaml.safe_dump(spec, sort_keys=False)


def push_benchmark_yaml(server: LiveServer, token: str, repo_id: str, text: str, *, private: bool = False) -> None:
    """A dataset repo whose root holds ``eval.yaml`` (as given: may be invalid on purpose) and a small card."""
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.create_commit(repo_id, repo_type="dataset", commit_message="benchmark", operations=[
        CommitOperationAdd("eval.yaml", text.encode()),
        CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# A benchmark\n")])


def safetensors_header(params: int) -> bytes:
    """A safetensors file declaring one F32 tensor of ``params`` values (the data itself is not there)."""
    header = json.dumps({"weight": {"dtype": "F32", "shape": [params], "data_offsets": [0, params * 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 64


@dataclass
class Result:
    dataset: str
    task: str
    value: Any
    date: str | None = "2026-11-01T00:00:00Z"
    extra: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"dataset": {"id": self.dataset, "task_id": self.task}, "value": self.value}
        if self.date:
            entry["date"] = self.date
        entry.update(self.extra)
        return entry


def push_model_results(server: LiveServer, token: str, repo_id: str, results: list[Result], *,
                       params: int | None = None, license: str | None = "mit", base_model: str | None = None,
                       private: bool = False, filename: str = ".eval_results/results.yaml") -> None:
    """A model repo: card (license, base model), ``model.safetensors`` (when ``params``), and ``results`` as one
    ``.eval_results`` file, all in one commit through ``HfApi.create_commit``."""
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    header: dict[str, Any] = {}
    if license:
        header["license"] = license
    if base_model:
        header["base_model"] = base_model
    card = f"---\n{yaml.safe_dump(header)}---\n# {repo_id}\n" if header else f"# {repo_id}\n"
    operations = [CommitOperationAdd("README.md", card.encode()),
                  CommitOperationAdd(filename, yaml.safe_dump([r.entry() for r in results]).encode())]
    if params:
        operations.append(CommitOperationAdd("model.safetensors", safetensors_header(params)))
    api.create_commit(repo_id, operations=operations, commit_message="results")
