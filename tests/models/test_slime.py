from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.slime import (  # noqa: E402
    IGNORE_INDEX,
    SLIME_STAGES,
    MixtureOfAdapters,
    Resampler,
    SliMEConfig,
    SliMEConnector,
    TextGuidedSelector,
    apply_stage,
    resize_positions,
    sincos_2d,
    spatial_order,
    splice_image_tokens,
    top_p_indices,
    top_p_indices_reference,
)
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)


def test_sincos_2d_columns_then_rows():
    pe = sincos_2d(16, 4)  # token r*4 + c
    assert pe.shape == (16, 16)
    # the first half depends on the column only, the second on the row only
    assert torch.equal(pe[1, :8], pe[5, :8]) and not torch.equal(pe[1, 8:], pe[5, 8:])
    assert torch.equal(pe[4, 8:], pe[5, 8:]) and not torch.equal(pe[4, :8], pe[5, :8])
    assert torch.allclose(pe[0], torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 4 + [1.0] * 4))
    with pytest.raises(ConfigError):
        sincos_2d(6, 2)


def test_resize_positions_identity_and_shape():
    pe = sincos_2d(8, 3)
    assert resize_positions(pe, 3) is pe
    up = resize_positions(pe, 6)
    assert up.shape == (36, 8)
    assert not torch.allclose(up[:9], pe)


@pytest.mark.parametrize(("grid", "n_keys", "kv_dim"), [(3, 9, 16), (2, 16, 16), (2, 36, 12)])
def test_resampler_fast_equals_reference(grid, n_keys, kv_dim):
    torch.manual_seed(grid)
    r = Resampler(grid, 16, 4, kv_dim=kv_dim).double()
    _randomise(r)
    x = torch.randn(3, n_keys, kv_dim, dtype=torch.float64)
    fast, ref = r(x), r(x, reference=True)
    assert fast.shape == (3, grid * grid, 16)
    assert torch.allclose(fast, ref, atol=1e-10)
    # equals torch's own MultiheadAttention on the same inputs
    q, k, v = r._inputs(x)
    mha = r.attn(q.expand(3, -1, -1).transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1))[0].transpose(0, 1)
    assert torch.allclose(fast, r.ln_post(mha), atol=1e-10)


def test_resampler_needs_a_square_token_count():
    with pytest.raises(ConfigError, match="square"):
        Resampler(2, 8, 2)(torch.randn(1, 10, 8))


def test_zero_initialised_gate_is_an_even_mixture():
    torch.manual_seed(1)
    m = MixtureOfAdapters(8, 12, grid=2, num_heads=2).eval()
    x = torch.randn(2, 4, 8)
    y = m(x)
    half = 0.5 / (1 + 1e-6)
    expect = half * m.projection(x) + half * m.projection(m.attn(x))
    assert torch.allclose(y, expect, atol=1e-6)
    assert torch.allclose(m.last_gates, torch.full((2, 4, 2), half))


def test_forced_expert_switch_and_gradients():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 8)
    m = MixtureOfAdapters(8, 12, grid=2, num_heads=2, forced_expert=0)
    assert torch.equal(m(x), m.projection(x))
    m.forced_expert = 1
    assert torch.equal(m(x), m.projection(m.attn(x)))
    m(x).sum().backward()
    assert m.w_gate.grad is None  # the gate is bypassed
    m.forced_expert = -1
    m(x).sum().backward()
    assert m.w_gate.grad is not None and m.w_gate.grad.abs().sum() > 0
    with pytest.raises(ConfigError):
        MixtureOfAdapters(8, 12, grid=2, num_heads=2, forced_expert=2)


def test_mixture_fast_equals_reference_with_trained_gates():
    torch.manual_seed(3)
    m = MixtureOfAdapters(8, 12, grid=2, num_heads=2).double().eval()
    _randomise(m, 3)
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    assert torch.allclose(m(x), m(x, reference=True), atol=1e-10)
    g = m.last_gates
    assert torch.allclose(g.sum(-1), torch.ones(3, 4, dtype=torch.float64), atol=1e-5)
    assert (g[..., 0] - g[..., 1]).abs().max() > 0.01  # trained gates are no longer even


def test_gate_noise_scale_comes_from_w_noise_unless_official():
    torch.manual_seed(4)
    x = torch.randn(5, 8)
    eps = torch.randn(5, 2)
    ours = MixtureOfAdapters(8, 12, grid=2, num_heads=2).train()
    with torch.no_grad():
        ours.w_gate.normal_(0, 0.5)
    official = MixtureOfAdapters(8, 12, grid=2, num_heads=2, noise_from="w_gate").train()
    official.load_state_dict(ours.state_dict())
    g_ours, g_off = ours.gates(x, eps), official.gates(x, eps)
    # with w_noise = 0 our noise scale is softplus(0) + 0.01; the official one uses x @ w_gate
    logits = x @ ours.w_gate
    want = (logits + eps * (math.log(2) + 1e-2)).softmax(-1)
    assert torch.allclose(g_ours, want / (1 + 1e-6), atol=1e-6)
    assert not torch.allclose(g_ours, g_off, atol=1e-3)
    ours.eval()
    assert torch.allclose(ours.gates(x, eps), logits.softmax(-1) / (1 + 1e-6), atol=1e-6)  # no noise in eval


