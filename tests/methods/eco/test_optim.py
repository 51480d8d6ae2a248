"""The zeroth-order σ search on synthetic objectives."""

from __future__ import annotations

import pytest

from llmlab.core.errors import ConfigError
from llmlab.methods.eco.optim import ZerothOrderScalar


def test_converges_on_abs_curve_with_two_evals_per_step() -> None:
    calls: list[float] = []

    def f(s: float) -> float:
        calls.append(s)
        return abs(s - 7.0)

    opt = ZerothOrderScalar(sigma=1.0, lr=0.5, eps=0.25, sigma_min=0.1)
    opt.run(f, steps=30)
    assert len(calls) == 2 * len(opt.history) == 60
    assert abs(opt.sigma - 7.0) <= 0.5
    assert opt.history[0]["f_hi"] == pytest.approx(5.75) and opt.history[0]["f_lo"] == pytest.approx(6.25)


def test_respects_sigma_min_and_unclipped_denominator() -> None:
    opt = ZerothOrderScalar(sigma=0.5, lr=10.0, eps=0.1, sigma_min=0.2)
    opt.run(lambda s: s, steps=3)  # f increases with σ: pushed down to the floor
    assert opt.sigma == 0.2
    # near 0 the lower point is clipped: the gradient uses the real distance, so a linear f gives slope 1
    z = ZerothOrderScalar(sigma=0.05, lr=1.0, eps=0.1, sigma_min=0.0)
    assert z.step(lambda s: 3 * s)["grad"] == pytest.approx(3.0)


def test_early_stop_and_errors() -> None:
    opt = ZerothOrderScalar(sigma=10.0, lr=1.0, eps=0.5, target=0.27)
    opt.run(lambda s: 0.2, steps=10)
    assert len(opt.history) == 1
    with pytest.raises(ConfigError):
        ZerothOrderScalar(sigma=1.0, lr=0.0, eps=0.1)
