"""Metric functions of the ``hubstead`` framework (pure: numpy, scikit-learn, seqeval; no torch, no network).

The names and values are the ``evaluate`` library's (``evaluate.load("accuracy")``, ``"f1"``, ``"precision"``,
``"recall"``, ``"matthews_correlation"``, ``"seqeval"``), computed the way its metric scripts compute them (they
call the same scikit-learn and seqeval functions), without ``evaluate.load``, which fetches each metric's code from
the Hugging Face Hub and so cannot run on an air-gapped site.

Text classification (label ids): ``accuracy``; ``f1``, ``precision``, ``recall`` (``average="binary"`` with the
positive label 1 when the task has two labels, else ``"macro"``), also ``f1_macro``, ``f1_micro``, ``f1_weighted``
(and the same for precision and recall); ``matthews_correlation``.

Token classification (IOB tag names per word, one list per sentence): seqeval's entity-level ``overall_precision``,
``overall_recall``, ``overall_f1`` and token-level ``overall_accuracy`` (``precision``, ``recall``, ``f1`` and
``accuracy`` are the same values under the short names), and ``<TYPE>_f1`` per entity type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CLASSIFICATION_METRICS = (
    "accuracy", "f1", "precision", "recall", "f1_macro", "f1_micro", "f1_weighted", "precision_macro",
    "precision_micro", "precision_weighted", "recall_macro", "recall_micro", "recall_weighted",
    "matthews_correlation",
)
TOKEN_METRICS = ("overall_precision", "overall_recall", "overall_f1", "overall_accuracy", "precision", "recall", "f1",
                 "accuracy")


def accuracy(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(references, predictions))


def _scores(name: str, predictions: Sequence[Any], references: Sequence[Any], average: str) -> float:
    from sklearn.metrics import f1_score, precision_score, recall_score

    function = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[name]
    extra: dict[str, Any] = {"pos_label": 1} if average == "binary" else {}
    return float(function(references, predictions, average=average, zero_division=0, **extra))


def f1(predictions: Sequence[Any], references: Sequence[Any], *, average: str = "binary") -> float:
    return _scores("f1", predictions, references, average)


def precision(predictions: Sequence[Any], references: Sequence[Any], *, average: str = "binary") -> float:
    return _scores("precision", predictions, references, average)


def recall(predictions: Sequence[Any], references: Sequence[Any], *, average: str = "binary") -> float:
    return _scores("recall", predictions, references, average)


def matthews_correlation(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(references, predictions))


def classification(predictions: Sequence[int], references: Sequence[int], num_labels: int) -> dict[str, float]:
    """Every text-classification metric of label ids ``predictions`` against ``references``, for a task of
    ``num_labels`` labels (binary averages, positive label 1, when it is 2; macro otherwise)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no samples to measure")
    default = "binary" if num_labels == 2 else "macro"
    found = {"accuracy": accuracy(predictions, references),
             "matthews_correlation": matthews_correlation(predictions, references)}
    for name in ("f1", "precision", "recall"):
        found[name] = _scores(name, predictions, references, default)
        for average in ("macro", "micro", "weighted"):
            found[f"{name}_{average}"] = _scores(name, predictions, references, average)
    return found


def token_classification(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
                         ) -> dict[str, float]:
    """seqeval's scores of IOB tag sequences (``evaluate``'s ``seqeval``: entity-level precision, recall and f1 in
    the default mode, token accuracy), with per-type f1."""
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no samples to measure")
    for i, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        if len(pred) != len(ref):
            raise ValueError(f"sample {i}: {len(pred)} predicted tags for {len(ref)} reference tags")
    preds = [list(p) for p in predictions]
    refs = [list(r) for r in references]
    found = {
        "overall_precision": float(precision_score(refs, preds, zero_division=0)),
        "overall_recall": float(recall_score(refs, preds, zero_division=0)),
        "overall_f1": float(f1_score(refs, preds, zero_division=0)),
        "overall_accuracy": float(accuracy_score(refs, preds)),
    }
    for short in ("precision", "recall", "f1", "accuracy"):
        found[short] = found[f"overall_{short}"]
    report = classification_report(refs, preds, output_dict=True, zero_division=0)
    for kind, row in report.items():
        if kind.endswith(" avg") or not isinstance(row, dict):
            continue
        found[f"{kind}_f1"] = float(row["f1-score"])
    return found
