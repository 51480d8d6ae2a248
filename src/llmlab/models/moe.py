"""Skywork-MoE routing: gating-logit normalisation, adaptive auxiliary-loss coefficients, upcycling.

Paper: Wei et al., "Skywork-MoE: A Deep Dive into Training Techniques for Mixture-of-Experts Language
Models" (arXiv 2406.06563). Implements eq. (1)-(2) (softmax gate, top-k, output renormalised by the sum of
the selected gate probabilities), eq. (4) (auxiliary loss ``Σ_j (1/n − mean_i g_ij)²``; the Switch form
``n Σ_j f_j P_j`` is offered too), eq. (6) (gating logit normalisation ``z̃ = λ (z − μ) / σ``), eq. (7)-(9)
(per-layer adaptive auxiliary coefficient driven by the token-drop rate) and §3 (upcycling: every expert
starts as a copy of the dense FFN, with a new router).

Deviations / choices (deliberate):
* σ is the unbiased standard deviation over the n experts by default, as the released SkyworkAI gating
  code computes it (``torch.std``); the report's formula does not say which, and the population σ
  (``unbiased_std=False``) moves gate probabilities by up to ~0.04 at n = 16.
* The report gives no capacity factor; ``capacity_factor=None`` (no drop) is the default, the lab uses 1.0.
  Slots are filled by routing priority: every token's first choice before any second choice, then token
  order. Dropped (token, expert) slots contribute nothing: a token whose every slot is dropped passes
  through the block's residual only.
* The initial adaptive coefficient α_0 is not given in the report; we start at ``alpha_max`` (the usual
  fixed 1e-2) and let eq. (8) move it.
* The router's initialisation for upcycling is not specified; we use N(0, 0.02²) weights and zero bias.
* Experts are evaluated in a single process with a loop over experts (index_select / index_add_); no
  expert parallelism.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.core.errors import ConfigError
from llmlab.models.sparse_ffn import GatedFFN


@dataclass
class MoEConfig:
    """Shape and routing of a :class:`MoEFFN`.

    Attributes:
        d: Model width.
        d_ff: Hidden width of each expert.
        n_experts: Number of experts n.
        top_k: Experts per token k.
        capacity_factor: Capacity = ceil(cf · T · k / n) slots per expert; None disables dropping.
        gate_norm: λ of the gating-logit normalisation; None for a plain softmax gate.
        unbiased_std: Use the unbiased std in the normalisation (the released code's; default).
        aux_loss: ``"skywork_sq"`` (eq. 4) or ``"switch"``.
        aux_coef: Fixed α when ``adaptive`` is False.
        adaptive: Use the adaptive per-layer α (eq. 7-9).
        xi: ξ of eq. 9 (1/5 in the report).
        alpha_max: α_max of eq. 9 (0.01).
        beta: β of eq. 8 (0.99).
        act: Expert FFN activation (``swiglu`` | ``drelu`` | ``relu_gate``).
    """

    d: int
    d_ff: int
    n_experts: int = 8
    top_k: int = 2
    capacity_factor: float | None = None
    gate_norm: float | None = 1.0
    unbiased_std: bool = True
    aux_loss: str = "skywork_sq"
    aux_coef: float = 1e-2
    adaptive: bool = False
    xi: float = 0.2
    alpha_max: float = 0.01
    beta: float = 0.99
    act: str = "swiglu"

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= self.n_experts:
            raise ConfigError(f"top_k={self.top_k} must be in [1, n_experts={self.n_experts}]")
        if self.aux_loss not in ("skywork_sq", "switch"):
            raise ConfigError(f"unknown aux_loss '{self.aux_loss}'. Available: skywork_sq, switch")
        if self.gate_norm is not None and self.gate_norm <= 0:
            raise ConfigError(f"gate_norm λ must be > 0 (or None), got {self.gate_norm}")


def normalize_gate_logits(z: torch.Tensor, lam: float, unbiased: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 6: ``λ (z − μ) / σ`` over the expert dimension (last), per token.

    Example:
        >>> z = normalize_gate_logits(torch.tensor([[1.0, 2.0, 3.0, 6.0]]), lam=2.0)
        >>> round(float(z.std(-1, unbiased=False)), 4)
        2.0
    """
    mu = z.mean(-1, keepdim=True)
    sd = z.std(-1, keepdim=True, unbiased=unbiased)
    return lam * (z - mu) / (sd + eps)


def aux_loss_skywork(probs: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``Σ_j (1/n − mean_i g_ij)²`` for gate probabilities (T, n)."""
    n = probs.shape[-1]
    return ((1.0 / n - probs.mean(0)) ** 2).sum()


def aux_loss_switch(probs: torch.Tensor, top_idx: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer form ``n Σ_j f_j P_j`` (f_j: fraction of routed slots to expert j)."""
    n = probs.shape[-1]
    f = torch.zeros(n, device=probs.device).index_add_(
        0, top_idx.flatten(), torch.ones(top_idx.numel(), device=probs.device)) / top_idx.numel()
    return n * (f * probs.mean(0)).sum()


class AdaptiveAuxCoef:
    """Eq. 7-9, per MoE layer: ``α̂ = f(d)`` (7), ``α ← β α + (1 − β) α̂`` (8), ``f(d) = min(ξ d, α_max)`` (9).

    Example:
        >>> c = AdaptiveAuxCoef(xi=0.2, alpha_max=0.01, beta=0.5, alpha=0.0)
        >>> round(c.update(0.02), 6)  # target 0.004, half way
        0.002
    """

    def __init__(self, xi: float = 0.2, alpha_max: float = 0.01, beta: float = 0.99,
                 alpha: float | None = None) -> None:
        self.xi, self.alpha_max, self.beta = xi, alpha_max, beta
        self.alpha = alpha if alpha is not None else alpha_max

    def target(self, drop_rate: float) -> float:
        """α̂ = f(d): eq. 7, with the piece-wise linear f of eq. 9."""
        return self.xi * drop_rate if drop_rate <= self.alpha_max / self.xi else self.alpha_max

    def update(self, drop_rate: float) -> float:
        """Move α towards f(drop_rate) (the moving average of eq. 8) and return the new α."""
        self.alpha = self.beta * self.alpha + (1 - self.beta) * self.target(drop_rate)
        return self.alpha


@dataclass
class Routing:
    """One routing decision for T tokens."""

    probs: torch.Tensor  # (T, n) gate probabilities
    top_idx: torch.Tensor  # (T, k) selected experts
    weights: torch.Tensor  # (T, k) renormalised combine weights (0 for dropped slots)
    kept: torch.Tensor  # (T, k) bool, slot survived capacity
    drop_rate: float


class Router(nn.Module):
    """Linear gate (fp32) with optional logit normalisation, top-k and capacity-limited dispatch."""

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gate = nn.Linear(cfg.d, cfg.n_experts, bias=True)
        nn.init.normal_(self.gate.weight, 0.0, 0.02)
        nn.init.zeros_(self.gate.bias)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Gate logits z̃ (T, n) (normalised when ``gate_norm`` is set)."""
        z = F.linear(x.float(), self.gate.weight.float(), self.gate.bias.float())  # (T, n)
        if self.cfg.gate_norm is not None:
            z = normalize_gate_logits(z, self.cfg.gate_norm, self.cfg.unbiased_std)
        return z

    def forward(self, x: torch.Tensor) -> Routing:
        c = self.cfg
        probs = self.logits(x).softmax(-1)  # (T, n)
        top_p, top_idx = probs.topk(c.top_k, dim=-1)  # (T, k)
        weights = top_p / top_p.sum(-1, keepdim=True)  # eq. 2 renormalisation
        T = x.shape[0]
        if c.capacity_factor is None:
            kept = torch.ones_like(top_idx, dtype=torch.bool)
        else:
            cap = math.ceil(c.capacity_factor * T * c.top_k / c.n_experts)
            # priority order: all first choices, then all second choices, ... (token order within a rank)
            flat = top_idx.T.reshape(-1)  # (k*T,)
            onehot = F.one_hot(flat, c.n_experts)  # (k*T, n)
            pos = (onehot.cumsum(0) * onehot).sum(-1) - 1  # position of each slot in its expert's queue
            kept = (pos < cap).view(c.top_k, T).T  # (T, k)
        weights = weights * kept
        drop = 1.0 - kept.float().mean().item()
        return Routing(probs, top_idx, weights, kept, drop)


def gate_ratios(probs: torch.Tensor) -> dict[str, float]:
    """Mean Max1/Max2 and Max2/Max3 gate-probability ratios (Skywork-MoE Fig. 3 diagnostics)."""
    k = min(3, probs.shape[-1])
    top = probs.topk(k, dim=-1).values.clamp_min(1e-12)
    out = {"max1_max2": (top[:, 0] / top[:, 1]).mean().item() if k > 1 else float("inf")}
    out["max2_max3"] = (top[:, 1] / top[:, 2]).mean().item() if k > 2 else float("inf")
    return out


class MoEFFN(nn.Module):
    """Top-k MoE of gated FFN experts with Skywork-MoE routing.

    After each forward, ``last_stats`` holds drop rate, gate ratios, aux loss and α, and ``weighted_aux``
    holds ``α · L_aux`` (add it to the LM loss; ``SambaLM.aux_loss()`` sums them). In training mode with
    ``adaptive=True`` α is updated from the observed drop rate after every forward.

    Example:
        >>> moe = MoEFFN(MoEConfig(d=8, d_ff=16, n_experts=4, top_k=2))
        >>> moe(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.router = Router(cfg)
        self.experts = nn.ModuleList(GatedFFN(cfg.d, cfg.d_ff, cfg.act) for _ in range(cfg.n_experts))
        self.coef = AdaptiveAuxCoef(cfg.xi, cfg.alpha_max, cfg.beta) if cfg.adaptive else None
        self.last_stats: dict[str, Any] = {}
        self.weighted_aux: torch.Tensor | None = None

    @property
    def alpha(self) -> float:
        return self.coef.alpha if self.coef is not None else self.cfg.aux_coef

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xf = x.reshape(-1, shape[-1])  # (T, d)
        r = self.router(xf)
        y = torch.zeros_like(xf)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.nonzero((r.top_idx == e) & r.kept, as_tuple=True)
            if tok.numel() == 0:
                continue
            out = expert(xf.index_select(0, tok))  # (t_e, d)
            y.index_add_(0, tok, out * r.weights[tok, slot, None].to(out.dtype))
        aux = aux_loss_skywork(r.probs) if self.cfg.aux_loss == "skywork_sq" else aux_loss_switch(r.probs, r.top_idx)
        alpha = self.alpha
        self.weighted_aux = alpha * aux
        self.last_stats = {"drop_rate": r.drop_rate, "aux_loss": aux.item(), "alpha": alpha,
                           **gate_ratios(r.probs.detach())}
        if self.training and self.coef is not None:
            self.coef.update(r.drop_rate)
        return y.reshape(shape)


def upcycle_dense_ffn(dense: GatedFFN, n_experts: int, top_k: int = 2, noise: float = 0.0,
                      seed: int = 0, **cfg_kw: Any) -> MoEFFN:
    """Skywork-MoE §3 upcycling: every expert is a copy of ``dense``; a new router.

    Args:
        dense: The trained dense FFN.
        n_experts: Number of experts.
        top_k: Experts per token.
        noise: Std of Gaussian noise added to each expert copy (0 = exact copies).
        seed: Seed for the router init and noise.
        **cfg_kw: Further :class:`MoEConfig` fields (capacity_factor, gate_norm, adaptive, ...).

    Returns:
        A :class:`MoEFFN` whose output equals ``dense`` at initialisation when no slot is dropped and
        ``noise == 0`` (the renormalised top-k weights sum to one).
    """
    d_ff, d = dense.w_gate.weight.shape
    g = torch.Generator().manual_seed(seed)
    moe = MoEFFN(MoEConfig(d=d, d_ff=d_ff, n_experts=n_experts, top_k=top_k, act=dense.act, **cfg_kw))
    with torch.no_grad():
        moe.router.gate.weight.copy_(torch.randn(moe.router.gate.weight.shape, generator=g) * 0.02)
        for ex in moe.experts:
            ex.load_state_dict(copy.deepcopy(dense.state_dict()))
            if noise > 0:
                for p in ex.parameters():
                    p.add_(torch.randn(p.shape, generator=g) * noise)
    return moe


@torch.no_grad()
def expert_similarity(moe: MoEFFN) -> float:
    """Mean pairwise cosine similarity of the experts' flattened weights (1.0 right after upcycling)."""
    flat = torch.stack([torch.cat([p.flatten() for p in ex.parameters()]) for ex in moe.experts])
    flat = F.normalize(flat, dim=-1)
    sim = flat @ flat.T
    n = sim.shape[0]
    return ((sim.sum() - sim.diagonal().sum()) / max(n * (n - 1), 1)).item()


__all__ = [
    "AdaptiveAuxCoef",
    "MoEConfig",
    "MoEFFN",
    "Router",
    "Routing",
    "aux_loss_skywork",
    "aux_loss_switch",
    "expert_similarity",
    "gate_ratios",
    "normalize_gate_logits",
    "upcycle_dense_ffn",
]
