"""The ``lm-eval`` runner (job side): a generative model measured by EleutherAI's lm-evaluation-harness on data
read from this hub.

The model (``model_dir``) is run through ``lm_eval.simple_evaluate(model="hf", model_args={"pretrained": <dir>,
"dtype": ...})`` (float32 on the CPU, the model's own dtype on a GPU); a model that is not a generative language
model (a classifier, an encoder) is an ``EvalFailed`` before anything runs. The task is either

- ``lm_eval_task``: a task lm-eval knows (``arc_easy``...). Its ``dataset_path`` must be held by this hub under the
  id lm-eval expects (``hubstead import-benchmark`` puts it there); ``datasets`` reads it through ``HF_ENDPOINT``.
  When that dataset is the benchmark repo itself, it is read at ``spec.benchmark_revision`` (a task config written
  here includes lm-eval's and pins the revision).
- an inline multiple-choice task: a task YAML written into a temporary folder (``dataset_path`` the benchmark,
  ``dataset_name`` its config, ``test_split`` its split, the revision pinned, ``doc_to_text``/``doc_to_choice``/
  ``doc_to_target`` from ``eval.yaml``, metrics ``acc`` and ``acc_norm``) and loaded by a ``TaskManager`` over it.

``spec.limit`` caps the documents, ``spec.num_fewshot`` (else the task's ``num_fewshot``) sets the shots. The
value is the task's ``metric`` (``acc``, ``acc_norm``, ``exact_match``...; lm-eval's keys look like ``acc,none``).
lm-eval's own logging goes to the job's log; progress is reported at the start and the end.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hubstead.evals.spec import EvalFailed, EvalSpec, TaskScore

log = logging.getLogger("hubstead.evals.lm_eval")

# Read by datasets when it is imported: no telemetry, no download-count ping to s3.amazonaws.com (the job's
# environment says so too).
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

INLINE_METRICS = ("acc", "acc_norm")
# Architectures lm-eval's "hf" model can score (a causal LM, or a seq2seq one); anything else cannot do the task.
_GENERATIVE = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "ForSeq2SeqLM")


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def check_generative(model_dir: Path) -> None:
    """``EvalFailed`` unless the model at ``model_dir`` is a generative language model lm-eval can score."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise EvalFailed(f"the model has no usable config.json for lm-eval ({_first_line(exc)})") from exc
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith(_GENERATIVE) for name in architectures):
        raise EvalFailed(f"the model is a {', '.join(architectures)}: lm-eval benchmarks need a generative language "
                         f"model (a causal LM such as LlamaForCausalLM, or a seq2seq model)")


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def inline_config(spec: EvalSpec, task: dict[str, Any], name: str) -> dict[str, Any]:
    """The lm-eval task config of an inline multiple-choice task over the benchmark's own split."""
    metric = task.get("metric")
    if metric not in INLINE_METRICS:
        raise EvalFailed(f"task {task['id']} is an inline multiple-choice task: its metric must be one of "
                         f"{', '.join(INLINE_METRICS)}, not {metric!r}")
    config = task.get("config") or "default"
    return {
        "task": name, "dataset_path": spec.benchmark, "dataset_name": config,
        "dataset_kwargs": {"revision": spec.benchmark_revision}, "test_split": task["split"],
        "output_type": task.get("output_type") or "multiple_choice", "doc_to_text": task["doc_to_text"],
        "doc_to_choice": task["doc_to_choice"], "doc_to_target": task["doc_to_target"],
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in INLINE_METRICS],
        "metadata": {"version": 1.0},
    }


def _check_dataset(path: str, spec: EvalSpec, name: str) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    if path == spec.benchmark:
        return
    try:
        HfApi().dataset_info(path)
    except RepositoryNotFoundError as exc:
        raise EvalFailed(f"lm-eval task {name} reads dataset {path}, which this hub does not hold (or you cannot "
                         f"read): import it first (hubstead import-benchmark)") from exc


