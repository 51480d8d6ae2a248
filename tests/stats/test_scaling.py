from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from llmlab.stats.scaling import (
    analyze,
    chain_degrades,
    chain_table,
    correlation_distribution_stats,
    per_sample_compute_correlation,
    survival_auc,
    transform_chain,
)


def test_chain_by_hand() -> None:
    r = transform_chain([-1.0, -2.0, -3.0], 0, n_bytes=[1, 1, 1])
    z = math.exp(-1) + math.exp(-2) + math.exp(-3)
    p = [math.exp(-1) / z, math.exp(-2) / z, math.exp(-3) / z]
    assert r["log_prob_vocab_correct"] == -1.0
    assert r["prob_vocab_correct"] == pytest.approx(0.36787944)
    assert r["prob_choices_correct"] == pytest.approx(p[0]) == pytest.approx(0.6652, abs=1e-4)
    assert r["brier_score"] == pytest.approx((p[0] - 1) ** 2 + p[1] ** 2 + p[2] ** 2) == pytest.approx(0.1801, abs=1e-4)
    assert r["acc"] == 1.0 and r["acc_norm"] == 1.0
    assert r["prob_vocab_incorrect"] == pytest.approx(math.exp(-2) + math.exp(-3))
    assert transform_chain([-5.0, -1.0], 0)["acc"] == 0.0
    # length normalisation can flip the argmax: -6 over 6 bytes beats -2 over 1 byte
    assert transform_chain([-6.0, -2.0], 0, n_bytes=[6, 1])["acc_norm"] == 1.0
    with pytest.raises(ValueError):
        transform_chain([-1.0], 0)


def test_chain_is_stable_where_exp_underflows() -> None:
    lls = np.array([-1200.0, -1201.0, -1205.0])
    r = transform_chain(lls, 1)
    ref = special.softmax(lls)  # scipy's stable softmax
    assert r["prob_choices_correct"] == pytest.approx(ref[1])
    assert r["brier_score"] == pytest.approx(float(np.sum((ref - np.eye(3)[1]) ** 2)))
    assert r["prob_vocab_correct"] == 0.0 and math.isfinite(r["log_prob_vocab_incorrect"])
    assert r["log_prob_vocab_incorrect"] == pytest.approx(float(special.logsumexp([-1200.0, -1205.0])))


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_per_sample_correlation_matches_scipy(method: str) -> None:
    rng = np.random.default_rng(0)
    x = np.array([8.0, 8.5, 9.1, 9.9, 10.4, np.inf * -1])
    scores = rng.normal(size=(6, 20))
    scores[:, 3] = 0.5  # constant column -> NaN
    scores[:, 5] = [0, 0, 1, 1, 0, 1]  # accuracy-like ties
    scores[:, 6] = [1, 2, 2, 3, 3, 0]
    x[2] = x[1]  # a tie in compute too
    rho = per_sample_compute_correlation(scores, x, method)  # type: ignore[arg-type]
    fn = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}[method]
    for i in (0, 5, 6, 7, 19):
        assert rho[i] == pytest.approx(fn(x[:5], scores[:5, i])[0])  # the -inf compute model is dropped
    assert math.isnan(rho[3])


def test_distribution_stats_against_references() -> None:
    from sklearn.metrics import auc

    rho = np.array([0.9, 0.8, 0.8, -0.2, 0.5, np.nan, 1.0])
    s = correlation_distribution_stats(rho)
    r = rho[np.isfinite(rho)]
    sf = stats.ecdf(r).sf
    q = np.concatenate([[-1.0], sf.quantiles, [1.0]])
    v = np.concatenate([[1.0], sf.probabilities, [0.0]])
    assert s["auc"] == pytest.approx(auc(q, v))  # the official sklearn call
    assert s["auc_max"] == max(s["auc"], 2 - s["auc"])
    assert s["mean"] == pytest.approx(np.mean(r)) and s["median"] == pytest.approx(0.8)
    assert s["num_nan"] == 1 and s["frac_nan"] == pytest.approx(1 / 7)
    assert s["neg_wasserstein_1"] == pytest.approx(-np.mean(1 - r))  # W1 to a point mass = mean distance
    assert s["neg_wasserstein_2"] == pytest.approx(-np.mean(r + 1))
    assert s["neg_energy_1"] == pytest.approx(-stats.energy_distance(r, np.ones(7)))
    assert s["ks_1"] == pytest.approx(stats.kstest(r, np.ones(7)).statistic)
    # every sample perfectly correlated: the exact area under the step survival function is 2, but the
    # official trapezoids between (-1, 1) and the jump at (1, 0) give 1 — we keep the official number as
    # "auc" and report the exact one as "auc_step" (= 1 + mean correlation)
    assert survival_auc(np.ones(5)) == pytest.approx(1.0)
    assert correlation_distribution_stats(np.ones(5))["auc_step"] == pytest.approx(2.0)
    assert s["auc_step"] == pytest.approx(1 + np.mean(r))


def _rows(n_models: int = 5, n_items: int = 30, seed: int = 0) -> list[dict[str, object]]:
    """Synthetic family: the correct choice's log-likelihood rises with compute, incorrect ones rise too."""
    rng = np.random.default_rng(seed)
    rows = []
    base = rng.normal(-40, 5, size=(n_items, 4))
    for m in range(n_models):
        c = 8.0 + m
        for i in range(n_items):
            for k in range(4):
                gain = 4.0 * m if k == 0 else 3.0 * m + rng.normal(0, 6)
                rows.append({"model": f"m{m}", "log10_compute": c, "item": f"i{i}", "choice": k,
                             "loglik": base[i, k] + gain, "correct": k == 0, "n_bytes": 10})
    return rows


def test_table_and_analysis_show_the_degrading_chain() -> None:
    rows = _rows()
    rng = np.random.default_rng(1)
    rng.shuffle(rows)  # row order must not matter
    table = chain_table(rows)
    assert table["models"] == [f"m{i}" for i in range(5)]
    assert table["metrics"]["acc"].shape == (5, 30)
    res = analyze(table)
    c = res["correlations"]
    assert c["log_prob_vocab_correct"]["spearman"]["mean"] == pytest.approx(1.0)
    assert c["prob_vocab_correct"]["spearman"]["mean"] == pytest.approx(1.0)  # monotone map: ranks kept
    assert c["prob_vocab_correct"]["pearson"]["mean"] < 0.9  # ... but exp() bends the linear fit
    assert c["prob_choices_correct"]["spearman"]["mean"] < 0.5  # the incorrect choices rise too
    assert c["acc"]["spearman"]["frac_nan"] > 0.3  # accuracy is constant across models on many samples
    assert chain_degrades(res) == (c["log_prob_vocab_correct"]["spearman"]["mean"]
                                   > c["prob_choices_correct"]["spearman"]["mean"] > c["acc"]["spearman"]["mean"])
    inc = res["incorrect_mass"]
    assert inc["corr_log_prob_vocab_incorrect"]["mean"] > 0.5  # the incorrect mass also scales with compute
    with pytest.raises(ValueError):
        chain_table([{**rows[0], "correct": False}])
