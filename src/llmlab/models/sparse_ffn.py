"""dReLU gated FFN (TurboSparse) and PowerInfer-style predicted-sparse FFN inference.

Papers:
* Song et al., "Turbo Sparse: Achieving LLM SOTA Performance with Minimal Activated Parameters"
  (arXiv 2406.05955), §3: dReLU, ``FFN(x) = (ReLU(x W_gate) ⊙ ReLU(x W_up)) W_down``, and the activation
  sparsity metric (fraction of intermediate neurons whose gate⊙up output is exactly zero).
* Song et al., "PowerInfer: Fast Large Language Model Serving with a Consumer-grade GPU" (SOSP'24, arXiv
  2312.12456) and Xue et al., "PowerInfer-2" (arXiv 2406.06282): the per-layer activation predictor
  (``fc1: d -> r``, ReLU, ``fc2: r -> d_ff``; neuron predicted active when its logit > threshold, 0 by
  default, i.e. sigmoid > 0.5), the hot/cold neuron split by activation frequency, and neuron-aware
  sparse operators that compute only the predicted rows of W_gate/W_up and columns of W_down.

Implemented: :class:`GatedFFN` (``swiglu`` | ``relu_gate`` | ``drelu``), :func:`activation_sparsity`,
:class:`ActivationPredictor` + :func:`train_predictor` (BCE with a positive-class weight, Deja-Vu style) +
:func:`predictor_metrics`, :func:`hot_cold_split` (greedy top-M by frequency, exact for a uniform-cost
budget) and :class:`SparseFFN` (bundle layout: the gate row, up row and down column of one neuron are
stored contiguously, one gather serves all three; hot neurons always computed densely). For batch-1 decode on
CPU an optional fused numba kernel reads the active neurons' bundles in place (no gather copy) and skips the
down-projection of neurons whose activation is exactly zero; the plain PyTorch path is always present and
the kernel is tested against it.

Deviations (deliberate):
* PowerInfer's predictor-training code was never released (PowerInfer #255); the BCE recipe and default
  rank here are ours. Predictors are trained on recorded (pre-FFN hidden state, active mask) pairs.
* PowerInfer places hot neurons on the GPU and cold ones on the CPU; here both run on one device, the
  split only decides what is always computed (hot) versus gated by the predictor (cold).
* For a batch of several tokens the sparse path computes the union of the tokens' active sets (PowerInfer-2
  runs prefill densely for the same reason: aggregate sparsity of many tokens is low).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.core.errors import ConfigError

Act = Literal["swiglu", "relu_gate", "drelu"]
ACTS = ("swiglu", "relu_gate", "drelu")


def gated_activation(act: str, g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The intermediate activation from gate and up pre-activations for ``act``."""
    if act == "swiglu":
        return F.silu(g) * u
    if act == "relu_gate":
        return F.relu(g) * u
    return F.relu(g) * F.relu(u)


