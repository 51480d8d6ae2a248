"""Error bars for evals: standard errors, 95% CIs, clustered SEs and paired tests.

After Miller, "Adding Error Bars to Evals: A Statistical Approach to Language Model Evaluations"
(arXiv 2411.00640):

- §2.1: the mean score over ``n`` items has ``SE_CLT = sqrt(s² / n)`` with ``s²`` the sample variance
  (``1/(n-1)``); binary scores (accuracy) use the same formula on their 0/1 values.
- §2.2: when items share a question (clusters ``c``), the cluster-robust standard error adds the
  within-cluster cross terms: ``SE_C² = SE_CLT² + (1/n²) Σ_c Σ_i Σ_{j≠i} (s_ic − s̄)(s_jc − s̄)``.
- §4 (paired analysis): two runs scored on the same items are compared through the per-item differences
  ``d_i = a_i − b_i``: ``SE(d̄) = sqrt(Var(d) / n)``, clustered the same way when items share a question.
- 95% CIs are ``estimate ± 1.96·SE`` (the paper's normal approximation).

Paired tests: the paired t test (``d̄ / SE(d̄)`` against Student's t with ``n−1`` degrees of freedom), and for
binary scores McNemar's exact test on the discordant pairs (equivalently the two-sided sign test). The
distribution functions are written here (regularised incomplete beta by Lentz's continued fraction,
exact binomial tails) so core needs no scipy; the tests check them against scipy and statsmodels.

Choices: the ``1/(n−1)`` sample variance is used for every metric, binary ones included (the Bernoulli
form ``p̂(1−p̂)/n`` is the same estimate with ``1/n``: smaller by the factor ``(n−1)/n`` in the variance);
it is what ``scipy.stats.sem`` and an intercept-only OLS give, which the tests check against.
A one-item run (or a one-cluster clustered run) has no variance estimate; its SE is reported as ``None``
(and the CI too) rather than 0, which would claim certainty. CIs are not clipped to the metric's range.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and 95% CI.

    Attributes:
        mean: The estimate.
        se: Its standard error (``None`` when it cannot be estimated: fewer than two items/clusters).
        ci_low: Lower end of the 95% CI.
        ci_high: Upper end of the 95% CI.
        n: Items.
        n_clusters: Clusters (equal to ``n`` when unclustered).
        clustered: Whether the SE is the cluster-robust one.
    """

    mean: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_clusters: int
    clustered: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fmt(self, digits: int = 3) -> str:
        """``0.742 ± 0.031`` (the ± is the CI half-width, 1.96·SE)."""
        if self.se is None:
            return f"{self.mean:.{digits}f} (no SE: n={self.n})"
        return f"{self.mean:.{digits}f} ± {Z95 * self.se:.{digits}f}"


def _ci(mean: float, se: float | None) -> tuple[float | None, float | None]:
    if se is None:
        return None, None
    return mean - Z95 * se, mean + Z95 * se


def _cluster_cross(values: Sequence[float], clusters: Sequence[Hashable], mean: float) -> float:
    """``Σ_c Σ_i Σ_{j≠i} e_ic e_jc`` = ``Σ_c [(Σ_i e_ic)² − Σ_i e_ic²]`` with ``e = s − s̄``."""
    sums: dict[Hashable, float] = {}
    squares: dict[Hashable, float] = {}
    for v, c in zip(values, clusters, strict=True):
        e = v - mean
        sums[c] = sums.get(c, 0.0) + e
        squares[c] = squares.get(c, 0.0) + e * e
    return sum(sums[c] ** 2 - squares[c] for c in sums)


