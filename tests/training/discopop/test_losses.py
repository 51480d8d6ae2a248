import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.training import discopop as dp  # noqa: E402

F = torch.nn.functional


def _pairs(n=64, seed=0, dtype=torch.float64, scale=40.0):
    g = torch.Generator().manual_seed(seed)
    return [(-torch.rand(n, generator=g, dtype=dtype) * scale) for _ in range(4)]


def _rho_inputs(rho, beta=0.05):
    """Inputs whose β-scaled log-ratio difference is exactly ``rho``."""
    z = torch.zeros_like(rho)
    return rho / beta, z, z, z


# -- LRML values and gradients --------------------------------------------------------------------------


def test_lrml_at_zero_is_half_logistic_half_exp():
    z = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(dp.discopop_loss(z, z, z, z), torch.full((3,), 0.5 * math.log(2) + 0.5, dtype=torch.float64))


def test_lrml_limits_and_tau_infinity():
    rho = torch.tensor([2.0, 5.0, -2.0, -5.0], dtype=torch.float64)
    out = dp.discopop_loss(*_rho_inputs(rho))
    # ρ >> τ: exponential loss; ρ << -τ: logistic loss
    assert torch.allclose(out[:2], torch.exp(-rho[:2]), rtol=1e-12)
    assert torch.allclose(out[2:], -F.logsigmoid(rho[2:]), rtol=1e-12)
    blend = dp.discopop_loss(*_rho_inputs(rho), tau=1e12)
    assert torch.allclose(blend, 0.5 * torch.exp(-rho) + 0.5 * -F.logsigmoid(rho), rtol=1e-9)


def test_lrml_matches_closed_form_and_formula_on_random_logps():
    pc, pr, rc, rr = _pairs()
    beta, tau = 0.05, 0.05
    rho = beta * ((pc - pr) - (rc - rr))
    m = torch.sigmoid(rho / tau)
    expected = (1 - m) * -F.logsigmoid(rho) + m * torch.exp(-rho)
    assert torch.allclose(dp.discopop_loss(pc, pr, rc, rr), expected, rtol=1e-12)


def test_lrml_equals_the_unclamped_formula_at_any_tau_and_very_negative_rho():
    # TRL's (1-m)·softplus(-ρ) + m·exp(-ρ) where it is finite; a clamp of ρ at -50 would drop ~1.0 at τ = 1
    rho = torch.tensor([-80.0, -60.0, -51.0, -10.0, 3.0], dtype=torch.float64)
    for tau in (0.05, 0.5, 1.0, 2.0):
        m = torch.sigmoid(rho / tau)
        expected = (1 - m) * F.softplus(-rho) + m * torch.exp(-rho)
        got = dp.discopop_loss(*_rho_inputs(rho), tau=tau)
        assert torch.allclose(got, expected, rtol=1e-10), tau
    # float32 at ρ = -200 with τ = 0.05: TRL's formula gives nan (inf·0), ours the finite limit
    r32 = torch.tensor([-200.0])
    assert torch.isfinite(dp.discopop_loss(*_rho_inputs(r32))).all()


def test_lrml_gradient_matches_autograd_and_is_finite_everywhere():
    rho = torch.linspace(-60, 60, 241, dtype=torch.float64)
    pc = (rho / 0.05).clone().requires_grad_()
    pr = torch.zeros_like(rho, requires_grad=True)
    z = torch.zeros_like(rho)
    dp.discopop_loss(pc, pr, z, z).sum().backward()
    closed = dp.discopop_grad(pc.detach(), pr.detach(), z, z)
    assert torch.allclose(pc.grad, closed, atol=1e-12, rtol=1e-9)
    assert torch.allclose(pr.grad, -closed, atol=1e-12, rtol=1e-9)
    assert torch.isfinite(pc.grad).all()
    # far outside the guard (float32, ρ = -1000) the loss and gradient stay finite
    far = torch.tensor([-1000.0 / 0.05], requires_grad=True)
    zz = torch.zeros(1)
    loss = dp.discopop_loss(far, zz, zz, zz)
    loss.backward()
    assert torch.isfinite(loss).all() and torch.isfinite(far.grad).all()
    # gradcheck on the closed form's autograd in float64 around the blend region
    x = torch.linspace(-3, 3, 7, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: dp.discopop_loss(t, z[:7], z[:7], z[:7]), (x,))


# -- baselines -----------------------------------------------------------------------------------------


def test_baselines_reduce_to_textbook_values():
    pc, pr, rc, rr = (torch.tensor([v], dtype=torch.float64) for v in (-3.0, -7.0, -4.0, -6.0))
    d = (pc - pr) - (rc - rr)  # = 2
    b = 0.1
    assert d.item() == 2.0
    assert dp.dpo_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(math.log1p(math.exp(-0.2)))
    assert dp.hinge_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(0.8)
    assert dp.ipo_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx((2 - 5) ** 2)
    assert dp.cell_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(
        0.5 * math.exp(-0.2) + 0.5 * math.log1p(math.exp(-0.2)))
    assert dp.padll_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(0.9 * math.log1p(math.exp(-0.2)))
    assert dp.padll_loss(pr, pc, rr, rc, beta=b).item() == pytest.approx(0.45 * math.log1p(math.exp(0.2)))
    # PFL: the policy prefers chosen (pc > pr) -> logistic / 2
    assert dp.pfl_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(math.log1p(math.exp(-0.2)) / 2)
    assert dp.pfl_loss(pr, pc, rr, rc, beta=b).item() == pytest.approx(2 * 1.2)
    # KTO-pair with one pair: chosen KL = 1, rejected KL = clamp(-1) = 0
    # (TRL averages the chosen and the rejected term of each pair over the 2B terms of the batch)
    expected = ((1 - 1 / (1 + math.exp(-0.1 * (1 - 0)))) + (1 - 1 / (1 + math.exp(-0.1 * (1 + 1))))) / 2
    assert dp.kto_pair_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(expected)
    for name in dp.LOSSES:
        out = dp.get_loss(name)(*_pairs(n=10))
        assert out.shape == (10,) and torch.isfinite(out).all(), name
    with pytest.raises(ConfigError, match="Available"):
        dp.get_loss("nope")