class GatedFFN(nn.Module):
    """Gated FFN ``(act_g(x W_gate) ⊙ act_u(x W_up)) W_down``.

    ``swiglu``: act_g = SiLU, act_u = identity; ``relu_gate`` (ReLUfication): act_g = ReLU;
    ``drelu``: ReLU on both (TurboSparse eq. 2).

    Example:
        >>> ffn = GatedFFN(8, 32, act="drelu")
        >>> ffn(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d: int, d_ff: int, act: str = "swiglu") -> None:
        super().__init__()
        if act not in ACTS:
            raise ConfigError(f"unknown FFN activation '{act}'. Available: {', '.join(ACTS)}")
        self.act = act
        self.w_gate = nn.Linear(d, d_ff, bias=False)
        self.w_up = nn.Linear(d, d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d, bias=False)
        self.record = False
        self.recorded: list[tuple[torch.Tensor, torch.Tensor]] = []

    def activate(self, g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The intermediate activation from gate and up pre-activations."""
        return gated_activation(self.act, g, u)

    def intermediate(self, x: torch.Tensor) -> torch.Tensor:
        """Post-activation intermediate (…, d_ff); its exact zeros are the inactive neurons."""
        return self.activate(self.w_gate(x), self.w_up(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.intermediate(x)  # (…, d_ff)
        if self.record:  # (input hidden state, intermediate) pairs for sparsity / predictor training
            self.recorded.append((x.detach().reshape(-1, x.shape[-1]), a.detach().reshape(-1, a.shape[-1])))
        return self.w_down(a)


def _run_recording(model: nn.Module, batches: list[torch.Tensor]) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Feed ``batches`` with every :class:`GatedFFN` recording; per layer, its (input, intermediate) records.

    Recording is switched off again even when the model raises; the layers' buffers are emptied after reading.
    """
    ffns = [m for m in model.modules() if isinstance(m, GatedFFN)]
    for f in ffns:
        f.record, f.recorded = True, []
    try:
        for b in batches:
            model(b)
    finally:
        for f in ffns:
            f.record = False
    records = [f.recorded for f in ffns]
    for f in ffns:
        f.recorded = []
    return records


@torch.no_grad()
def activation_sparsity(model: nn.Module, batches: list[torch.Tensor], rel_tol: float = 1e-2) -> dict[str, Any]:
    """Per-layer activation sparsity of every :class:`GatedFFN` in ``model`` on ``batches``.

    Args:
        model: Any module containing GatedFFN layers (called as ``model(batch)``).
        batches: Inputs to feed.
        rel_tol: Also report the fraction with ``|a| < rel_tol * max|a|`` (near-zeros; SwiGLU has few exact).

    Returns:
        ``{"exact_zero": [per layer], "near_zero": [per layer], "mean_exact_zero": float,
        "frequency": [per-layer (d_ff,) activation frequencies as lists]}``.
    """
    was = model.training
    model.eval()
    try:
        records = _run_recording(model, batches)
    finally:
        model.train(was)
    exact, near, freq = [], [], []
    for rec in records:
        a = torch.cat([r[1] for r in rec])  # (T, d_ff)
        exact.append((a == 0).float().mean().item())
        near.append((a.abs() < rel_tol * a.abs().max()).float().mean().item())
        freq.append((a != 0).float().mean(0).tolist())
    return {"exact_zero": exact, "near_zero": near, "mean_exact_zero": sum(exact) / max(len(exact), 1),
            "frequency": freq}


@torch.no_grad()
def record_activations(model: nn.Module, batches: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(hidden input (T, d), active mask (T, d_ff) bool) per GatedFFN layer, for predictor training."""
    return [(torch.cat([r[0] for r in rec]), torch.cat([r[1] for r in rec]) != 0)
            for rec in _run_recording(model, batches)]


class ActivationPredictor(nn.Module):
    """PowerInfer predictor: ``fc2(ReLU(fc1(x)))`` logits per neuron; active when logit > ``threshold``."""

    def __init__(self, d: int, d_ff: int, rank: int = 64, threshold: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, rank, bias=False)
        self.fc2 = nn.Linear(rank, d_ff, bias=True)
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))  # (…, d_ff) logits

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean active mask (…, d_ff); threshold 0 on logits equals sigmoid > 0.5."""
        return self.forward(x) > self.threshold


def train_predictor(
    x: torch.Tensor,
    active: torch.Tensor,
    rank: int = 64,
    steps: int = 300,
    lr: float = 3e-3,
    batch_size: int = 512,
    pos_weight: float | None = None,
    seed: int = 0,
) -> ActivationPredictor:
    """Fit an :class:`ActivationPredictor` on recorded (hidden, active-mask) pairs with weighted BCE.

    Args:
        x: Pre-FFN hidden states (T, d).
        active: True active mask (T, d_ff).
        rank: Predictor bottleneck r.
        steps: Adam steps.
        lr: Learning rate.
        batch_size: Rows per step.
        pos_weight: BCE weight of the positive (active) class; default ``sqrt(neg/pos)`` to favour recall.
        seed: RNG seed.

    Returns:
        The trained predictor (eval mode).
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    T, d = x.shape
    pred = ActivationPredictor(d, active.shape[1], rank)
    y = active.float()
    p = y.mean().clamp(1e-4, 1 - 1e-4).item()
    pw = torch.tensor(pos_weight if pos_weight is not None else math.sqrt((1 - p) / p))
    opt = torch.optim.Adam(pred.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, T, (min(batch_size, T),), generator=g)
        loss = F.binary_cross_entropy_with_logits(pred(x[idx]), y[idx], pos_weight=pw)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return pred.eval()


