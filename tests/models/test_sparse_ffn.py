from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.sparse_ffn import (  # noqa: E402
    ActivationPredictor,
    GatedFFN,
    SparseFFN,
    activation_sparsity,
    hot_cold_split,
    predictor_metrics,
    record_activations,
    train_predictor,
)
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def _ffn(act="drelu", d=16, d_ff=64, seed=0):
    torch.manual_seed(seed)
    return GatedFFN(d, d_ff, act=act)


def test_drelu_is_exactly_zero_where_either_preactivation_is_nonpositive():
    ffn = _ffn()
    x = torch.randn(50, 16)
    g, u = ffn.w_gate(x), ffn.w_up(x)
    a = ffn.intermediate(x)
    assert torch.equal(a == 0, (g <= 0) | (u <= 0))
    relu_gate = _ffn("relu_gate").intermediate(x)
    swiglu = _ffn("swiglu").intermediate(x)
    # dReLU zeros ⊇ ReLU-gate zeros (same weights, seed 0); SwiGLU has (almost) no exact zeros
    assert (a == 0).float().mean() > (relu_gate == 0).float().mean() > (swiglu == 0).float().mean()


def test_unknown_activation_raises():
    with pytest.raises(ConfigError, match="Available"):
        GatedFFN(4, 8, act="gelu")


def test_activation_sparsity_counts_exact_zeros_per_layer():
    model = torch.nn.Sequential(_ffn(seed=1), _ffn("swiglu", seed=2))
    xs = [torch.randn(7, 16), torch.randn(5, 16)]
    rep = activation_sparsity(model, xs)
    first = torch.cat([model[0].intermediate(x) for x in xs])
    second = torch.cat([model[1].intermediate(model[0](x)) for x in xs])
    assert rep["exact_zero"][0] == pytest.approx((first == 0).float().mean().item())
    assert rep["exact_zero"][1] == pytest.approx((second == 0).float().mean().item())
    assert len(rep["frequency"][0]) == 64


@pytest.mark.parametrize("n_hot", [0, 10])
def test_sparse_ffn_with_oracle_mask_equals_dense(n_hot):
    ffn = _ffn(seed=3)
    x = torch.randn(9, 16)
    act = ffn.intermediate(x)
    freq = (act != 0).float().mean(0)
    hot, _ = hot_cold_split(freq, n_hot)
    sp = SparseFFN(ffn, hot_idx=hot if n_hot else None)
    with torch.no_grad():
        assert torch.allclose(sp(x, mask=act != 0), ffn(x), atol=1e-5)
        assert torch.allclose(sp(x[0], mask=act[0] != 0), ffn(x[0]), atol=1e-5)  # batch-1 decode


def test_sparse_ffn_error_comes_only_from_missed_neurons():
    ffn = _ffn(seed=4)
    x = torch.randn(1, 16)
    with torch.no_grad():
        act = ffn.intermediate(x)[0]
        active = (act != 0).nonzero().flatten()
        miss = active[:2]
        mask = act != 0
        mask[miss] = False
        err = ffn(x)[0] - SparseFFN(ffn)(x, mask=mask[None])[0]
        expected = act[miss] @ ffn.w_down.weight[:, miss].T
        assert torch.allclose(err, expected, atol=1e-5)


def test_predictor_threshold_zero_is_sigmoid_half_and_metrics():
    p = ActivationPredictor(8, 12, rank=4)
    x = torch.randn(20, 8)
    assert torch.equal(p.predict(x), torch.sigmoid(p(x)) > 0.5)
    m = predictor_metrics(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]))
    assert m == {"recall": 0.5, "precision": 0.5, "predicted_density": 0.5, "true_density": 0.5}


def test_trained_predictor_beats_chance_and_recall_drives_error():
    ffn = _ffn(seed=5, d=16, d_ff=64)
    [(x, active)] = record_activations(ffn, [torch.randn(2000, 16)])
    pred = train_predictor(x, active, rank=32, steps=300, seed=0)
    xt = torch.randn(300, 16)
    true = ffn.intermediate(xt) != 0
    met = predictor_metrics(pred.predict(xt), true)
    assert met["recall"] > 0.6 and met["precision"] > met["true_density"] + 0.3  # far above chance
    with torch.no_grad():
        err = (SparseFFN(ffn, predictor=pred)(xt) - ffn(xt)).norm() / ffn(xt).norm()
    assert err < 0.3  # missed neurons are mostly small ones


def test_hot_cold_split_greedy_is_optimal_for_uniform_budget():
    import itertools

    freq = torch.tensor([0.1, 0.9, 0.3, 0.7, 0.05])
    hot, cold = hot_cold_split(freq, 2)
    assert sorted(hot.tolist()) == [1, 3] and sorted(cold.tolist()) == [0, 2, 4]
    best = max(itertools.combinations(range(5), 2), key=lambda c: sum(freq[list(c)]))
    assert freq[hot].sum() == pytest.approx(freq[list(best)].sum())


@pytest.mark.parametrize("act", ["drelu", "relu_gate", "swiglu"])
@pytest.mark.parametrize("n_hot", [0, 7])
def test_fused_single_token_kernel_matches_torch_path(act, n_hot):
    from llmlab.models.sparse_ffn import _numba_sparse

    if _numba_sparse() is None:
        pytest.skip("numba not installed")
    ffn = _ffn(act, d=300, d_ff=96, seed=6)  # d > one 256-wide output block
    x = torch.randn(1, 300)
    with torch.no_grad():
        inter = ffn.intermediate(x)
        mask = inter != 0 if act != "swiglu" else torch.rand(1, 96) > 0.5
        hot = torch.nonzero(mask[0]).flatten()[:n_hot] if n_hot else None
        fused = SparseFFN(ffn, hot_idx=hot)(x, mask=mask)
        plain = SparseFFN(ffn, hot_idx=hot, use_kernel=False)(x, mask=mask)
        assert torch.allclose(fused, plain, atol=1e-5)
        if act != "swiglu":
            assert torch.allclose(fused, ffn(x), atol=1e-5)
        else:
            assert torch.allclose(fused, (inter * mask) @ ffn.w_down.weight.T, atol=1e-5)
