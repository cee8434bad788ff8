"""What runs inside an evaluation job: ``python -m hubstead.evals.program``.

It reads its ``EvalSpec`` from ``HUBSTEAD_EVAL_SPEC`` (JSON), seeds every generator with ``spec.seed``, downloads
the model at ``spec.model_revision`` from this hub (``HF_ENDPOINT`` + ``HF_TOKEN``: no internet) into
``$HOME/models`` (kept across attempts of the job: a rerun does not fetch it again), then, for each of the spec's
tasks, imports ``hubstead.evals.runners_<framework>`` (``-`` → ``_``) and calls its ``run_task(spec, task,
model_dir, progress)`` (the contract at the end of ``evals.spec``). It prints on stdout ``HUBSTEAD-PROGRESS`` lines
(at most a few a second, and the last one of each task) and one ``HUBSTEAD-EVAL`` line per task measured. A failure
(``EvalFailed``, or any exception: its traceback goes to the log first) prints ``HUBSTEAD-ERROR <reason in words>``
and exits 1; the tasks measured before it have printed their lines, but the hub writes results only from a job
that completed.

The helpers below (``device``, ``load_split``, ``require_columns``, ``batches``) are shared by the runners.

Imports torch, transformers and datasets: only the job process imports this module.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hubstead.evals.spec import SPEC_ENV, EvalFailed, EvalSpec, TaskScore, eval_line, progress_line

ERROR_MARK = "HUBSTEAD-ERROR "
PROGRESS_EVERY_S = 0.5  # at most two progress lines a second per task
# Weights in formats the runners never load: not downloaded (``*.bin``/``*.pt`` too, when safetensors are there).
_NEVER = ["*.h5", "*.msgpack", "*.onnx", "*.onnx_data", "*.tflite", "*.ot", "*.gguf", "*.mlmodel", "*.ckpt",
          "*.safetensors.index.json.bak", ".eval_results/*", "onnx/*", "openvino/*", "coreml/*"]
_PICKLES = ["*.bin", "*.pt", "*.pth"]


def main() -> int:
    try:
        raw = os.environ.get(SPEC_ENV)
        if not raw:
            raise EvalFailed(f"no evaluation spec: the job's environment has no {SPEC_ENV}")
        try:
            spec = EvalSpec.from_env(raw)
        except (ValueError, TypeError) as exc:
            raise EvalFailed(f"the evaluation spec is not valid: {exc}") from None
        run(spec)
    except EvalFailed as exc:
        return _fail(str(exc))
    except BaseException as exc:  # noqa: BLE001 - the last line of the log must say why, whatever it was
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        traceback.print_exc()
        return _fail(explain(exc))
    return 0


def _fail(reason: str) -> int:
    sys.stderr.flush()
    print(ERROR_MARK + (" ".join(reason.split()) or "the evaluation failed"), flush=True)
    return 1


def explain(exc: BaseException) -> str:
    """An unexpected exception in words (out of memory says what to do about it)."""
    text = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return f"out of memory: the model or the batch does not fit this hardware; lower batch_size ({text})"
    return text


def run(spec: EvalSpec) -> list[TaskScore]:
    """Every task of the spec measured, its EVAL line printed as soon as it is known."""
    if not spec.tasks:
        raise EvalFailed("the evaluation spec names no task")
    runner = load_runner(spec.framework)
    seed_everything(spec.seed)
    model_dir = download_model(spec)
    scores = []
    for task in spec.tasks:
        task_id = str(task.get("id"))
        score = runner.run_task(spec, task, model_dir, Progress(task_id))
        value = float(score.value)
        if not math.isfinite(value):
            raise EvalFailed(f"task {task_id}: the score ({task.get('metric')}) is {value}, not a finite number")
        metrics = {k: float(v) for k, v in score.metrics.items() if _finite(v)}
        print(eval_line(task_id, value, metrics, int(score.samples)), flush=True)
        scores.append(score)
    return scores


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_runner(framework: str) -> Any:
    """The runner module of a framework (``hubstead.evals.runners_<framework with - → _>``)."""
    name = "hubstead.evals.runners_" + framework.replace("-", "_")
    if not framework.replace("-", "_").isidentifier():
        raise EvalFailed(f"unknown evaluation framework {framework!r}")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise EvalFailed(f"unknown evaluation framework {framework!r}") from None
        raise EvalFailed(f"the {framework} framework cannot run here: {exc}") from None
    if not callable(getattr(module, "run_task", None)):
        raise EvalFailed(f"the {framework} framework has no runner")
    return module


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def download_model(spec: EvalSpec) -> Path:
    """The model's files at ``spec.model_revision`` in ``$HOME/models/<owner>__<name>/<revision>`` (what an earlier
    attempt downloaded there is reused); weights in formats no runner loads are left out."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    home = Path(os.environ.get("HOME") or ".").resolve()
    target = home / "models" / spec.model.replace("/", "__") / spec.model_revision
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"), token=os.environ.get("HF_TOKEN"))
    try:
        files = api.list_repo_files(spec.model, revision=spec.model_revision)
        print(f"Downloading {spec.model}@{spec.model_revision[:12]}", flush=True)
        snapshot_download(spec.model, revision=spec.model_revision, local_dir=str(target),
                          ignore_patterns=ignored_files(files), endpoint=os.environ.get("HF_ENDPOINT"),
                          token=os.environ.get("HF_TOKEN"))
    except GatedRepoError:
        raise EvalFailed(f"the model {spec.model} is gated and this evaluation may not read it") from None
    except RepositoryNotFoundError:
        raise EvalFailed(f"the model {spec.model} does not exist or this evaluation may not read it") from None
    except RevisionNotFoundError:
        raise EvalFailed(f"the model {spec.model} has no revision {spec.model_revision}") from None
    except HfHubHTTPError as exc:
        raise EvalFailed(f"cannot download the model {spec.model}: {exc}") from None
    return target