def predictor_metrics(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Recall, precision and densities of a predicted active mask against the true one."""
    pred, true = pred.bool(), true.bool()
    tp = (pred & true).sum().item()
    return {
        "recall": tp / max(true.sum().item(), 1),
        "precision": tp / max(pred.sum().item(), 1),
        "predicted_density": pred.float().mean().item(),
        "true_density": true.float().mean().item(),
    }


def hot_cold_split(frequency: torch.Tensor, n_hot: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hot = the ``n_hot`` most frequently active neurons (greedy = optimal for a uniform-cost budget).

    Returns:
        ``(hot_idx, cold_idx)`` index tensors, hot sorted by decreasing frequency.
    """
    order = torch.argsort(frequency, descending=True, stable=True)
    return order[:n_hot], order[n_hot:]


_ACT_CODE = {"swiglu": 0, "relu_gate": 1, "drelu": 2}


def _sparse_decode_kernel(x, bundle, idx, act, parts):  # pragma: no cover - compiled by numba
    # One token. Each active neuron n reads its bundle - gate row, up row, down column, 3·d contiguous
    # values - once, front to back: a = act(x·W_gate[n], x·W_up[n]); if a != 0 (dReLU: predicted active but
    # not), y += a · W_down[:, n]. Neurons are split into one contiguous slice per partial sum in ``parts``
    # (P, d); the caller adds the P partial outputs. No gather copies, no strided access.
    k = idx.shape[0]
    d = x.shape[0]
    P = parts.shape[0]
    for p in _prange(P):
        lo = p * k // P
        hi = (p + 1) * k // P
        yp = parts[p]
        for i in range(lo, hi):
            n = idx[i]
            g = 0.0
            u = 0.0
            for j in range(d):
                g += x[j] * bundle[n, 0, j]
                u += x[j] * bundle[n, 1, j]
            if act == 0:
                a = g / (1.0 + math.exp(-g)) * u
            elif act == 1:
                a = g * u if g > 0 else 0.0
            else:
                a = g * u if (g > 0 and u > 0) else 0.0
            if a != 0.0:
                for j in range(d):
                    yp[j] += a * bundle[n, 2, j]


_prange = range  # numba.prange inside the compiled kernel


@functools.cache
def _numba_sparse() -> Any:
    """The compiled single-token kernel, or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    global _prange
    _prange = numba.prange
    return numba.njit(parallel=True, cache=True, fastmath=True)(_sparse_decode_kernel)


class SparseFFN(nn.Module):
    """Computes only predicted-active neurons of a :class:`GatedFFN` (plus an always-on hot set).

    Weights are stored in a neuron-aware *bundle* layout ``(d_ff, 3, d)``: for neuron k, the gate row, the
    up row and the down column are contiguous, so one ``index_select`` gathers everything a neuron needs.
    Hot neurons sit first and are computed densely without a gather.

    Args:
        ffn: The dense FFN (weights are copied).
        predictor: Predicts the cold neurons' activity; None means an oracle must be passed to ``forward``.
        hot_idx: Neurons always computed (e.g. from :func:`hot_cold_split`); None for no hot set.
        use_kernel: For one token on CPU without autograd, use the fused numba kernel (when installed), which
            reads only the active neurons' bundled rows in place instead of gathering copies.

    Example:
        >>> ffn = GatedFFN(8, 32, act="drelu")
        >>> sp = SparseFFN(ffn)
        >>> x = torch.randn(4, 8)
        >>> torch.allclose(sp(x, mask=ffn.intermediate(x) != 0), ffn(x), atol=1e-6)
        True
    """

    bundle: torch.Tensor
    perm: torch.Tensor
    cold_orig: torch.Tensor

    def __init__(self, ffn: GatedFFN, predictor: ActivationPredictor | None = None,
                 hot_idx: torch.Tensor | None = None, use_kernel: bool = True) -> None:
        super().__init__()
        d_ff = ffn.w_gate.weight.shape[0]
        self.act = ffn.act
        hot = hot_idx if hot_idx is not None else torch.zeros(0, dtype=torch.long)
        is_hot = torch.zeros(d_ff, dtype=torch.bool)
        is_hot[hot] = True
        cold = torch.nonzero(~is_hot).flatten()
        perm = torch.cat([hot.long(), cold])  # new order: hot first
        with torch.no_grad():
            bundle = torch.stack([ffn.w_gate.weight, ffn.w_up.weight, ffn.w_down.weight.T], dim=1)  # (d_ff, 3, d)
        self.register_buffer("bundle", bundle[perm].contiguous())
        self.register_buffer("perm", perm)
        self.register_buffer("cold_orig", cold)  # original ids of the cold neurons (predictor columns)
        self.n_hot = int(hot.numel())
        self.predictor = predictor
        self.use_kernel = use_kernel

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """FFN output computing only active neurons.

        Args:
            x: (…, d).
            mask: Optional oracle active mask (…, d_ff) in the original neuron order; otherwise the predictor.

        Returns:
            (…, d).

        Raises:
            ConfigError: With neither a mask nor a predictor.
        """
        shape = x.shape
        xf = x.reshape(-1, shape[-1])  # (T, d)
        if mask is None:
            if self.predictor is None:
                raise ConfigError("SparseFFN needs a predictor or an explicit mask")
            cold_pred = self.predictor(xf)[:, self.cold_orig] > self.predictor.threshold  # (T, n_cold)
        else:
            cold_pred = mask.reshape(-1, mask.shape[-1])[:, self.cold_orig]
        cold_active = torch.nonzero(cold_pred.any(0)).flatten() + self.n_hot  # union over tokens
        if self.use_kernel and xf.shape[0] == 1 and not torch.is_grad_enabled() and xf.device.type == "cpu" \
                and xf.dtype == self.bundle.dtype and (kernel := _numba_sparse()) is not None:
            idx = torch.cat([torch.arange(self.n_hot), cold_active]) if self.n_hot else cold_active
            import numba

            parts = torch.zeros(numba.get_num_threads(), shape[-1], dtype=xf.dtype)  # (P, d)
            kernel(xf[0].contiguous().numpy(), self.bundle.numpy(), idx.numpy(), _ACT_CODE[self.act],
                   parts.numpy())
            return (parts[0] if parts.shape[0] == 1 else parts.sum(0)).reshape(shape)
        y = xf.new_zeros(xf.shape)
        if self.n_hot:
            hb = self.bundle[: self.n_hot]  # (n_hot, 3, d) contiguous, no gather
            y = y + gated_activation(self.act, xf @ hb[:, 0].T, xf @ hb[:, 1].T) @ hb[:, 2]
        if cold_active.numel():
            cb = self.bundle.index_select(0, cold_active)  # (k, 3, d)
            a = gated_activation(self.act, xf @ cb[:, 0].T, xf @ cb[:, 1].T)  # (T, k)
            # a token only uses the neurons predicted for it (the union is a batching convenience)
            a = a * cold_pred[:, cold_active - self.n_hot]
            y = y + a @ cb[:, 2]
        return y.reshape(shape)


__all__ = [
    "ACTS",
    "ActivationPredictor",
    "GatedFFN",
    "SparseFFN",
    "activation_sparsity",
    "hot_cold_split",
    "predictor_metrics",
    "record_activations",
    "train_predictor",
]