def test_mixture_on_other_token_counts_is_the_projector():
    m = MixtureOfAdapters(8, 12, grid=2, num_heads=2)
    x = torch.randn(2, 9, 8)
    assert torch.equal(m(x), m.projection(x))


@pytest.mark.parametrize("seed", range(30))
def test_top_p_matches_the_loop(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 40, (1,), generator=g))
    probs = torch.softmax(torch.randn(n, generator=g) * 3, -1)
    p = float(torch.rand(1, generator=g))
    idx = top_p_indices(probs, p)
    assert idx.tolist() == top_p_indices_reference(probs.tolist(), p)
    assert idx.tolist() == sorted(idx.tolist())
    # the kept mass reaches p (one past the threshold) unless everything is kept
    assert probs[idx].sum() >= min(p, probs.sum()) - 1e-6
    # dropping the smallest kept token would fall to or below p
    if len(idx) > 1:
        assert probs[idx].sum() - probs[idx].min() <= p + 1e-6


def test_top_p_edges():
    probs = torch.tensor([0.2, 0.5, 0.3])
    assert top_p_indices(probs, 1.0).tolist() == [0, 1, 2]
    assert top_p_indices(probs, 0.1).tolist() == [1]  # the first token alone exceeds p: keep it
    assert top_p_indices(probs, 0.8).tolist() == [0, 1, 2]  # 0.5 + 0.3 <= 0.8, plus one more


def test_selector_scores_fast_equal_loop_and_mask_sums():
    torch.manual_seed(5)
    local = [torch.randn(7, 6), torch.randn(4, 6)]
    text = torch.randn(2, 5, 6)
    text[1, 3:] = 0.0  # padding embeddings
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    sel = TextGuidedSelector(top_p=0.9).eval()
    fast = sel.select(local, text, mask)
    ref = sel.select(local, text, mask, reference=True)
    for f, r, x, i in zip(fast, ref, local, range(2), strict=True):
        assert torch.allclose(f.scores, r.scores, atol=1e-6)
        assert torch.equal(f.indices, r.indices)
        cos = torch.nn.functional.cosine_similarity(x[:, None], text[i][None], dim=-1)  # (N, T)
        assert torch.allclose(f.scores, (cos * mask[i]).sum(-1), atol=1e-6)
    nomask = sel.select(local, text, None)
    assert torch.allclose(nomask[0].scores, torch.nn.functional.cosine_similarity(
        local[0][:, None], text[0][None], dim=-1).mean(-1), atol=1e-6)


def test_selector_prefers_tokens_like_the_question_and_keeps_order():
    torch.manual_seed(6)
    d = 16
    words = torch.eye(d)[:3] * 2  # orthogonal word embeddings
    local = torch.randn(12, d) * 0.2
    local[[9, 2, 5]] += words * 3  # three tokens that look like the question's words
    sel = TextGuidedSelector(top_p=0.5, temperature=0.1).eval()
    out = sel.select([local], words[None], torch.ones(1, 3, dtype=torch.bool))[0]
    assert set(out.indices.tolist()) <= {2, 5, 9} and out.indices.tolist() == sorted(out.indices.tolist())
    k3 = sel.select([local], words[None], None, keep=3)[0]
    assert k3.indices.tolist() == [2, 5, 9]
    # a higher temperature flattens the distribution: top-p keeps more tokens
    hot = TextGuidedSelector(top_p=0.5, temperature=10.0).eval()
    assert len(hot.select([local], words[None], None)[0].indices) > len(out.indices)


def test_selector_training_noise_is_the_stated_gaussian():
    torch.manual_seed(7)
    local, text = torch.randn(10, 4), torch.randn(1, 3, 4)
    sel = TextGuidedSelector(top_p=0.95).train()
    eps = torch.randn(10)
    out = sel.select([local], text, None, noise=[eps])[0]
    assert torch.allclose(out.probs, torch.softmax(out.scores + 0.1 * eps, -1))
    assert torch.allclose(sel.eval().select([local], text, None)[0].probs, torch.softmax(out.scores, -1))
    with pytest.raises(ConfigError):
        TextGuidedSelector(top_p=0.0)


def test_spatial_order_is_a_raster_over_the_whole_image():
    # 2x3 crops of 2x2 cells: token (crop r,c; cell i,j) sits at image row 2r+i, column 2c+j
    rows, cols, g = 2, 3, 2
    order = spatial_order(rows, cols, g)
    crop_major = [(r * g + i, c * g + j) for r in range(rows) for c in range(cols) for i in range(g) for j in range(g)]
    assert [crop_major[k] for k in order.tolist()] == [(y, x) for y in range(rows * g) for x in range(cols * g)]


def _connector(**kw):
    cfg = SliMEConfig(mm_dim=8, hidden=12, global_grid=2, local_grid=2, num_heads=2, **kw)
    torch.manual_seed(8)
    return SliMEConnector(cfg).eval()


