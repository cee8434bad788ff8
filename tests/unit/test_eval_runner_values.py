"""How the lm-eval runner reads its score out of ``simple_evaluate``'s results (pure: no model runs)."""

from __future__ import annotations

import pytest

from hubstead.evals.runners_lm_eval import task_value
from hubstead.evals.spec import EvalFailed

RESULTS = {
    "results": {
        "arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": "N/A", "acc_norm,none": 0.25,
                     "acc_norm_stderr,none": 0.1},
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.2, "exact_match_stderr,strict-match": 0.01,
                  "exact_match,flexible-extract": 0.3},
    },
    "groups": {"mmlu": {"acc,none": 0.4}},
}


def test_unfiltered_metrics_are_named_plainly() -> None:
    """``acc,none`` is ``acc``; a stderr that is not a number is left out."""
    value, metrics = task_value(RESULTS, "arc_easy", "acc_norm")
    assert value == 0.25
    assert metrics == {"acc": 0.5, "acc_norm": 0.25, "acc_norm_stderr": 0.1}


def test_a_filtered_metric_by_its_first_filter_or_by_name() -> None:
    """``exact_match`` reported only under filters is the task's first filter's; naming the filter picks it."""
    assert task_value(RESULTS, "gsm8k", "exact_match")[0] == 0.2
    assert task_value(RESULTS, "gsm8k", "exact_match,flexible-extract")[0] == 0.3


def test_a_group_s_aggregate() -> None:
    assert task_value(RESULTS, "mmlu", "acc")[0] == 0.4


def test_a_metric_the_task_does_not_report_is_refused_in_words() -> None:
    """The reason names what lm-eval did report (not the stderrs) and the metric eval.yaml asked for."""
    with pytest.raises(EvalFailed, match=r"reported acc, acc_norm for arc_easy, not the metric 'f1'"):
        task_value(RESULTS, "arc_easy", "f1")
    with pytest.raises(EvalFailed, match="no results for hellaswag"):
        task_value(RESULTS, "hellaswag", "acc")
