"""A benchmark is a dataset repo with an ``eval.yaml`` at its root: what to measure, on which data, by which
framework and metric. This module reads and checks that file (pure: no database, no git).

The file (docs/evaluation.md has the reference)::

    name: Support tickets (team test set)       # required
    description: What it measures               # optional
    evaluation_framework: hubstead              # hubstead | mteb | lm-eval | custom
    aggregate: mean                             # how several tasks make the benchmark's score: mean | borda |
                                                #   normalized-mean (Open LLM style, needs each task's baseline)
    reevaluate: true                            # re-run verified results when an evaluated model's main moves
    tasks:                                      # 1..50
      - id: intent                              # [A-Za-z0-9_.-], unique
        config: default                         # the dataset config (the viewer's), default "default"
        split: test                             # required
        metric: accuracy                        # the score this task ranks by
        higher_is_better: true                  # default true
        baseline: 0.25                          # random-chance score (normalized-mean), default 0
        ...                                     # framework options (below), kept as given in ``options``

Framework options, by framework (checked here so a bad file is refused before any job):
- ``hubstead``: ``task_type`` (text-classification | token-classification), ``text_column``,
  ``text_pair_column`` (optional), ``label_column`` (text) or ``tokens_column`` + ``tags_column`` (tokens).
- ``mteb``: ``mteb_task`` (a task name mteb knows, whose data this hub holds) or ``mteb_type`` (STS |
  Classification | PairClassification) with its columns (``sentence1_column``, ``sentence2_column``,
  ``score_column``; ``text_column``, ``label_column``).
- ``lm-eval``: ``lm_eval_task`` (a task name lm-eval knows, whose data this hub holds) or an inline
  multiple-choice task: ``doc_to_text``, ``doc_to_choice``, ``doc_to_target`` (lm-eval's Jinja templates).
  ``num_fewshot`` (default 0).
- ``custom``: ``script`` (a Python file in the benchmark repo, or ``repo`` + ``script`` in another repo) that
  defines ``compute(predictions, references) -> dict``; ``task_type`` (as for ``hubstead``, or
  text-generation with ``prompt_column``) says how predictions are made; ``reference_column``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hubstead.errors import BadRequestError
from hubstead.repos.cards import CardHeaderError, load_card_header

FILENAME = "eval.yaml"
MAX_BYTES = 64 * 1024
MAX_TASKS = 50
FRAMEWORKS = ("hubstead", "mteb", "lm-eval", "custom")
AGGREGATES = ("mean", "borda", "normalized-mean")
TASK_TYPES = ("text-classification", "token-classification")
CUSTOM_TASK_TYPES = (*TASK_TYPES, "text-generation")
MTEB_TYPES = ("STS", "Classification", "PairClassification")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_NAME_LIMIT = 200
_TEXT_LIMIT = 4000
_COMMON_KEYS = {"id", "config", "split", "metric", "higher_is_better", "baseline", "name"}
_OPTION_KEYS = {
    "hubstead": {"task_type", "text_column", "text_pair_column", "label_column", "tokens_column", "tags_column"},
    "mteb": {"mteb_task", "mteb_type", "sentence1_column", "sentence2_column", "score_column", "text_column",
             "label_column"},
    "lm-eval": {"lm_eval_task", "doc_to_text", "doc_to_choice", "doc_to_target", "num_fewshot", "output_type"},
    "custom": {"script", "repo", "task_type", "text_column", "text_pair_column", "label_column", "tokens_column",
               "tags_column", "prompt_column", "reference_column", "max_new_tokens"},
}


class BenchmarkInvalid(BadRequestError):
    """An ``eval.yaml`` that cannot be used; ``reasons`` says every way it is wrong."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("eval.yaml is invalid: " + "; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class BenchmarkTask:
    id: str
    split: str
    config: str = "default"
    metric: str = "score"
    higher_is_better: bool = True
    baseline: float = 0.0
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "config": self.config, "split": self.split, "metric": self.metric,
                "higher_is_better": self.higher_is_better, "baseline": self.baseline, "name": self.name,
                **self.options}


