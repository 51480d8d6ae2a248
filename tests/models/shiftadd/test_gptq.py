import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models import shiftadd as sa  # noqa: E402


def _w(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# -- OBS loop -----------------------------------------------------------------------------------------


def test_obs_with_identity_hessian_equals_plain_groupwise_bcq():
    W = _w(12, 32, seed=8)
    cfg = sa.QuantConfig(method="shiftadd", bits=2, group_size=16, rounds=4)
    q_obs, b_obs = sa.obs_quantize(W, torch.eye(32), cfg)
    q_plain, b_plain = sa.obs_quantize(W, None, cfg)
    assert torch.allclose(q_obs, q_plain, atol=1e-5)
    assert torch.allclose(b_obs.dequantize(), q_obs, atol=1e-5)


def test_obs_compensation_lowers_output_error_for_correlated_inputs():
    g = torch.Generator().manual_seed(9)
    K, N = 64, 32
    mix = torch.randn(K, K, generator=g) * 0.3 + torch.eye(K)
    X = torch.randn(2048, K, generator=g) @ mix  # correlated activations
    H = 2 * X.T @ X / X.shape[0]
    W = torch.randn(N, K, generator=g)

    def out_err(Q):
        d = W - Q
        return torch.trace(d @ H @ d.T).item()

    for plain, comp in (("rtn", "gptq"), ("bcq", "shiftadd")):
        kw = dict(bits=3, group_size=32, rounds=5, apot_terms=3)
        q_plain, _ = sa.obs_quantize(W, H, sa.QuantConfig(method=plain, **kw))
        q_comp, _ = sa.obs_quantize(W, H, sa.QuantConfig(method=comp, **kw))
        assert out_err(q_comp) < out_err(q_plain), (plain, comp)


def test_rtn_error_bounded_by_half_step():
    W = _w(4, 32, seed=10)
    Q, bcq = sa.obs_quantize(W, None, sa.QuantConfig(method="rtn", bits=3, group_size=8))
    assert bcq is None
    Wg, Qg = W.reshape(-1, 8), Q.reshape(-1, 8)
    step = (Wg.max(-1).values.clamp(min=0) - Wg.min(-1).values.clamp(max=0)) / 7
    assert ((Wg - Qg).abs() <= step[:, None] / 2 + 1e-5).all()
    assert Qg.unique().numel() <= 8 * Wg.shape[0]


def test_column_layout_fits_each_column_and_reduces_to_plain_bcq_with_identity_hessian():
    W = _w(32, 24, seed=17)
    cfg = sa.QuantConfig(method="shiftadd", bits=2, group_size=16, layout="column", rounds=3)
    q_obs, b_obs = sa.obs_quantize(W, torch.eye(24), cfg)
    q_plain, _ = sa.obs_quantize(W, None, cfg)
    assert torch.allclose(q_obs, q_plain, atol=1e-6)
    assert b_obs.alpha.shape == (2, 2, 24)  # (q, N/g, K)
    assert torch.allclose(b_obs.dequantize(), q_obs, atol=1e-6)
    # each (column, row-group) is exactly BCQ of that slice
    a, B = sa.bcq_quantize(W[:16, 5:6].T.double(), 2, 3, apot_terms=3)
    assert torch.allclose(q_obs[:16, 5].double(), (B * a[:, None, :]).sum(-1)[0], atol=1e-6)
    with pytest.raises(ConfigError, match="layout='row'"):
        b_obs.packed()