def test_connector_wiring_global_separator_selected_local():
    c = _connector(top_p=0.6)
    glob, crops = torch.randn(2, 4, 8), torch.randn(2, 3, 16, 8)
    text, sep = torch.randn(2, 4, 12), torch.randn(12)
    out = c(glob, crops, text, None, sep, crop_grid=(1, 3))
    g = c.mixture(glob)
    for i in range(2):
        sel, loc = out.selections[i], out.local_tokens[i]
        assert loc.shape == (12, 12)
        n_sel = len(sel.indices)
        assert 1 <= n_sel < 12
        t = out.tokens[i]
        assert t.shape == (4 + 1 + n_sel, 12)
        assert torch.allclose(t[:4], g[i]) and torch.equal(t[4], sep)
        assert torch.equal(t[5:], loc[sel.indices])
        # local tokens: compressed crop by crop, projected by the shared MLP, in image raster order
        per_crop = c.mixture.projection(c.compress(crops[i])).flatten(0, 1)
        assert torch.allclose(loc, per_crop[spatial_order(1, 3, 2)], atol=1e-6)
    ref = c(glob, crops, text, None, sep, crop_grid=(1, 3), reference=True)
    for a, b in zip(out.tokens, ref.tokens, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)


def test_connector_branches_and_grid_check():
    glob, crops = torch.randn(1, 4, 8), torch.randn(1, 2, 16, 8)
    text, sep = torch.randn(1, 3, 12), torch.randn(12)
    g = _connector(branches="global")(glob, crops, text, None, sep, crop_grid=(1, 2))
    assert g.tokens[0].shape == (4, 12) and g.selections[0] is None
    loc = _connector(branches="local", top_p=1.0)(glob, crops, text, None, sep, crop_grid=(1, 2))
    assert loc.tokens[0].shape == (8, 12)
    with pytest.raises(ConfigError, match="crop_grid"):
        _connector()(glob, crops, text, None, sep, crop_grid=(2, 2))
    with pytest.raises(ConfigError):
        SliMEConfig(branches="neither")


def test_splice_replaces_the_placeholder_and_pads():
    h = 4
    embeds = torch.arange(2 * 5 * h, dtype=torch.float32).view(2, 5, h)
    labels = torch.tensor([[7, 7, 7, 1, 2], [7, 7, 3, 4, 0]])
    am = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    imgs = [torch.full((3, h), -1.0), torch.full((1, h), -2.0)]
    out, mask, lab = splice_image_tokens(embeds, [1, 0], imgs, labels, am)
    assert out.shape == (2, 7, h)
    assert torch.equal(out[0, 0], embeds[0, 0]) and torch.equal(out[0, 1:4], imgs[0])
    assert torch.equal(out[0, 4:], embeds[0, 2:])
    assert lab[0].tolist() == [7, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 7, 1, 2]
    # the second row: placeholder first, its padding removed, then right-padded to the batch length
    assert torch.equal(out[1, 0], imgs[1][0]) and torch.equal(out[1, 1:4], embeds[1, 1:4])
    assert mask[1].tolist() == [1, 1, 1, 1, 0, 0, 0] and lab[1, 4:].tolist() == [IGNORE_INDEX] * 3
    assert torch.all(out[1, 4:] == 0)


def test_stages_unfreeze_exactly_their_groups():
    c = _connector()
    llm = torch.nn.Linear(3, 3)
    names = {s.name: s for s in SLIME_STAGES}
    apply_stage(c, names["1a_global_mlp"], llm)
    assert all(p.requires_grad for p in c.mixture.projection.parameters())
    assert not any(p.requires_grad for p in c.mixture.attn.parameters())
    assert not any(p.requires_grad for p in c.compress.parameters()) and not llm.weight.requires_grad
    assert c.mixture.forced_expert == 0 and c.cfg.branches == "global"
    apply_stage(c, names["1b_global_attn"], llm)
    assert not any(p.requires_grad for p in c.mixture.projection.parameters())
    assert all(p.requires_grad for p in c.mixture.attn.parameters()) and c.mixture.forced_expert == 1
    apply_stage(c, names["2_local"], llm)
    assert all(p.requires_grad for p in c.compress.parameters()) and c.cfg.branches == "local"
    assert not any(p.requires_grad for p in c.mixture.attn.parameters())
    params = apply_stage(c, names["3_full"], llm)
    assert llm.weight.requires_grad and c.selector.top_p == 0.95 and c.mixture.forced_expert == -1
    assert len(params) == len(list(c.parameters())) + len(list(llm.parameters()))


def test_stage_1b_gradients_reach_only_the_attention_adapter():
    c = _connector()
    apply_stage(c, SLIME_STAGES[1])
    out = c(torch.randn(2, 4, 8), torch.randn(2, 2, 16, 8), torch.randn(2, 3, 12), None, torch.randn(12),
            crop_grid=(1, 2))
    torch.stack([t.sum() for t in out.tokens]).sum().backward()
    assert all(p.grad is not None for p in c.mixture.attn.parameters() if p.requires_grad)
    assert all(p.grad is None for p in c.mixture.projection.parameters())
    assert all(p.grad is None for p in c.compress.parameters())