@dataclass(frozen=True)
class Benchmark:
    name: str
    framework: str
    tasks: tuple[BenchmarkTask, ...]
    description: str = ""
    aggregate: str = "mean"
    reevaluate: bool = False

    def task(self, task_id: str) -> BenchmarkTask | None:
        return next((task for task in self.tasks if task.id == task_id), None)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "evaluation_framework": self.framework,
                "aggregate": self.aggregate, "reevaluate": self.reevaluate,
                "tasks": [task.as_json() for task in self.tasks]}


def _text(value: Any, where: str, reasons: list[str], *, limit: int, required: bool) -> str | None:
    if value is None:
        if required:
            reasons.append(f"{where} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        reasons.append(f"{where} must be a non-empty string")
        return None
    if len(value) > limit:
        reasons.append(f"{where} is longer than {limit} characters")
        return None
    return value


def _number(value: Any, where: str, reasons: list[str], default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) > 1e12:
        reasons.append(f"{where} must be a number")
        return default
    return float(value)


def _flag(value: Any, where: str, reasons: list[str], default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        reasons.append(f"{where} must be true or false")
        return default
    return value


def _options(framework: str, raw: dict[str, Any], where: str, reasons: list[str]) -> dict[str, Any]:
    allowed = _OPTION_KEYS[framework]
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _COMMON_KEYS:
            continue
        if key not in allowed:
            reasons.append(f"{where}.{key} is not an option of the {framework} framework")
            continue
        if key == "num_fewshot" or key == "max_new_tokens":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
                reasons.append(f"{where}.{key} must be a whole number from 0 to 1024")
                continue
        elif not isinstance(value, str) or not value or len(value) > _TEXT_LIMIT:
            reasons.append(f"{where}.{key} must be a non-empty string")
            continue
        options[key] = value

    def need(*keys: str) -> None:
        for key in keys:
            if key not in options:
                reasons.append(f"{where}.{key} is required by the {framework} framework")

    task_type = options.get("task_type")
    if framework in ("hubstead", "custom"):
        kinds = TASK_TYPES if framework == "hubstead" else CUSTOM_TASK_TYPES
        if task_type not in kinds:
            reasons.append(f"{where}.task_type must be one of {', '.join(kinds)}")
        elif task_type == "text-classification":
            need("text_column", "label_column")
        elif task_type == "token-classification":
            need("tokens_column", "tags_column")
        elif task_type == "text-generation":
            need("prompt_column", "reference_column")
        if framework == "custom":
            need("script")
            script = options.get("script", "")
            if script and (script.startswith("/") or ".." in script.split("/") or not script.endswith(".py")):
                reasons.append(f"{where}.script must be a relative path to a .py file")
    elif framework == "mteb":
        if ("mteb_task" in options) == ("mteb_type" in options):
            reasons.append(f"{where} needs exactly one of mteb_task or mteb_type")
        elif "mteb_type" in options:
            kind = options["mteb_type"]
            if kind not in MTEB_TYPES:
                reasons.append(f"{where}.mteb_type must be one of {', '.join(MTEB_TYPES)}")
            elif kind in ("STS", "PairClassification"):
                need("sentence1_column", "sentence2_column", "score_column" if kind == "STS" else "label_column")
            else:
                need("text_column", "label_column")
    elif framework == "lm-eval":
        inline = {"doc_to_text", "doc_to_choice", "doc_to_target"} & options.keys()
        if "lm_eval_task" in options and inline:
            reasons.append(f"{where} names an lm_eval_task and an inline task: one or the other")
        elif "lm_eval_task" not in options:
            need("doc_to_text", "doc_to_choice", "doc_to_target")
    return options


def parse_benchmark(text: str | bytes) -> Benchmark:
    """The benchmark an ``eval.yaml`` describes, or ``BenchmarkInvalid`` naming every problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise BenchmarkInvalid([f"the file is larger than {MAX_BYTES // 1024} KiB"])
        text = text.decode("utf-8", errors="replace")
    if len(text) > MAX_BYTES:
        raise BenchmarkInvalid([f"the file is larger than {MAX_BYTES // 1024} KiB"])
    try:
        data = load_card_header(text)
    except CardHeaderError as exc:
        raise BenchmarkInvalid([str(exc).replace("The YAML header of README.md", "the file")]) from exc
    except Exception as exc:  # noqa: BLE001 - any YAML error is the author's to fix, in words
        raise BenchmarkInvalid([f"the file is not valid YAML ({str(exc).splitlines()[0]})"]) from exc
    if not isinstance(data, dict):
        raise BenchmarkInvalid(["the file must be a YAML mapping"])
    reasons: list[str] = []
    name = _text(data.get("name"), "name", reasons, limit=_NAME_LIMIT, required=True)
    description = _text(data.get("description"), "description", reasons, limit=_TEXT_LIMIT, required=False)
    framework = data.get("evaluation_framework")
    if framework not in FRAMEWORKS:
        reasons.append(f"evaluation_framework must be one of {', '.join(FRAMEWORKS)}")
    aggregate = data.get("aggregate", "mean")
    if aggregate not in AGGREGATES:
        reasons.append(f"aggregate must be one of {', '.join(AGGREGATES)}")
    reevaluate = _flag(data.get("reevaluate"), "reevaluate", reasons, False)
    raw_tasks = data.get("tasks")
    tasks: list[BenchmarkTask] = []
    if not isinstance(raw_tasks, list) or not raw_tasks:
        reasons.append("tasks must be a non-empty list")
        raw_tasks = []
    elif len(raw_tasks) > MAX_TASKS:
        reasons.append(f"tasks lists more than {MAX_TASKS} tasks")
        raw_tasks = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_tasks):
        where = f"tasks[{i}]"
        if not isinstance(raw, dict):
            reasons.append(f"{where} must be a mapping")
            continue
        task_id = raw.get("id")
        if not isinstance(task_id, str) or not _ID.match(task_id):
            reasons.append(f"{where}.id must be letters, digits, '_', '.' or '-' (up to 100)")
            continue
        where = f"tasks[{task_id}]"
        if task_id in seen:
            reasons.append(f"{where} appears twice")
            continue
        seen.add(task_id)
        split = _text(raw.get("split"), f"{where}.split", reasons, limit=100, required=True)
        config = _text(raw.get("config", "default"), f"{where}.config", reasons, limit=100, required=True)
        metric = _text(raw.get("metric", "score"), f"{where}.metric", reasons, limit=100, required=True)
        display = _text(raw.get("name"), f"{where}.name", reasons, limit=_NAME_LIMIT, required=False)
        higher = _flag(raw.get("higher_is_better"), f"{where}.higher_is_better", reasons, True)
        baseline = _number(raw.get("baseline"), f"{where}.baseline", reasons, 0.0)
        options = _options(framework, raw, where, reasons) if framework in FRAMEWORKS else {}
        if aggregate == "normalized-mean" and not 0 <= baseline < 1:
            reasons.append(f"{where}.baseline must be from 0 up to (not including) 1 for a normalized-mean")
        if split and config and metric:
            tasks.append(BenchmarkTask(id=task_id, split=split, config=config, metric=metric,
                                       higher_is_better=higher, baseline=baseline, name=display, options=options))
    if reasons:
        raise BenchmarkInvalid(reasons)
    assert name is not None and isinstance(framework, str) and isinstance(aggregate, str)
    return Benchmark(name=name, framework=framework, tasks=tuple(tasks), description=description or "",
                     aggregate=aggregate, reevaluate=reevaluate)
