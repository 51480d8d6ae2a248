"""TOFU's evaluation metrics (Maini et al. 2024, arXiv 2401.06121), as ECO reports them for TOFU.

From per-question losses (mean negative log-likelihood per answer token):

- truth ratio per question: ``R = exp(mean_j L(perturbed_j) − L(paraphrased))``; the official aggregate
  (``aggregate_eval_stat.py``) uses this ``R``. NOTE: the per-question ``truth_ratio`` field stored in the
  eval logs (``evaluate_util.py``) is its reciprocal, ``exp(L(paraphrased) − mean_j L(perturbed_j))``;
  the KS test below is unchanged by that (a monotone map applied to both samples).
- forget quality: the p-value of the two-sample KS test between the unlearned model's and the retain
  model's truth ratios on the forget set.
- model utility: the harmonic mean of nine numbers over the retain set, real authors and world facts:
  answer probability (retain: mean ``exp(−L(gt))``; the other two: ``p(gt) / (p(gt) + Σ_j p(perturbed_j))``),
  ROUGE-L recall, and truth ratio (``mean max(0, 1 − 1/R)``); on the forget set the truth-ratio summary
  is ``mean min(R, 1/R)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError, MissingExtraError

EVAL_FILES = {
    "eval_log.json": "Retain",
    "eval_real_author_wo_options.json": "Real Authors",
    "eval_real_world_wo_options.json": "Real World",
    "eval_log_forget.json": "Forget",
}


def truth_ratio(paraphrased_loss: float, perturbed_losses: Sequence[float]) -> float:
    """``exp(mean(perturbed) − paraphrased)``: > 1 when the model prefers the true answer.

    Example:
        >>> round(truth_ratio(1.0, [2.0, 3.0]), 4)
        4.4817
    """
    return math.exp(sum(perturbed_losses) / len(perturbed_losses) - paraphrased_loss)


def _values(metric: Mapping[str, Any]) -> list[Any]:
    return list(metric.values())


def truth_ratios(log: Mapping[str, Any]) -> list[float]:
    """Truth ratio of every question of one eval log (``avg_paraphrased_loss``, ``average_perturb_loss``)."""
    try:
        para = _values(log["avg_paraphrased_loss"])
        pert = _values(log["average_perturb_loss"])
    except KeyError as exc:
        raise DataError(f"eval log lacks {exc}; it needs avg_paraphrased_loss and average_perturb_loss") from None
    return [truth_ratio(a, b) for a, b in zip(para, pert, strict=True)]


def ks_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS test ``(statistic, p-value)`` (scipy's exact/asymptotic choice, two-sided)."""
    try:
        from scipy.stats import ks_2samp
    except ImportError:
        raise MissingExtraError("scipy", "trust", "the TOFU forget-quality KS test") from None
    res = ks_2samp(list(a), list(b))
    return float(res.statistic), float(res.pvalue)


def forget_quality(unlearned_forget_tr: Sequence[float], retain_forget_tr: Sequence[float]) -> float:
    """KS p-value between the truth ratios of the unlearned and the retain model on the forget set."""
    return ks_test(unlearned_forget_tr, retain_forget_tr)[1]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def model_utility(logs: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The nine utility numbers (+ the three forget-set ones) and ``Model Utility`` (their harmonic mean)."""
    out: dict[str, float] = {}
    for fname, label in EVAL_FILES.items():
        if fname not in logs:
            raise DataError(f"TOFU results lack {fname}; need {sorted(EVAL_FILES)}")
        log = logs[fname]
        gt = [math.exp(-v) for v in _values(log["avg_gt_loss"])]
        if fname.startswith("eval_log"):
            prob = _mean(gt)
        else:
            pert = [[math.exp(-v) for v in row] for row in _values(log["average_perturb_loss"])]
            prob = _mean([g / (g + sum(p)) for g, p in zip(gt, pert, strict=True)])
        out[f"Prob. {label}"] = prob
        out[f"ROUGE {label}"] = _mean([float(v) for v in _values(log["rougeL_recall"])])
        tr = truth_ratios(log)
        out[f"Truth Ratio {label}"] = (_mean([min(r, 1 / r) for r in tr]) if label == "Forget"
                                       else _mean([max(0.0, 1 - 1 / r) for r in tr]))
    utility = [v for k, v in out.items() if "Forget" not in k]
    out["Model Utility"] = len(utility) / sum(1 / v for v in utility)  # harmonic mean
    return out


def load_tofu_results(folder: Path) -> dict[str, Any]:
    """The four eval logs of one model (``eval_log_aggregated.json`` or the separate files)."""
    agg = folder / "eval_log_aggregated.json"
    if agg.is_file():
        data: dict[str, Any] = json.loads(agg.read_text())
        return data
    out = {}
    for fname in EVAL_FILES:
        p = folder / fname
        if not p.is_file():
            raise DataError(f"TOFU eval file not found: {p}")
        out[fname] = json.loads(p.read_text())
    return out


def tofu_report(unlearned: Mapping[str, Any], retain: Mapping[str, Any]) -> dict[str, float]:
    """``model_utility(unlearned)`` plus ``Forget Quality`` against the retain model (official aggregate)."""
    rep = model_utility(unlearned)
    rep["Forget Quality"] = forget_quality(truth_ratios(unlearned["eval_log_forget.json"]),
                                           truth_ratios(retain["eval_log_forget.json"]))
    return rep
