from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.moe import (  # noqa: E402
    AdaptiveAuxCoef,
    MoEConfig,
    MoEFFN,
    Router,
    aux_loss_skywork,
    aux_loss_switch,
    expert_similarity,
    gate_ratios,
    normalize_gate_logits,
    upcycle_dense_ffn,
)
from llmlab.models.sparse_ffn import GatedFFN  # noqa: E402
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


@pytest.mark.parametrize("lam", [1.0, 2.5])
def test_gate_norm_has_zero_mean_std_lambda_and_keeps_topk(lam):
    torch.manual_seed(0)
    z = torch.randn(50, 8) * 3 + 1
    zn = normalize_gate_logits(z, lam)
    assert torch.allclose(zn.mean(-1), torch.zeros(50), atol=1e-5)
    assert torch.allclose(zn.std(-1, unbiased=False), torch.full((50,), lam), atol=1e-4)
    assert torch.equal(zn.topk(2).indices, z.topk(2).indices)
    unb = normalize_gate_logits(z, lam, unbiased=True)
    assert torch.allclose(unb.std(-1, unbiased=True), torch.full((50,), lam), atol=1e-4)


def test_gate_norm_sharpens_a_near_uniform_gate():
    torch.manual_seed(1)
    x = torch.randn(200, 16)
    plain = Router(MoEConfig(d=16, d_ff=8, gate_norm=None))
    normed = Router(MoEConfig(d=16, d_ff=8, gate_norm=1.0))
    normed.load_state_dict(plain.state_dict())
    r0, r1 = gate_ratios(plain(x).probs), gate_ratios(normed(x).probs)
    assert r0["max1_max2"] < 1.1 and r1["max1_max2"] > 1.5 * r0["max1_max2"]  # plain gate ≈ uniform at init


def test_router_weights_renormalised_and_capacity_drops():
    torch.manual_seed(2)
    cfg = MoEConfig(d=8, d_ff=8, n_experts=4, top_k=2)
    r = Router(cfg)(torch.randn(64, 8))
    assert torch.allclose(r.weights.sum(-1), torch.ones(64), atol=1e-6)
    assert r.drop_rate == 0.0
    big = Router(MoEConfig(d=8, d_ff=8, n_experts=4, top_k=2, capacity_factor=64 / 2))
    assert big(torch.randn(64, 8)).drop_rate == 0.0
    small = Router(MoEConfig(d=8, d_ff=8, n_experts=4, top_k=2, capacity_factor=0.5))
    rs = small(torch.randn(64, 8))
    cap = math.ceil(0.5 * 64 * 2 / 4)
    for e in range(4):
        assert ((rs.top_idx == e) & rs.kept).sum() <= cap
    assert rs.drop_rate >= 0.5 - 1e-9  # capacity for only half of the slots
    assert torch.all(rs.weights[~rs.kept] == 0)


def test_dropped_tokens_pass_through_residual_only():
    torch.manual_seed(3)
    moe = MoEFFN(MoEConfig(d=8, d_ff=8, n_experts=2, top_k=1, capacity_factor=0.25))
    x = torch.randn(16, 8)
    y = moe(x)
    r = moe.router(x)
    dropped = ~r.kept[:, 0]
    assert dropped.any()
    assert torch.all(y[dropped] == 0)
    assert moe.last_stats["drop_rate"] == pytest.approx(dropped.float().mean().item())


def test_aux_losses():
    n = 4
    uniform = torch.full((10, n), 1 / n)
    assert aux_loss_skywork(uniform).item() == pytest.approx(0.0, abs=1e-12)
    skew = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).repeat(10, 1)
    assert aux_loss_skywork(skew).item() == pytest.approx((0.7 - 0.25) ** 2 + 3 * (0.1 - 0.25) ** 2)
    idx = torch.arange(10)[:, None] % n
    # balanced routing + uniform probs: Switch loss = n * Σ (1/n)(1/n) = 1
    assert aux_loss_switch(uniform, torch.tensor([[0], [1], [2], [3]])).item() == pytest.approx(1.0)
    assert aux_loss_switch(skew, torch.zeros_like(idx)).item() == pytest.approx(4 * 0.7)


def test_adaptive_coefficient_follows_a_scripted_drop_rate():
    c = AdaptiveAuxCoef(xi=0.2, alpha_max=0.01, beta=0.9, alpha=0.0)
    assert c.target(0.02) == pytest.approx(0.004)
    assert c.target(0.05) == pytest.approx(0.01) and c.target(0.3) == pytest.approx(0.01)
    alphas = [c.update(0.02) for _ in range(100)]
    for i, a in enumerate(alphas):  # geometric convergence: α_i = 0.004 (1 − β^(i+1))
        assert a == pytest.approx(0.004 * (1 - 0.9 ** (i + 1)))
    # drop rate rises above α_max/ξ: α climbs toward α_max; then falls to 0 with no drops
    for _ in range(200):
        c.update(0.5)
    assert c.alpha == pytest.approx(0.01, rel=1e-6)
    for _ in range(200):
        c.update(0.0)
    assert c.alpha < 1e-10


def test_moe_updates_alpha_in_training_only():
    torch.manual_seed(4)
    moe = MoEFFN(MoEConfig(d=8, d_ff=8, n_experts=4, top_k=2, capacity_factor=0.5, adaptive=True, beta=0.5))
    x = torch.randn(32, 8)
    moe.eval()
    moe(x)
    assert moe.alpha == pytest.approx(0.01)
    moe.train()
    moe.coef.alpha = 0.0  # start away from the target so that a missing update cannot pass
    moe(x)
    d = moe.last_stats["drop_rate"]
    assert d > 0
    target = 0.2 * d if d <= 0.05 else 0.01
    assert moe.alpha == pytest.approx(0.5 * 0.0 + 0.5 * target) and moe.alpha > 0
    moe(x)  # a second step moves it again, by eq. 9
    assert moe.alpha == pytest.approx(0.5 * (0.5 * target) + 0.5 * target)
    assert moe.weighted_aux is not None and moe.weighted_aux.requires_grad


def test_upcycled_moe_equals_dense_ffn_at_init():
    torch.manual_seed(5)
    dense = GatedFFN(8, 16, act="swiglu")
    moe = upcycle_dense_ffn(dense, n_experts=4, top_k=2)
    x = torch.randn(3, 7, 8)
    with torch.no_grad():
        assert torch.allclose(moe(x), dense(x), atol=1e-6)
    assert expert_similarity(moe) == pytest.approx(1.0, abs=1e-6)
    noisy = upcycle_dense_ffn(dense, n_experts=4, noise=0.05)
    assert expert_similarity(noisy) < 0.999
    with torch.no_grad():
        assert not torch.allclose(noisy(x), dense(x), atol=1e-4)


def test_config_validation():
    with pytest.raises(ConfigError):
        MoEConfig(d=4, d_ff=4, n_experts=2, top_k=3)
    with pytest.raises(ConfigError, match="Available"):
        MoEConfig(d=4, d_ff=4, aux_loss="zloss")
