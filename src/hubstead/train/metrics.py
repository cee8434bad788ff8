"""The metric lines a train run prints on stdout, ``HUBSTEAD-METRIC {json}``, and reading them back from its log.

Each line is one JSON object with ``step`` (the global step) and ``epoch``, and some of ``loss``, ``eval_loss``,
``learning_rate`` and the eval metrics (``eval_accuracy``, ``eval_f1``, ``eval_spearman``, ``eval_perplexity``...).
The run page reads them from the job's log for its chart. Pure: no torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

METRIC_PREFIX = "HUBSTEAD-METRIC "
ERROR_PREFIX = "HUBSTEAD-ERROR "
OUTPUT_PREFIX = "HUBSTEAD-OUTPUT "

# Keys that are bookkeeping, not curves. The run's own throughput at its end (train_runtime,
# train_samples_per_second, train_loss: the average) is kept: the run page and benchmarks/bench_train.py read it.
_SKIP = ("total_flos", "train_steps_per_second", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second",
         "grad_norm")


def format_metric(values: Mapping[str, Any]) -> str:
    """One metric line: ``step`` and ``epoch`` first, then the finite numbers of ``values`` (others dropped)."""
    if "step" not in values:
        raise ValueError("a metric line needs a step")
    clean: dict[str, float | int] = {"step": int(values["step"]), "epoch": _number(values.get("epoch")) or 0.0}
    for key, value in sorted(values.items()):
        if key in ("step", "epoch") or key in _SKIP:
            continue
        number = _number(value)
        if number is not None:
            clean[str(key)] = number
    return METRIC_PREFIX + json.dumps(clean, separators=(",", ":"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value.item()) if hasattr(value, "item") else None
        except (TypeError, ValueError):
            return None
        if value is None:
            return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_metric_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The metric points in ``lines`` (a job's log: other lines, and a timestamp or stream prefix before the marker,
    are skipped), in order. A damaged line is skipped, not fatal: the log is the run's, not ours."""
    points: list[dict[str, Any]] = []
    for line in lines:
        at = line.find(METRIC_PREFIX)
        if at < 0:
            continue
        try:
            data = json.loads(line[at + len(METRIC_PREFIX):])
        except ValueError:
            continue
        if not isinstance(data, dict) or isinstance(data.get("step"), bool) or not isinstance(data.get("step"), int):
            continue
        point: dict[str, Any] = {"step": data["step"]}
        for key, value in data.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if key != "step" and number and math.isfinite(value):
                point[key] = value
        point.setdefault("epoch", 0.0)
        points.append(point)
    return points


def eval_metric_name(points: Iterable[Mapping[str, Any]]) -> str | None:
    """The headline eval metric of a run (``eval_accuracy``, ``eval_f1``, ``eval_spearman``...), None if only
    losses were logged. The first one in this order wins, then any other ``eval_*`` key."""
    keys: list[str] = []
    for point in points:
        keys += [k for k in point if k not in keys]
    for preferred in ("eval_accuracy", "eval_f1", "eval_spearman", "eval_rewards/accuracies", "eval_perplexity"):
        if preferred in keys:
            return preferred
    for key in keys:
        if key.startswith("eval_") and key not in ("eval_loss",) and key not in _SKIP:
            return key
    return None
