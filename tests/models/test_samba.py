from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.samba import (  # noqa: E402
    PRESETS,
    CausalSelfAttention,
    SambaConfig,
    SambaLM,
    attention,
    window_mask,
)
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture

ATTN_IMPLS = ["band_mask", "chunked", "reference"]


def _model(seed: int = 0, **kw) -> SambaLM:
    torch.manual_seed(seed)
    m = SambaLM(SambaConfig.from_name("test", **kw)).eval()
    with torch.no_grad():  # larger weights than the 0.02 init so that attention/SSM outputs are not ~0
        for name, p in m.named_parameters():
            if p.dim() == 2 and "A_log" not in name:
                p.normal_(0, 0.3)
    return m


@pytest.mark.parametrize("impl", ATTN_IMPLS)
@pytest.mark.parametrize("L,w", [(17, 5), (12, 4), (9, 1), (10, 3)])
def test_no_attention_beyond_the_window(impl, L, w):
    torch.manual_seed(L * w)
    q, k, v = (torch.randn(1, 2, L, 8, requires_grad=True) for _ in range(3))
    out = attention(q, k, v, w, impl)
    for t in range(L):
        gk, gv = torch.autograd.grad(out[0, :, t].sum(), [k, v], retain_graph=True)
        touched = ((gk.abs().sum((0, 1, 3)) + gv.abs().sum((0, 1, 3))) > 0).nonzero().flatten().tolist()
        assert touched == list(range(max(0, t - w + 1), t + 1))


@pytest.mark.parametrize("impl", ATTN_IMPLS)
def test_window_attention_matches_brute_force_per_query(impl):
    torch.manual_seed(3)
    L, w = 23, 6
    q, k, v = (torch.randn(2, 3, L, 8) for _ in range(3))
    out = attention(q, k, v, w, impl)
    for t in range(L):
        lo = max(0, t - w + 1)
        att = (q[:, :, t : t + 1] @ k[:, :, lo : t + 1].transpose(-1, -2)) / math.sqrt(8)
        ref = att.softmax(-1) @ v[:, :, lo : t + 1]
        assert torch.allclose(out[:, :, t : t + 1], ref, atol=1e-5)


@pytest.mark.parametrize("impl", ATTN_IMPLS)
def test_window_at_least_length_is_causal_attention(impl):
    torch.manual_seed(4)
    q, k, v = (torch.randn(1, 2, 9, 4) for _ in range(3))
    assert torch.allclose(attention(q, k, v, 9, impl), attention(q, k, v, None, "reference"), atol=1e-5)
    assert torch.allclose(attention(q, k, v, 50, impl), attention(q, k, v, None, "reference"), atol=1e-5)


def test_window_mask_band_and_offset():
    m = window_mask(4, 8, 3, q_offset=4)
    assert m[0].tolist() == [False, False, True, True, True, False, False, False]
    assert m[3].tolist() == [False] * 5 + [True] * 3


@pytest.mark.parametrize("arch", ["samba", "transformer", "swa", "mamba"])
@pytest.mark.parametrize("attn_impl", ["band_mask", "chunked"])
def test_step_decoding_equals_full_forward(arch, attn_impl):
    m = _model(1, arch=arch, attn_impl=attn_impl)
    idx = torch.randint(0, 256, (2, 14), generator=torch.Generator().manual_seed(2))  # L > w = 5
    with torch.no_grad():
        full = m(idx)
        caches = m.new_cache()
        steps = torch.stack([m.step(idx[:, t], caches) for t in range(idx.shape[1])], dim=1)
        assert torch.allclose(steps, full, atol=1e-4, rtol=1e-4)
        for cut in (2, 9):  # prefill shorter than d_conv, and longer than the window
            _, c2 = m.prefill(idx[:, :cut])
            rest = torch.stack([m.step(idx[:, t], c2) for t in range(cut, idx.shape[1])], dim=1)
            assert torch.allclose(rest, full[:, cut:], atol=1e-4, rtol=1e-4)
    assert full.abs().max() > 1.0  # the comparison is not between near-zero logits


def test_decode_cache_is_bounded_for_swa_and_mamba():
    m = _model(2)
    idx = torch.randint(0, 256, (1, 40))
    with torch.no_grad():
        _, caches = m.prefill(idx)
        for _ in range(10):
            m.step(torch.tensor([1]), caches)
    w = m.cfg.local_window
    for blk, c in zip(m.blocks, caches, strict=True):
        if blk.kind == "swa":
            assert c["k"].shape[2] == w and c["v"].shape[2] == w
        else:
            assert c["conv"].shape[-1] == m.cfg.d_conv and c["ssm"].shape[-1] == m.cfg.d_state


