import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models import shiftadd as sa  # noqa: E402


def _w(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# -- BCQ ----------------------------------------------------------------------------------------------


def test_bcq_one_bit_greedy_is_sign_times_mean_abs():
    w = _w(5, 16)
    alpha, B = sa.bcq_quantize(w, bits=1, rounds=0)
    assert torch.allclose(alpha[:, 0], w.abs().mean(-1), atol=1e-6)
    assert torch.equal(B[..., 0], torch.where(w >= 0, 1.0, -1.0))


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_bcq_error_non_increasing_planes_binary_scales_sorted(bits):
    w = _w(64, 32, seed=bits)
    hist: list[float] = []
    alpha, B = sa.bcq_quantize(w, bits=bits, rounds=12, history=hist)
    assert len(hist) == 13
    assert all(b <= a + 1e-9 * hist[0] for a, b in itertools.pairwise(hist))
    assert hist[-1] < hist[0]  # alternating actually improves over greedy
    assert set(B.unique().tolist()) <= {-1.0, 1.0}
    assert (alpha >= 0).all()
    assert (alpha[:, :-1] >= alpha[:, 1:]).all()
    # the returned planes are optimal for the returned scales
    assert torch.equal(B, sa.nearest_codeword(w, alpha))


def test_nearest_codeword_equals_bruteforce():
    w = _w(40, 24, seed=3)
    alpha = _w(40, 3, seed=4).abs()
    assert torch.equal(sa.nearest_codeword(w, alpha), sa.nearest_codeword_bruteforce(w, alpha))


def test_apot_one_term_gives_exact_powers_of_two():
    x = _w(1000, seed=5) * 3
    y = sa.apot_round(x, 1)
    e = torch.log2(y.abs())
    assert torch.equal(e, torch.round(e))
    assert torch.equal(torch.sign(y), torch.sign(x))
    # relative error of rounding log2 to the nearest integer is below 2^0.5 - 1
    assert ((y - x).abs() / x.abs()).max() < math.sqrt(2) - 1 + 1e-6


def test_apot_terms_decompose_and_shiftadd_scales_are_pot_sums():
    x = _w(300, seed=6)
    for terms in (1, 2, 3):
        y = sa.apot_round(x, terms)
        r = y.clone()
        for _ in range(terms):  # peel the largest power of two each time
            nz = r != 0
            e = torch.floor(torch.log2(r.abs().clamp_min(1e-300)))
            # a sum of <= terms signed powers of two: greedy peeling may need the exponent above too
            p = torch.where(nz, torch.sign(r) * 2.0**e, torch.zeros_like(r))
            p2 = torch.where(nz, torch.sign(r) * 2.0 ** (e + 1), torch.zeros_like(r))
            r = torch.where((r - p).abs() <= (r - p2).abs(), r - p, r - p2)
        assert torch.equal(r, torch.zeros_like(r)), terms
    err = [(sa.apot_round(x, t) - x).abs().mean().item() for t in (1, 2, 3)]
    assert err[0] > err[1] > err[2]
    cfg = sa.QuantConfig(method="shiftadd", bits=3, group_size=16, apot_terms=1, rounds=3)
    _, bcq = sa.obs_quantize(_w(8, 32, seed=7), torch.eye(32), cfg)
    a = bcq.alpha[bcq.alpha != 0]
    e = torch.log2(a)
    assert torch.equal(e, torch.round(e))


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


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown quantization method"):
        sa.QuantConfig(method="awq")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not divide"):
        sa.QuantConfig(group_size=48).group_for(64)


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


# -- LUT GEMV ---------------------------------------------------------------------------------------------


def test_pack_unpack_round_trip():
    planes = torch.where(_w(3, 5, 64, seed=12) > 0, 1.0, -1.0)
    packed = sa.pack_planes(planes)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 5, 8)
    assert torch.equal(sa.unpack_planes(packed), planes)


def test_build_lut_entries_are_signed_sums():
    x = _w(16, seed=13).double()
    lut = sa.build_lut(x)
    m = torch.arange(256)
    signs = ((m[:, None] >> torch.arange(8)) & 1).double() * 2 - 1  # (256, 8)
    assert torch.allclose(lut, x.reshape(2, 8) @ signs.T, atol=1e-12)


@pytest.mark.parametrize("impl", ["ref", "torch", "numba"])
def test_lut_gemv_equals_dequantized_dense_product(impl):
    if impl == "numba":
        pytest.importorskip("numba")
    W = _w(48, 64, seed=14)
    _, bcq = sa.obs_quantize(W, None, sa.QuantConfig(method="bcq", bits=3, group_size=32, rounds=3))
    Wd = bcq.dequantize()
    packed = bcq.packed()
    x = _w(64, seed=15)
    # float64 dense product is the oracle; the LUT path in float64 must agree to rounding
    y64 = sa.lut_gemv(x.double(), bcq.alpha.double(), packed, 32, impl=impl)
    assert torch.allclose(y64, Wd.double() @ x.double(), atol=1e-10)
    y32 = sa.lut_gemv(x, bcq.alpha, packed, 32, impl=impl)
    assert torch.allclose(y32, Wd @ x, atol=1e-4, rtol=1e-5)
    X = _w(3, 64, seed=16)
    assert torch.allclose(sa.lut_gemv(X, bcq.alpha, packed, 32, impl=impl), X @ Wd.T, atol=1e-4)


# -- whole models -----------------------------------------------------------------------------------------


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 32)
        self.head = torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.head(self.fc2(torch.relu(self.fc1(x))))


def test_quantize_model_replaces_weights_and_allocates_bits():
    torch.manual_seed(0)
    model = _Tiny()
    head_before = model.head.weight.detach().clone()
    batches = [torch.randn(16, 32) for _ in range(4)]
    sizes = {"fc1": 32 * 64, "fc2": 64 * 32}
    report = sa.quantize_model(
        model, batches, sa.QuantConfig(method="shiftadd", group_size=32, rounds=2), budget=2.5, choices=(2, 3)
    )
    assert set(report.bits) == {"fc1", "fc2"}
    assert report.average_bits(sizes) <= 2.5
    assert sorted(report.bits.values()) == [2, 3]
    assert torch.equal(model.head.weight, head_before)
    for name in ("fc1", "fc2"):
        layer = getattr(model, name)
        assert torch.allclose(layer.weight, report.bcq[name].dequantize(), atol=1e-5)
        assert 0 < report.weight_err[name] < 1


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
