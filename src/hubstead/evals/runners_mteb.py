"""The ``mteb`` runner (job side): an embedding model measured by ``mteb`` on data read from this hub.

The model (``model_dir``) is loaded as a ``SentenceTransformer`` (a plain transformers encoder gets mean pooling)
and handed to ``mteb.evaluate`` (which wraps it as ``SentenceTransformerEncoderWrapper``). The task is either

- ``mteb_task``: a task mteb knows (``STSBenchmark``...). Its metadata's dataset ``path`` must be held by this hub
  (``hubstead import-benchmark`` puts it there under the same id); the data is read through ``HF_ENDPOINT``. When
  the revision mteb pins is not on this hub, the hub's (the benchmark's commit when the path is the benchmark
  itself, else the dataset's head) is used instead, and said in the log.
- ``mteb_type`` (STS | Classification | PairClassification): a task class built here whose data is the benchmark's
  own ``config``/``split`` at ``spec.benchmark_revision``, with the benchmark's column names given to mteb.

``spec.limit`` caps the rows of the evaluated split (and of a Classification task's training split). The value
is mteb's ``main_score``, or the task's ``metric`` when it names another score mteb reports. Nothing is cached
outside ``$HOME`` (mteb's result cache is off) and nothing but this hub is asked for anything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubstead.evals.program import load_split, require_columns
from hubstead.evals.spec import EvalFailed, EvalSpec, TaskScore

log = logging.getLogger("hubstead.evals.mteb")

# What mteb and datasets read from the environment (before datasets is imported): no installs of model extras at
# run time, no telemetry, no download-count ping to s3.amazonaws.com (the job's environment says so too).
os.environ.setdefault("MTEB_AUTO_INSTALL_EXTRAS", "0")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

_MAIN_SCORE = {"STS": "cosine_spearman", "Classification": "accuracy", "PairClassification": "max_ap"}


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(model_dir: Path) -> Any:
    """The model as a ``SentenceTransformer``; a plain transformers encoder (no ``modules.json``) gets mean
    pooling. A model that is not a text encoder at all is an ``EvalFailed``."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(model_dir), device=_device(), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever the loader says, the person needs it in words
        raise EvalFailed(f"the model cannot be loaded as a sentence embedding model for mteb: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _limited(dataset: Any, limit: int | None) -> Any:
    if limit is None or len(dataset) <= limit:
        return dataset
    return dataset.select(range(limit))


def _metadata(spec: EvalSpec, task: dict[str, Any], kind: str) -> Any:
    from mteb import TaskMetadata

    fields: dict[str, Any] = dict(
        name=f"{spec.benchmark}:{task['id']}", description=task.get("name") or f"{spec.benchmark} {task['id']}",
        dataset={"path": spec.benchmark, "revision": spec.benchmark_revision},
        type=kind, category="t2t", modalities=["text"], eval_splits=[task["split"]],
        # mteb wants languages in ISO 639-3 + script; a benchmark's eval.yaml does not say, and nothing ranks by it
        eval_langs=["eng-Latn"], main_score=_MAIN_SCORE[kind], license="not specified", bibtex_citation="")
    return TaskMetadata(**fields)


def custom_task(spec: EvalSpec, task: dict[str, Any]) -> Any:
    """An mteb task instance of ``task["mteb_type"]`` over the benchmark's own split, data already loaded."""
    from datasets import DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification
    from mteb.abstasks.pair_classification import AbsTaskPairClassification
    from mteb.abstasks.sts import AbsTaskSTS

    kind, split = task["mteb_type"], task["split"]
    data = load_split(spec, task)  # the first spec.limit rows
    if len(data) < 2:
        raise EvalFailed(f"task {task['id']}: split {split!r} of {spec.benchmark} has {len(data)} rows: mteb needs "
                         f"at least 2")
    attrs: dict[str, Any] = {"metadata": _metadata(spec, task, kind)}
    if kind == "STS":
        first, second, score = require_columns(data, task, "sentence1_column", "sentence2_column", "score_column")
        if score != "score":  # mteb's STS reads the gold scores from the column "score"
            data = data.remove_columns([c for c in data.column_names if c == "score"]).rename_column(score, "score")
        try:
            values = [float(v) for v in data["score"]]
        except (TypeError, ValueError) as exc:
            raise EvalFailed(f"task {task['id']}: column {score!r} must hold numbers (similarity scores)") from exc
        low, high = min(values), max(values)
        if low == high:
            raise EvalFailed(f"task {task['id']}: every row of column {score!r} has the same score: a correlation "
                             f"needs some spread")
        base: type = AbsTaskSTS
        attrs.update(column_names=(first, second), min_score=low, max_score=high)
    elif kind == "PairClassification":
        first, second, label = require_columns(data, task, "sentence1_column", "sentence2_column", "label_column")
        if set(data[label]) - {0, 1}:
            raise EvalFailed(f"task {task['id']}: column {label!r} must hold labels 0 or 1 for a PairClassification")
        base = AbsTaskPairClassification
        attrs.update(input1_column_name=first, input2_column_name=second, label_column_name=label)
    else:  # Classification: a logistic regression on the embeddings, trained on "train" (or cross-validated)
        text, label = require_columns(data, task, "text_column", "label_column")
        base = AbsTaskClassification
        attrs.update(input_column_name=text, label_column_name=label)
    splits = {split: data}
    if kind == "Classification":
        train = None
        if split != "train":
            try:
                train = load_split(spec, {**task, "split": "train"})
            except EvalFailed:
                train = None
        if train is None:
            attrs.update(is_cross_validation=True, train_split=split, n_splits=min(5, len(data)))
        else:
            require_columns(train, task, "text_column", "label_column")
            attrs.update(train_split="train")
            splits["train"] = train
    cls = type(f"Hubstead{kind}Task", (base,), attrs)
    instance = cls(seed=spec.seed)
    instance.dataset = DatasetDict(splits)
    instance.data_loaded = True
    return instance


def _hub_revision(path: str, pinned: str | None, spec: EvalSpec) -> str:
    """The revision of ``path`` to read from this hub: the benchmark's commit when it is the benchmark, mteb's pin
    when this hub has it, else the dataset's head here."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if path == spec.benchmark:
        return spec.benchmark_revision
    api = HfApi()
    if pinned:
        try:
            api.dataset_info(path, revision=pinned)
            return pinned
        except RevisionNotFoundError:
            pass
        except RepositoryNotFoundError as exc:
            raise EvalFailed(f"the mteb task reads dataset {path}, which this hub does not hold (or you cannot "
                             f"read): import it first (hubstead import-benchmark)") from exc
    try:
        head = api.dataset_info(path).sha
    except RepositoryNotFoundError as exc:
        raise EvalFailed(f"the mteb task reads dataset {path}, which this hub does not hold (or you cannot read): "
                         f"import it first (hubstead import-benchmark)") from exc
    log.warning("mteb pins %s at %s, which this hub lacks: using this hub's %s", path, pinned, head)
    return str(head)


def known_task(spec: EvalSpec, task: dict[str, Any]) -> Any:
    """The mteb task named ``task["mteb_task"]``, reading its data from this hub, split and rows cut to the
    benchmark's."""
    import mteb

    name, split, config = task["mteb_task"], task["split"], task.get("config") or "default"
    try:
        instance = mteb.get_task(name, eval_splits=[split])
    except Exception as exc:  # noqa: BLE001 - KeyError/ValueError with mteb's suggestions
        raise EvalFailed(f"mteb has no task {name!r} ({str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if split not in instance.metadata.eval_splits:
        raise EvalFailed(f"mteb task {name} evaluates splits {', '.join(instance.metadata.eval_splits)}, "
                         f"not {split!r}")
    metadata = instance.metadata.model_copy(deep=True)
    pinned = metadata.dataset.get("revision")
    metadata.dataset["revision"] = _hub_revision(str(metadata.dataset["path"]),
                                                 pinned if isinstance(pinned, str) else None, spec)
    instance.metadata = metadata
    if config != "default" and instance.metadata.is_multilingual:
        if config not in instance.metadata.hf_subsets:
            raise EvalFailed(f"mteb task {name} has no subset {config!r} "
                             f"(it has {', '.join(instance.metadata.hf_subsets)})")
        instance.hf_subsets = [config]
    try:
        instance.load_data()
    except Exception as exc:  # noqa: BLE001
        raise EvalFailed(f"cannot read the data of mteb task {name} from this hub: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if spec.limit is not None:
        from datasets import DatasetDict

        def cut(splits: Any) -> Any:
            return DatasetDict({key: (_limited(value, spec.limit) if key in (split, "train") else value)
                                for key, value in splits.items()})

        data: Any = instance.dataset
        if instance.metadata.is_multilingual:
            instance.dataset = {subset: cut(value) for subset, value in data.items()}
        elif isinstance(data, dict) and split in data:
            instance.dataset = cut(data)
    return instance


def _rows(instance: Any, split: str) -> int:
    data = instance.dataset
    if isinstance(data, dict) and split in data:
        return len(data[split])
    if isinstance(data, dict):
        return sum(len(value[split]) for value in data.values() if isinstance(value, dict) and split in value)
    return 0


def run_task(spec: EvalSpec, task: dict[str, Any], model_dir: Path,
             progress: Callable[[int, int], None]) -> TaskScore:
    import mteb

    instance = known_task(spec, task) if task.get("mteb_task") else custom_task(spec, task)
    split = task["split"]
    total = _rows(instance, split)
    progress(0, total)
    encoder = load_encoder(model_dir)
    try:
        result = mteb.evaluate(encoder, instance, cache=None, co2_tracker=False, show_progress_bar=False,
                               encode_kwargs={"batch_size": spec.batch_size, "show_progress_bar": False},
                               overwrite_strategy="always", public_only=False)
    except Exception as exc:  # noqa: BLE001 - a model mteb cannot run is the evaluator's to know in words
        raise EvalFailed(f"mteb could not evaluate the model on {task['id']}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if not result.task_results:
        raise EvalFailed(f"mteb returned no result for {task['id']}")
    scores = result.task_results[0].scores.get(split) or []
    if not scores:
        raise EvalFailed(f"mteb returned no scores for split {split!r} of {task['id']}")
    metrics: dict[str, float] = {}
    for key in scores[0]:
        values = [entry[key] for entry in scores if isinstance(entry.get(key), int | float)
                  and not isinstance(entry.get(key), bool)]
        if len(values) == len(scores):
            metrics[key] = float(sum(values) / len(values))
    metric = task.get("metric")
    key = metric if metric in metrics else "main_score"
    if key not in metrics:
        raise EvalFailed(f"mteb reported no {metric!r} nor a main score for {task['id']}")
    progress(total, total)
    return TaskScore(value=metrics[key], metrics=metrics, samples=total)