def test_swa_model_output_ignores_tokens_beyond_the_receptive_field():
    # a single SWA layer: the last position must not depend on tokens more than w-1 before it
    cfg = SambaConfig.from_name("test", arch="swa", n_layer=1)
    attn = CausalSelfAttention(cfg, cfg.local_window)
    x = torch.randn(1, 12, cfg.n_embd, requires_grad=True)
    g = torch.autograd.grad(attn(x)[0, -1].sum(), x)[0]
    dep = (g.abs().sum(-1)[0] > 0).nonzero().flatten().tolist()
    assert dep == list(range(12 - cfg.local_window, 12))


def test_layer_pattern_and_presets():
    c = SambaConfig(n_layer=6)
    assert c.layer_kinds() == ["mamba", "swa"] * 3
    assert SambaConfig(n_layer=4, attn_layer_pos=(3,)).layer_kinds() == ["mamba", "mamba", "mamba", "swa"]
    assert SambaConfig(n_layer=3, arch="transformer").layer_kinds() == ["attn"] * 3
    p = PRESETS["Samba_421M"]
    assert (p.n_layer, p.n_embd, p.n_head, p.intermediate_size, p.local_window) == (12, 1536, 12, 4096, 2048)
    assert SambaConfig.from_name("Samba_1.3B").n_embd == 2304
    with pytest.raises(ConfigError, match="Available"):
        SambaConfig.from_name("nope")
    with pytest.raises(ConfigError):
        SambaConfig(n_embd=30, n_head=4)


def test_mamba_init_follows_the_paper():
    torch.manual_seed(0)
    m = SambaLM(SambaConfig.from_name("test", n_layer=2))
    mamba = m.blocks[0].mixer
    dt = torch.nn.functional.softplus(mamba.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    assert torch.allclose(-torch.exp(mamba.A_log[0]), -torch.arange(1.0, m.cfg.d_state + 1))
    assert torch.all(mamba.D == 1)
    assert m.lm_head.weight is m.wte.weight
    # residual output projections: PyTorch's default Linear init scaled by 1/sqrt(2 n_layer)
    fan_in = mamba.out_proj.weight.shape[1]
    assert mamba.out_proj.weight.std().item() == pytest.approx((1 / math.sqrt(fan_in)) / math.sqrt(3) / 2, rel=0.15)


def test_generate_is_deterministic_with_a_seeded_generator():
    m = _model(5)
    prompt = torch.randint(0, 256, (1, 6))
    a = m.generate(prompt, 5, generator=torch.Generator().manual_seed(0))
    b = m.generate(prompt, 5, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1, 11) and torch.equal(a, b) and torch.equal(a[:, :6], prompt)


@pytest.mark.parametrize("name,expected", [("Samba_421M", 421e6), ("Samba_1.3B", 1.3e9)])
def test_paper_presets_have_the_paper_sizes(name, expected):
    with torch.device("meta"):  # shapes only, no memory
        m = SambaLM(SambaConfig.from_name(name))
    assert m.num_params(non_embedding=False) == pytest.approx(expected, rel=0.03)


def test_init_follows_the_official_mamba_init():
    """Embedding N(0, 0.02); Linear weights keep PyTorch's Kaiming-uniform default; residual projections scaled."""
    import math as _m

    torch.manual_seed(0)
    cfg = SambaConfig.from_name("test")
    m = SambaLM(cfg)
    assert abs(float(m.wte.weight.detach().std()) - 0.02) < 0.004
    for name, p in m.named_parameters():
        if p.dim() < 2 or "conv1d" in name or "dt_proj" in name or name.startswith("wte") or name == "lm_head.weight" \
                or name.endswith("A_log"):
            continue
        bound = 1 / _m.sqrt(p.shape[1])  # kaiming_uniform(a=sqrt(5)) bound of nn.Linear
        residual = name.endswith(("out_proj.weight", "proj.weight", "w_down.weight")) and "x_proj" not in name \
            and "in_proj" not in name
        if residual:
            bound /= _m.sqrt(2 * cfg.n_layer)
        assert float(p.abs().max()) <= bound + 1e-7, name
        assert float(p.abs().max()) > 0.8 * bound, name  # uniform, not a narrow normal


def test_samba_config_passes_every_moe_setting_to_the_moe_layer():
    from llmlab.models.moe import MoEFFN
    from llmlab.models.samba import make_ffn

    cfg = SambaConfig.from_name("test")
    import dataclasses

    cfg = dataclasses.replace(cfg, moe_experts=4, moe_unbiased_std=False, moe_aux_loss="switch", moe_xi=0.3,
                              moe_alpha_max=0.02, moe_beta=0.5, moe_adaptive=True)
    ffn = make_ffn(cfg)
    assert isinstance(ffn, MoEFFN)
    c = ffn.cfg
    assert (c.unbiased_std, c.aux_loss, c.xi, c.alpha_max, c.beta) == (False, "switch", 0.3, 0.02, 0.5)
