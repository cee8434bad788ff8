"""The evaluation scores a train run reports, computed here (no seqeval, no scipy): accuracy, macro F1, entity F1
over BIO tags, Spearman's rank correlation. Pure: plain Python over lists."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(predicted: Sequence[int], gold: Sequence[int]) -> float:
    if not gold:
        return 0.0
    return sum(1 for p, g in zip(predicted, gold, strict=True) if p == g) / len(gold)


def macro_f1(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """The mean over the classes present (in gold or predictions) of each class's F1."""
    classes = sorted(set(gold) | set(predicted))
    if not classes:
        return 0.0
    total = 0.0
    for label in classes:
        tp = sum(1 for p, g in zip(predicted, gold, strict=True) if p == label and g == label)
        fp = sum(1 for p, g in zip(predicted, gold, strict=True) if p == label and g != label)
        fn = sum(1 for p, g in zip(predicted, gold, strict=True) if p != label and g == label)
        total += _f1(tp, fp, fn)
    return total / len(classes)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def bio_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Entity spans ``(start, end, type)`` of a BIO (or IOB2, or plain type) tag sequence: ``B-X`` opens, ``I-X``
    continues the same type (or opens one after ``O`` or another type), ``O`` closes; a tag without a ``B-``/``I-``
    prefix is an entity type of its own, one span per run of equal tags."""
    spans: set[tuple[int, int, str]] = set()
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-") if tag[:2] in ("B-", "I-") else ("", "", tag)
        continuing = kind and prefix != "B" and name == kind and tag != "O"
        if continuing:
            continue
        if kind:
            spans.add((start, i, kind))
            kind = ""
        if tag != "O":
            start, kind = i, name
    return spans


def entity_f1(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over exact entity spans, and token accuracy, over whole sentences."""
    tp = fp = fn = 0
    right = total = 0
    for pred, true in zip(predicted, gold, strict=True):
        p, g = bio_spans(pred), bio_spans(true)
        tp += len(p & g)
        fp += len(p - g)
        fn += len(g - p)
        right += sum(1 for a, b in zip(pred, true, strict=True) if a == b)
        total += len(true)
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": _f1(tp, fp, fn),
        "accuracy": right / total if total else 0.0,
    }


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (ties take their mean rank); 0.0 where either side is constant."""
    if len(xs) != len(ys) or len(xs) < 2:
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return 0.0 if vx == 0 or vy == 0 else cov / (vx * vy) ** 0.5
