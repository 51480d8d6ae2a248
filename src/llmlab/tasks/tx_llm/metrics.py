"""TDC's per-task metrics, as its ``Evaluator`` computes them (the SOTA comparison is :mod:`.sota`)."""

from __future__ import annotations

from collections.abc import Sequence

from llmlab.stats.correlation import average_ranks, pearson, spearman
from llmlab.tasks.tx_llm.prompts import Metric

HIGHER_IS_BETTER: dict[str, bool] = {"auroc": True, "auprc": True, "spearman": True, "pearson": True,
                                     "accuracy": True, "mae": False, "mse": False}


def auroc(y: Sequence[int], score: Sequence[float]) -> float | None:
    """Area under the ROC curve (= sklearn ``roc_auc_score``); ``None`` with one class only."""
    pos = sum(1 for v in y if v == 1)
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    r = average_ranks(score)
    return (sum(r[i] for i, v in enumerate(y) if v == 1) - pos * (pos + 1) / 2) / (pos * neg)


def auprc(y: Sequence[int], score: Sequence[float]) -> float | None:
    """Average precision (= sklearn ``average_precision_score``, TDC's 'pr-auc'); ``None`` without positives."""
    pos = sum(1 for v in y if v == 1)
    if pos == 0:
        return None
    order = sorted(range(len(y)), key=lambda i: -score[i])
    ap, tp, prev_recall, i = 0.0, 0, 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and score[order[j + 1]] == score[order[i]]:
            j += 1
        tp += sum(1 for t in range(i, j + 1) if y[order[t]] == 1)
        recall, precision = tp / pos, tp / (j + 1)
        ap += (recall - prev_recall) * precision
        prev_recall = recall
        i = j + 1
    return ap


def mae(y: Sequence[float], pred: Sequence[float]) -> float | None:
    """Mean absolute error."""
    return sum(abs(a - b) for a, b in zip(y, pred, strict=True)) / len(y) if y else None


def mse(y: Sequence[float], pred: Sequence[float]) -> float | None:
    """Mean squared error (TDC's ``mse``; the paper's metric for DAVIS and KIBA)."""
    return sum((a - b) ** 2 for a, b in zip(y, pred, strict=True)) / len(y) if y else None


def accuracy(y: Sequence[float], pred: Sequence[float]) -> float | None:
    """Share of predictions on the label's side of 0.5; a prediction of exactly 0.5 (no answer) earns half.

    Binary: ``pred`` is a probability or a hard 0/1 answer. Generation: ``y`` is all 1 and ``pred`` the 0/1 hits,
    so this is the hit rate.
    """
    if not y:
        return None
    return sum(0.5 if p == 0.5 else float((p > 0.5) == (t >= 0.5)) for t, p in zip(y, pred, strict=True)) / len(y)


def task_metric(metric: Metric, y: Sequence[float], pred: Sequence[float]) -> float | None:
    """The TDC metric of one task from labels/targets ``y`` and predictions (scores, values or 0/1 hits)."""
    if metric == "accuracy":
        return accuracy(y, pred)
    if metric == "auroc":
        return auroc([int(v) for v in y], pred)
    if metric == "auprc":
        return auprc([int(v) for v in y], pred)
    if metric == "spearman":
        return spearman(y, pred)
    if metric == "pearson":
        return pearson(y, pred)
    if metric == "mse":
        return mse(y, pred)
    return mae(y, pred)


def median(vals: Sequence[float]) -> float:
    v = sorted(vals)
    n = len(v)
    if n == 0:
        return 0.0
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
