"""Ranking, as the anchors compute it (pure: no database).

- ``rank``: competition ranking ("1224"): tied values share the best rank, the next value skips.
- ``borda``: MTEB's Borda count (``mteb/benchmarks/_create_table.py``, ``_borda_rank_from_long``): per task, the
  models that have a result are ranked with ties averaged (``rank(method="average")``, best first); a model earns
  ``n_models - rank`` points on each task it has, where ``n_models`` counts every model with at least one result
  on any task; a missing result earns nothing (0 points, it is not a penalty rank); points are summed, and the
  final order is the points' competition ranking (``rank(method="min", descending=True)``).
- ``normalized_mean``: the Open LLM Leaderboard v2's average: per benchmark ``max(0, raw - baseline) /
  (1 - baseline) * 100`` (its ``normalize_within_range`` with the upper bound 1: ``np.clip(value - lower, 0,
  None) / (higher - lower) * 100``), then the plain mean over the benchmarks. A model that lacks any benchmark is
  left out, as the leaderboard does (``get_leaderboard_df`` keeps only ``has_no_nan_values(df, benchmark_cols)``).
- ``mean``: the plain mean of raw values, over models that have every task (as MTEB's "Mean (Task)", null
  when a task is missing: such models are left out here).

A lower-is-better task ranks ascending; in a normalized mean its raw value and baseline are mirrored
(``1 - x``) first, so that 100 is still the best.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

M = TypeVar("M", bound=Hashable)
T = TypeVar("T", bound=Hashable)

AGGREGATES = ("borda", "normalized-mean", "mean")


def rank(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """The competition rank of each value, in the given order (``[9, 7, 7, 5]`` → ``[1, 2, 2, 4]``)."""
    order = sorted(range(len(values)), key=lambda i: -values[i] if higher_is_better else values[i])
    ranks = [0] * len(values)
    for position, i in enumerate(order):
        if position and values[order[position - 1]] == values[i]:
            ranks[i] = ranks[order[position - 1]]
        else:
            ranks[i] = position + 1
    return ranks


def average_ranks(values: Sequence[float], higher_is_better: bool = True) -> list[float]:
    """Ties share the mean of the ranks they span (``[9, 7, 7, 5]`` → ``[1, 2.5, 2.5, 4]``), as pandas/polars
    ``rank(method="average")``."""
    order = sorted(range(len(values)), key=lambda i: -values[i] if higher_is_better else values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + 1 + end + 1) / 2
        for position in range(start, end + 1):
            ranks[order[position]] = shared
        start = end + 1
    return ranks


def ranked(scores: Mapping[M, float], higher_is_better: bool = True) -> dict[M, int]:
    """``rank`` over a mapping: each key's competition rank by its score."""
    keys = list(scores)
    return dict(zip(keys, rank([scores[key] for key in keys], higher_is_better), strict=True))


def borda(per_task: Mapping[T, Mapping[M, float]], higher_is_better: Mapping[T, bool]) -> dict[M, float]:
    """MTEB's Borda points of every model that has at least one task result (see the module docstring)."""
    models: dict[M, None] = {}
    for results in per_task.values():
        models.update(dict.fromkeys(results))
    n_models = len(models)
    points = dict.fromkeys(models, 0.0)
    for task, results in per_task.items():
        names = list(results)
        for model, task_rank in zip(
            names, average_ranks([results[m] for m in names], higher_is_better.get(task, True)), strict=True
        ):
            points[model] += n_models - task_rank
    return points


def normalize(raw: float, baseline: float, higher_is_better: bool = True) -> float:
    """The Open LLM Leaderboard's normalised score of a raw value in 0..1: 0 at (or under) the baseline, 100 at 1."""
    if not higher_is_better:
        raw, baseline = 1.0 - raw, 1.0 - baseline
    if baseline >= 1.0:
        return 0.0
    return max(0.0, raw - baseline) / (1.0 - baseline) * 100.0


def normalized_mean(
    per_benchmark: Mapping[T, Mapping[M, float]],
    baselines: Mapping[T, float],
    higher_is_better: Mapping[T, bool] | None = None,
) -> dict[M, float]:
    """Each model's mean of baseline-normalised scores over every benchmark; models missing one are left out."""
    higher = higher_is_better or {}
    return _complete_mean({
        bench: {model: normalize(raw, baselines.get(bench, 0.0), higher.get(bench, True))
                for model, raw in results.items()}
        for bench, results in per_benchmark.items()
    })


def mean(per_task: Mapping[T, Mapping[M, float]]) -> dict[M, float]:
    """Each model's plain mean over every task; models missing one are left out."""
    return _complete_mean(per_task)


def _complete_mean(per_task: Mapping[T, Mapping[M, float]]) -> dict[M, float]:
    if not per_task:
        return {}
    columns = list(per_task.values())
    complete = set(columns[0]).intersection(*columns[1:])
    return {model: sum(column[model] for column in columns) / len(columns)
            for model in columns[0] if model in complete}


def aggregate(
    method: str,
    per_task: Mapping[T, Mapping[M, float]],
    higher_is_better: Mapping[T, bool],
    baselines: Mapping[T, float] | None = None,
) -> tuple[dict[M, float], bool]:
    """The score of each model under ``method`` and whether a higher score is better (Borda points and
    normalised means are; a plain mean follows its tasks, which must then agree, else higher wins)."""
    if method == "borda":
        return borda(per_task, higher_is_better), True
    if method == "normalized-mean":
        return normalized_mean(per_task, baselines or {}, higher_is_better), True
    if method == "mean":
        directions = {higher_is_better.get(task, True) for task in per_task}
        return mean(per_task), directions != {False}
    raise ValueError(f"unknown aggregate {method!r}: one of {', '.join(AGGREGATES)}")
