"""The ``custom`` framework's runner: a team's own metric script scores the model's predictions.

The task names ``script``, a ``.py`` file in the benchmark repo (downloaded at ``spec.benchmark_revision``), or in
another repo when it names ``repo`` too (``owner/name`` is a model repo, ``datasets/owner/name`` or
``spaces/owner/name`` the others; read at its ``main``). The script defines::

    def compute(predictions: list, references: list) -> dict[str, float]

It runs in this job's process (the job is the sandbox; a script that hangs is ended by the job's timeout). The
predictions are made by ``task_type``:

- ``text-classification``: the predicted label names (``runners_hubstead``'s model and batching);
- ``token-classification``: the predicted tag names, one list per row, one tag per word;
- ``text-generation``: the greedy continuation (``generate``, ``max_new_tokens`` default 64, decoded without the
  prompt and special tokens) of each row's ``prompt_column``, by ``AutoModelForCausalLM``.

The references are the ``reference_column``'s values when the task names one, else the ``label_column`` (label
names) or the ``tags_column`` (tag-name lists). The task's score is ``compute(...)[task["metric"]]``. A script that
raises (on import or in ``compute``) fails the job with its error line (the traceback is in the log); an answer
that is not a dict of numbers, a non-finite number, or one without the task's metric fails saying so.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubstead.evals.program import batches, device, load_split, require_columns
from hubstead.evals.runners_hubstead import label_names, predict_tags, predict_text_classes, tag_names
from hubstead.evals.spec import EvalFailed, EvalSpec, TaskScore

DEFAULT_MAX_NEW_TOKENS = 64
_GENERATORS = ("ForCausalLM", "LMHeadModel")


def run_task(spec: EvalSpec, task: dict[str, Any], model_dir: Path, progress: Callable[[int, int], None]
             ) -> TaskScore:
    kind = task.get("task_type")
    if kind not in ("text-classification", "token-classification", "text-generation"):
        raise EvalFailed(f"task {task.get('id')}: task_type must be text-classification, token-classification or "
                         "text-generation")
    script = fetch_script(spec, task)
    compute = load_compute(script, task)
    data = load_split(spec, task)
    if task.get("reference_column"):
        (column,) = require_columns(data, task, "reference_column")
        references: list[Any] = list(data[column])
    elif kind == "text-classification":
        (column,) = require_columns(data, task, "label_column")
        references = label_names(data, column)
    elif kind == "token-classification":
        references = tag_names(data, task)
    else:
        raise EvalFailed(f"task {task.get('id')}: text-generation needs a reference_column")
    if kind == "text-classification":
        require_columns(data, task, "text_column")
        run = predict_text_classes(spec, task, model_dir, data, progress)
        predictions: list[Any] = [run.names[i] for i in run.predictions]
    elif kind == "token-classification":
        require_columns(data, task, "tokens_column")
        predictions = predict_tags(spec, task, model_dir, data, progress).predictions
    else:
        predictions = generate(spec, task, model_dir, data, progress)
    found = score(compute, predictions, references, task)
    return TaskScore(value=found[str(task.get("metric"))], metrics=found, samples=len(data))


def fetch_script(spec: EvalSpec, task: dict[str, Any]) -> Path:
    """The metric script, downloaded from this hub (the benchmark repo at its revision, or ``task["repo"]``)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    script = str(task.get("script") or "")
    if not script.endswith(".py") or script.startswith("/") or ".." in script.split("/"):
        raise EvalFailed(f"task {task.get('id')}: script must be a relative path to a .py file")
    repo = task.get("repo")
    if repo:
        repo_type = "model"
        repo_id = str(repo)
        for prefix, kind in (("datasets/", "dataset"), ("spaces/", "space"), ("models/", "model")):
            if repo_id.startswith(prefix):
                repo_id, repo_type = repo_id.removeprefix(prefix), kind
        revision = None
    else:
        repo_id, repo_type, revision = spec.benchmark, "dataset", spec.benchmark_revision
    home = Path(os.environ.get("HOME") or ".").resolve()
    try:
        path = hf_hub_download(repo_id, script, repo_type=repo_type, revision=revision,
                               local_dir=str(home / "scripts" / repo_type / repo_id.replace("/", "__")),
                               endpoint=os.environ.get("HF_ENDPOINT"), token=os.environ.get("HF_TOKEN"))
    except EntryNotFoundError:
        raise EvalFailed(f"task {task.get('id')}: the metric script {script} is not in {repo_id}") from None
    except RepositoryNotFoundError:
        raise EvalFailed(f"task {task.get('id')}: the repo {repo_id} of the metric script does not exist or this "
                         "evaluation may not read it") from None
    except HfHubHTTPError as exc:
        raise EvalFailed(f"task {task.get('id')}: cannot download the metric script {script}: {exc}") from None
    return Path(path)


