"""Why has predicting downstream capabilities of frontier AI models with scale remained elusive?

Schaeffer et al., arXiv:2406.04391; official code RylanSchaeffer/KoyejoLab-Why-Has-Predicting-Downstream-
Capabilities-Remained-Elusive (``scripts/compute_correlations_between_sample_scores_and_compute.py``).
Spec: ``evaluation.md`` §9.

Implements
- §3's chain of transformations per multiple-choice item (:func:`transform_chain`): the summed
  log-likelihood of the correct choice ``log p_vocab(correct)`` → ``p_vocab(correct)`` → ``p_choices(correct)``
  (softmax over the item's choices only) → Brier score (multi-class, Σ_k (p_k − y_k)², as lm-eval's
  ``brier_score``) and accuracy (argmax; ``acc_norm`` with byte-length normalisation). Also the incorrect
  choices' mass ``Σ_{k≠*} p_vocab(k)`` for the paper's "scaling of incorrect choices" analysis.
- §4's per-sample correlation of each quantity with log10 compute across a model family
  (:func:`per_sample_compute_correlation`, Pearson / Spearman / Kendall via scipy; NaN when a column is
  constant) and the distribution statistics of those correlations (:func:`correlation_distribution_stats`):
  mean, median, std, var, skew, kurtosis, NaN fraction/count, the AUC of the empirical survival function on
  [−1, 1], ``auc_max``, negated Wasserstein and energy distances and the KS statistic to the ideal point
  masses at +1 and −1.
- :func:`incorrect_mass_analysis`: per model, the mean ``p_vocab(correct)`` and ``Σ p_vocab(incorrect)``,
  and how each correlates with compute per sample.
- Tables: :func:`chain_table` turns per-choice log-likelihood rows (``model, log10_compute, item,
  choice, loglik, correct, n_bytes``) into the per-metric score matrices the analysis needs.

Numerics: softmax via log-sum-exp (stable for log-likelihoods in the −1e3 range where ``exp`` underflows);
``p_vocab`` itself is ``exp(ℓ)`` and may underflow to 0 for long continuations — as in the paper.

Official quirk kept, with the exact value beside it: the official code integrates the survival function with
``sklearn.metrics.auc`` — trapezoids between the ECDF's jump points padded with (−1, 1) and (1, 0) — which
is not the area under the step function (all samples at +1 give 1.0, not 2.0). ``auc``/``auc_max`` are the
official numbers (same trapezoid sum, numpy); ``auc_step`` = 1 + mean correlation is the exact area. The
official pads with ``±1.0000000000000000001``, which is exactly ±1.0 in floating point; so do we.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

Method = Literal["pearson", "spearman", "kendall"]
METRICS = ("log_prob_vocab_correct", "prob_vocab_correct", "prob_choices_correct", "neg_brier_score", "acc")
ALL_METRICS = (*METRICS, "acc_norm", "prob_vocab_incorrect", "log_prob_vocab_incorrect")


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - depends on the environment
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("scipy", "stats", "the downstream-scaling statistics") from None
    return stats


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    if not math.isfinite(m):
        return m
    return m + math.log(float(np.sum(np.exp(x - m))))


def transform_chain(logliks: Sequence[float], correct: int, n_bytes: Sequence[int] | None = None) -> dict[str, float]:
    """Every quantity of the paper's chain for one item.

    Args:
        logliks: Summed log-likelihood ``ℓ_k`` of each choice's continuation given the prompt.
        correct: Index of the correct choice.
        n_bytes: Byte length of each choice (for ``acc_norm``, lm-eval's length normalisation).

    Returns:
        ``log_prob_vocab_correct``, ``prob_vocab_correct``, ``prob_choices_correct``, ``brier_score``
        (lower is better), ``neg_brier_score``, ``acc``, ``acc_norm`` (``nan`` without ``n_bytes``),
        ``prob_vocab_incorrect`` and ``log_prob_vocab_incorrect`` (mass of the incorrect choices).

    Example:
        >>> r = transform_chain([-1.0, -2.0, -3.0], 0)
        >>> round(r["prob_vocab_correct"], 4), round(r["prob_choices_correct"], 4), round(r["brier_score"], 4)
        (0.3679, 0.6652, 0.1801)
    """
    ll = np.asarray(logliks, dtype=np.float64)
    k = ll.shape[0]
    if k < 2 or not 0 <= correct < k:
        raise ValueError(f"need >= 2 choices and a correct index in range, got {k} choices and {correct}")
    log_z = _logsumexp(ll)
    p = np.exp(ll - log_z)  # p_choices, (K,)
    onehot = np.zeros(k)
    onehot[correct] = 1.0
    brier = float(np.sum((p - onehot) ** 2))
    others = np.delete(ll, correct)
    log_inc = _logsumexp(others)
    acc_norm = math.nan
    if n_bytes is not None:
        nb = np.asarray(n_bytes, dtype=np.float64)
        acc_norm = float(int(np.argmax(ll / np.maximum(nb, 1.0))) == correct)
    return {
        "log_prob_vocab_correct": float(ll[correct]),
        "prob_vocab_correct": math.exp(ll[correct]),
        "prob_choices_correct": float(p[correct]),
        "brier_score": brier,
        "neg_brier_score": -brier,
        "acc": float(int(np.argmax(ll)) == correct),
        "acc_norm": acc_norm,
        "prob_vocab_incorrect": math.exp(log_inc),
        "log_prob_vocab_incorrect": log_inc,
    }


def per_sample_compute_correlation(scores: np.ndarray, log_compute: Sequence[float], method: Method = "spearman",
                                   ) -> np.ndarray:
    """Correlation of each sample's score with log compute across models (vectorised over samples).

    Pearson is the plain product-moment formula, Spearman is Pearson on average ranks, Kendall is tau-b
    (``Σ sign(Δx)·sign(Δs) / sqrt(Σ sign(Δx)² · Σ sign(Δs)²)`` over model pairs) — the statistics of
    ``scipy.stats.pearsonr`` / ``spearmanr`` / ``kendalltau`` (checked against them in the tests), computed for
    all samples at once instead of one scipy call per sample.

    Args:
        scores: ``(n_models, n_samples)`` scores (higher better; negate losses first).
        log_compute: ``(n_models,)`` log10 compute; models with non-finite compute are dropped (as officially).
        method: ``pearson``, ``spearman`` or ``kendall``.

    Returns:
        ``(n_samples,)`` correlations; NaN where a sample's scores are constant across models.
    """
    stats = _scipy_stats()

    x = np.asarray(log_compute, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != x.shape[0]:
        raise ValueError(f"scores must be (n_models, n_samples) with n_models={x.shape[0]}, got {s.shape}")
    keep = np.isfinite(x)
    x, s = x[keep], s[keep]
    if method not in ("pearson", "spearman", "kendall"):
        raise ValueError(f"unknown correlation {method!r}; use pearson, spearman or kendall")
    constant = np.all(s == s[:1], axis=0)
    if method == "kendall":
        i, j = np.triu_indices(x.shape[0], k=1)
        sx = np.sign(x[i] - x[j])[:, None]  # (P, 1)
        ss = np.sign(s[i] - s[j])  # (P, N)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (sx * ss).sum(0) / np.sqrt((sx**2).sum() * (ss**2).sum(0))
    else:
        if method == "spearman":
            x, s = stats.rankdata(x), stats.rankdata(s, axis=0)
        xc = x - x.mean()
        sc = s - s.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (xc[:, None] * sc).sum(0) / np.sqrt((xc**2).sum() * (sc**2).sum(0))
        out = np.clip(out, -1.0, 1.0)
    out = np.asarray(out, dtype=np.float64)
    out[constant] = np.nan
    return out


def survival_auc(rho: np.ndarray) -> float:
    """Area under the empirical survival function of ``rho`` on [−1, 1] (official trapezoid rule)."""
    stats = _scipy_stats()

    r = np.asarray(rho, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan
    sf = stats.ecdf(r).sf
    q = np.concatenate([[-1.0], sf.quantiles, [1.0]])
    v = np.concatenate([[1.0], sf.probabilities, [0.0]])
    return float(np.sum((q[1:] - q[:-1]) * (v[1:] + v[:-1]) / 2.0))


def correlation_distribution_stats(rho: Sequence[float] | np.ndarray) -> dict[str, float]:
    """The official summary of a distribution of per-sample correlations (module docstring)."""
    stats = _scipy_stats()

    r_all = np.asarray(rho, dtype=np.float64)
    r = r_all[np.isfinite(r_all)]
    out: dict[str, float] = {"num_nan": float(np.sum(~np.isfinite(r_all))),
                             "frac_nan": float(np.mean(~np.isfinite(r_all))) if r_all.size else math.nan,
                             "n": float(r.size)}
    if r.size == 0:
        return out | {k: math.nan for k in ("mean", "median", "std", "var", "skew", "kurtosis", "auc", "auc_max",
                                            "auc_step",
                                            "neg_wasserstein_1", "neg_wasserstein_2", "neg_wasserstein_min",
                                            "neg_energy_1", "neg_energy_2", "neg_energy_min", "ks_1", "ks_2",
                                            "ks_min")}
    import warnings

    ones, neg = np.ones_like(r_all), -np.ones_like(r_all)
    auc = survival_auc(r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-constant correlations: scipy warns about moment precision
        skew = float(stats.skew(r)) if r.size > 2 else math.nan
        kurt = float(stats.kurtosis(r)) if r.size > 3 else math.nan
    w1, w2 = stats.wasserstein_distance(r, ones), stats.wasserstein_distance(r, neg)
    e1, e2 = stats.energy_distance(r, ones), stats.energy_distance(r, neg)
    k1, k2 = stats.ks_2samp(r, ones).statistic, stats.ks_2samp(r, neg).statistic
    return out | {
        "mean": float(np.mean(r)), "median": float(np.median(r)), "std": float(np.std(r)),
        "var": float(np.var(r)), "skew": skew, "kurtosis": kurt,
        "auc": auc, "auc_max": max(auc, 2.0 - auc), "auc_step": 1.0 + float(np.mean(r)),
        "neg_wasserstein_1": -float(w1), "neg_wasserstein_2": -float(w2), "neg_wasserstein_min": -float(min(w1, w2)),
        "neg_energy_1": -float(e1), "neg_energy_2": -float(e2), "neg_energy_min": -float(min(e1, e2)),
        "ks_1": float(k1), "ks_2": float(k2), "ks_min": float(min(k1, k2)),
    }


def chain_table(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-metric ``(n_models, n_items)`` matrices from per-choice log-likelihood rows.

    Each row: ``model``, ``log10_compute``, ``item``, ``choice`` (index), ``loglik``, ``correct`` (bool: this
    choice is the right one) and optionally ``n_bytes``. Models are sorted by compute; only items every
    model scored are kept (their order is the first model's).

    Returns:
        ``{"models", "log10_compute", "items", "metrics": {name: matrix}}``.
    """
    ll: dict[str, dict[str, dict[int, tuple[float, bool, int | None]]]] = defaultdict(lambda: defaultdict(dict))
    compute: dict[str, float] = {}
    for r in rows:
        model = str(r["model"])
        compute[model] = float(r["log10_compute"])
        nb = r.get("n_bytes")
        ll[model][str(r["item"])][int(r["choice"])] = (float(r["loglik"]), bool(r["correct"]),
                                                      int(nb) if nb is not None else None)
    models = sorted(compute, key=lambda m: compute[m])
    if not models:
        raise ValueError("no rows")
    items = [i for i in ll[models[0]] if all(i in ll[m] for m in models)]
    mats = {k: np.full((len(models), len(items)), np.nan) for k in ALL_METRICS}
    for a, m in enumerate(models):
        for b, it in enumerate(items):
            ch = ll[m][it]
            idx = sorted(ch)
            corr = [j for j, c in enumerate(idx) if ch[c][1]]
            if len(corr) != 1:
                raise ValueError(f"item {it} of model {m}: expected exactly one correct choice, got {len(corr)}")
            nbytes = [ch[c][2] for c in idx]
            res = transform_chain([ch[c][0] for c in idx], corr[0],
                                  [int(n) for n in nbytes if n is not None] if all(n is not None for n in nbytes)
                                  else None)
            for k in ALL_METRICS:
                mats[k][a, b] = res[k]
    return {"models": models, "log10_compute": [compute[m] for m in models], "items": items, "metrics": mats}


def analyze(table: Mapping[str, Any], methods: Sequence[Method] = ("pearson", "spearman", "kendall"),
            metrics: Sequence[str] = METRICS) -> dict[str, Any]:
    """Correlation statistics of every metric × correlation, the per-model means and the incorrect-mass view."""
    x = table["log10_compute"]
    out: dict[str, Any] = {"models": table["models"], "log10_compute": x, "n_items": len(table["items"]),
                           "correlations": {}, "means": {}}
    for metric in metrics:
        mat = table["metrics"][metric]
        out["means"][metric] = [float(np.nanmean(row)) for row in mat]
        out["correlations"][metric] = {m: correlation_distribution_stats(per_sample_compute_correlation(mat, x, m))
                                       for m in methods}
    out["incorrect_mass"] = incorrect_mass_analysis(table)
    return out


def incorrect_mass_analysis(table: Mapping[str, Any], method: Method = "spearman") -> dict[str, Any]:
    """How the correct and the incorrect choices' vocabulary mass move with compute (the paper's §5).

    Returns per-model means of ``p_vocab(correct)`` and ``Σ p_vocab(incorrect)``, and the distribution of
    per-sample correlations of each with compute — when both rise, ``p_choices`` depends on their race.
    """
    x = table["log10_compute"]
    mats = table["metrics"]
    return {
        "mean_prob_vocab_correct": [float(np.nanmean(r)) for r in mats["prob_vocab_correct"]],
        "mean_prob_vocab_incorrect": [float(np.nanmean(r)) for r in mats["prob_vocab_incorrect"]],
        "corr_log_prob_vocab_correct": correlation_distribution_stats(
            per_sample_compute_correlation(mats["log_prob_vocab_correct"], x, method)),
        "corr_log_prob_vocab_incorrect": correlation_distribution_stats(
            per_sample_compute_correlation(mats["log_prob_vocab_incorrect"], x, method)),
    }


def chain_degrades(result: Mapping[str, Any], method: Method = "spearman", stat: str = "mean") -> bool:
    """Whether the correlation statistic falls from ``log p_vocab(correct)`` to ``p_choices`` to accuracy."""
    c = result["correlations"]
    vals = [c[m][method][stat] for m in ("log_prob_vocab_correct", "prob_choices_correct", "acc")]
    return bool(vals[0] > vals[1] > vals[2])
