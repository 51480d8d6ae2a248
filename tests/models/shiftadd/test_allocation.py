import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models import shiftadd as sa  # noqa: E402


def _w(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# -- bit allocation --------------------------------------------------------------------------------------


def test_allocate_bits_respects_budget_and_favours_sensitive_layers():
    scores = {"a": 5.0, "b": 1.0, "c": 3.0, "d": 0.5}
    sizes = {"a": 100, "b": 100, "c": 400, "d": 400}
    bits = sa.allocate_bits(scores, sizes, budget=2.2)
    avg = sa.average_bits(bits, sizes)
    assert avg <= 2.2 + 1e-12
    assert bits["a"] == 3 and bits["d"] == 2
    # no single layer could be raised further within the budget
    for n in bits:
        if bits[n] == 2:
            assert avg + sizes[n] / sum(sizes.values()) > 2.2
    with pytest.raises(ConfigError):
        sa.allocate_bits(scores, sizes, budget=1.5)


def test_sensitivity_score_matches_formula_for_diagonal_hessian():
    W = _w(6, 8, seed=11)
    d = torch.arange(1, 9, dtype=torch.float64)
    H = torch.diag(d)
    damped = d + 0.01 * d.mean()
    Wh = W.double() * damped.sqrt()[None, :]  # L = diag(1/sqrt(h)) for diagonal H
    expected = float(Wh.norm() * Wh.std() ** 2)
    assert sa.sensitivity_score(W, H, 0.01) == pytest.approx(expected, rel=1e-9)
