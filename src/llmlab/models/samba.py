"""Samba: Mamba + MLP + sliding-window attention + MLP, with step decoding.

Paper: Ren et al., "Samba: Simple Hybrid State Space Models for Efficient Unlimited Context Language
Modeling" (arXiv 2406.07522). Implements §2 (architecture: layer-wise Mamba / SWA / MLP stacking, each a
pre-norm residual), §2.1 Mamba (Mamba-1 selective SSM with a depthwise causal conv and SiLU gate), §2.2 SWA
(window w, RoPE), §2.3 SwiGLU MLP, and the presets of the official ``lit_gpt/config.py`` (``Samba_421M``,
``Samba_1.3B``) plus tiny shapes for tests. Baselines of the paper's ablations are the same model with
another mixer pattern: ``arch="transformer"`` (full causal attention), ``"swa"``, ``"mamba"``.

Decoding keeps constant state per layer: (conv_state, ssm_state) for Mamba and a ring buffer of ``w``
keys/values for SWA, so per-token cost does not grow with the context (full attention keeps a growing
cache, for comparison).

Deviations from the official code (deliberate):
* The window is enforced on every path (``attn_impl`` = ``"band_mask"`` SDPA with an explicit boolean band
  mask, ``"chunked"`` block-local attention, ``"reference"`` explicit softmax). The official code only
  applies the window through flash-attn; its SDPA fallback silently uses full causal attention.
* The SWA decode cache is a ring buffer of ``w`` entries instead of a ``max_seq_length`` buffer shifted with
  ``torch.roll`` every step (same results, O(w) memory and O(1) writes).
* RoPE cos/sin are computed in float32 for every position (the official cache is built in bf16, which
  loses precision at long positions).
* The FFN is pluggable (SwiGLU as in the paper, or dReLU / ReLU-gate from TurboSparse, or a Skywork-style
  MoE) so that one model family serves the lab's experiments.
* The selective scan is :mod:`llmlab.models.ssm` (no ``mamba_ssm`` / ``causal_conv1d`` CUDA imports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.core.errors import ConfigError
from llmlab.models.ssm import selective_scan, selective_state_update

Arch = Literal["samba", "transformer", "swa", "mamba"]
AttnImpl = Literal["band_mask", "chunked", "reference"]


@dataclass
class SambaConfig:
    """Model shape and mixer pattern (knob names follow the official ``lit_gpt`` config).

    Attributes:
        vocab_size: Vocabulary size (256 for the byte-level lab).
        n_layer: Number of blocks; a block is one mixer + one FFN, each pre-norm residual.
        n_embd: Model width d.
        n_head: Attention heads.
        n_query_groups: KV heads (GQA); None means ``n_head`` (multi-head).
        intermediate_size: FFN hidden width.
        local_window: SWA window w; token t attends to positions [t-w+1, t].
        arch: ``samba`` (Mamba/SWA alternating), ``transformer`` (full attention), ``swa``, ``mamba``.
        mb_per_layer: In ``samba``, layer i is Mamba when ``i % mb_per_layer == 0``, else SWA.
        attn_layer_pos: Explicit attention layer indices (others Mamba); overrides ``mb_per_layer``.
        nope: Disable RoPE.
        rope_base: RoPE base.
        d_state: SSM state size N.
        d_conv: Causal conv kernel width.
        expand: d_inner = expand * d.
        dt_rank: Rank of the delta projection; None means ceil(d / 16).
        ffn: ``swiglu`` | ``drelu`` | ``relu_gate``.
        moe_experts: 0 for a dense FFN, else the number of experts of a Skywork-style MoE FFN.
        moe_top_k: Experts per token.
        moe_capacity_factor: Expert capacity factor (None: no token drop).
        moe_gate_norm: Gating-logit normalisation λ (None: plain softmax gate).
        moe_adaptive: Adaptive per-layer auxiliary coefficient (Skywork-MoE eq. 7-9).
        moe_aux_coef: Fixed auxiliary coefficient when not adaptive.
        moe_unbiased_std: Unbiased std in the gating-logit normalisation (Skywork's released code).
        moe_aux_loss: ``"skywork_sq"`` (Skywork-MoE eq. 4) or ``"switch"``.
        moe_xi: ξ of the adaptive coefficient.
        moe_alpha_max: α_max of the adaptive coefficient.
        moe_beta: β (moving-average factor) of the adaptive coefficient.
        scan_impl: Selective-scan implementation (see :func:`llmlab.models.ssm.selective_scan`).
        attn_impl: ``band_mask`` | ``chunked`` | ``reference``.
        tie_weights: Tie the LM head to the embedding.
        norm_eps: RMSNorm epsilon.
    """

    vocab_size: int = 256
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_query_groups: int | None = None
    intermediate_size: int = 512
    local_window: int = 64
    arch: Arch = "samba"
    mb_per_layer: int = 2
    attn_layer_pos: tuple[int, ...] | None = None
    nope: bool = False
    rope_base: float = 10000.0
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | None = None
    ffn: str = "swiglu"
    moe_experts: int = 0
    moe_top_k: int = 2
    moe_capacity_factor: float | None = None
    moe_gate_norm: float | None = None
    moe_adaptive: bool = False
    moe_aux_coef: float = 1e-2
    moe_unbiased_std: bool = True
    moe_aux_loss: str = "skywork_sq"
    moe_xi: float = 0.2
    moe_alpha_max: float = 0.01
    moe_beta: float = 0.99
    scan_impl: str = "auto"
    attn_impl: AttnImpl = "band_mask"
    tie_weights: bool = True
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.n_head % self.kv_heads:
            raise ConfigError(f"n_head={self.n_head} must be divisible by n_query_groups={self.kv_heads}")
        if self.arch not in ("samba", "transformer", "swa", "mamba"):
            raise ConfigError(f"unknown arch '{self.arch}'. Available: samba, transformer, swa, mamba")
        if self.attn_impl not in ("band_mask", "chunked", "reference"):
            raise ConfigError(f"unknown attn_impl '{self.attn_impl}'. Available: band_mask, chunked, reference")
        if self.local_window < 1:
            raise ConfigError(f"local_window must be >= 1, got {self.local_window}")

    @property
    def kv_heads(self) -> int:
        return self.n_query_groups if self.n_query_groups is not None else self.n_head

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def d_inner(self) -> int:
        return self.expand * self.n_embd

    @property
    def rank(self) -> int:
        return self.dt_rank if self.dt_rank is not None else math.ceil(self.n_embd / 16)

    def layer_kinds(self) -> list[str]:
        """Mixer of each layer: ``"mamba"``, ``"swa"`` (windowed) or ``"attn"`` (full causal)."""
        if self.arch == "transformer":
            return ["attn"] * self.n_layer
        if self.arch == "swa":
            return ["swa"] * self.n_layer
        if self.arch == "mamba":
            return ["mamba"] * self.n_layer
        if self.attn_layer_pos is not None:
            return ["swa" if i in self.attn_layer_pos else "mamba" for i in range(self.n_layer)]
        return ["mamba" if i % self.mb_per_layer == 0 else "swa" for i in range(self.n_layer)]

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> SambaConfig:
        """A preset by name (``Samba_421M``, ``Samba_1.3B``, ``tiny``, ``test``), with overrides.

        Raises:
            ConfigError: For an unknown name.
        """
        if name not in PRESETS:
            raise ConfigError(f"unknown Samba preset '{name}'. Available: {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)


# Shapes from the paper / official lit_gpt/config.py (vocab of the Llama-2 tokenizer).
PRESETS: dict[str, SambaConfig] = {
    "Samba_421M": SambaConfig(vocab_size=32000, n_layer=12, n_embd=1536, n_head=12, intermediate_size=4096,
                              local_window=2048),
    "Samba_1.3B": SambaConfig(vocab_size=32000, n_layer=18, n_embd=2304, n_head=18, intermediate_size=6144,
                              local_window=2048),
    "tiny": SambaConfig(),  # the CPU lab: d=128, 4 blocks, d_ff 512, w=64, bytes
    "test": SambaConfig(n_layer=4, n_embd=32, n_head=4, n_query_groups=2, intermediate_size=64,
                        local_window=5, d_state=4),
}


class RMSNorm(nn.Module):
    """RMSNorm computed in float32."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * self.weight).to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_size: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 RoPE tables for absolute ``positions`` (L,) -> two (L, head_size // 2) tensors."""
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float32, device=positions.device) / head_size))
    ang = positions.float()[:, None] * inv[None, :]  # (L, hd/2)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (…, L, hd) by the half-split (GPT-NeoX / lit_gpt) convention."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    out = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return out.to(x.dtype)


