"""A train run's spec: what to fine-tune, on what, how, and where the result goes; checked in words a person reads.

Pure: no torch, no transformers. The app parses a spec when a run is asked for (so a bad one is refused before a job
is queued), and the job process (``hubstead.train.program``) parses the same JSON again from ``HUBSTEAD_TRAIN_SPEC``.

Where the result goes (``output``):

- ``push: "new-repo"``: a new model repo ``output.repo_id`` (refused if it exists), the model on ``main``;
- ``push: "branch"``: the branch ``output.branch`` of ``output.repo_id`` (the repo is created when missing, the branch
  from ``main`` when missing);
- ``push: "pull-request"``: a pull request on the existing repo ``output.repo_id``.

With ``merge_adapter`` (LoRA only), the adapter goes where ``push`` says, and the base with the adapter merged in
(a full model) goes to ``main`` of the repo ``output.merged_repo_id`` (default ``<repo_id>-merged``), created when
missing.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

TASKS = ("text-classification", "token-classification", "sentence-embeddings", "sft", "dpo")
METHODS = ("full", "lora", "qlora")
PUSH_MODES = ("new-repo", "branch", "pull-request")
EMBEDDING_LOSSES = ("MultipleNegativesRankingLoss", "CosineSimilarityLoss", "CoSENTLoss", "SoftmaxLoss")

# The Hub's task tag for what each train task makes.
PIPELINE_TAGS = {
    "text-classification": "text-classification",
    "token-classification": "token-classification",
    "sentence-embeddings": "sentence-similarity",
    "sft": "text-generation",
    "dpo": "text-generation",
}

_REPO_ID_MAX = 96 * 2 + 1
_BRANCH_MAX = 200


class TrainSpecError(ValueError):
    """A spec that cannot run; ``message`` says why in words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Hyperparameters:
    learning_rate: float
    epochs: float
    batch_size: int
    max_steps: int | None
    max_length: int
    warmup_ratio: float
    weight_decay: float
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    eval_steps: int
    save_steps: int
    logging_steps: int
    seed: int
    loss: str | None  # sentence-embeddings only
    beta: float | None  # dpo only


@dataclass(frozen=True)
class OutputSpec:
    repo_id: str
    push: str = "new-repo"
    branch: str | None = None
    private: bool = False
    merge_adapter: bool = False
    merged_repo_id: str | None = None


@dataclass(frozen=True)
class TrainSpec:
    task: str
    base_model: str
    dataset: str
    output: OutputSpec
    hyperparameters: Hyperparameters
    method: str = "full"
    base_revision: str | None = None
    dataset_config: str | None = None
    dataset_revision: str | None = None
    train_split: str = "train"
    eval_split: str | None = None  # None: a seeded 10% holdout of the train split
    columns: dict[str, str] = field(default_factory=dict)  # role -> dataset column

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def column(self, role: str) -> str:
        return self.columns.get(role, role)


# name: (kind, low, high); bounds are inclusive; None means "no bound on that side".
_BOUNDS: dict[str, tuple[type, float, float]] = {
    "learning_rate": (float, 1e-8, 1.0),
    "epochs": (float, 0.01, 100),
    "batch_size": (int, 1, 1024),
    "max_steps": (int, 1, 1_000_000),
    "max_length": (int, 8, 32_768),
    "warmup_ratio": (float, 0.0, 0.5),
    "weight_decay": (float, 0.0, 1.0),
    "lora_r": (int, 1, 512),
    "lora_alpha": (int, 1, 4096),
    "lora_dropout": (float, 0.0, 0.9),
    "eval_steps": (int, 1, 1_000_000),
    "save_steps": (int, 1, 1_000_000),
    "logging_steps": (int, 1, 100_000),
    "seed": (int, 0, 2**32 - 1),
    "beta": (float, 0.001, 10.0),
}


def defaults_for(task: str, method: str = "full") -> dict[str, Any]:
    """The hyperparameters a run of ``task`` gets when the spec leaves them out."""
    _check_choice("task", task, TASKS)
    causal = task in ("sft", "dpo")
    adapter = method in ("lora", "qlora")
    defaults: dict[str, Any] = {
        "learning_rate": (2e-4 if adapter else (5e-6 if task == "dpo" else 2e-5)),
        "epochs": 3.0 if not causal else 1.0,
        "batch_size": 16 if not causal else 4,
        "max_steps": None,
        "max_length": 128 if task in ("text-classification", "token-classification", "sentence-embeddings") else 1024,
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "eval_steps": 100,
        "save_steps": 100,
        "logging_steps": 10,
        "seed": 42,
        "loss": "MultipleNegativesRankingLoss" if task == "sentence-embeddings" else None,
        "beta": 0.1 if task == "dpo" else None,
    }
    return defaults