def stock_config(manager: Any, spec: EvalSpec, task: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The task name to run for ``lm_eval_task`` and, when its dataset is the benchmark repo itself, a config that
    includes lm-eval's and pins the benchmark's revision (else None: lm-eval's own config as it is)."""
    name = task["lm_eval_task"]
    entry = manager.task_index.get(name)
    if entry is None:
        raise EvalFailed(f"lm-eval has no task, group or tag {name!r}")
    cfg = entry.cfg or {}
    path = cfg.get("dataset_path")
    if isinstance(path, str):
        _check_dataset(path, spec, name)
    if path == spec.benchmark and entry.yaml_path is not None:
        kwargs = dict(cfg.get("dataset_kwargs") or {})
        kwargs["revision"] = spec.benchmark_revision
        return name, {"include": str(entry.yaml_path), "task": name, "dataset_kwargs": kwargs}
    return name, None


def task_value(results: dict[str, Any], name: str, metric: str) -> tuple[float, dict[str, float]]:
    """The ``metric`` of task (or group) ``name`` in ``simple_evaluate``'s results, and every number reported for
    it. lm-eval keys a metric by its filter (``acc,none``, ``exact_match,strict-match``): ``metrics`` names the
    unfiltered ones plainly and keeps the others whole; a plain ``metric`` reported only under filters is the first
    filter's (the task's own order), and ``exact_match,flexible-extract`` picks one."""
    row = (results.get("results") or {}).get(name) or (results.get("groups") or {}).get(name)
    if not isinstance(row, dict):
        raise EvalFailed(f"lm-eval returned no results for {name}")
    metrics: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        metric_name, _, filt = key.partition(",")
        metrics[metric_name if filt in ("", "none") else key] = float(value)
    if metric in metrics:
        return metrics[metric], metrics
    filtered = [key for key in metrics if key.startswith(metric + ",")]
    if filtered:
        return metrics[filtered[0]], metrics
    reported = sorted(k for k in metrics if not k.endswith("_stderr"))
    raise EvalFailed(f"lm-eval reported {', '.join(reported) or 'nothing'} for {name}, not the metric {metric!r} "
                     f"that eval.yaml names")


def _samples(results: dict[str, Any], name: str) -> int:
    counts = (results.get("n-samples") or {}).get(name) or {}
    return int(counts.get("effective") or counts.get("original") or 0)


_STOCK_RUNS: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}


def run_task(spec: EvalSpec, task: dict[str, Any], model_dir: Path,
             progress: Callable[[int, int], None]) -> TaskScore:
    import lm_eval
    from lm_eval.tasks import TaskManager

    check_generative(model_dir)
    shots = spec.num_fewshot if spec.num_fewshot is not None else task.get("num_fewshot")
    progress(0, spec.limit or 0)
    # Two benchmark tasks may read two metrics of one stock lm-eval task (IFEval's prompt- and instruction-level
    # accuracy): it runs once per job.
    key = (str(model_dir), task.get("lm_eval_task"), shots, spec.limit) if task.get("lm_eval_task") else None
    if key is not None and key in _STOCK_RUNS:
        results, name = _STOCK_RUNS[key]
        value, metrics = task_value(results, name, str(task.get("metric")))
        samples = _samples(results, name)
        progress(samples, samples)
        return TaskScore(value=value, metrics=metrics, samples=samples)
    with tempfile.TemporaryDirectory(prefix="hubstead-lm-eval-") as tmp:
        if task.get("lm_eval_task"):
            manager = TaskManager()
            name, override = stock_config(manager, spec, task)
            if override is not None:
                (Path(tmp) / f"{name}.yaml").write_text(yaml.safe_dump(override, sort_keys=False))
                manager = TaskManager(include_path=tmp)
        else:
            name = "hubstead_" + "".join(c if c.isalnum() else "_" for c in task["id"])
            (Path(tmp) / f"{name}.yaml").write_text(yaml.safe_dump(inline_config(spec, task, name), sort_keys=False))
            manager = TaskManager(include_path=tmp, include_defaults=False)
        device = _device()
        dtype = "float32" if device == "cpu" else "auto"
        try:
            results = lm_eval.simple_evaluate(
                model="hf", model_args={"pretrained": str(model_dir), "dtype": dtype}, tasks=[name], num_fewshot=shots,
                limit=spec.limit, batch_size=spec.batch_size, device=device, task_manager=manager,
                log_samples=False, random_seed=spec.seed, numpy_random_seed=spec.seed, torch_random_seed=spec.seed,
                fewshot_random_seed=spec.seed, bootstrap_iters=0)
        except EvalFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - a missing column, a template error, a model lm-eval cannot run
            raise EvalFailed(f"lm-eval could not evaluate the model on {task['id']}: {_first_line(exc)}") from exc
    if not results:
        raise EvalFailed(f"lm-eval returned no results for {task['id']}")
    if key is not None:
        _STOCK_RUNS[key] = (results, name)
    value, metrics = task_value(results, name, str(task.get("metric")))
    samples = _samples(results, name)
    progress(samples, samples)
    return TaskScore(value=value, metrics=metrics, samples=samples)
