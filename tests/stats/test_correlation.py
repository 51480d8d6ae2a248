import random

import pytest

from llmlab.stats.correlation import average_ranks, pearson, spearman

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_scipy_with_ties(seed):
    rng = random.Random(seed)
    x = [rng.randint(0, 5) for _ in range(40)]  # many ties
    y = [v + rng.gauss(0, 2) for v in x]
    assert average_ranks(x) == pytest.approx(list(stats.rankdata(x)))
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_constant_side_and_too_few_points_are_none():
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1.0], [2.0]) is None
