"""ShiftAddLLM (arXiv 2406.05981) §3.1: binary-coding quantization and power-of-two (APoT) scales.

Also :class:`BCQWeight`, the binary-coded weight, and the byte packing of its planes for the LUT kernel.
See :mod:`llmlab.models.shiftadd` for the deviations from the official code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmlab.core.errors import ConfigError
from llmlab.models.shiftadd.config import _torch

if TYPE_CHECKING:  # pragma: no cover
    import torch


# -- binary-coding quantization -------------------------------------------------------------------------


def _codewords(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All 2^q values ``Σ_i α_i s_i`` per group, sorted, with their sign patterns.

    Args:
        alpha: ``(G, q)`` scales.

    Returns:
        ``(values, signs)``: ``(G, 2^q)`` sorted values and ``(G, 2^q, q)`` the ±1 pattern of each.
    """
    torch = _torch()
    q = alpha.shape[-1]
    codes = torch.arange(2**q, device=alpha.device)
    pattern = ((codes[:, None] >> torch.arange(q, device=alpha.device)) & 1).to(alpha.dtype) * 2 - 1  # (2^q, q)
    values = alpha @ pattern.T  # (G, 2^q)
    values, order = values.sort(dim=-1)
    return values, pattern[order]  # (G, 2^q), (G, 2^q, q)


