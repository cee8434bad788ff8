"""evals.metrics: the ``evaluate`` library's metric names and values, checked against hand-counted answers and
against scikit-learn / seqeval called directly in the test."""

from __future__ import annotations

import math

import pytest
from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score

from hubstead.evals import metrics

# binary: 10 samples, positive label 1. TP=3 (0,1,2), FN=2 (3,4), FP=1 (5), TN=4 (6..9)
REF2 = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
PRED2 = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
# three labels
REF3 = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
PRED3 = [0, 0, 1, 1, 1, 2, 2, 2, 0, 2]


def test_binary_classification_matches_hand_counts() -> None:
    """Two labels: accuracy, precision, recall and f1 are the positive class's (binary), as counted by hand;
    matthews_correlation is (TP*TN - FP*FN) / sqrt(...)."""
    found = metrics.classification(PRED2, REF2, num_labels=2)
    assert found["accuracy"] == pytest.approx(7 / 10)
    assert found["precision"] == pytest.approx(3 / 4)
    assert found["recall"] == pytest.approx(3 / 5)
    assert found["f1"] == pytest.approx(2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5))
    tp, tn, fp, fn = 3, 4, 1, 2
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert found["matthews_correlation"] == pytest.approx(mcc)
    assert metrics.f1(PRED2, REF2) == pytest.approx(found["f1"])  # evaluate's default average is binary


def test_multiclass_classification_is_macro_and_matches_sklearn() -> None:
    """Three labels: f1/precision/recall are macro averages (per class by hand, then the mean), and every
    averaged variant equals scikit-learn's."""
    found = metrics.classification(PRED3, REF3, num_labels=3)
    # per class: 0: P 2/3 R 2/3; 1: P 2/3 R 2/3; 2: P 3/4 R 3/4
    per_class_f1 = [2 / 3, 2 / 3, 3 / 4]
    assert found["f1"] == pytest.approx(sum(per_class_f1) / 3)
    assert found["accuracy"] == pytest.approx(7 / 10)
    for name, function in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
        assert found[name] == pytest.approx(function(REF3, PRED3, average="macro"))
        for average in ("macro", "micro", "weighted"):
            assert found[f"{name}_{average}"] == pytest.approx(function(REF3, PRED3, average=average))
    assert found["matthews_correlation"] == pytest.approx(matthews_corrcoef(REF3, PRED3))
    assert set(metrics.CLASSIFICATION_METRICS) <= set(found)


def test_classification_refuses_mismatched_or_empty_input() -> None:
    """Predictions and references of different lengths, or none at all, are an error, not a score."""
    with pytest.raises(ValueError, match="3 predictions for 2"):
        metrics.classification([0, 1, 0], [0, 1], num_labels=2)
    with pytest.raises(ValueError, match="no samples"):
        metrics.classification([], [], num_labels=2)


def test_token_classification_matches_hand_counts_and_seqeval() -> None:
    """Entity-level precision/recall/f1 (an entity counts only when its span and type both match) and token
    accuracy, counted by hand, equal seqeval's; per-type f1 is reported."""
    from seqeval.metrics import accuracy_score
    from seqeval.metrics import f1_score as seq_f1

    refs = [["B-PER", "O", "O", "B-LOC", "O"], ["B-PER", "I-PER", "O", "B-LOC"]]
    preds = [["B-PER", "O", "O", "B-PER", "O"], ["B-PER", "I-PER", "O", "O"]]
    found = metrics.token_classification(preds, refs)
    # reference entities: PER, LOC, PER, LOC (4); predicted: PER, PER(wrong type), PER (3); correct: 2
    assert found["overall_precision"] == pytest.approx(2 / 3)
    assert found["overall_recall"] == pytest.approx(2 / 4)
    assert found["overall_f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert found["overall_accuracy"] == pytest.approx(7 / 9)
    assert found["f1"] == found["overall_f1"] and found["accuracy"] == found["overall_accuracy"]
    assert found["overall_f1"] == pytest.approx(seq_f1(refs, preds))
    assert found["overall_accuracy"] == pytest.approx(accuracy_score(refs, preds))
    assert found["LOC_f1"] == 0.0
    assert found["PER_f1"] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_token_classification_refuses_misaligned_sequences() -> None:
    """A sentence whose predicted tags do not line up with its reference tags is an error naming the sample."""
    with pytest.raises(ValueError, match="sample 0: 1 predicted tags for 2"):
        metrics.token_classification([["O"]], [["O", "O"]])
