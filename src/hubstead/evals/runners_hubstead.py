"""The ``hubstead`` framework's runner: a classifier or a token classifier measured on a labelled split with the
``evaluate`` library's metrics (``evals.metrics``).

- ``text-classification``: ``text_column`` (and ``text_pair_column`` for sentence pairs) through
  ``AutoModelForSequenceClassification``, the arg-max label against ``label_column`` (ClassLabel ids or label
  strings, mapped by name onto the model's ``config.label2id``; a model whose labels are the generic ``LABEL_<i>``
  is read by id).
- ``token-classification``: ``tokens_column`` (words) through ``AutoModelForTokenClassification``, each word's tag
  read on its first sub-token (``word_ids()``) against ``tags_column`` (ClassLabel ids or tag strings); words cut off
  by the model's maximum length are predicted ``O``.

The first ``spec.limit`` rows, in batches of ``spec.batch_size``, under ``torch.inference_mode()`` on the GPU when
there is one. A model without the task's head, a column the split lacks, a label the model does not know or a metric
this framework does not compute is an ``EvalFailed`` saying so. The prediction functions are shared with the
``custom`` framework's runner.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubstead.evals import metrics
from hubstead.evals.program import batches, device, load_split, require_columns
from hubstead.evals.spec import EvalFailed, EvalSpec, TaskScore

_GENERIC = re.compile(r"^LABEL_(\d+)$")
_HEADS = {"text-classification": "ForSequenceClassification", "token-classification": "ForTokenClassification"}


def run_task(spec: EvalSpec, task: dict[str, Any], model_dir: Path, progress: Callable[[int, int], None]
             ) -> TaskScore:
    kind = task.get("task_type")
    metric = str(task.get("metric"))
    if kind == "text-classification":
        known: tuple[str, ...] = metrics.CLASSIFICATION_METRICS
    elif kind == "token-classification":
        known = metrics.TOKEN_METRICS
    else:
        raise EvalFailed(f"task {task.get('id')}: task_type must be text-classification or token-classification")
    if metric not in known and not (kind == "token-classification" and metric.endswith("_f1")):
        more = " (and <TYPE>_f1 per entity type)" if kind == "token-classification" else ""
        raise EvalFailed(f"task {task.get('id')}: the hubstead framework has no metric {metric!r} for {kind}; "
                         f"known: {', '.join(known)}{more}")
    data = load_split(spec, task)
    if kind == "text-classification":
        require_columns(data, task, "text_column", "label_column")
        run = predict_text_classes(spec, task, model_dir, data, progress)
        references = label_ids(data, task, str(task["label_column"]), run.names)
        measure = lambda: metrics.classification(run.predictions, references, num_labels=len(run.names))  # noqa: E731
    else:
        require_columns(data, task, "tokens_column", "tags_column")
        tags = predict_tags(spec, task, model_dir, data, progress)
        expected = reference_tags(data, task, tags.names)
        measure = lambda: metrics.token_classification(tags.predictions, expected)  # noqa: E731
    try:
        found = measure()
    except ValueError as exc:
        raise EvalFailed(f"task {task.get('id')}: {exc}") from None
    if metric not in found:
        raise EvalFailed(f"task {task.get('id')}: no {metric!r} was measured (the benchmark's tags have no entity "
                         f"type {metric.removesuffix('_f1')!r})")
    return TaskScore(value=found[metric], metrics=found, samples=len(data))


# ---- predictions, shared with runners_custom ------------------------------------------------------------------


@dataclass
class Predicted:
    predictions: list[Any]  # label ids (text) or tag-name lists (tokens)
    names: list[str]  # the label names, by the model's ids


def load_model(model_dir: Path, kind: str, feature: Any = None) -> tuple[Any, Any, list[str]]:
    """The tokenizer, the model (on the device, in eval mode) and its label names by id, for ``kind``; a model
    without that head is refused. ``feature`` (the split's ClassLabel, if any) names generic ``LABEL_<i>`` ids."""
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    try:
        config = AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise EvalFailed(f"the model has no usable config.json: {' '.join(str(exc).split())}") from None
    head = _HEADS[kind]
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith(head) for name in architectures):
        raise EvalFailed(f"the model ({', '.join(architectures)}) does not fit {kind}: it has no {head} head")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise EvalFailed(f"the model has no usable tokenizer: {' '.join(str(exc).split())}") from None
    auto = AutoModelForSequenceClassification if kind == "text-classification" else AutoModelForTokenClassification
    try:
        model = auto.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise EvalFailed(f"the model cannot be loaded for {kind}: {' '.join(str(exc).split())}") from None
    model.to(device())
    model.eval()
    count = int(model.config.num_labels)
    names = [str(model.config.id2label.get(i, f"LABEL_{i}")) for i in range(count)]
    class_names = _class_names(feature)
    if class_names and len(class_names) == count and all(_GENERIC.match(name) for name in names):
        names = list(class_names)
    return tokenizer, model, names


def _class_names(feature: Any) -> list[str] | None:
    """The names of a ClassLabel feature (or of a sequence of ClassLabels), else None."""
    inner: Any = getattr(feature, "feature", None) if type(feature).__name__ in ("Sequence", "List") else feature
    if isinstance(feature, list) and feature:
        inner = feature[0]
    if type(inner).__name__ == "ClassLabel":
        return list(inner.names)
    return None


def _max_length(tokenizer: Any, model: Any) -> int:
    limits = [512]
    if isinstance(getattr(tokenizer, "model_max_length", None), int) and tokenizer.model_max_length > 0:
        limits.append(tokenizer.model_max_length)
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits)