def nearest_codeword(w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The binary planes that put each weight on its nearest codeword (the B step).

    Args:
        w: ``(G, g)`` weights of G groups.
        alpha: ``(G, q)`` scales.

    Returns:
        ``(G, g, q)`` planes in {-1, +1}.

    Example:
        >>> import torch
        >>> nearest_codeword(torch.tensor([[0.9, -0.2]]), torch.tensor([[1.0]])).flatten().tolist()
        [1.0, -1.0]
    """
    torch = _torch()
    values, signs = _codewords(alpha)
    mids = (values[:, 1:] + values[:, :-1]) / 2  # (G, 2^q - 1)
    idx = torch.searchsorted(mids.contiguous(), w.contiguous())  # (G, g)
    return torch.gather(signs, 1, idx[..., None].expand(*idx.shape, signs.shape[-1]))


def nearest_codeword_bruteforce(w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Reference for :func:`nearest_codeword`: try all 2^q sign patterns (same shapes)."""
    torch = _torch()
    values, signs = _codewords(alpha)
    idx = (w[..., None] - values[:, None, :]).abs().argmin(dim=-1)  # (G, g)
    return torch.gather(signs, 1, idx[..., None].expand(*idx.shape, signs.shape[-1]))


def apot_round(x: torch.Tensor, terms: int) -> torch.Tensor:
    """Round to a sum of ``terms`` signed powers of two, greedily on the residual.

    Args:
        x: Any tensor.
        terms: Number of power-of-two terms; with 1 every non-zero output is ``±2^k``.

    Returns:
        A tensor of ``x``'s shape whose entries are exact sums of at most ``terms`` signed powers of two.

    Example:
        >>> import torch
        >>> apot_round(torch.tensor([0.3, -5.0]), 1).tolist()
        [0.25, -4.0]
    """
    torch = _torch()
    out = torch.zeros_like(x)
    r = x.clone()
    for _ in range(terms):
        nz = r != 0
        e = torch.round(torch.log2(r.abs().clamp_min(torch.finfo(x.dtype).tiny)))
        term = torch.where(nz, torch.sign(r) * torch.pow(2.0, e).to(x.dtype), torch.zeros_like(r))
        out = out + term
        r = x - out
    return out


def _sorted_scales(alpha: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make every α non-negative (flipping its plane) and sort descending; the product is unchanged."""
    torch = _torch()
    sign = torch.where(alpha < 0, -1.0, 1.0).to(alpha.dtype)  # (G, q)
    alpha, B = alpha * sign, B * sign[:, None, :]
    alpha, order = alpha.sort(dim=-1, descending=True)
    return alpha, torch.gather(B, 2, order[:, None, :].expand_as(B))


def _recon_err(w: torch.Tensor, alpha: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    return ((w - (B * alpha[:, None, :]).sum(-1)) ** 2).sum(-1)  # (G,)


def bcq_quantize(
    w: torch.Tensor,
    bits: int,
    rounds: int = 10,
    apot_terms: int | None = None,
    history: list[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary-coding quantization of G groups: greedy init then alternating α / B refinement.

    Args:
        w: ``(G, g)`` weights (one group per row).
        bits: Number of binary planes ``q``.
        rounds: Alternating rounds after the greedy init.
        apot_terms: If set, every α is rounded to this many signed powers of two after each α step.
        history: If given, the total squared reconstruction error is appended after init and every round.

    Returns:
        ``(alpha, B)``: ``(G, q)`` non-negative scales sorted descending and ``(G, g, q)`` planes in {-1, +1};
        the reconstruction is ``(B * alpha[:, None, :]).sum(-1)``.

    Example:
        >>> import torch
        >>> a, B = bcq_quantize(torch.tensor([[1.0, -1.0, 3.0, -3.0]]), bits=1, rounds=0)
        >>> a.tolist()
        [[2.0]]
    """
    torch = _torch()
    dtype = w.dtype
    w = w.to(torch.float64)
    G, g = w.shape
    # greedy init: b_i = sign(r), α_i = mean|r|, r -= α_i b_i
    r = w.clone()
    alphas, planes = [], []
    for _ in range(bits):
        b = torch.where(r >= 0, 1.0, -1.0).to(w.dtype)
        a = r.abs().mean(-1)
        if apot_terms is not None:
            a = apot_round(a, apot_terms)
        r = r - a[:, None] * b
        alphas.append(a)
        planes.append(b)
    alpha = torch.stack(alphas, -1)  # (G, q)
    B = torch.stack(planes, -1)  # (G, g, q)
    alpha, B = _sorted_scales(alpha, B)
    err = _recon_err(w, alpha, B)
    if history is not None:
        history.append(float(err.sum()))
    eye = torch.eye(bits, dtype=w.dtype)
    for _ in range(rounds):
        # α step: least squares (BᵀB) α = Bᵀw per group
        BtB = B.transpose(1, 2) @ B  # (G, q, q)
        Btw = (B.transpose(1, 2) @ w[..., None])[..., 0]  # (G, q)
        damp = 1e-12 * BtB.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
        new_alpha = torch.linalg.solve(BtB + damp * eye, Btw)
        if apot_terms is not None:
            new_alpha = apot_round(new_alpha, apot_terms)
        new_alpha, new_B = _sorted_scales(new_alpha, B)
        # B step: nearest codeword given α
        new_B = nearest_codeword(w, new_alpha)
        new_err = _recon_err(w, new_alpha, new_B)
        better = new_err <= err  # keep a group's previous solution when a round would not help it
        alpha = torch.where(better[:, None], new_alpha, alpha)
        B = torch.where(better[:, None, None], new_B, B)
        err = torch.minimum(new_err, err)
        if history is not None:
            history.append(float(err.sum()))
    B = nearest_codeword(w, alpha)  # the greedy planes need not be nearest; this never raises the error
    return alpha.to(dtype), B.to(dtype)


@dataclass
class BCQWeight:
    """A binary-coded weight.

    Attributes:
        alpha: ``(q, N, K/g)`` scales for ``layout="row"`` (the LUT layout), ``(q, N/g, K)`` for ``column``.
        planes: ``(q, N, K)`` signs in {-1, +1} (float).
        group_size: Weights per group ``g``.
        layout: ``row`` or ``column`` (see :class:`QuantConfig`).
    """

    alpha: torch.Tensor
    planes: torch.Tensor
    group_size: int
    layout: str = "row"

    def dequantize(self) -> torch.Tensor:
        """``(N, K)`` dense weight ``Σ_i α_i b_i``."""
        g = self.group_size
        dim = -1 if self.layout == "row" else 1
        a = self.alpha.repeat_interleave(g, dim=dim)  # (q, N, K)
        return (a * self.planes).sum(0)

    def packed(self) -> torch.Tensor:
        """``(q, N, K/8)`` uint8: bit j of byte c is 1 where the plane is +1 at column 8c + j.

        Raises:
            ConfigError: For the column layout, whose scales change every column (no LUT kernel).
        """
        if self.layout != "row":
            raise ConfigError("only layout='row' weights run in the LUT kernel; quantize with layout='row'")
        return pack_planes(self.planes)


def pack_planes(planes: torch.Tensor) -> torch.Tensor:
    """Pack ±1 planes ``(..., K)`` into ``(..., K/8)`` uint8 (K a multiple of 8)."""
    torch = _torch()
    K = planes.shape[-1]
    if K % 8:
        raise ConfigError(f"LUT packing needs K divisible by 8, got {K}")
    bits = (planes > 0).to(torch.uint8).reshape(*planes.shape[:-1], K // 8, 8)  # (..., K/8, 8)
    weights = (2 ** torch.arange(8, dtype=torch.int32)).to(torch.uint8)
    return (bits * weights).sum(-1, dtype=torch.int32).to(torch.uint8)


def unpack_planes(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_planes`: ``(..., K/8)`` uint8 → ``(..., K)`` float ±1."""
    torch = _torch()
    shifts = torch.arange(8, dtype=torch.uint8)
    bits = (packed[..., None] >> shifts) & 1  # (..., K/8, 8)
    return (bits.to(torch.float32) * 2 - 1).reshape(*packed.shape[:-1], packed.shape[-1] * 8)
