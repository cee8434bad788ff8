"""What an evaluation job is given and what it says back (pure; shared by the hub and the job process).

The hub runs an evaluation as a compute job (image ``hubstead/python``, command ``python -m
hubstead.evals.program``) with its ``EvalSpec`` as JSON in the environment variable ``HUBSTEAD_EVAL_SPEC``, and
``HF_ENDPOINT``/``HF_TOKEN`` of this hub (the job reads the model and the benchmark's data from here, never from
the internet). The program prints, on stdout (the job's log, which the hub reads back):

- ``HUBSTEAD-PROGRESS {"task_id": ..., "done": n, "total": m}`` as it goes;
- ``HUBSTEAD-EVAL {"task_id": ..., "value": float, "metrics": {...}, "samples": n}`` once per task measured;
- ``HUBSTEAD-ERROR <reason in words>`` before it exits non-zero (the compute executor makes it the job's message).

Only the hub turns those lines into results: when the job COMPLETES, ``evals.service`` reads the EVAL lines of the
tasks the spec named and writes them, signed, into the model repo.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SPEC_ENV = "HUBSTEAD_EVAL_SPEC"
LABEL = "hubstead-eval"  # the compute job label (value: the benchmark id) that marks evaluation jobs
PROGRAM = ["python", "-m", "hubstead.evals.program"]
EVAL_MARK = "HUBSTEAD-EVAL "
PROGRESS_MARK = "HUBSTEAD-PROGRESS "
MAX_LIMIT = 1_000_000
MAX_FEWSHOT = 25


@dataclass
class EvalSpec:
    """One evaluation: ``model`` at ``model_revision`` (a commit sha) on ``benchmark`` at
    ``benchmark_revision``, the chosen ``tasks`` (each a ``BenchmarkTask.as_json()``), by ``framework``."""

    model: str
    model_revision: str
    benchmark: str
    benchmark_revision: str
    framework: str
    tasks: list[dict[str, Any]]
    limit: int | None = None  # at most this many samples per task (None: the whole split)
    num_fewshot: int | None = None  # overrides each task's num_fewshot (lm-eval)
    batch_size: int = 16
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_env(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_env(cls, text: str) -> EvalSpec:
        data = json.loads(text)
        return cls(**data)


def eval_line(task_id: str, value: float, metrics: dict[str, Any], samples: int) -> str:
    return EVAL_MARK + json.dumps({"task_id": task_id, "value": value, "metrics": metrics, "samples": samples},
                                  separators=(",", ":"))


def progress_line(task_id: str, done: int, total: int) -> str:
    return PROGRESS_MARK + json.dumps({"task_id": task_id, "done": done, "total": total}, separators=(",", ":"))


def read_marks(lines: list[str], mark: str) -> list[dict[str, Any]]:
    """The JSON objects of every ``mark`` line (lines that do not parse are skipped)."""
    found = []
    for line in lines:
        at = line.find(mark)
        if at < 0:
            continue
        try:
            data = json.loads(line[at + len(mark):])
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


class EvalFailed(Exception):
    """A runner's failure in words (the program prints it as ``HUBSTEAD-ERROR`` and exits non-zero): a column
    missing, a model that cannot do the task, a metric script that raised."""


# The runner contract (job side). ``hubstead.evals.program`` imports ``hubstead.evals.runners_<framework>``
# (``-`` → ``_``: runners_hubstead, runners_custom, runners_mteb, runners_lm_eval) and calls, for each task:
#
#     run_task(spec: EvalSpec, task: dict, model_dir: Path, progress: Callable[[int, int], None]) -> TaskScore
#
# ``task`` is one of ``spec.tasks`` (``BenchmarkTask.as_json()``: id, config, split, metric, higher_is_better,
# baseline, name and the framework's options), ``model_dir`` the model's files at ``spec.model_revision``
# (downloaded from this hub by the program), ``progress(done, total)`` reports samples. A runner reads the
# benchmark's data from this hub (``datasets.load_dataset(spec.benchmark, task["config"], split=task["split"],
# revision=spec.benchmark_revision)`` through ``HF_ENDPOINT``), honours ``spec.limit`` (and ``spec.num_fewshot``
# where it applies), and raises ``EvalFailed`` with a reason a person can act on.


@dataclass
class TaskScore:
    value: float  # the task's ``metric``
    metrics: dict[str, float]  # everything the runner measured
    samples: int