def mean_se(values: Sequence[float], clusters: Sequence[Hashable | None] | None = None) -> Estimate:
    """The mean of per-item scores with its (cluster-robust, when clusters are given) SE and 95% CI.

    Args:
        values: One score per item (0/1 for binary metrics).
        clusters: One cluster label per item; ``None`` labels (or ``clusters=None``) make an item its own
            cluster. Clustering is used when some cluster holds two or more items.

    Returns:
        The :class:`Estimate`.

    Raises:
        ValueError: ``values`` is empty or ``clusters`` has another length.

    Example:
        >>> e = mean_se([1, 0, 1, 1])
        >>> round(e.mean, 2), round(e.se, 4)
        (0.75, 0.25)
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values to average")
    xs = [float(v) for v in values]
    mean = math.fsum(xs) / n
    labels: list[Hashable] = list(range(n))
    clustered = False
    if clusters is not None:
        if len(clusters) != n:
            raise ValueError(f"{len(clusters)} cluster labels for {n} values")
        labels = [("item", i) if c is None else ("cluster", c) for i, c in enumerate(clusters)]
        clustered = len(set(labels)) < n
    n_clusters = len(set(labels))
    if n < 2:
        return Estimate(mean, None, None, None, n, n_clusters, clustered)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    se2 = var / n
    if clustered:
        if n_clusters < 2:
            return Estimate(mean, None, None, None, n, n_clusters, clustered)
        se2 += _cluster_cross(xs, labels, mean) / n**2
    se = math.sqrt(max(se2, 0.0))
    low, high = _ci(mean, se)
    return Estimate(mean, se, low, high, n, n_clusters, clustered)


# -- distribution functions --------------------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t statistic ``t`` with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def normal_two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def binom_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided binomial test of ``k`` successes in ``n`` trials at p = 1/2 (sign test, McNemar)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = math.fsum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2))
                     for i in range(k + 1))
    return min(1.0, 2.0 * tail)


# -- paired comparison --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairedComparison:
    """Run A minus run B on their shared items.

    Attributes:
        diff: ``mean(a) − mean(b)`` over the shared items, with its SE and 95% CI.
        mean_a: A's mean on the shared items.
        mean_b: B's mean on the shared items.
        corr: Pearson correlation of the per-item scores (``None`` when either run is constant).
        t: Paired t statistic (``diff / SE``); ``None`` without an SE.
        t_p: Its two-sided p-value (Student's t, ``n−1`` df; ``n_clusters−1`` when clustered).
        binary: Whether both runs' scores are 0/1.
        a_only: Items A got right and B wrong (binary only).
        b_only: Items B got right and A wrong (binary only).
        mcnemar_p: McNemar's exact p-value on the discordant pairs (binary only).
    """

    diff: Estimate
    mean_a: float
    mean_b: float
    corr: float | None
    t: float | None
    t_p: float | None
    binary: bool
    a_only: int | None = None
    b_only: int | None = None
    mcnemar_p: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["diff"] = self.diff.to_dict()
        return d


def _corr(a: Sequence[float], b: Sequence[float]) -> float | None:
    n = len(a)
    ma, mb = math.fsum(a) / n, math.fsum(b) / n
    sab = math.fsum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    saa = math.fsum((x - ma) ** 2 for x in a)
    sbb = math.fsum((y - mb) ** 2 for y in b)
    if saa == 0 or sbb == 0:
        return None
    return sab / math.sqrt(saa * sbb)


def paired_compare(a: Sequence[float], b: Sequence[float],
                   clusters: Sequence[Hashable | None] | None = None) -> PairedComparison:
    """Compare two runs' scores on the same items (``a[i]`` and ``b[i]`` score item ``i``).

    Args:
        a: Run A's per-item scores.
        b: Run B's per-item scores, same items in the same order.
        clusters: Optional cluster label per item (clustered SE of the difference).

    Returns:
        The :class:`PairedComparison`.

    Raises:
        ValueError: No items, or ``a`` and ``b`` differ in length.

    Example:
        >>> c = paired_compare([1, 1, 1, 0], [0, 1, 0, 0])
        >>> c.diff.mean, c.a_only, c.b_only
        (0.5, 2, 0)
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} scores for run A but {len(b)} for run B")
    if not a:
        raise ValueError("no shared items to compare")
    xa, xb = [float(v) for v in a], [float(v) for v in b]
    d = [x - y for x, y in zip(xa, xb, strict=True)]
    est = mean_se(d, clusters)
    t = t_p = None
    if est.se is not None:
        df = (est.n_clusters if est.clustered else est.n) - 1
        if est.se > 0:
            t = est.mean / est.se
            t_p = t_two_sided_p(t, df)
        else:  # every item differs by the same amount: no variance (all equal → no difference)
            t = 0.0 if est.mean == 0 else math.copysign(math.inf, est.mean)
            t_p = 1.0 if est.mean == 0 else 0.0
    binary = all(v in (0.0, 1.0) for v in (*xa, *xb))
    a_only = b_only = None
    mcnemar = None
    if binary:
        a_only = sum(1 for x, y in zip(xa, xb, strict=True) if x == 1.0 and y == 0.0)
        b_only = sum(1 for x, y in zip(xa, xb, strict=True) if x == 0.0 and y == 1.0)
        mcnemar = binom_two_sided_p(a_only, a_only + b_only)
    return PairedComparison(
        diff=est, mean_a=math.fsum(xa) / len(xa), mean_b=math.fsum(xb) / len(xb), corr=_corr(xa, xb),
        t=t, t_p=t_p, binary=binary, a_only=a_only, b_only=b_only, mcnemar_p=mcnemar,
    )


__all__ = ["Z95", "Estimate", "PairedComparison", "betainc", "binom_two_sided_p", "mean_se",
           "normal_two_sided_p", "paired_compare", "t_two_sided_p"]