def column_roles(task: str, loss: str | None = None,
                 columns: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(required roles, optional roles) of ``task``: the names a spec's ``columns`` maps to dataset columns."""
    if task == "text-classification":
        return ["text", "label"], ["text_pair"]
    if task == "token-classification":
        return ["tokens", "tags"], []
    if task == "sentence-embeddings":
        if (loss or "MultipleNegativesRankingLoss") == "MultipleNegativesRankingLoss":
            return ["anchor", "positive"], ["negative"]
        return ["sentence1", "sentence2", "label"], []
    if task == "sft":
        if columns is not None and "messages" in columns:
            return ["messages"], []
        return ["prompt", "completion"], []
    if task == "dpo":
        return ["prompt", "chosen", "rejected"], []
    raise TrainSpecError(f"Unknown task {task!r}: choose one of {', '.join(TASKS)}.")


def required_columns(task: str, columns: Mapping[str, str], loss: str | None = None) -> list[str]:
    """The dataset columns a run of ``task`` reads (required ones, then the optional ones the spec maps)."""
    required, optional = column_roles(task, loss, columns)
    return [columns.get(role, role) for role in required] + [columns[role] for role in optional if role in columns]


def check_columns(task: str, columns: Mapping[str, str], schema: Mapping[str, Any], loss: str | None = None) -> None:
    """Refuse, in words, a dataset whose columns (``schema``: ``{column: feature-json}`` as the dataset viewer and
    ``datasets.Features.to_dict()`` give them) cannot feed ``task``: a missing column, a label that is not a
    ClassLabel, an integer or a string, tags that are not a sequence, texts that are not strings."""
    required, optional = column_roles(task, loss, columns)
    problems: list[str] = []
    for role in required + [r for r in optional if r in columns]:
        name = columns.get(role, role)
        if name not in schema:
            known = ", ".join(sorted(schema)) or "none"
            problems.append(f"the {role} column {name!r} is not in the dataset (its columns: {known})")
            continue
        wrong = _wrong_type(task, role, schema[name], loss)
        if wrong:
            problems.append(f"the {role} column {name!r} {wrong}")
    if problems:
        raise TrainSpecError("The dataset does not fit the task " + task + ": " + "; ".join(problems) + ".")


def _kind(feature: Any) -> str:
    """``string``, ``int``, ``float``, ``bool``, ``class``, ``list``, ``struct`` or ``other``."""
    if isinstance(feature, list):
        return "list"
    if not isinstance(feature, dict):
        return "other"
    kind = feature.get("_type")
    if kind == "ClassLabel":
        return "class"
    if kind in ("List", "Sequence", "LargeList"):
        return "list"
    if kind == "Value":
        dtype = str(feature.get("dtype", ""))
        if dtype in ("string", "large_string"):
            return "string"
        if dtype.startswith(("int", "uint")):
            return "int"
        if dtype.startswith("float") or dtype == "double":
            return "float"
        if dtype == "bool":
            return "bool"
        return "other"
    if kind is None:
        return "struct"
    return "other"


def _item(feature: Any) -> Any:
    if isinstance(feature, list):
        return feature[0] if feature else None
    return feature.get("feature") if isinstance(feature, dict) else None


def _wrong_type(task: str, role: str, feature: Any, loss: str | None) -> str | None:
    kind = _kind(feature)
    if role in ("text", "text_pair", "anchor", "positive", "negative", "sentence1", "sentence2", "prompt",
                "completion", "chosen", "rejected"):
        return None if kind == "string" else f"must hold text (strings), not {_describe(feature)}"
    if role == "label" and task == "text-classification":
        if kind in ("class", "int", "string", "bool"):
            return None
        return f"must be a class label, an integer or a string for classification, not {_describe(feature)}"
    if role == "label" and task == "sentence-embeddings":
        if loss == "SoftmaxLoss":
            ok = kind in ("class", "int")
            return None if ok else f"must be a class label or an integer for SoftmaxLoss, not {_describe(feature)}"
        ok = kind in ("float", "int")
        return None if ok else f"must be a similarity score (a number) for {loss}, not {_describe(feature)}"
    if role == "tokens":
        if kind == "list" and _kind(_item(feature)) == "string":
            return None
        return f"must be a sequence of words (a list of strings), not {_describe(feature)}"
    if role == "tags":
        if kind == "list" and _kind(_item(feature)) in ("class", "int", "string"):
            return None
        return f"must be a sequence of tags (a list of class labels, integers or strings), not {_describe(feature)}"
    if role == "messages":
        item = _item(feature)
        if kind == "list" and isinstance(item, dict) and "role" in item and "content" in item:
            return None
        return f"must be a list of chat messages ({{role, content}}), not {_describe(feature)}"
    return None


def _describe(feature: Any) -> str:
    kind = _kind(feature)
    if kind == "list":
        return f"a list of {_describe(_item(feature))}"
    if kind == "struct":
        return "a struct"
    if kind == "class":
        return "a class label"
    if isinstance(feature, dict) and feature.get("_type") == "Value":
        return f"a {feature.get('dtype')} value"
    if isinstance(feature, dict) and feature.get("_type"):
        return f"a {feature.get('_type')}"
    return "an unknown type"


def quantization_available() -> bool:
    """True where QLoRA can run: bitsandbytes is installed and an NVIDIA GPU is present (read without torch)."""
    return importlib.util.find_spec("bitsandbytes") is not None and (
        os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")
    )


def parse_spec(data: Any, *, can_quantize: bool | None = None) -> TrainSpec:
    """``data`` (the JSON a person or the app sends) as a checked :class:`TrainSpec`; :class:`TrainSpecError` with
    words when it cannot run. ``can_quantize`` (default: :func:`quantization_available`) says whether QLoRA may."""
    if not isinstance(data, Mapping):
        raise TrainSpecError("A train spec must be a JSON object.")
    known = {"task", "base_model", "base_revision", "dataset", "dataset_config", "dataset_revision", "train_split",
             "eval_split", "columns", "method", "hyperparameters", "output"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainSpecError(f"Unknown field(s) in the train spec: {', '.join(unknown)}.")
    task = data.get("task")
    if not isinstance(task, str):
        raise TrainSpecError(f"The spec needs a task: one of {', '.join(TASKS)}.")
    _check_choice("task", task, TASKS)
    method = data.get("method", "full")
    if not isinstance(method, str):
        raise TrainSpecError(f"method must be one of {', '.join(METHODS)}.")
    _check_choice("method", method, METHODS)
    if method == "qlora":
        if not (quantization_available() if can_quantize is None else can_quantize):
            raise TrainSpecError("QLoRA needs a GPU and bitsandbytes, and this hub has neither (or not both): "
                                 "choose method \"lora\" (LoRA on the full-precision base) instead.")
    base_model = _repo_id(data, "base_model")
    dataset = _repo_id(data, "dataset")
    strings = {key: _optional_str(data, key) for key in ("base_revision", "dataset_config", "dataset_revision",
                                                        "eval_split")}
    train_split = _optional_str(data, "train_split") or "train"
    if strings["eval_split"] == train_split:
        raise TrainSpecError("eval_split must differ from train_split (leave it out for a 10% holdout).")
    hyper = _hyperparameters(task, method, data.get("hyperparameters", {}))
    columns = _columns(task, hyper.loss, data.get("columns", {}))
    if task == "sentence-embeddings" and method != "full":
        raise TrainSpecError("sentence-embeddings trains with method full only (embedding models are small; a "
                             "LoRA adapter of one would need the base and PEFT to load).")
    output = _output(data.get("output"), method)
    return TrainSpec(task=task, base_model=base_model, dataset=dataset, output=output, hyperparameters=hyper,
                     method=method, base_revision=strings["base_revision"], dataset_config=strings["dataset_config"],
                     dataset_revision=strings["dataset_revision"], train_split=train_split,
                     eval_split=strings["eval_split"], columns=columns)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TrainSpecError(f"Unknown {name} {value!r}: choose one of {', '.join(choices)}.")


def _optional_str(data: Mapping[str, Any], key: str, limit: int = 200) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or any(c in value for c in "\n\r\0"):
        raise TrainSpecError(f"{key} must be a short string.")
    return value


def _repo_id(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise TrainSpecError(f"The spec needs {key}: a repo id such as \"org/name\".")
    return _check_repo_id(key, value)


def _check_repo_id(key: str, value: str) -> str:
    parts = value.split("/")
    if len(value) > _REPO_ID_MAX or len(parts) > 2 or not all(parts) or any(
        not all(c.isalnum() or c in "-_." for c in part) or part.startswith(("-", ".")) or ".." in part
        for part in parts
    ):
        raise TrainSpecError(f"{key} {value!r} is not a repo id (\"name\" or \"namespace/name\": letters, digits, "
                             "-, _ and .).")
    return value


def _hyperparameters(task: str, method: str, given: Any) -> Hyperparameters:
    if not isinstance(given, Mapping):
        raise TrainSpecError("hyperparameters must be an object.")
    values = defaults_for(task, method)
    unknown = sorted(set(given) - set(values))
    if unknown:
        raise TrainSpecError(f"Unknown hyperparameter(s): {', '.join(unknown)} (known: {', '.join(values)}).")
    for name, value in given.items():
        if value is None and name in ("max_steps", "loss", "beta"):
            continue
        if name == "loss":
            if task != "sentence-embeddings":
                raise TrainSpecError("loss is for the sentence-embeddings task only.")
            if not isinstance(value, str) or value not in EMBEDDING_LOSSES:
                raise TrainSpecError(f"Unknown loss {value!r}: choose one of {', '.join(EMBEDDING_LOSSES)}.")
            values[name] = value
            continue
        if name == "beta" and task != "dpo":
            raise TrainSpecError("beta is for the dpo task only.")
        values[name] = _bounded(name, value)
    return Hyperparameters(**values)


def _bounded(name: str, value: Any) -> int | float:
    kind, low, high = _BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrainSpecError(f"{name} must be a number.")
    if kind is int and (isinstance(value, float) and not value.is_integer()):
        raise TrainSpecError(f"{name} must be a whole number.")
    if not math.isfinite(value) or not low <= value <= high:
        raise TrainSpecError(f"{name} must be between {low:g} and {high:g} (got {value:g}).")
    return int(value) if kind is int else float(value)


def _columns(task: str, loss: str | None, given: Any) -> dict[str, str]:
    if not isinstance(given, Mapping):
        raise TrainSpecError("columns must be an object mapping roles to dataset columns.")
    required, optional = column_roles(task, loss, given)
    roles = set(required) | set(optional)
    if task == "sft":
        roles |= {"prompt", "completion", "messages"}
    unknown = sorted(set(given) - roles)
    if unknown:
        raise TrainSpecError(f"Unknown column role(s) for {task}: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(roles))}).")
    if task == "sft" and "messages" in given and ({"prompt", "completion"} & set(given)):
        raise TrainSpecError("An sft run reads either messages or prompt and completion, not both.")
    out: dict[str, str] = {}
    for role, column in given.items():
        if not isinstance(column, str) or not column or len(column) > 200:
            raise TrainSpecError(f"The column for {role} must be a column name.")
        out[str(role)] = column
    return out


def _output(given: Any, method: str) -> OutputSpec:
    if not isinstance(given, Mapping):
        raise TrainSpecError("The spec needs output: {\"repo_id\": ..., \"push\": \"new-repo\" | \"branch\" | "
                             "\"pull-request\"}.")
    unknown = sorted(set(given) - {"repo_id", "push", "branch", "private", "merge_adapter", "merged_repo_id"})
    if unknown:
        raise TrainSpecError(f"Unknown output field(s): {', '.join(unknown)}.")
    repo_id = _repo_id(given, "repo_id")
    push = given.get("push", "new-repo")
    if not isinstance(push, str):
        raise TrainSpecError(f"output.push must be one of {', '.join(PUSH_MODES)}.")
    _check_choice("output.push", push, PUSH_MODES)
    branch = _optional_str(given, "branch", _BRANCH_MAX)
    if push == "branch":
        if not branch or branch in ("main",) or branch.startswith(("refs/", "/", "-")) or ".." in branch or any(
            c in branch for c in " ~^:?*[\\"
        ):
            raise TrainSpecError("output.branch must name a branch other than main (push \"branch\").")
    elif branch:
        raise TrainSpecError("output.branch is for push \"branch\" only.")
    for key in ("private", "merge_adapter"):
        if not isinstance(given.get(key, False), bool):
            raise TrainSpecError(f"output.{key} must be true or false.")
    merge = bool(given.get("merge_adapter", False))
    if merge and method == "full":
        raise TrainSpecError("merge_adapter is for LoRA runs: a full fine-tune is already a whole model.")
    if merge and method == "qlora":
        raise TrainSpecError("merge_adapter is not offered for QLoRA (its base is quantized): push the adapter, or "
                             "train with method lora.")
    merged = given.get("merged_repo_id")
    if merged is not None:
        if not merge:
            raise TrainSpecError("output.merged_repo_id is for merge_adapter runs only.")
        merged = _check_repo_id("output.merged_repo_id", merged) if isinstance(merged, str) else _repo_id(
            given, "merged_repo_id")
    elif merge:
        merged = f"{repo_id}-merged"
    if merged == repo_id:
        raise TrainSpecError("output.merged_repo_id must differ from output.repo_id.")
    return OutputSpec(repo_id=repo_id, push=push, branch=branch, private=bool(given.get("private", False)),
                      merge_adapter=merge, merged_repo_id=merged)

