"""ShiftAddLLM (arXiv 2406.05981): quantize every linear layer of a model (GPTQ's sequential scheme).

Calibration Hessians ``H = 2 X Xᵀ / n`` by forward hooks, optional bit allocation (§3.3), and the per-layer
OBS loop of :mod:`llmlab.models.shiftadd.gptq`; embeddings and the output head stay in full precision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlab.models.shiftadd.allocation import allocate_bits, average_bits, sensitivity_score
from llmlab.models.shiftadd.bcq import BCQWeight
from llmlab.models.shiftadd.config import QuantConfig, _torch
from llmlab.models.shiftadd.gptq import obs_quantize

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


@dataclass
class QuantReport:
    """What :func:`quantize_model` did, per layer.

    Attributes:
        bits: Layer name → bits used.
        scores: Layer name → sensitivity (when computed).
        weight_err: Layer name → relative weight error ``||W - Q||² / ||W||²``.
        output_err: Layer name → relative output error on the calibration inputs.
        bcq: Layer name → binary-coded weight (bcq / shiftadd).
    """

    bits: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    weight_err: dict[str, float] = field(default_factory=dict)
    output_err: dict[str, float] = field(default_factory=dict)
    bcq: dict[str, BCQWeight] = field(default_factory=dict)

    def average_bits(self, sizes: dict[str, int]) -> float:
        return average_bits(self.bits, sizes)


def linear_layers(model: nn.Module, skip: Iterable[str] = ("head",)) -> dict[str, nn.Linear]:
    """The model's ``nn.Linear`` modules in registration order, minus names containing a ``skip`` part."""
    torch = _torch()
    skip = tuple(skip)
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not any(s in name for s in skip)
    }


def collect_hessians(
    model: nn.Module, batches: Sequence[torch.Tensor], layers: dict[str, nn.Linear]
) -> dict[str, torch.Tensor]:
    """``H = 2 X Xᵀ / n`` of every listed layer's inputs over the calibration batches (one pass).

    Args:
        model: Called as ``model(batch)``.
        batches: Calibration inputs.
        layers: Name → linear layer.

    Returns:
        Name → ``(K, K)`` Hessian.
    """
    torch = _torch()
    H = {n: torch.zeros(m.in_features, m.in_features) for n, m in layers.items()}
    count = dict.fromkeys(layers, 0)

    def hook(name: str) -> Callable[..., None]:
        def fn(_m: Any, inp: tuple[Any, ...], _out: Any) -> None:
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).to(torch.float32)  # (tokens, K)
            n_old, n_new = count[name], x.shape[0]
            H[name] *= n_old / (n_old + n_new)
            H[name] += (2 / (n_old + n_new)) * (x.T @ x)
            count[name] = n_old + n_new

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        with torch.no_grad():
            for b in batches:
                model(b)
    finally:
        for h in handles:
            h.remove()
    return H


def quantize_model(
    model: nn.Module,
    batches: Sequence[torch.Tensor],
    cfg: QuantConfig,
    bits: dict[str, int] | None = None,
    budget: float | None = None,
    choices: Sequence[int] = (2, 3),
) -> QuantReport:
    """Quantize every linear layer of ``model`` in place (weights replaced by their dequantized values).

    Layers are processed in order; each layer's Hessian is collected with the earlier layers already
    quantized (GPTQ's sequential scheme). With ``budget`` the bits per layer come from
    :func:`allocate_bits` on sensitivities measured on the full-precision model.

    Args:
        model: The model; called as ``model(batch)``.
        batches: Calibration inputs.
        cfg: Quantization config (``cfg.bits`` is the default width).
        bits: Optional explicit layer name → bits.
        budget: Optional average-bit budget for automated allocation (needs ``choices``).
        choices: Allowed widths for the allocation.

    Returns:
        A :class:`QuantReport`.
    """
    torch = _torch()
    layers = linear_layers(model, cfg.skip)
    report = QuantReport()
    if budget is not None:
        H_all = collect_hessians(model, batches, layers)
        report.scores = {n: sensitivity_score(m.weight.data, H_all[n], cfg.percdamp) for n, m in layers.items()}
        sizes = {n: m.weight.numel() for n, m in layers.items()}
        bits = allocate_bits(report.scores, sizes, budget, choices)
    uses_h = cfg.method in ("gptq", "shiftadd")
    for name, layer in layers.items():
        b = bits[name] if bits is not None and name in bits else cfg.bits
        layer_cfg = QuantConfig(**{**cfg.__dict__, "bits": b})
        H = collect_hessians(model, batches, {name: layer})[name] if uses_h else None
        W = layer.weight.data
        Wq, bcq = obs_quantize(W, H, layer_cfg)
        report.bits[name] = b
        report.weight_err[name] = float(((W - Wq) ** 2).sum() / (W**2).sum().clamp_min(1e-30))
        if H is not None:
            d = W - Wq
            report.output_err[name] = float(
                torch.trace(d @ H @ d.T) / torch.trace(W @ H @ W.T).clamp_min(1e-30)
            )
        if bcq is not None:
            report.bcq[name] = bcq
        layer.weight.data.copy_(Wq.to(W.dtype))
    return report