def window_mask(Lq: int, Lk: int, window: int | None, q_offset: int = 0, device: Any = None) -> torch.Tensor:
    """Boolean (Lq, Lk) mask, True where query i (absolute position ``q_offset + i``) may attend key j.

    Causal, and with a window: ``pos_q - window < j <= pos_q`` (flash-attn ``window_size=(w-1, 0)``).
    """
    qi = torch.arange(Lq, device=device)[:, None] + q_offset
    kj = torch.arange(Lk, device=device)[None, :]
    m = kj <= qi
    if window is not None:
        m = m & (kj > qi - window)
    return m


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None, impl: AttnImpl = "band_mask"
) -> torch.Tensor:
    """Causal (optionally sliding-window) attention over one full sequence.

    Args:
        q: (B, H, L, hd).
        k: (B, H, L, hd) (KV heads already repeated for GQA).
        v: (B, H, L, hd).
        window: Window w, or None for full causal attention.
        impl: ``band_mask`` (SDPA + explicit mask), ``chunked`` (block-local, O(L·w)), ``reference``.

    Returns:
        (B, H, L, hd).
    """
    L = q.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    if impl == "reference":
        att = (q @ k.transpose(-1, -2)) * scale  # (B, H, L, L)
        att = att.masked_fill(~window_mask(L, L, window, device=q.device), float("-inf"))
        return att.softmax(-1) @ v
    if impl == "band_mask" or window is None or window >= L:
        if window is None or window >= L:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=window_mask(L, L, window, device=q.device))
    if impl != "chunked":
        raise ConfigError(f"unknown attn_impl '{impl}'. Available: band_mask, chunked, reference")
    # Block-local: queries of block i attend keys of blocks i-1 and i, masked to the band. O(L·w).
    w = window
    nb = -(-L // w)
    pad = nb * w - L
    B, H, _, hd = q.shape
    qp = F.pad(q, (0, 0, 0, pad)).view(B, H, nb, w, hd)  # (B, H, nb, w, hd)
    kp = F.pad(k, (0, 0, w, pad)).view(B, H, nb + 1, w, hd)
    vp = F.pad(v, (0, 0, w, pad)).view(B, H, nb + 1, w, hd)
    kk = torch.cat([kp[:, :, :-1], kp[:, :, 1:]], dim=3)  # (B, H, nb, 2w, hd)
    vv = torch.cat([vp[:, :, :-1], vp[:, :, 1:]], dim=3)
    # query r of a block sits at key index w + r of its 2w window; allowed keys: r < j <= w + r,
    # and keys before position 0 (the left padding of block 0) are excluded.
    r = torch.arange(w, device=q.device)[:, None]
    j = torch.arange(2 * w, device=q.device)[None, :]
    band = (j > r) & (j <= w + r)  # (w, 2w)
    first = band & (j >= w)
    mask = torch.stack([first] + [band] * (nb - 1))  # (nb, w, 2w)
    out = F.scaled_dot_product_attention(qp, kk, vv, attn_mask=mask)  # (B, H, nb, w, hd)
    return out.reshape(B, H, nb * w, hd)[:, :, :L]


class CausalSelfAttention(nn.Module):
    """Multi-head / GQA attention with RoPE; windowed (SWA) or full causal."""

    def __init__(self, cfg: SambaConfig, window: int | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.window = window
        hd = cfg.head_size
        self.qkv = nn.Linear(cfg.n_embd, (cfg.n_head + 2 * cfg.kv_heads) * hd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def _qkv(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, L, _ = x.shape
        c = self.cfg
        hd = c.head_size
        q, k, v = self.qkv(x).split([c.n_head * hd, c.kv_heads * hd, c.kv_heads * hd], dim=-1)
        q = q.view(B, L, c.n_head, hd).transpose(1, 2)  # (B, H, L, hd)
        k = k.view(B, L, c.kv_heads, hd).transpose(1, 2)  # (B, Hkv, L, hd)
        v = v.view(B, L, c.kv_heads, hd).transpose(1, 2)
        if not c.nope:
            cos, sin = rope_cos_sin(positions, hd, c.rope_base)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def _rep(self, t: torch.Tensor) -> torch.Tensor:
        rep = self.cfg.n_head // self.cfg.kv_heads
        return t.repeat_interleave(rep, dim=1) if rep > 1 else t

    def forward(self, x: torch.Tensor, cache: dict[str, Any] | None = None) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self._qkv(x, torch.arange(L, device=x.device))
        y = attention(q, self._rep(k), self._rep(v), self.window, self.cfg.attn_impl)  # (B, H, L, hd)
        if cache is not None:  # prefill: keep what decoding needs
            if self.window is None:
                cache.update(k=k, v=v, pos=L)
            else:
                w = self.window
                kc = k.new_zeros(B, k.shape[1], w, k.shape[-1])
                vc = torch.zeros_like(kc)
                keep = min(L, w)
                slots = torch.arange(L - keep, L, device=x.device) % w
                kc[:, :, slots] = k[:, :, L - keep:]
                vc[:, :, slots] = v[:, :, L - keep:]
                cache.update(k=kc, v=vc, pos=L)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))

    def step(self, x: torch.Tensor, cache: dict[str, Any]) -> torch.Tensor:
        """One token, x (B, 1, D); cache holds k/v ((B, Hkv, w, hd) ring or growing) and ``pos``."""
        B, _, D = x.shape
        pos = int(cache.get("pos", 0))
        q, k, v = self._qkv(x, torch.tensor([pos], device=x.device))
        if self.window is None:
            # growing cache with doubling capacity (amortised O(1) appends; attention itself stays O(pos))
            if "k" not in cache:
                cache["k"] = k.new_zeros(B, k.shape[1], 16, k.shape[-1])
                cache["v"] = torch.zeros_like(cache["k"])
            if pos >= cache["k"].shape[2]:
                grow = max(16, cache["k"].shape[2])
                cache["k"] = F.pad(cache["k"], (0, 0, 0, grow))
                cache["v"] = F.pad(cache["v"], (0, 0, 0, grow))
            cache["k"][:, :, pos] = k[:, :, 0]
            cache["v"][:, :, pos] = v[:, :, 0]
            cache["pos"] = pos + 1
            keys, vals = cache["k"][:, :, : pos + 1], cache["v"][:, :, : pos + 1]
        else:
            w = self.window
            if "k" not in cache:
                cache["k"] = k.new_zeros(B, k.shape[1], w, k.shape[-1])
                cache["v"] = torch.zeros_like(cache["k"])
            cache["k"][:, :, pos % w] = k[:, :, 0]
            cache["v"][:, :, pos % w] = v[:, :, 0]
            cache["pos"] = pos + 1
            n = min(pos + 1, w)  # valid ring slots; order is irrelevant (RoPE is already applied)
            keys, vals = cache["k"][:, :, :n], cache["v"][:, :, :n]
        y = F.scaled_dot_product_attention(q, self._rep(keys), self._rep(vals))  # (B, H, 1, hd)
        return self.proj(y.transpose(1, 2).reshape(B, 1, D))


class Mamba(nn.Module):
    """Mamba-1 mixer (S6): in_proj, causal depthwise conv + SiLU, selective scan, SiLU(z) gate, out_proj."""

    def __init__(self, cfg: SambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        di, N, R = cfg.d_inner, cfg.d_state, cfg.rank
        self.in_proj = nn.Linear(cfg.n_embd, 2 * di, bias=False)
        self.conv1d = nn.Conv1d(di, di, cfg.d_conv, groups=di, padding=cfg.d_conv - 1, bias=True)
        self.x_proj = nn.Linear(di, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, di, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(di, 1))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, cfg.n_embd, bias=False)
        self.reset_dt()

    @torch.no_grad()
    def reset_dt(self, dt_min: float = 1e-3, dt_max: float = 1e-1, floor: float = 1e-4) -> None:
        """Mamba's dt init: weight U(±rank^-0.5), bias = softplus^-1(dt) with dt log-uniform in [min, max]."""
        r = self.cfg.rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -r, r)
        dt = torch.exp(torch.rand(self.cfg.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]

    def _ssm_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        R, N = self.cfg.rank, self.cfg.d_state
        dt, Bm, Cm = self.x_proj(x).split([R, N, N], dim=-1)  # (…, R), (…, N), (…, N)
        return dt @ self.dt_proj.weight.T, Bm, Cm  # delta before bias/softplus: (…, di)

    def forward(self, h: torch.Tensor, cache: dict[str, Any] | None = None) -> torch.Tensor:
        B, L, _ = h.shape
        x, z = self.in_proj(h).chunk(2, dim=-1)  # (B, L, di) each
        x = x.transpose(1, 2)  # (B, di, L)
        if cache is not None:  # last d_conv inputs of the conv, left-padded with zeros
            k = self.cfg.d_conv
            cache["conv"] = F.pad(x, (max(0, k - L), 0))[..., -k:].clone()
        xc = F.silu(self.conv1d(x)[..., :L])  # (B, di, L)
        delta, Bm, Cm = self._ssm_params(xc.transpose(1, 2))
        A = -torch.exp(self.A_log.float())  # (di, N)
        out = selective_scan(
            xc, delta.transpose(1, 2), A, Bm.transpose(1, 2), Cm.transpose(1, 2), self.D.float(),
            z.transpose(1, 2), self.dt_proj.bias.float(), True, return_last_state=cache is not None,
            impl=self.cfg.scan_impl,  # type: ignore[arg-type]
        )
        if cache is not None:
            y, cache["ssm"] = out
        else:
            y = out
        return self.out_proj(y.transpose(1, 2))

    def step(self, h: torch.Tensor, cache: dict[str, Any]) -> torch.Tensor:
        """One token, h (B, 1, D); cache: ``conv`` (B, di, d_conv) and ``ssm`` (B, di, N)."""
        B = h.shape[0]
        x, z = self.in_proj(h[:, 0]).chunk(2, dim=-1)  # (B, di)
        conv = cache.get("conv")
        if conv is None:
            conv = x.new_zeros(B, self.cfg.d_inner, self.cfg.d_conv)
        conv = torch.cat([conv[..., 1:], x[..., None]], dim=-1)  # (B, di, d_conv)
        cache["conv"] = conv
        conv_bias = self.conv1d.bias
        assert conv_bias is not None  # built with bias=True
        xc = F.silu((conv * self.conv1d.weight[:, 0]).sum(-1) + conv_bias)  # (B, di)
        delta, Bm, Cm = self._ssm_params(xc)
        A = -torch.exp(self.A_log.float())
        state = cache.get("ssm")
        if state is None:
            state = xc.new_zeros(B, self.cfg.d_inner, self.cfg.d_state)
        bias: torch.Tensor = self.dt_proj.bias
        y, cache["ssm"] = selective_state_update(state, xc, delta, A, Bm, Cm, self.D.float(), z, bias.float(), True)
        return self.out_proj(y)[:, None]


def make_ffn(cfg: SambaConfig) -> nn.Module:
    """The block's FFN: a gated FFN (``cfg.ffn``) or a Skywork-style MoE of such FFNs."""
    from llmlab.models.sparse_ffn import GatedFFN

    if cfg.moe_experts > 0:
        from llmlab.models.moe import MoEConfig, MoEFFN

        return MoEFFN(MoEConfig(d=cfg.n_embd, d_ff=cfg.intermediate_size, n_experts=cfg.moe_experts,
                                top_k=cfg.moe_top_k, capacity_factor=cfg.moe_capacity_factor,
                                gate_norm=cfg.moe_gate_norm, adaptive=cfg.moe_adaptive,
                                aux_coef=cfg.moe_aux_coef, act=cfg.ffn, unbiased_std=cfg.moe_unbiased_std,
                                aux_loss=cfg.moe_aux_loss, xi=cfg.moe_xi, alpha_max=cfg.moe_alpha_max,
                                beta=cfg.moe_beta))
    return GatedFFN(cfg.n_embd, cfg.intermediate_size, act=cfg.ffn)


class Block(nn.Module):
    """Pre-norm residual block: ``x + Mixer(norm(x))`` then ``x + FFN(norm(x))``."""

    def __init__(self, cfg: SambaConfig, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.norm1 = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.norm2 = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.mixer: nn.Module = (
            Mamba(cfg) if kind == "mamba"
            else CausalSelfAttention(cfg, cfg.local_window if kind == "swa" else None)
        )
        self.ffn = make_ffn(cfg)

    def forward(self, x: torch.Tensor, cache: dict[str, Any] | None = None) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x), cache)
        return x + self.ffn(self.norm2(x))

    def step(self, x: torch.Tensor, cache: dict[str, Any]) -> torch.Tensor:
        x = x + self.mixer.step(self.norm1(x), cache)  # type: ignore[operator]
        return x + self.ffn(self.norm2(x))


class SambaLM(nn.Module):
    """Decoder LM with Samba / Transformer / SWA / Mamba mixers.

    Example:
        >>> import torch
        >>> m = SambaLM(SambaConfig.from_name("test"))
        >>> m(torch.zeros(1, 7, dtype=torch.long)).shape
        torch.Size([1, 7, 256])
    """

    def __init__(self, cfg: SambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg, k) for k in cfg.layer_kinds())
        self.norm = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self._init_weights()
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight

    @torch.no_grad()
    def _init_weights(self) -> None:
        # official mamba_init (mamba_ssm's _init_weights as Samba uses it): the embedding N(0, 0.02); every
        # Linear keeps PyTorch's default (Kaiming-uniform) weights with biases zeroed except dt_proj's; the
        # residual output projections (Mamba out_proj, attention proj, MLP down) are divided by sqrt(2·n_layer)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        for name, p in self.named_parameters():
            if name.endswith("A_log") or name.endswith(".D") or "norm" in name or "dt_proj" in name:
                continue
            if name.endswith("bias"):
                if "conv1d" not in name:
                    p.zero_()
                continue
            if p.dim() >= 2 and "conv1d" not in name and name.endswith(
                    ("out_proj.weight", "proj.weight", "w_down.weight")) and "x_proj" not in name \
                    and "in_proj" not in name:
                p.div_(math.sqrt(2 * self.cfg.n_layer))

    def forward(self, idx: torch.Tensor, caches: list[dict[str, Any]] | None = None) -> torch.Tensor:
        """Logits (B, L, vocab) for token ids (B, L); pass ``caches`` (empty dicts) to prefill them."""
        x = self.wte(idx)  # (B, L, D)
        for i, blk in enumerate(self.blocks):
            x = blk(x, caches[i] if caches is not None else None)
        return self.lm_head(self.norm(x))

    def new_cache(self) -> list[dict[str, Any]]:
        """Empty per-layer decode caches."""
        return [{} for _ in self.blocks]

    def prefill(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """Full forward that also returns the decode caches (constant size for Mamba/SWA layers)."""
        caches = self.new_cache()
        return self.forward(idx, caches), caches

    def step(self, token: torch.Tensor, caches: list[dict[str, Any]]) -> torch.Tensor:
        """Logits (B, vocab) for the next position given one token id per sequence (B,)."""
        x = self.wte(token[:, None])  # (B, 1, D)
        for blk, c in zip(self.blocks, caches, strict=True):
            x = blk.step(x, c)  # type: ignore[operator]
        return self.lm_head(self.norm(x))[:, 0]

    def aux_loss(self) -> torch.Tensor:
        """Sum of the MoE layers' weighted auxiliary losses from the last forward (0 without MoE)."""
        total = torch.zeros(())
        for m in self.modules():
            aux = getattr(m, "weighted_aux", None)
            if isinstance(aux, torch.Tensor):
                total = total + aux
        return total

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (tied embedding counted once; optionally excluded)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wte.weight.numel() if non_embedding else n

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample continuations (B, L + max_new_tokens) with constant-state decoding."""
        logits, caches = self.prefill(idx)
        nxt = logits[:, -1]
        out = [idx]
        for _ in range(max_new_tokens):
            if temperature <= 0:
                tok = nxt.argmax(-1)
            else:
                tok = torch.multinomial((nxt / temperature).softmax(-1), 1, generator=generator)[:, 0]
            out.append(tok[:, None])
            nxt = self.step(tok, caches)
        return torch.cat(out, dim=1)


__all__ = [
    "PRESETS",
    "Block",
    "CausalSelfAttention",
    "Mamba",
    "RMSNorm",
    "SambaConfig",
    "SambaLM",
    "apply_rope",
    "attention",
    "rope_cos_sin",
    "window_mask",
]