def ignored_files(files: list[str]) -> list[str]:
    """The download's ignore patterns: other frameworks' weights, and pickled weights where safetensors exist."""
    patterns = list(_NEVER)
    if any(name.endswith(".safetensors") for name in files):
        patterns += _PICKLES
    return patterns


class Progress:
    """``progress(done, total)`` for one task: a ``HUBSTEAD-PROGRESS`` line at most every ``PROGRESS_EVERY_S``
    seconds, and always the one that ends the task (``done == total``)."""

    def __init__(self, task_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.task_id = task_id
        self.clock = clock
        self.last = -math.inf

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if done >= total or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            print(progress_line(self.task_id, int(done), int(total)), flush=True)


# ---- shared by the runners ------------------------------------------------------------------------------------


def device() -> Any:
    """The GPU when there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_split(spec: EvalSpec, task: dict[str, Any]) -> Any:
    """The task's split of the benchmark (from this hub, at ``spec.benchmark_revision``), cut to the first
    ``spec.limit`` rows (deterministic: the same rows on every run)."""
    import datasets

    datasets.disable_progress_bars()
    config = task.get("config") or "default"
    split = task.get("split")
    try:
        data = datasets.load_dataset(spec.benchmark, None if config == "default" else config, split=split,
                                     revision=spec.benchmark_revision)
    except ValueError as exc:
        raise EvalFailed(f"task {task.get('id')}: cannot load split {split!r} (config {config!r}) of "
                         f"{spec.benchmark}: {' '.join(str(exc).split())}") from None
    except FileNotFoundError as exc:
        raise EvalFailed(f"task {task.get('id')}: the benchmark {spec.benchmark} has no data for config "
                         f"{config!r}: {exc}") from None
    if spec.limit is not None and spec.limit < len(data):
        data = data.select(range(max(spec.limit, 0)))
    return data


def require_columns(data: Any, task: dict[str, Any], *keys: str) -> list[str]:
    """The columns the task's options ``keys`` name, each checked to be in ``data`` (EvalFailed naming the one
    missing and the columns there are)."""
    columns = list(data.column_names)
    found = []
    for key in keys:
        column = task.get(key)
        if not column:
            raise EvalFailed(f"task {task.get('id')}: {key} is not set")
        if column not in columns:
            raise EvalFailed(f"task {task.get('id')}: the split has no column {column!r} ({key}); its columns are "
                             f"{', '.join(columns)}")
        found.append(column)
    return found


def batches(total: int, size: int) -> Iterator[range]:
    """``range(total)`` in consecutive slices of ``size`` (at least 1)."""
    size = max(int(size), 1)
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


if __name__ == "__main__":
    # Run the imported module's main, not this ``__main__`` copy's (the runners import ``hubstead.evals.program``).
    from hubstead.evals import program

    sys.exit(program.main())
