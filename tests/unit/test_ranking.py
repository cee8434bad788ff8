"""The leaderboard's ranking rules against numbers worked out by hand (and MTEB's own Borda code)."""

from __future__ import annotations

import pytest

from hubstead.evals import ranking


def test_competition_rank_shares_ties_and_skips() -> None:
    """Ties share the best rank and the next value skips ("1224"), in either direction."""
    assert ranking.rank([9, 7, 7, 5]) == [1, 2, 2, 4]
    assert ranking.rank([0.5, 0.1, 0.5, 0.9], higher_is_better=False) == [2, 1, 2, 4]
    assert ranking.rank([3, 3, 3]) == [1, 1, 1]
    assert ranking.rank([]) == []
    assert ranking.average_ranks([9, 7, 7, 5]) == [1, 2.5, 2.5, 4]


# Worked by hand. n_models = 4 (every model with any result).
#   A (higher better): m1 .9, m2 .8, m3 .8, m4 .5 -> ranks 1, 2.5, 2.5, 4 -> points 3, 1.5, 1.5, 0
#   B (higher better): m1 .6, m2 .7, m3 .9, m4 missing -> ranks m3 1, m2 2, m1 3 -> points m3 3, m2 2, m1 1, m4 0
#   C (lower better):  m1 3, m2 1, m3 2, m4 1 -> ranks m2 1.5, m4 1.5, m3 3, m1 4 -> points 2.5, 2.5, 1, 0
#   sums: m1 3+1+0 = 4, m2 1.5+2+2.5 = 6, m3 1.5+3+1 = 5.5, m4 0+0+2.5 = 2.5 -> ranks m2 1, m3 2, m1 3, m4 4
PER_TASK = {
    "A": {"m1": 0.9, "m2": 0.8, "m3": 0.8, "m4": 0.5},
    "B": {"m1": 0.6, "m2": 0.7, "m3": 0.9},
    "C": {"m1": 3.0, "m2": 1.0, "m3": 2.0, "m4": 1.0},
}
HIGHER = {"A": True, "B": True, "C": False}


def test_borda_matches_the_hand_count_with_ties_and_a_missing_result() -> None:
    """Borda points: average ranks for ties, n_models - rank per task, 0 for a missing result, summed."""
    points = ranking.borda(PER_TASK, HIGHER)
    assert points == {"m1": 4.0, "m2": 6.0, "m3": 5.5, "m4": 2.5}
    assert ranking.ranked(points) == {"m2": 1, "m3": 2, "m1": 3, "m4": 4}


def test_borda_tied_totals_share_a_rank() -> None:
    """Two models with the same points share the rank (MTEB ranks the sums with method="min")."""
    # n = 3. T1: a 1, b .5, c 0 -> 2, 1, 0. T2: a 0, b .5, c 1 -> 0, 1, 2. Sums a 2, b 2, c 2.
    points = ranking.borda({"T1": {"a": 1, "b": 0.5, "c": 0}, "T2": {"a": 0, "b": 0.5, "c": 1}}, {})
    assert points == {"a": 2.0, "b": 2.0, "c": 2.0}
    assert ranking.ranked(points) == {"a": 1, "b": 1, "c": 1}


def test_borda_agrees_with_mteb() -> None:
    """The same higher-is-better results through MTEB's own long-form Borda code give the same ranks."""
    pl = pytest.importorskip("polars")
    create_table = pytest.importorskip("mteb.benchmarks._create_table")
    tasks = {task: results for task, results in PER_TASK.items() if HIGHER[task]}
    rows = [(model, task, value) for task, results in tasks.items() for model, value in results.items()]
    frame = pl.DataFrame(rows, schema=["model_name", "task_name", "score"], orient="row")
    theirs = create_table._borda_rank_from_long(frame)
    their_ranks = dict(zip(theirs["model_name"].to_list(), theirs["Rank (Borda)"].to_list(), strict=True))
    # By hand: A points m1 3, m2 1.5, m3 1.5, m4 0; B m3 3, m2 2, m1 1 -> m1 4, m2 3.5, m3 4.5, m4 0.
    points = ranking.borda(tasks, HIGHER)
    assert points == {"m1": 4.0, "m2": 3.5, "m3": 4.5, "m4": 0.0}
    assert ranking.ranked(points) == their_ranks == {"m3": 1, "m1": 2, "m2": 3, "m4": 4}


def test_normalized_mean_as_the_open_llm_leaderboard() -> None:
    """Per benchmark max(0, raw - baseline) / (1 - baseline) * 100, averaged; a model missing one is left out."""
    # X (baseline .25): m1 .55 -> .30/.75*100 = 40; m2 .25 -> 0;  m3 1.0 -> 100
    # Y (baseline 0):   m1 .8 -> 80;                m2 .5 -> 50;  m3 .9 -> 90
    # Z (baseline .5):  m1 .4 -> below, 0;          m2 .75 -> 50; m3 missing -> left out
    # means: m1 (40 + 80 + 0) / 3 = 40; m2 (0 + 50 + 50) / 3 = 33.33...
    scores = ranking.normalized_mean(
        {"X": {"m1": 0.55, "m2": 0.25, "m3": 1.0}, "Y": {"m1": 0.8, "m2": 0.5, "m3": 0.9},
         "Z": {"m1": 0.4, "m2": 0.75}},
        {"X": 0.25, "Y": 0.0, "Z": 0.5},
    )
    assert scores.keys() == {"m1", "m2"}
    assert scores["m1"] == pytest.approx(40.0)
    assert scores["m2"] == pytest.approx(100 / 3)
    assert ranking.ranked(scores) == {"m1": 1, "m2": 2}


def test_normalize_mirrors_a_lower_is_better_task() -> None:
    """A lower-is-better value (an error rate) is mirrored, so 0 error scores 100 and the baseline scores 0."""
    assert ranking.normalize(0.0, 0.5, higher_is_better=False) == pytest.approx(100.0)
    assert ranking.normalize(0.5, 0.5, higher_is_better=False) == 0.0
    assert ranking.normalize(0.25, 0.5, higher_is_better=False) == pytest.approx(50.0)


def test_mean_keeps_models_with_every_task_and_aggregate_dispatches() -> None:
    """The plain mean leaves out a model missing a task; ``aggregate`` names the method and its direction."""
    per_task = {"A": {"m1": 0.5, "m2": 0.7}, "B": {"m1": 0.9}}
    assert ranking.mean(per_task) == {"m1": pytest.approx(0.7)}
    assert ranking.aggregate("mean", per_task, {}) == ({"m1": pytest.approx(0.7)}, True)
    assert ranking.aggregate("mean", per_task, {"A": False, "B": False})[1] is False
    assert ranking.aggregate("borda", PER_TASK, HIGHER) == ({"m1": 4.0, "m2": 6.0, "m3": 5.5, "m4": 2.5}, True)
    with pytest.raises(ValueError, match="unknown aggregate"):
        ranking.aggregate("median", per_task, {})
