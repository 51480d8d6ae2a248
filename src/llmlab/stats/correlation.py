"""Rank and correlation statistics without numpy/scipy (equal to scipy's ``rankdata``/``pearsonr``/``spearmanr``).

Shared by the Tx-LLM metrics (TDC's Spearman, AUROC from ranks) and PH-LLM's rater agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def average_ranks(x: Sequence[float]) -> list[float]:
    """Average ranks (1-based), ties sharing their mean rank (scipy's ``rankdata`` default).

    Example:
        >>> average_ranks([10, 20, 20, 5])
        [2.0, 3.5, 3.5, 1.0]
    """
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; ``None`` for fewer than 2 points or when either side is constant."""
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (= scipy ``spearmanr``: Pearson of average ranks); ``None`` as :func:`pearson`."""
    return pearson(average_ranks(x), average_ranks(y))


__all__ = ["average_ranks", "pearson", "spearman"]