def predict_text_classes(spec: EvalSpec, task: dict[str, Any], model_dir: Path, data: Any,
                         progress: Callable[[int, int], None]) -> Predicted:
    """The arg-max label id of every row (``text_column``, with ``text_pair_column`` when set)."""
    import torch

    keys = ["text_column"] + (["text_pair_column"] if task.get("text_pair_column") else [])
    columns = require_columns(data, task, *keys)
    feature = data.features.get(task["label_column"]) if task.get("label_column") in data.column_names else None
    tokenizer, model, names = load_model(model_dir, "text-classification", feature)
    texts = [_text(value) for value in data[columns[0]]]
    pairs = [_text(value) for value in data[columns[1]]] if len(columns) > 1 else None
    limit = _max_length(tokenizer, model)
    at = device()
    predictions: list[int] = []
    progress(0, len(texts))
    with torch.inference_mode():
        for rows in batches(len(texts), spec.batch_size):
            chunk = texts[rows.start:rows.stop]
            pair = pairs[rows.start:rows.stop] if pairs is not None else None
            enc = tokenizer(chunk, pair, truncation=True, padding=True, max_length=limit, return_tensors="pt")
            logits = model(**{k: v.to(at) for k, v in enc.items()}).logits
            predictions.extend(int(i) for i in logits.argmax(dim=-1).tolist())
            progress(rows.stop, len(texts))
    return Predicted(predictions=predictions, names=names)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def label_names(data: Any, column: str) -> list[Any]:
    """The column's values, ClassLabel ids as their names."""
    names = _class_names(data.features.get(column))
    values = list(data[column])
    if names:
        return [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in values]
    return values


def label_ids(data: Any, task: dict[str, Any], column: str, names: list[str]) -> list[int]:
    """The references of ``column`` as the model's label ids (by name; plain integers by id when the column has no
    names); a label the model does not know fails naming it."""
    require_columns(data, task, "label_column")
    index = {name: i for i, name in enumerate(names)}
    folded = {name.lower(): i for i, name in enumerate(names)}
    ids = []
    for value in label_names(data, column):
        if isinstance(value, bool) or value is None:
            raise EvalFailed(f"task {task.get('id')}: the label {value!r} in {column!r} is not a label of the model "
                             f"({', '.join(names)})")
        if isinstance(value, int):
            if 0 <= value < len(names):
                ids.append(value)
                continue
        elif str(value) in index:
            ids.append(index[str(value)])
            continue
        elif str(value).lower() in folded:
            ids.append(folded[str(value).lower()])
            continue
        raise EvalFailed(f"task {task.get('id')}: the label {value!r} in {column!r} is not a label of the model "
                         f"({', '.join(names)})")
    return ids


def predict_tags(spec: EvalSpec, task: dict[str, Any], model_dir: Path, data: Any,
                 progress: Callable[[int, int], None]) -> Predicted:
    """Each row's predicted tag names, one per word of ``tokens_column`` (its first sub-token's arg-max)."""
    import torch

    (column,) = require_columns(data, task, "tokens_column")
    feature = data.features.get(task["tags_column"]) if task.get("tags_column") in data.column_names else None
    tokenizer, model, names = load_model(model_dir, "token-classification", feature)
    if not getattr(tokenizer, "is_fast", False):
        raise EvalFailed("the model's tokenizer is not a fast tokenizer: token classification needs word_ids()")
    sentences = [[_text(word) for word in (words or [])] for words in data[column]]
    limit = _max_length(tokenizer, model)
    outside = "O" if "O" in names else names[0]
    at = device()
    predictions: list[list[str]] = []
    progress(0, len(sentences))
    with torch.inference_mode():
        for rows in batches(len(sentences), spec.batch_size):
            chunk = sentences[rows.start:rows.stop]
            enc = tokenizer(chunk, is_split_into_words=True, truncation=True, padding=True, max_length=limit,
                            return_tensors="pt")
            best = model(**{k: v.to(at) for k, v in enc.items()}).logits.argmax(dim=-1).tolist()
            for i, words in enumerate(chunk):
                tags = [outside] * len(words)
                seen: set[int] = set()
                for position, word in enumerate(enc.word_ids(batch_index=i)):
                    if word is not None and word not in seen:
                        seen.add(word)
                        tags[word] = names[best[i][position]]
                predictions.append(tags)
            progress(rows.stop, len(sentences))
    return Predicted(predictions=predictions, names=names)


def tag_names(data: Any, task: dict[str, Any]) -> list[list[Any]]:
    """``tags_column`` per row, ClassLabel ids as their names."""
    (column,) = require_columns(data, task, "tags_column")
    names = _class_names(data.features.get(column))
    rows = []
    for tags in data[column]:
        tags = list(tags or [])
        rows.append([names[t] if names and isinstance(t, int) and 0 <= t < len(names) else t for t in tags])
    return rows


def reference_tags(data: Any, task: dict[str, Any], names: list[str]) -> list[list[str]]:
    """The reference tag names of every row, each checked to be one the model predicts."""
    known = set(names)
    rows = []
    for i, tags in enumerate(tag_names(data, task)):
        for tag in tags:
            if isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag < len(names):
                continue
            if not isinstance(tag, str) or tag not in known:
                raise EvalFailed(f"task {task.get('id')}: the tag {tag!r} (row {i} of {task.get('tags_column')!r}) is "
                                 f"not a tag of the model ({', '.join(names)})")
        rows.append([names[t] if isinstance(t, int) else t for t in tags])
    return rows