def _error_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def load_compute(path: Path, task: dict[str, Any]) -> Callable[..., Any]:
    """The script's ``compute`` function (the script imported as a module of its own)."""
    name = f"hubstead_metric_{task.get('id')}".replace("-", "_").replace(".", "_")
    module_spec = importlib.util.spec_from_file_location(name, str(path))
    if module_spec is None or module_spec.loader is None:
        raise EvalFailed(f"task {task.get('id')}: the metric script {task.get('script')} cannot be loaded")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the script's own error, reported in its words
        traceback.print_exc()
        raise EvalFailed(f"task {task.get('id')}: the metric script {task.get('script')} raised on import: "
                         f"{_error_line(exc)}") from None
    compute = getattr(module, "compute", None)
    if not callable(compute):
        raise EvalFailed(f"task {task.get('id')}: the metric script {task.get('script')} defines no "
                         "compute(predictions, references)")
    return compute  # type: ignore[no-any-return]


def score(compute: Callable[..., Any], predictions: list[Any], references: list[Any], task: dict[str, Any]
          ) -> dict[str, float]:
    """``compute``'s answer, checked: a dict of finite numbers holding the task's metric."""
    where = f"task {task.get('id')}: the metric script {task.get('script')}"
    try:
        answer = compute(predictions, references)
    except Exception as exc:  # noqa: BLE001 - the script's own error, reported in its words
        traceback.print_exc()
        raise EvalFailed(f"{where} raised: {_error_line(exc)}") from None
    if not isinstance(answer, dict):
        raise EvalFailed(f"{where} returned a {type(answer).__name__}, not a dict of metric names to numbers")
    found: dict[str, float] = {}
    for key, value in answer.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:  # numpy scalars and 0-d tensors
                value = float(value) if not isinstance(value, bool | str) and hasattr(value, "__float__") else None
            except (TypeError, ValueError):
                value = None
            if value is None:
                raise EvalFailed(f"{where} returned {key!r}: {type(answer[key]).__name__}, not a number")
        if not math.isfinite(float(value)):
            raise EvalFailed(f"{where} returned {key!r}: {value}, not a finite number")
        found[str(key)] = float(value)
    metric = str(task.get("metric"))
    if metric not in found:
        raise EvalFailed(f"{where} returned no {metric!r} (it returned: {', '.join(found) or 'nothing'})")
    return found


def generate(spec: EvalSpec, task: dict[str, Any], model_dir: Path, data: Any,
             progress: Callable[[int, int], None]) -> list[str]:
    """The greedy continuation of each row's prompt, decoded without the prompt."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    (column,) = require_columns(data, task, "prompt_column")
    try:
        config = AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise EvalFailed(f"the model has no usable config.json: {' '.join(str(exc).split())}") from None
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith(_GENERATORS) for name in architectures):
        raise EvalFailed(f"the model ({', '.join(architectures)}) does not fit text-generation: it is not a causal "
                         "language model")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise EvalFailed(f"the model cannot be loaded for text-generation: {' '.join(str(exc).split())}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    at = device()
    model.to(at)
    model.eval()
    new_tokens = int(task.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
    prompts = ["" if value is None else str(value) for value in data[column]]
    outputs: list[str] = []
    progress(0, len(prompts))
    with torch.inference_mode():
        for rows in batches(len(prompts), spec.batch_size):
            enc = tokenizer(prompts[rows.start:rows.stop], padding=True, return_tensors="pt")
            enc = {k: v.to(at) for k, v in enc.items()}
            generated = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id)
            continuation = generated[:, enc["input_ids"].shape[1]:]
            outputs.extend(tokenizer.batch_decode(continuation, skip_special_tokens=True))
            progress(rows.stop, len(prompts))
    return outputs
