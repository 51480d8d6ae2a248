"""Error bars checked against hand computation, scipy and statsmodels on fixed fixtures."""

from __future__ import annotations

import math
import random

import pytest

from llmlab.stats.inference import (
    Z95,
    betainc,
    binom_two_sided_p,
    mean_se,
    paired_compare,
    t_two_sided_p,
)

BINARY = [1, 1, 0, 0, 1, 1, 1, 1, 0, 1]  # 7/10, agreeing within most clusters
CLUSTERS = ["q1", "q1", "q2", "q2", "q3", "q3", "q4", "q4", "q5", "q5"]


def test_unclustered_se_by_hand() -> None:
    e = mean_se(BINARY)
    # s² = Σ(x−0.7)²/(n−1) = (7·0.09 + 3·0.49)/9 = 2.1/9; SE = sqrt(s²/10)
    assert e.mean == pytest.approx(0.7)
    assert e.se == pytest.approx(math.sqrt(2.1 / 9 / 10))
    assert e.ci_low == pytest.approx(0.7 - Z95 * e.se)
    assert e.ci_high == pytest.approx(0.7 + Z95 * e.se)
    assert not e.clustered and e.n_clusters == 10


def test_clustered_se_by_hand() -> None:
    e = mean_se(BINARY, CLUSTERS)
    res = [x - 0.7 for x in BINARY]
    # cross terms: each pair (i, j≠i) in a cluster counted twice
    cross = sum(2 * res[2 * k] * res[2 * k + 1] for k in range(5))
    expected = math.sqrt(2.1 / 9 / 10 + cross / 100)
    assert e.clustered and e.n_clusters == 5
    assert e.se == pytest.approx(expected)
    # positively correlated clusters widen the interval
    assert e.se > mean_se(BINARY).se  # type: ignore[operator]


def test_none_clusters_are_singletons_and_all_singletons_is_unclustered() -> None:
    assert mean_se(BINARY, [None] * 10) == mean_se(BINARY)
    e = mean_se(BINARY, ["a", "a", *[None] * 8])
    assert e.clustered and e.n_clusters == 9


def test_degenerate_cases_have_no_se() -> None:
    one = mean_se([1.0])
    assert one.se is None and one.ci_low is None and "no SE" in one.fmt()
    assert mean_se([1, 0, 1], ["x", "x", "x"]).se is None  # one cluster
    with pytest.raises(ValueError):
        mean_se([])
    with pytest.raises(ValueError):
        mean_se([1, 0], ["a"])


def test_against_scipy_sem_and_t() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    xs = [rng.random() for _ in range(37)]
    assert mean_se(xs).se == pytest.approx(float(stats.sem(xs)), rel=1e-12)
    for t, df in [(0.3, 4), (2.1, 9), (-3.7, 30), (11.0, 2), (0.0, 7), (1.96, 1000)]:
        assert t_two_sided_p(t, df) == pytest.approx(float(2 * stats.t.sf(abs(t), df)), rel=1e-9, abs=1e-15)
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (30.0, 0.5, 0.99), (1.5, 40.0, 0.01)]:
        from scipy.special import betainc as sp_betainc

        assert betainc(a, b, x) == pytest.approx(float(sp_betainc(a, b, x)), rel=1e-10)
    for k, n in [(0, 5), (3, 10), (12, 30), (50, 100), (7, 7)]:
        assert binom_two_sided_p(k, n) == pytest.approx(float(stats.binomtest(k, n, 0.5).pvalue), rel=1e-9)


def test_clustered_se_against_statsmodels() -> None:
    """statsmodels' cluster-robust SE of an intercept-only OLS, without its small-sample correction, is
    ``sqrt(Σ_c (Σ_i e_ic)² / n²)``; Miller's adds ``Σ e² / (n²(n−1))`` (the 1/(n−1) variance)."""
    lm = pytest.importorskip("statsmodels.regression.linear_model")  # lighter than statsmodels.api
    np = pytest.importorskip("numpy")
    rng = random.Random(5)
    groups = [g for g in range(15) for _ in range(rng.randint(1, 6))]
    effect = {g: rng.random() for g in range(15)}
    ys = [1.0 if rng.random() < effect[g] else 0.0 for g in groups]
    n = len(ys)
    fit = lm.OLS(np.array(ys), np.ones((n, 1))).fit(
        cov_type="cluster", cov_kwds={"groups": np.array(groups), "use_correction": False})
    sm_se = float(fit.bse[0])
    ours = mean_se(ys, groups)
    mean = sum(ys) / n
    extra = sum((y - mean) ** 2 for y in ys) / (n**2 * (n - 1))
    assert ours.se == pytest.approx(math.sqrt(sm_se**2 + extra), rel=1e-10)
    # unclustered: statsmodels' nonrobust SE of the intercept is the sample SE
    plain = lm.OLS(np.array(ys), np.ones((n, 1))).fit()
    assert mean_se(ys).se == pytest.approx(float(plain.bse[0]), rel=1e-10)


def test_paired_compare_against_scipy_and_statsmodels() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(11)
    a = [1.0 if rng.random() < 0.7 else 0.0 for _ in range(80)]
    b = [x if rng.random() < 0.7 else 1.0 - x for x in a]
    c = paired_compare(a, b)
    ref = stats.ttest_rel(a, b)
    assert c.t == pytest.approx(float(ref.statistic), rel=1e-10)
    assert c.t_p == pytest.approx(float(ref.pvalue), rel=1e-8)
    assert c.diff.mean == pytest.approx(sum(a) / 80 - sum(b) / 80)
    # SE of the difference = sqrt(SE_A² + SE_B² − 2 Cov/n) (Miller §4)
    ma, mb = sum(a) / 80, sum(b) / 80
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / 79
    se_by_parts = math.sqrt(mean_se(a).se ** 2 + mean_se(b).se ** 2 - 2 * cov / 80)  # type: ignore[operator]
    assert c.diff.se == pytest.approx(se_by_parts, rel=1e-10)
    assert c.binary
    assert c.a_only == sum(1 for x, y in zip(a, b, strict=True) if x > y)
    contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
    table = [[sum(1 for x, y in zip(a, b, strict=True) if x == i and y == j) for j in (1, 0)] for i in (1, 0)]
    assert c.mcnemar_p == pytest.approx(float(contingency.mcnemar(table, exact=True).pvalue), rel=1e-9)


def test_paired_compare_edge_cases() -> None:
    same = paired_compare([1, 0, 1], [1, 0, 1])
    assert same.diff.mean == 0 and same.t_p == 1.0 and same.mcnemar_p == 1.0
    shifted = paired_compare([0.5, 0.7, 0.9], [0.4, 0.6, 0.8])
    assert shifted.t_p == 0.0 and not shifted.binary and shifted.mcnemar_p is None
    with pytest.raises(ValueError):
        paired_compare([1], [1, 0])
    with pytest.raises(ValueError):
        paired_compare([], [])
    clustered = paired_compare([1, 1, 0, 0], [0, 0, 0, 0], ["a", "a", "b", "b"])
    assert clustered.diff.clustered and clustered.diff.n_clusters == 2
