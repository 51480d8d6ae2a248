"""SliME: mixture of adapters (global), query compression (local), text-guided selection, and their wiring.

Paper: Zhang et al., "Beyond LLaVA-HD: Diving into High-Resolution Large Multimodal Models" (arXiv 2406.08487),
§3.1-3.3 and the training recipe of §3.4. Official code: yfzhang114/SliME (a LLaVA fork): ``GatedBlock`` in
``llava/model/multimodal_projector/builder.py``, ``Resampler`` in ``multimodal_resampler/sampler.py``,
``TextGuidedSampler`` / ``TextGuidedRouterCosine`` in ``multimodal_resampler/builder.py``, ``encode_images`` in
``llava/model/llava_arch.py`` and the stage scripts ``scripts/vicuna/vicuna_7b_{pt,sft}.sh``.

What is here (every module has a slow, obvious ``reference`` form and a fast form checked against it):

* :class:`Resampler` — one cross-attention layer of ``grid²`` learnable queries over the patch tokens, with
  fixed 2-D sin-cos positions added to the queries and (interpolated to the key grid) to the keys; LayerNorms
  (eps 1e-6) on queries, keys/values and output. Used twice: as the global branch's second adapter
  (``grid=24``: 576 queries for 576 CLIP tokens) and as the local compression ``post_qformer``
  (``grid=12``: ``mm_resampler_dim`` = 144 queries per crop).
* :class:`MixtureOfAdapters` — the global branch's ``GatedBlock``: expert 0 = the 2-layer GELU MLP projector,
  expert 1 = :class:`Resampler` followed by the same MLP; per-token noisy top-k gate (Shazeer et al. 2017)
  with ``k = 2``, zero-initialised ``w_gate`` / ``w_noise`` (so both experts start at weight 1/2), softmax
  over experts then top-k renormalised (+1e-6, as the official code); ``forced_expert = i ≥ 0`` bypasses the
  gate and uses expert i only (the official ``mm_learnable_gated``, used by the pretraining stages).
* :class:`TextGuidedSelector` — ``TextGuidedSampler`` with the ``cosine`` router: the score of local token k
  is Σ_t cos(local_k, text_t) over the question's non-padding token embeddings (mean when no mask is given),
  then softmax with temperature, N(0, 0.1²) noise before that softmax in training, and top-p: the smallest
  prefix of the probability-sorted tokens whose cumulative probability is ≤ p, plus one more; the original
  token order is restored. ``keep=n`` selects a fixed count instead (used by the token-budget experiment).
* :class:`SliMEConnector` and :func:`splice_image_tokens` — ``encode_images``: global tokens through the
  mixture, local crops through the compression and the shared MLP, spatial ("raster over the whole image")
  or flat ordering, selection, then ``global ⊕ separator ⊕ selected local`` (or one branch only, the
  official ``use_global_only`` / ``use_local_only``) spliced into the LLM's input embeddings at the image
  placeholder, with ``-100`` labels and an attention mask.
* :data:`SLIME_STAGES` and :func:`apply_stage` — the alternating / staged recipe: (1a) global MLP adapter
  only, (1b) global attention adapter only, (2) local compression (+ the shared MLP) with the global branch
  off, (3) everything, gate active, top-p 0.95.

Deviations from the official code (deliberate):

* Noise of the gate: the official ``noisy_top_k_gating`` computes the noise scale from ``x @ w_gate`` and
  never uses ``w_noise`` (an official bug: Shazeer's gate uses a separate ``W_noise``). We use ``w_noise``;
  ``noise_from="w_gate"`` reproduces the official behaviour. Both are zero at init, so the two agree until
  the gate is trained.
* The official load estimate (``_prob_in_top_k``) is computed and discarded (no load-balancing loss), and
  with ``k = n = 2`` it is never reached; we keep the gates of the last forward (``last_gates``) instead.
* The official queries' positional table is stored in float16 (``pos_embed`` parameter); ours is a float32
  buffer (the float16 table moves outputs by ~1e-3).
* The official selector runs on the text embeddings of the whole conversation, answer included, during
  training (``get_pure_text_embedding`` masks only padding), but on the question alone at inference. The
  caller chooses here: :class:`SliMEConnector` takes whatever text embeddings and mask it is given; the toy
  experiment (``llmlab.models.slime_lab``) passes the question only, in training and at test time alike.
* Gates and experts run in the input dtype (the official casts ``w_gate`` to bfloat16).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.core.errors import ConfigError

IGNORE_INDEX = -100


# ----------------------------------------------------------------------------------------------- positions


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """1-D sin-cos table ``[sin(pos·ω), cos(pos·ω)]`` with ``ω_i = 10000^(−i/(dim/2))``: (M,) -> (M, dim)."""
    if dim % 2:
        raise ConfigError(f"sin-cos positions need an even width, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))  # (dim/2,)
    out = pos.reshape(-1, 1).double() * omega  # (M, dim/2)
    return torch.cat([out.sin(), out.cos()], dim=1).float()


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """2-D sin-cos table for a ``grid × grid`` raster: first half encodes the column, second the row.

    Row-major order (token ``r·grid + c``), as MAE's / Qwen-VL's ``get_2d_sincos_pos_embed`` that SliME uses.

    Example:
        >>> sincos_2d(8, 3).shape
        torch.Size([9, 8])
    """
    if dim % 4:
        raise ConfigError(f"2-D sin-cos positions need a width divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)


def resize_positions(table: torch.Tensor, side: int) -> torch.Tensor:
    """Bicubic resize of a square (G², D) position table to (side², D) (identity when G == side)."""
    g = math.isqrt(table.shape[0])
    if g == side:
        return table
    img = table.float().reshape(1, g, g, -1).permute(0, 3, 1, 2)  # (1, D, G, G)
    out = F.interpolate(img, size=(side, side), mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).flatten(0, 2).to(table.dtype)


# ----------------------------------------------------------------------------------------------- resampler


def _mha_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn: nn.MultiheadAttention) -> torch.Tensor:
    """Multi-head attention written out head by head and sample by sample: (B, Q, D), (B, L, D) -> (B, Q, D)."""
    d, h = attn.embed_dim, attn.num_heads
    hd = d // h
    assert attn.in_proj_weight is not None and attn.in_proj_bias is not None
    wq, wk, wv = attn.in_proj_weight.split(d)
    bq, bk, bv = attn.in_proj_bias.split(d)
    outs = []
    for b in range(q.shape[0]):
        qb, kb, vb = q[b] @ wq.T + bq, k[b] @ wk.T + bk, v[b] @ wv.T + bv  # (Q, D), (L, D), (L, D)
        heads = []
        for i in range(h):
            sl = slice(i * hd, (i + 1) * hd)
            w = torch.softmax(qb[:, sl] @ kb[:, sl].T / math.sqrt(hd), dim=-1)  # (Q, L)
            heads.append(w @ vb[:, sl])
        outs.append(torch.cat(heads, dim=-1) @ attn.out_proj.weight.T + attn.out_proj.bias)
    return torch.stack(outs)


class Resampler(nn.Module):
    """One cross-attention layer of ``grid²`` learnable queries with 2-D sin-cos positions (SliME §3.2).

    Shapes: ``(B, L, kv_dim) -> (B, grid², embed_dim)`` with ``L`` a square number (the keys' positions are
    the query grid's table resized bicubically to ``√L × √L``). Parameter names match the official module, so
    its ``state_dict`` loads (``pos_embed`` is a buffer here; pass ``strict=False`` or drop that key).

    Example:
        >>> r = Resampler(grid=2, embed_dim=8, num_heads=2)
        >>> r(torch.randn(3, 16, 8)).shape
        torch.Size([3, 4, 8])
    """

    def __init__(self, grid: int, embed_dim: int, num_heads: int, kv_dim: int | None = None,
                 out_dim: int | None = None) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ConfigError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.grid, self.num_queries, self.embed_dim, self.num_heads = grid, grid * grid, embed_dim, num_heads
        self.register_buffer("pos_embed", sincos_2d(embed_dim, grid), persistent=False)
        self.query = nn.Parameter(torch.zeros(self.num_queries, embed_dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.kv_proj: nn.Module = (nn.Linear(kv_dim, embed_dim, bias=False)
                                   if kv_dim is not None and kv_dim != embed_dim else nn.Identity())
        self.attn = nn.MultiheadAttention(embed_dim, num_heads)
        self.ln_q = nn.LayerNorm(embed_dim, eps=1e-6)
        self.ln_kv = nn.LayerNorm(embed_dim, eps=1e-6)
        self.ln_post = nn.LayerNorm(embed_dim, eps=1e-6)
        # the official ``use_post_proj`` (off in every SliME configuration) maps to the LLM width
        self.proj: nn.Module = nn.Linear(embed_dim, out_dim) if out_dim is not None else nn.Identity()

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ConfigError(f"the resampler needs a square number of patch tokens, got {x.shape[1]}")
        pos = self.get_buffer("pos_embed")
        kpos = resize_positions(pos, side).to(x.dtype)  # (L, D)
        kv = self.ln_kv(self.kv_proj(x))  # (B, L, D)
        q = (self.ln_q(self.query) + pos.to(x.dtype)).unsqueeze(0)  # (1, Q, D) shared by the batch
        return q, kv + kpos, kv

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        q, k, v = self._inputs(x)
        out = _mha_reference(q.expand(x.shape[0], -1, -1), k, v, self.attn) if reference else self._attend(q, k, v)
        return self.proj(self.ln_post(out))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Fast path: the query projection once for the batch, then fused SDPA over heads."""
        a = self.attn
        d, h = a.embed_dim, a.num_heads
        assert a.in_proj_weight is not None and a.in_proj_bias is not None
        wq, wk, wv = a.in_proj_weight.split(d)
        bq, bk, bv = a.in_proj_bias.split(d)
        b = k.shape[0]
        qh = F.linear(q, wq, bq).view(1, -1, h, d // h).transpose(1, 2).expand(b, -1, -1, -1)  # (B, H, Q, hd)
        kh = F.linear(k, wk, bk).view(b, -1, h, d // h).transpose(1, 2)  # (B, H, L, hd)
        vh = F.linear(v, wv, bv).view(b, -1, h, d // h).transpose(1, 2)
        o = F.scaled_dot_product_attention(qh, kh, vh)  # (B, H, Q, hd)
        return F.linear(o.transpose(1, 2).reshape(b, -1, d), a.out_proj.weight, a.out_proj.bias)


# ----------------------------------------------------------------------------------------- mixture of adapters


def mlp_projector(in_dim: int, out_dim: int) -> nn.Sequential:
    """LLaVA's ``mlp2x_gelu`` projector: Linear → GELU → Linear."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class MixtureOfAdapters(nn.Module):
    """The global branch (SliME §3.1, official ``GatedBlock``): MLP and resampler experts under a noisy gate.

    ``forward(x)`` with ``x`` (B, grid², mm_dim) returns (B, grid², hidden): per token i,
    ``Σ_e g_e(x_i) · expert_e(x)_i`` where expert 0 is ``projection(x)`` and expert 1 ``projection(attn(x))``.
    Inputs whose token count is not ``grid²`` go through ``projection`` only, as in the official module (this
    is how the local tokens share the projector). After each gated forward ``last_gates`` holds the (B, L, 2)
    gates.

    Example:
        >>> m = MixtureOfAdapters(mm_dim=8, hidden=16, grid=2, num_heads=2)
        >>> m.eval()(torch.randn(1, 4, 8)).shape
        torch.Size([1, 4, 16])
    """

    def __init__(self, mm_dim: int, hidden: int, grid: int = 24, num_heads: int | None = None, k: int = 2,
                 forced_expert: int = -1, noise_epsilon: float = 1e-2, noise_from: str = "w_noise") -> None:
        super().__init__()
        heads = num_heads if num_heads is not None else max(mm_dim // 128, 1)
        self.attn = Resampler(grid, mm_dim, heads, kv_dim=mm_dim)
        self.projection = mlp_projector(mm_dim, hidden)
        self.num_experts = 2
        if not 1 <= k <= self.num_experts:
            raise ConfigError(f"k={k} must be 1 or 2 (two experts)")
        if forced_expert not in (-1, 0, 1):
            raise ConfigError(f"forced_expert={forced_expert} must be -1 (gate), 0 (MLP) or 1 (resampler)")
        if noise_from not in ("w_noise", "w_gate"):
            raise ConfigError(f"noise_from='{noise_from}' must be 'w_noise' or 'w_gate' (the official code's)")
        self.k, self.forced_expert, self.noise_epsilon, self.noise_from = k, forced_expert, noise_epsilon, noise_from
        self.w_gate = nn.Parameter(torch.zeros(mm_dim, self.num_experts))  # zero init: both experts 1/2
        self.w_noise = nn.Parameter(torch.zeros(mm_dim, self.num_experts))
        self.last_gates: torch.Tensor | None = None

    @property
    def expert_ffn(self) -> tuple[nn.Module, nn.Module]:
        """The experts' own modules (official name): the MLP and the resampler."""
        return self.projection, self.attn

    def gates(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Noisy top-k gates (T, n) for tokens (T, D); ``noise`` (T, n) ~ N(0, 1) in training (drawn if None)."""
        logits = x @ self.w_gate.to(x.dtype)  # (T, n)
        if self.training:
            w = self.w_noise if self.noise_from == "w_noise" else self.w_gate
            std = F.softplus(x @ w.to(x.dtype)) + self.noise_epsilon
            eps = noise if noise is not None else torch.randn_like(logits)
            logits = logits + eps * std
        probs = logits.softmax(-1)
        top, idx = probs.topk(self.k, dim=-1)  # (T, k)
        top = top / (top.sum(-1, keepdim=True) + 1e-6)
        return torch.zeros_like(probs).scatter(1, idx, top)

    def forward(self, x: torch.Tensor, reference: bool = False, noise: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[1] != self.attn.num_queries:
            return self.projection(x)
        if self.forced_expert == 0:
            return self.projection(x)
        attn_out = self.projection(self.attn(x, reference=reference))  # (B, L, H)
        if self.forced_expert == 1:
            return attn_out
        b, n, d = x.shape
        g = self.gates(x.reshape(b * n, d), None if noise is None else noise.reshape(b * n, -1))
        g = g.reshape(b, n, -1)  # (B, L, 2)
        self.last_gates = g.detach()
        mlp_out = self.projection(x)
        if reference:
            rows = [[g[i, t, 0] * mlp_out[i, t] + g[i, t, 1] * attn_out[i, t] for t in range(n)] for i in range(b)]
            return torch.stack([torch.stack(r) for r in rows])
        return mlp_out * g[..., 0:1].to(x.dtype) + attn_out * g[..., 1:2].to(x.dtype)


# ----------------------------------------------------------------------------------------------- selector


def top_p_indices(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The official top-p rule on a 1-D distribution, kept tokens in ascending (original) order.

    The smallest probability-sorted prefix whose cumulative sum is ≤ p, plus one more when any is left.

    Example:
        >>> top_p_indices(torch.tensor([0.1, 0.6, 0.3]), 0.5).tolist()  # 0.6 > 0.5: keep 0 + 1 tokens
        [1]
    """
    sorted_p, order = torch.sort(probs, descending=True, stable=True)
    n = int((sorted_p.cumsum(0) <= top_p).sum())
    if n < probs.numel():
        n += 1
    return order[:n].sort().values


def top_p_indices_reference(probs: list[float], top_p: float) -> list[int]:
    """:func:`top_p_indices` as a plain loop (the reference form)."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept, cum = [], 0.0
    for i in order:
        cum += probs[i]
        if cum <= top_p:
            kept.append(i)
    if len(kept) < len(probs):
        kept = order[:len(kept) + 1]
    return sorted(kept)


@dataclass
class Selection:
    """One image's selection: kept token indices (ascending), the selector's probabilities and raw scores."""

    indices: torch.Tensor
    probs: torch.Tensor
    scores: torch.Tensor


class TextGuidedSelector(nn.Module):
    """The text-guided local-token selector (SliME §3.3, official ``TextGuidedSampler`` + cosine router).

    Args:
        top_p: Keep the smallest top-probability prefix with cumulative probability ≤ ``top_p`` plus one
            (1.0 keeps all; the official SFT uses 0.95, the pretraining 1.0).
        temperature: Softmax temperature (official ``mm_resampler_temp`` = 1.0).
        train_noise: Std of the Gaussian noise added to the scores in training mode (0.1).

    ``keep`` (in :meth:`select`) overrides top-p with a fixed number of tokens (the highest-probability ones,
    order kept). The selector has no parameters: nothing is learnt by it, the scores come from the local
    tokens and the LLM's own word embeddings.

    Example:
        >>> s = TextGuidedSelector(top_p=0.3).eval()
        >>> local, text = torch.eye(4), torch.eye(4)[[2]]
        >>> s.select([local], text[None], torch.ones(1, 1, dtype=torch.bool))[0].indices.tolist()
        [2]
    """

    def __init__(self, top_p: float = 0.95, temperature: float = 1.0, train_noise: float = 0.1) -> None:
        super().__init__()
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f"top_p={top_p} must be in (0, 1]")
        if temperature <= 0:
            raise ConfigError(f"temperature={temperature} must be > 0")
        self.top_p, self.temperature, self.train_noise = top_p, temperature, train_noise

    @staticmethod
    def scores_reference(local: torch.Tensor, text: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Σ_t cos(local_k, text_t) over unmasked t (mean over all t when ``mask`` is None), one pair at a time."""
        out = []
        for k in range(local.shape[0]):
            sims = [F.cosine_similarity(local[k], text[t], dim=0) for t in range(text.shape[0])]
            if mask is None:
                out.append(torch.stack(sims).mean())
            else:
                out.append(sum((s for s, m in zip(sims, mask.tolist(), strict=True) if m), local.new_zeros(())))
        return torch.stack(out)

    @staticmethod
    def scores(local: torch.Tensor, text: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Batched scores: local (B, N, D), text (B, T, D), mask (B, T) bool or None -> (B, N)."""
        eps = 1e-8
        ln = local / local.norm(dim=-1, keepdim=True).clamp_min(eps)
        tn = text / text.norm(dim=-1, keepdim=True).clamp_min(eps)
        sim = ln @ tn.transpose(1, 2)  # (B, N, T)
        if mask is None:
            return sim.mean(-1)
        return (sim * mask[:, None, :].to(sim.dtype)).sum(-1)

    def select(self, local: list[torch.Tensor], text: torch.Tensor, mask: torch.Tensor | None,
               keep: int | None = None, noise: list[torch.Tensor] | None = None,
               reference: bool = False) -> list[Selection]:
        """Select among each image's local tokens.

        Args:
            local: Per image, its local tokens (N_i, D) (images may have different counts).
            text: (B, T, D) text token embeddings of each image's prompt.
            mask: (B, T) bool, True for real (non-padding) text tokens; None to average over all T.
            keep: Keep this many tokens (top scores, order kept) instead of the top-p rule.
            noise: Per image, the N(0, 1) draws for training-mode noise (drawn when None).
            reference: Use the loop forms.

        Returns:
            One :class:`Selection` per image.
        """
        out: list[Selection] = []
        if reference:
            raw = [self.scores_reference(x, text[i], None if mask is None else mask[i]) for i, x in enumerate(local)]
        else:
            n_max = max(x.shape[0] for x in local)
            padded = local[0].new_zeros(len(local), n_max, local[0].shape[-1])
            for i, x in enumerate(local):
                padded[i, :x.shape[0]] = x
            sc = self.scores(padded, text, mask)
            raw = [sc[i, :x.shape[0]] for i, x in enumerate(local)]
        for i, s in enumerate(raw):
            z = s
            if self.training and self.train_noise > 0:
                eps = noise[i] if noise is not None else torch.randn_like(s)
                z = s + eps * self.train_noise
            probs = torch.softmax(z / self.temperature, dim=-1)
            if keep is not None:
                n = min(max(keep, 0), probs.numel())
                idx = torch.sort(probs, descending=True, stable=True).indices[:n].sort().values
            elif reference:
                idx = torch.tensor(top_p_indices_reference(probs.tolist(), self.top_p), dtype=torch.long)
            else:
                idx = top_p_indices(probs, self.top_p)
            out.append(Selection(idx.to(s.device), probs, s))
        return out


# --------------------------------------------------------------------------------------------------- wiring


@dataclass
class SliMEConfig:
    """Shapes and defaults of the SliME connector (official values in brackets).

    Attributes:
        mm_dim: Vision feature width (CLIP-L: 1024).
        hidden: LLM width (4096 for 7B).
        global_grid: Side of the global view's token grid (24: 576 tokens).
        local_grid: Side of the compressed grid per crop (12: ``mm_resampler_dim`` 144).
        num_heads: Resampler heads (``mm_dim // 128``).
        k: Gate top-k (2).
        top_p: Selector top-p (0.95 at SFT, 1.0 in pretraining).
        temperature: Selector softmax temperature (1.0).
        train_noise: Selector score noise std in training (0.1).
        forced_expert: -1 gate, 0 MLP only, 1 resampler only (``mm_learnable_gated``).
        noise_from: ``w_noise`` (Shazeer) or ``w_gate`` (the official code's).
        branches: ``both``, ``global`` (``use_global_only``) or ``local`` (``use_local_only``).
        merge: ``spatial`` (raster over the whole image, the scripts' ``mm_patch_merge_type``) or ``flat``.
    """

    mm_dim: int = 1024
    hidden: int = 4096
    global_grid: int = 24
    local_grid: int = 12
    num_heads: int | None = None
    k: int = 2
    top_p: float = 0.95
    temperature: float = 1.0
    train_noise: float = 0.1
    forced_expert: int = -1
    noise_from: str = "w_noise"
    branches: str = "both"
    merge: str = "spatial"

    def __post_init__(self) -> None:
        if self.branches not in ("both", "global", "local"):
            raise ConfigError(f"branches='{self.branches}' must be 'both', 'global' or 'local'")
        if self.merge not in ("spatial", "flat"):
            raise ConfigError(f"merge='{self.merge}' must be 'spatial' or 'flat'")

    @property
    def heads(self) -> int:
        return self.num_heads if self.num_heads is not None else max(self.mm_dim // 128, 1)


def spatial_order(n_rows: int, n_cols: int, grid: int) -> torch.Tensor:
    """Permutation taking crop-major tokens (crop r·cols+c, then cell i·grid+j) to a raster over the whole image.

    Example:
        >>> spatial_order(1, 2, 2).tolist()  # two 2x2 crops side by side
        [0, 1, 4, 5, 2, 3, 6, 7]
    """
    idx = torch.arange(n_rows * n_cols * grid * grid).view(n_rows, n_cols, grid, grid)
    return idx.permute(0, 2, 1, 3).reshape(-1)  # (rows, grid, cols, grid) raster


@dataclass
class ConnectorOutput:
    """Per image: the visual token sequence for the LLM (L_i, hidden) and the selection (None if not run)."""

    tokens: list[torch.Tensor]
    selections: list[Selection | None]
    local_tokens: list[torch.Tensor | None]


class SliMEConnector(nn.Module):
    """Global mixture of adapters + local compression + text-guided selection (official ``encode_images``).

    Example:
        >>> cfg = SliMEConfig(mm_dim=8, hidden=16, global_grid=2, local_grid=1, num_heads=2)
        >>> c = SliMEConnector(cfg).eval()
        >>> out = c(torch.randn(1, 4, 8), torch.randn(1, 2, 4, 8), torch.randn(1, 3, 16),
        ...         torch.ones(1, 3, dtype=torch.bool), torch.zeros(16), crop_grid=(1, 2))
        >>> out.tokens[0].shape[0] <= 4 + 1 + 2
        True
    """

    def __init__(self, cfg: SliMEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mixture = MixtureOfAdapters(cfg.mm_dim, cfg.hidden, cfg.global_grid, cfg.heads, cfg.k,
                                         cfg.forced_expert, noise_from=cfg.noise_from)
        self.compress = Resampler(cfg.local_grid, cfg.mm_dim, cfg.heads, kv_dim=cfg.mm_dim)  # post_qformer
        self.selector = TextGuidedSelector(cfg.top_p, cfg.temperature, cfg.train_noise)

    def load_official(self, projector: dict[str, torch.Tensor], sampler: dict[str, torch.Tensor]) -> None:
        """Load the official ``mm_projector`` (``GatedBlock``) and ``sampler`` (``TextGuidedSampler``) weights.

        Args:
            projector: The official ``mm_projector`` state dict (keys ``attn.*``, ``projection.*``, ``w_gate``,
                ``w_noise``; its ``pos_embed`` / ``mean`` / ``std`` are recomputed here and ignored).
            sampler: The official ``sampler`` state dict (keys ``post_qformer.*``).
        """
        skip = ("pos_embed", "mean", "std")
        mix = {k: v.float() for k, v in projector.items() if k.split(".")[-1] not in skip}
        self.mixture.load_state_dict(mix, strict=True)
        comp = {k.removeprefix("post_qformer."): v.float() for k, v in sampler.items()
                if k.startswith("post_qformer.") and k.split(".")[-1] not in skip}
        self.compress.load_state_dict(comp, strict=True)

    def local_tokens(self, crops: torch.Tensor, crop_grid: tuple[int, int] | None = None,
                     reference: bool = False) -> torch.Tensor:
        """One image's crops (n, L, mm_dim) -> compressed, projected local tokens (n·local_grid², hidden)."""
        z = self.mixture.projection(self.compress(crops, reference=reference))  # (n, g², H)
        return self._merge(z.flatten(0, 1), crops.shape[0], crop_grid)

    def _merge(self, z: torch.Tensor, n_crops: int, crop_grid: tuple[int, int] | None) -> torch.Tensor:
        """Crop-major tokens (n·g², H) -> the configured order (spatial: a raster over the whole image)."""
        if self.cfg.merge == "spatial":
            rows, cols = crop_grid if crop_grid is not None else (1, n_crops)
            if rows * cols != n_crops:
                raise ConfigError(f"crop_grid {rows}x{cols} does not match {n_crops} crops")
            z = z[spatial_order(rows, cols, self.cfg.local_grid).to(z.device)]
        return z

    def forward(self, global_feats: torch.Tensor, local_feats: torch.Tensor | list[torch.Tensor],
                text_embeds: torch.Tensor, text_mask: torch.Tensor | None, separator: torch.Tensor,
                crop_grid: tuple[int, int] | list[tuple[int, int]] | None = None, keep: int | None = None,
                reference: bool = False, select: bool = True) -> ConnectorOutput:
        """Build each image's visual tokens.

        Args:
            global_feats: (B, global_grid², mm_dim) features of the global (downsampled) view.
            local_feats: (B, n, L, mm_dim) or per image (n_i, L, mm_dim) features of the local crops.
            text_embeds: (B, T, hidden) the prompt's token embeddings (the LLM's embedding table).
            text_mask: (B, T) bool, True for real tokens.
            separator: (hidden,) the separator's embedding (the official code: the ``,`` token).
            crop_grid: (rows, cols) of the crops, per image or shared (spatial merge).
            keep: Select this many local tokens per image instead of top-p.
            reference: Use every module's reference form.
            select: Run the selector (False keeps every local token).
        """
        b = global_feats.shape[0]
        grids = crop_grid if isinstance(crop_grid, list) else [crop_grid] * b
        tokens: list[torch.Tensor] = []
        sels: list[Selection | None] = [None] * b
        locs: list[torch.Tensor | None] = [None] * b
        glob = self.mixture(global_feats, reference=reference) if self.cfg.branches != "local" else None
        if self.cfg.branches != "global":
            if isinstance(local_feats, torch.Tensor) and not reference:
                # fast path: every image has the same crop count; compress all crops in one call
                n, g2 = local_feats.shape[1], self.cfg.local_grid ** 2
                z = self.mixture.projection(self.compress(local_feats.flatten(0, 1))).view(b, n * g2, -1)
                locs_t = [self._merge(z[i], n, grids[i]) for i in range(b)]
            else:
                locs_t = [self.local_tokens(local_feats[i], grids[i], reference) for i in range(b)]
            locs = list(locs_t)
            if select:
                chosen = self.selector.select(locs_t, text_embeds, text_mask, keep=keep, reference=reference)
                sels = list(chosen)
                locs_t = [x[s.indices] for x, s in zip(locs_t, chosen, strict=True)]
        for i in range(b):
            if self.cfg.branches == "global":
                assert glob is not None
                tokens.append(glob[i])
            elif self.cfg.branches == "local":
                tokens.append(locs_t[i])
            else:
                assert glob is not None
                tokens.append(torch.cat([glob[i], separator[None].to(glob.dtype), locs_t[i]], dim=0))
        return ConnectorOutput(tokens, sels, locs)


def splice_image_tokens(embeds: torch.Tensor, image_pos: torch.Tensor | list[int], images: list[torch.Tensor],
                        labels: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace each sequence's image placeholder by its visual tokens; right-pad to one length.

    Args:
        embeds: (B, T, H) text embeddings (the placeholder's own embedding is dropped).
        image_pos: (B,) index of the placeholder in each sequence.
        images: Per sequence, its visual tokens (L_i, H).
        labels: (B, T) token labels (``-100`` where not trained); visual positions get ``-100``.
        attention_mask: (B, T) 1 for real tokens; padding is removed before splicing, as LLaVA does.

    Returns:
        ``(inputs_embeds (B, L, H), attention_mask (B, L) long, labels (B, L))``.
    """
    b, t, _ = embeds.shape
    pos = [int(p) for p in image_pos]
    labels = labels if labels is not None else torch.full((b, t), IGNORE_INDEX, dtype=torch.long,
                                                          device=embeds.device)
    am = attention_mask.bool() if attention_mask is not None else torch.ones(b, t, dtype=torch.bool,
                                                                              device=embeds.device)
    seqs, labs = [], []
    for i in range(b):
        keep = am[i].clone()
        keep[pos[i]] = False
        before, after = torch.arange(t, device=embeds.device) < pos[i], torch.arange(t, device=embeds.device) > pos[i]
        e = torch.cat([embeds[i][keep & before], images[i].to(embeds.dtype), embeds[i][keep & after]])
        lab = torch.cat([labels[i][keep & before],
                         torch.full((images[i].shape[0],), IGNORE_INDEX, dtype=labels.dtype, device=labels.device),
                         labels[i][keep & after]])
        seqs.append(e)
        labs.append(lab)
    n = max(s.shape[0] for s in seqs)
    out = embeds.new_zeros(b, n, embeds.shape[-1])
    out_lab = torch.full((b, n), IGNORE_INDEX, dtype=labels.dtype, device=labels.device)
    out_am = torch.zeros(b, n, dtype=torch.long, device=embeds.device)
    for i, (e, lab) in enumerate(zip(seqs, labs, strict=True)):
        out[i, :e.shape[0]] = e
        out_lab[i, :e.shape[0]] = lab
        out_am[i, :e.shape[0]] = 1
    return out, out_am, out_lab


# ----------------------------------------------------------------------------------------------- the recipe


@dataclass(frozen=True)
class Stage:
    """One stage of SliME's alternating training (README "Train" + ``scripts/vicuna/*.sh``).

    Attributes:
        name: Stage name.
        trainable: Parameter groups trained: ``mlp`` (the shared projector), ``global_attn`` (the global
            resampler expert), ``gate``, ``compress`` (the local resampler), ``llm``.
        forced_expert: The gate switch for this stage (-1: the gate mixes both experts).
        branches: ``global``, ``local`` or ``both``.
        top_p: The selector's top-p in this stage.
        lr: The official learning rate (1e-3 for the adapter stages, 2e-5 for the full fine-tune).
    """

    name: str
    trainable: tuple[str, ...]
    forced_expert: int
    branches: str
    top_p: float
    lr: float


SLIME_STAGES: tuple[Stage, ...] = (
    # 1a: --use_global_only --mm_learnable_gated 0: the MLP adapter alone on the global view
    Stage("1a_global_mlp", ("mlp", "gate"), 0, "global", 1.0, 1e-3),
    # 1b: --mm_learnable_gated 1 from 1a's projector: the attention adapter alone (the MLP is frozen)
    Stage("1b_global_attn", ("global_attn", "gate"), 1, "global", 1.0, 1e-3),
    # 2: --use_local_only: the local compression with the global branch off (the shared MLP trains too;
    #    the official stage unfreezes the whole projector, but only the MLP is on the local path)
    Stage("2_local", ("mlp", "compress"), -1, "local", 1.0, 1e-3),
    # 3: SFT, everything (the official vision tower stays frozen), gate active, top-p 0.95
    Stage("3_full", ("mlp", "global_attn", "gate", "compress", "llm"), -1, "both", 0.95, 2e-5),
)


def stage_parameters(connector: SliMEConnector, group: str, llm: nn.Module | None = None) -> Iterable[nn.Parameter]:
    """The parameters of one named group (see :class:`Stage`)."""
    m = connector.mixture
    groups: dict[str, Iterable[nn.Parameter]] = {
        "mlp": m.projection.parameters(),
        "global_attn": m.attn.parameters(),
        "gate": iter((m.w_gate, m.w_noise)),
        "compress": connector.compress.parameters(),
        "llm": llm.parameters() if llm is not None else iter(()),
    }
    if group not in groups:
        raise ConfigError(f"unknown parameter group '{group}'. Available: {', '.join(groups)}")
    return groups[group]


def apply_stage(connector: SliMEConnector, stage: Stage, llm: nn.Module | None = None) -> list[nn.Parameter]:
    """Set ``requires_grad``, the gate switch, the branches and the selector's top-p for ``stage``.

    Everything is frozen first (the vision encoder is the caller's and stays as it is), then the stage's
    groups are unfrozen. Returns the trainable parameters (to build the stage's optimiser).
    """
    for p in connector.parameters():
        p.requires_grad_(False)
    if llm is not None:
        for p in llm.parameters():
            p.requires_grad_(False)
    params: list[nn.Parameter] = []
    for g in stage.trainable:
        for p in stage_parameters(connector, g, llm):
            p.requires_grad_(True)
            params.append(p)
    connector.mixture.forced_expert = stage.forced_expert
    connector.cfg.branches = stage.branches
    connector.selector.top_p = stage.top_p
    return params


__all__ = [
    "IGNORE_INDEX",
    "SLIME_STAGES",
    "ConnectorOutput",
    "MixtureOfAdapters",
    "Resampler",
    "Selection",
    "SliMEConfig",
    "SliMEConnector",
    "Stage",
    "TextGuidedSelector",
    "apply_stage",
    "mlp_projector",
    "resize_positions",
    "sincos_1d",
    "sincos_2d",
    "spatial_order",
    "splice_image_tokens",
    "stage_parameters",
    "top_p_indices",
    "top_p_indices_reference",
]
