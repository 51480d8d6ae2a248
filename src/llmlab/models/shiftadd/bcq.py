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
    from torch import Tensor


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


def _apot_candidates(x: torch.Tensor, terms: int) -> torch.Tensor:
    """APoT values near ``x``.

    Each of the first (up to 3) terms takes the power of two just below or just above the residual's
    magnitude; the rest are rounded greedily.

    Args:
        x: Any tensor.
        terms: Signed powers of two per value.

    Returns:
        ``(*x.shape, C)`` candidates (``C = 2^min(terms, 3)``), each an exact sum of ``terms`` signed powers
        of two (zero stays zero).
    """
    torch = _torch()
    tiny = torch.finfo(x.dtype).tiny
    out = torch.zeros_like(x)[..., None]  # (..., 1)
    for t in range(terms):
        r = x[..., None] - out  # (..., C)
        nz = r != 0
        lg = torch.log2(r.abs().clamp_min(tiny))
        if t < 3:  # branch: the power of two below and the one above
            exps = torch.stack([lg.floor(), lg.ceil()], -1)  # (..., C, 2)
            step = torch.where(nz[..., None], torch.sign(r)[..., None] * torch.pow(2.0, exps), 0.0)
            out = (out[..., None] + step).flatten(-2)  # (..., 2C)
        else:  # then greedy, as apot_round
            out = out + torch.where(nz, torch.sign(r) * torch.pow(2.0, lg.round()), 0.0)
    return out


def _fit_apot(
    alpha: torch.Tensor, BtB: torch.Tensor, Btw: torch.Tensor, terms: int, sweeps: int = 3
) -> torch.Tensor:
    """Power-of-two scales for fixed planes, by coordinate descent over nearby APoT values.

    It starts from the APoT rounding of ``alpha`` and lowers the exact reconstruction error
    ``αᵀ(BᵀB)α − 2αᵀBᵀw``.

    Each coordinate picks, among its current value and the APoT candidates around both its current value
    and its optimum given the others, the one with the lowest error, so the result is never worse than
    rounding each α on its own.
    """
    torch = _torch()
    a = apot_round(alpha, terms)  # (G, q)
    diag = BtB.diagonal(dim1=1, dim2=2)  # (G, q)
    for _ in range(sweeps):
        for i in range(a.shape[-1]):
            rest = Btw[:, i] - (BtB[:, i, :] * a).sum(-1) + diag[:, i] * a[:, i]  # c_i - Σ_{j≠i} A_ij α_j
            star = rest / diag[:, i].clamp_min(1e-300)  # the unconstrained coordinate optimum
            cand = torch.cat([a[:, i : i + 1], _apot_candidates(star, terms), _apot_candidates(a[:, i], terms)], -1)
            f = diag[:, i : i + 1] * cand**2 - 2 * cand * rest[:, None]  # (G, C)
            a = a.clone()
            a[:, i] = torch.gather(cand, 1, f.argmin(-1, keepdim=True))[:, 0]
    return a


def bcq_quantize(
    w: torch.Tensor,
    bits: int,
    rounds: int = 10,
    apot_terms: int | None = None,
    history: list[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary-coding quantization of G groups: greedy init then alternating α / B refinement.

    The α step is the least-squares solution for the current planes that keeps the current α's component
    in the null space of ``BᵀB`` (so planes that coincide in a small group keep distinct scales); with
    ``apot_terms`` it is then fitted to the power-of-two grid (:func:`_fit_apot`). The B step puts every
    weight on its nearest codeword. Each group returns the best (α, B) it met.

    Args:
        w: ``(G, g)`` weights (one group per row).
        bits: Number of binary planes ``q``.
        rounds: Alternating rounds after the greedy init.
        apot_terms: If set, every returned α is a sum of this many signed powers of two.
        history: If given, the total squared reconstruction error of the best solution so far is appended
            after init and after every round (non-increasing).

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
    # greedy init: b_i = sign(r), α_i = mean|r|, r -= α_i b_i (unrounded, as the official loop starts)
    r = w.clone()
    alphas, planes = [], []
    for _ in range(bits):
        b = torch.where(r >= 0, 1.0, -1.0).to(w.dtype)
        a = r.abs().mean(-1)
        r = r - a[:, None] * b
        alphas.append(a)
        planes.append(b)
    alpha, B = _sorted_scales(torch.stack(alphas, -1), torch.stack(planes, -1))  # (G, q), (G, g, q)

    def normal(B: Tensor) -> tuple[Tensor, Tensor]:
        return B.transpose(1, 2) @ B, (B.transpose(1, 2) @ w[..., None])[..., 0]  # (G, q, q), (G, q)

    def assign(a: Tensor, B: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, B = _sorted_scales(a, B)
        B = nearest_codeword(w, a)  # never raises the error for these α
        return a, B, _recon_err(w, a, B)

    if apot_terms is not None:  # the rounded greedy solution is the first valid one
        best_a, best_B, best_err = assign(_fit_apot(alpha, *normal(B), apot_terms), B)
    else:
        best_a, best_B, best_err = assign(alpha, B)  # the rounds still start from the greedy planes
    if history is not None:
        history.append(float(best_err.sum()))
    # With power-of-two scales two trajectories run side by side from the greedy start: one fits each α
    # step to the APoT grid (_fit_apot), one rounds it per value (apot_round); each group keeps the best
    # solution either met (the landscape is not convex, neither trajectory dominates the other).
    paths = [(alpha, B, True), (alpha, B, False)] if apot_terms is not None else [(alpha, B, False)]
    for _ in range(rounds):
        moved = []
        for alpha, B, fit in paths:
            BtB, Btw = normal(B)
            # α step: least squares warm-started at the current α (its null-space component is kept)
            step = torch.linalg.pinv(BtB, hermitian=True) @ (Btw - (BtB @ alpha[..., None])[..., 0])[..., None]
            alpha = alpha + step[..., 0]
            if apot_terms is not None:
                alpha = _fit_apot(alpha, BtB, Btw, apot_terms) if fit else apot_round(alpha, apot_terms)
            alpha, B, err = assign(alpha, B)
            better = err < best_err
            best_a = torch.where(better[:, None], alpha, best_a)
            best_B = torch.where(better[:, None, None], B, best_B)
            best_err = torch.minimum(err, best_err)
            moved.append((alpha, B, fit))
        paths = moved
        if history is not None:
            history.append(float(best_err.sum()))
    return best_a.to(dtype), best_B.to(dtype)


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
