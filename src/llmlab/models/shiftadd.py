"""ShiftAddLLM: post-training multiplication-less reparameterisation of LLM weights.

Paper: You et al., "ShiftAddLLM: Accelerating Pretrained LLMs via Post-Training Multiplication-Less
Reparameterization" (arXiv 2406.05981, NeurIPS 2024). Implemented here:

* §3.1 binary-coding quantization (BCQ) ``w ≈ Σ_i α_i b_i`` with group-wise scales ``α`` and binary
  planes ``b_i ∈ {-1, +1}``: greedy initialisation and the alternating optimisation of the scales
  (least squares given the planes) and the planes (nearest codeword given the scales);
  :func:`bcq_quantize`.
* Power-of-two scales (the "shift" in shift-and-add): additive powers-of-two rounding of every α with
  ``apot_terms`` signed powers of two (``apot_terms=1``: each α is exactly one power of two);
  :func:`apot_round`.
* §3.2 multi-objective optimisation: BCQ (weight objective) inside a GPTQ/OBS column-by-column loop
  that pushes each column's quantization error onto the columns not yet quantized (output-activation
  objective, with ``H = 2 X Xᵀ`` from calibration inputs); :func:`obs_quantize`.
* §3.3 automated bit allocation: per-layer sensitivity ``||Ŵ||_F · std(Ŵ)²`` with ``Ŵ = W / diag(L)``
  (``L`` the upper Cholesky factor of ``H⁻¹``), more bits to the more sensitive layers under an
  average-bit budget; :func:`sensitivity_score`, :func:`allocate_bits`.
* The LUT-GEMV of LUT-GEMM / ShiftAddLLM's kernel: for every 8-activation chunk the 256 signed sums are
  built once per input (by recursive doubling: additions only), then each output row is table lookups
  and adds per bit-plane, scaled per group; :func:`lut_gemv_ref` (plain reference) and
  :func:`lut_gemv` / :class:`LUTWeight` (a numba kernel over tiles of 32 rows in
  :mod:`llmlab.models.shiftadd_lut`, or a vectorised torch fallback).
* Baselines at the same bits and group size: RTN (asymmetric min-max, round to nearest) and GPTQ (the
  same OBS loop with the uniform quantizer).

Weight layouts: a ``nn.Linear`` weight ``W`` is ``(N, K)`` (out, in).

* ``layout="row"`` (LUT-GEMM / the official "Lat." family): a group is ``group_size`` consecutive input
  columns of one output row, so the scales are ``(q, N, K/g)`` and the planes ``(q, N, K)``, packed along K
  into ``(q, N, K/8)`` bytes (bit j of byte c is the sign of column ``8c + j``; 1 means +1). This is the
  layout the LUT kernel runs.
* ``layout="column"`` (the official "Acc." mode, "column-wise scaling"): a group is ``group_size``
  consecutive rows of one input column; the OBS loop fits each column's scales on its current,
  already-compensated values. Scales ``(q, N/g, K)``. RTN and GPTQ always use row groups.

Deliberate deviations from the official code (GATECH-EIC/ShiftAddLLM):

* Row layout: the OBS loop fits a group's scales when it reaches the group's first column, on the
  already-compensated weights (as GPTQ's static groups); the official Lat. mode shares α over 8-column
  blocks instead. ``act_order`` is not offered because it would break the contiguity of LUT groups.
* The α step solves the q×q normal equations directly (float64, batched) instead of q steps of
  conjugate gradient, and a group keeps its previous (α, B) when an alternating round would not lower
  its error, so the reconstruction error is non-increasing by construction (the official loop only is
  in exact arithmetic).
* The nearest-codeword step uses ``torch.searchsorted`` on the sorted 2^q codewords (the official
  hand-written binary search, "BST", is the same assignment).
* With power-of-two scales every α (greedy init included) is APoT-rounded right after it is computed,
  and the planes are re-assigned to the nearest codeword after the last round, so the stored scales are
  always exact sums of ``apot_terms`` signed powers of two and the planes always optimal for them.
* Bit allocation weighs layers by their parameter counts when it checks the average-bit budget; the
  official ``opt_analysis.py`` repeats fc1/fc2 four times in a ranking by proportions, which is the
  same idea for OPT's 4x FFN only.
* Quantization is sequential over the linear layers (each layer's calibration inputs come from the
  model whose earlier layers are already quantized), as GPTQ; embeddings and the output head are kept
  in full precision (``skip``).
* The LUT kernel multiplies by α in floating point; with power-of-two α this is an exponent add (a
  shift), which we do not emulate bit-exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmlab.core.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

Method = Literal["rtn", "gptq", "bcq", "shiftadd"]
METHODS: tuple[str, ...] = ("rtn", "gptq", "bcq", "shiftadd")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("torch", "torch", "ShiftAddLLM quantization") from exc
    return torch


@dataclass
class QuantConfig:
    """How to quantize one linear layer (or every linear layer of a model).

    Attributes:
        method: ``rtn`` | ``gptq`` (uniform grid; GPTQ adds OBS compensation) | ``bcq`` (binary coding,
            alternating, no compensation) | ``shiftadd`` (BCQ + power-of-two scales + OBS compensation).
        bits: Bits per weight (``q`` binary planes for BCQ; ``2^bits`` levels for RTN/GPTQ).
        group_size: Weights per scale group; ``-1`` means a whole row (``layout="row"``) or column
            (``layout="column"``). Multiple of 8 for the LUT.
        layout: ``row``: a group is ``group_size`` consecutive input columns of one output row (LUT-GEMM /
            "Lat." layout, runs in the LUT kernel); ``column``: a group is ``group_size`` consecutive rows
            of one input column, fitted when the OBS loop reaches that column (the official "Acc." mode).
            Binary methods only; RTN/GPTQ always use row groups.
        rounds: Alternating BCQ rounds (0: greedy only).
        apot_terms: Signed powers of two per scale for ``shiftadd`` (the official default is 3).
        percdamp: Hessian damping, a fraction of the mean diagonal.
        blocksize: Columns per lazy-update block of the OBS loop (rounded up to a multiple of the group).
        skip: Substrings of module names that are not quantized (the output head).
    """

    method: Method = "shiftadd"
    bits: int = 3
    group_size: int = 128
    layout: Literal["row", "column"] = "row"
    rounds: int = 10
    apot_terms: int = 3
    percdamp: float = 0.01
    blocksize: int = 128
    skip: tuple[str, ...] = ("head",)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown quantization method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not 1 <= self.bits <= 8:
            raise ConfigError(f"bits must be in 1..8, got {self.bits}")
        if self.group_size != -1 and self.group_size < 1:
            raise ConfigError(f"group_size must be -1 or positive, got {self.group_size}")
        if self.layout not in ("row", "column"):
            raise ConfigError(f"layout must be 'row' or 'column', got {self.layout!r}")
        if self.rounds < 0 or self.apot_terms < 1:
            raise ConfigError("rounds must be >= 0 and apot_terms >= 1")

    def group_for(self, k: int, what: str = "input columns") -> int:
        """The effective group size along a dimension of length ``k``."""
        g = k if self.group_size == -1 else min(self.group_size, k)
        if k % g:
            raise ConfigError(f"group_size {g} does not divide the layer's {k} {what}; pick a divisor")
        return g


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


# -- uniform (RTN) quantizer -----------------------------------------------------------------------------


def rtn_params(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric min-max grid per group.

    Args:
        w: ``(G, g)`` weights.
        bits: Bits per weight.

    Returns:
        ``(scale, zero)`` each ``(G,)``: ``q = clamp(round(w / scale) + zero, 0, 2^bits - 1)``.
    """
    torch = _torch()
    lo = w.min(-1).values.clamp(max=0)
    hi = w.max(-1).values.clamp(min=0)
    scale = (hi - lo) / (2**bits - 1)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero = torch.round(-lo / scale)
    return scale, zero


def rtn_apply(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Round ``w`` (``(N, c)``, rows matching ``scale``/``zero`` ``(N,)``) to the grid and dequantize."""
    torch = _torch()
    q = torch.clamp(torch.round(w / scale[:, None]) + zero[:, None], 0, 2**bits - 1)
    return scale[:, None] * (q - zero[:, None])


# -- the per-group quantizers used by the OBS loop ------------------------------------------------------


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


def obs_quantize(
    W: torch.Tensor,
    H: torch.Tensor | None,
    cfg: QuantConfig,
) -> tuple[torch.Tensor, BCQWeight | None]:
    """Quantize one weight matrix, column by column with OBS error compensation (GPTQ / ShiftAddLLM).

    For ``method`` in (gptq, shiftadd) the error of each quantized column is pushed onto the columns not
    yet quantized through the upper Cholesky factor of ``H⁻¹`` (output objective); the group's scales
    are fitted when the loop reaches the group's first column (weight objective). ``rtn`` and ``bcq``
    quantize every group independently (no compensation; ``H`` is ignored).

    Args:
        W: ``(N, K)`` weight.
        H: ``(K, K)`` ``2 X Xᵀ / n`` from calibration inputs (None: identity, i.e. no compensation).
        cfg: The quantization config.

    Returns:
        ``(W_q, bcq)``: the ``(N, K)`` dequantized weight, and the binary-coded weight for bcq/shiftadd
        (None for rtn/gptq).
    """
    torch = _torch()
    N, K = W.shape
    W = W.detach().to(torch.float32).clone()
    binary = cfg.method in ("bcq", "shiftadd")
    apot = cfg.apot_terms if cfg.method == "shiftadd" else None
    compensate = cfg.method in ("gptq", "shiftadd") and H is not None
    if binary and cfg.layout == "column":
        return _obs_quantize_columns(W, H if compensate else None, cfg, apot)
    g = cfg.group_for(K)
    if not compensate:
        Wg = W.reshape(N * K // g, g)  # (N·K/g, g)
        if binary:
            alpha, B = bcq_quantize(Wg, cfg.bits, cfg.rounds, apot)
            Wq = (B * alpha[:, None, :]).sum(-1).reshape(N, K)
            return Wq, BCQWeight(
                alpha=alpha.reshape(N, K // g, cfg.bits).permute(2, 0, 1).contiguous(),  # (q, N, K/g)
                planes=B.reshape(N, K, cfg.bits).permute(2, 0, 1).contiguous(),  # (q, N, K)
                group_size=g,
            )
        scale, zero = rtn_params(Wg, cfg.bits)
        return rtn_apply(Wg, scale, zero, cfg.bits).reshape(N, K), None

    assert H is not None
    H = H.detach().to(torch.float32).clone()
    dead = H.diagonal() == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += cfg.percdamp * H.diagonal().mean() * torch.eye(K)
    Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))
    U = torch.linalg.cholesky(Hinv, upper=True)  # (K, K)

    Q = torch.zeros_like(W)
    alphas = torch.zeros(cfg.bits, N, K // g) if binary else None
    planes = torch.zeros(cfg.bits, N, K) if binary else None
    bs = max(cfg.blocksize, g)
    bs = int(math.ceil(bs / g) * g)
    for i1 in range(0, K, bs):
        i2 = min(i1 + bs, K)
        W1 = W[:, i1:i2].clone()  # (N, c)
        E1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        params: Any = None
        for i in range(i2 - i1):
            col = i1 + i
            if col % g == 0:  # fit the group on the already-compensated weights
                if binary:
                    a, _ = bcq_quantize(W1[:, i : i + g].to(torch.float64), cfg.bits, cfg.rounds, apot)
                    params = a.to(torch.float32)  # (N, q)
                    assert alphas is not None
                    alphas[:, :, col // g] = params.T
                else:
                    params = rtn_params(W1[:, i : i + g], cfg.bits)
            w = W1[:, i]  # (N,)
            if binary:
                b = nearest_codeword(w[:, None], params)[:, 0, :]  # (N, q)
                qcol = (b * params).sum(-1)
                assert planes is not None
                planes[:, :, col] = b.T
            else:
                qcol = rtn_apply(w[:, None], params[0], params[1], cfg.bits)[:, 0]
            Q[:, col] = qcol
            err = (w - qcol) / U1[i, i]
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            E1[:, i] = err
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    bcq = BCQWeight(alphas, planes, g) if binary and alphas is not None and planes is not None else None
    return Q, bcq


def _cholesky_upper_inverse(H: torch.Tensor, percdamp: float) -> torch.Tensor:
    """Upper Cholesky factor of the damped ``H⁻¹`` (dead inputs get a unit diagonal)."""
    torch = _torch()
    K = H.shape[0]
    H = H.detach().to(torch.float32).clone()
    dead = H.diagonal() == 0
    H[dead, dead] = 1
    H += percdamp * H.diagonal().mean() * torch.eye(K)
    return torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)


def _obs_quantize_columns(
    W: torch.Tensor, H: torch.Tensor | None, cfg: QuantConfig, apot: int | None
) -> tuple[torch.Tensor, BCQWeight]:
    """Column layout ("Acc." mode): each column is BCQ-fitted over row groups when the loop reaches it."""
    torch = _torch()
    N, K = W.shape
    g = cfg.group_for(N, "output rows")
    q = cfg.bits
    alphas = torch.zeros(q, N // g, K)
    planes = torch.zeros(q, N, K)
    Q = torch.zeros_like(W)
    U = _cholesky_upper_inverse(H, cfg.percdamp) if H is not None else None
    if U is not None:
        W[:, H.diagonal() == 0] = 0  # type: ignore[union-attr]
    bs = cfg.blocksize
    for i1 in range(0, K, bs):
        i2 = min(i1 + bs, K)
        W1 = W[:, i1:i2].clone()  # (N, c)
        E1 = torch.zeros_like(W1)
        for i in range(i2 - i1):
            w = W1[:, i]  # (N,)
            a, B = bcq_quantize(w.reshape(N // g, g).to(torch.float64), q, cfg.rounds, apot)  # (N/g, q), (N/g, g, q)
            qcol = (B * a[:, None, :]).sum(-1).reshape(N).to(W.dtype)
            alphas[:, :, i1 + i] = a.T.to(W.dtype)
            planes[:, :, i1 + i] = B.reshape(N, q).T.to(W.dtype)
            Q[:, i1 + i] = qcol
            if U is not None:
                err = (w - qcol) / U[i1 + i, i1 + i]
                W1[:, i:] -= err[:, None] * U[i1 + i, i1 + i : i2][None, :]
                E1[:, i] = err
        if U is not None:
            W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return Q, BCQWeight(alphas, planes, g, layout="column")


# -- bit allocation --------------------------------------------------------------------------------------


def sensitivity_score(W: torch.Tensor, H: torch.Tensor, percdamp: float = 0.01) -> float:
    """ShiftAddLLM's layer sensitivity ``||Ŵ||_F · std(Ŵ)²`` with ``Ŵ = W / diag(L)`` column-wise.

    Args:
        W: ``(N, K)`` weight.
        H: ``(K, K)`` calibration Hessian.
        percdamp: Damping as a fraction of the mean diagonal.

    Returns:
        The score (larger = more sensitive = deserves more bits).
    """
    torch = _torch()
    K = W.shape[1]
    H = H.to(torch.float64).clone()
    dead = H.diagonal() == 0
    H[dead, dead] = 1
    H += percdamp * H.diagonal().mean() * torch.eye(K, dtype=torch.float64)
    L = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Wh = W.to(torch.float64) / L.diagonal()[None, :]
    return float(Wh.norm() * Wh.std() ** 2)


def allocate_bits(
    scores: dict[str, float],
    sizes: dict[str, int],
    budget: float,
    choices: Sequence[int] = (2, 3),
) -> dict[str, int]:
    """Give more bits to the more sensitive layers under a parameter-weighted average budget.

    Every layer starts at ``min(choices)``; layers are visited from most to least sensitive and each is
    raised to the next choice while the parameter-weighted average stays within ``budget``.

    Args:
        scores: Layer name → sensitivity (:func:`sensitivity_score`).
        sizes: Layer name → number of weights.
        budget: Average bits per weight allowed (e.g. 2.2).
        choices: Allowed bit widths.

    Returns:
        Layer name → bits.

    Raises:
        ConfigError: If the budget is below the smallest choice.

    Example:
        >>> allocate_bits({"a": 2.0, "b": 1.0}, {"a": 10, "b": 10}, budget=2.5)
        {'a': 3, 'b': 2}
    """
    levels = sorted(set(choices))
    if budget < levels[0]:
        raise ConfigError(f"bit budget {budget} is below the smallest allowed width {levels[0]}")
    total = sum(sizes[n] for n in scores)
    bits = {n: levels[0] for n in scores}
    used = levels[0] * total
    for level in levels[1:]:
        for name in sorted(scores, key=lambda n: -scores[n]):
            extra = (level - bits[name]) * sizes[name]
            if bits[name] < level and used + extra <= budget * total + 1e-9:
                bits[name] = level
                used += extra
    return bits


def average_bits(bits: dict[str, int], sizes: dict[str, int]) -> float:
    """Parameter-weighted average bit width."""
    return sum(bits[n] * sizes[n] for n in bits) / sum(sizes[n] for n in bits)


# -- LUT GEMV ----------------------------------------------------------------------------------------------


def build_lut(x: torch.Tensor) -> torch.Tensor:
    """The 256 signed sums of each 8-activation chunk, by recursive doubling (additions only).

    ``lut[c, m] = Σ_j (+x[8c+j] if bit j of m else -x[8c+j])``.

    Args:
        x: ``(K,)`` activations, K a multiple of 8.

    Returns:
        ``(K/8, 256)`` table.
    """
    torch = _torch()
    xc = x.reshape(-1, 8)  # (C, 8)
    lut = torch.empty(xc.shape[0], 256, dtype=x.dtype)
    lut[:, 0] = -xc.sum(-1)
    for s in range(8):  # entries with bit s set = same entry without it + 2·x_s
        n = 1 << s
        lut[:, n : 2 * n] = lut[:, :n] + 2 * xc[:, s : s + 1]
    return lut


def lut_gemv_ref(x: torch.Tensor, alpha: torch.Tensor, packed: torch.Tensor, group_size: int) -> torch.Tensor:
    """Plain LUT GEMV: ``y[n] = Σ_i Σ_groups α[i, n, grp] Σ_{c ∈ grp} lut[c, packed[i, n, c]]``.

    Args:
        x: ``(K,)`` activations.
        alpha: ``(q, N, K/g)`` scales.
        packed: ``(q, N, K/8)`` uint8 planes (:func:`pack_planes`).
        group_size: ``g`` (a multiple of 8).

    Returns:
        ``(N,)`` = ``BCQWeight.dequantize() @ x``.
    """
    torch = _torch()
    lut = build_lut(x)  # (C, 256)
    q, N, C = packed.shape
    cpg = group_size // 8
    y = torch.zeros(N, dtype=x.dtype)
    cols = torch.arange(C)
    for i in range(q):
        vals = lut[cols[None, :], packed[i].long()]  # (N, C) lookups
        per_group = vals.reshape(N, C // cpg, cpg).sum(-1)  # (N, K/g) adds
        y += (alpha[i].to(x.dtype) * per_group).sum(-1)
    return y


@functools.cache
def _numba_kernels(T: int = 32) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """``(build_lut, kernel)`` compiled by numba (``None`` without numba); only ``T = 32`` is cached on disk."""
    try:
        from llmlab.models import shiftadd_lut
    except ImportError:
        return None
    return shiftadd_lut.build_lut_nb, shiftadd_lut.kernel_for(T)


@dataclass
class LUTWeight:
    """A binary-coded weight laid out for the compiled LUT kernel (prepare once, multiply many times).

    Attributes:
        alpha: ``(q, N, K/g)`` scales (canonical layout, used by the torch/ref paths).
        packed: ``(q, N, K/8)`` uint8 planes (canonical layout).
        group_size: ``g``.
        tile: Rows per kernel tile.
    """

    alpha: torch.Tensor
    packed: torch.Tensor
    group_size: int
    tile: int = 32

    def __post_init__(self) -> None:
        torch = _torch()
        if self.group_size % 8:
            raise ConfigError(f"the LUT kernel needs group_size divisible by 8, got {self.group_size}")
        q, N, C = self.packed.shape
        T = self.tile
        pad = (-N) % T
        p = torch.nn.functional.pad(self.packed, (0, 0, 0, pad))  # (q, N', C); padded rows have α = 0
        a = torch.nn.functional.pad(self.alpha, (0, 0, 0, pad))  # (q, N', G)
        n_tiles = (N + pad) // T
        self._packed_t = p.reshape(q, n_tiles, T, C).permute(1, 3, 0, 2).contiguous()  # (N/T, C, q, T)
        self._alpha_t = a.reshape(q, n_tiles, T, -1).permute(1, 3, 0, 2).contiguous()  # (N/T, G, q, T)

    @classmethod
    def from_bcq(cls, bcq: BCQWeight, tile: int = 32) -> LUTWeight:
        return cls(bcq.alpha, bcq.packed(), bcq.group_size, tile)

    def matvec(self, x: torch.Tensor, impl: Literal["auto", "numba", "torch", "ref"] = "auto") -> torch.Tensor:
        """``W x`` for ``x`` of shape ``(K,)`` or ``(B, K)`` (see :func:`lut_gemv`)."""
        torch = _torch()
        if x.dim() == 2:
            return torch.stack([self.matvec(row, impl) for row in x])
        kernels = _numba_kernels(self.tile) if impl in ("auto", "numba") else None
        if impl == "numba" and kernels is None:
            raise MissingExtraError("numba", "all", "the compiled LUT GEMV")
        if kernels is None:
            return lut_gemv(x, self.alpha, self.packed, self.group_size, impl="torch" if impl == "auto" else impl)
        build, kernel = kernels
        N = self.packed.shape[1]
        xn = x.detach().contiguous().numpy()
        lut = np.empty((xn.shape[0] // 8, 256), dtype=xn.dtype)
        build(xn, lut)
        out = np.empty(self._packed_t.shape[0] * self.tile, dtype=xn.dtype)
        kernel(lut, self._alpha_t.to(x.dtype).numpy(), self._packed_t.numpy(), self.group_size // 8, out)
        return torch.from_numpy(out[:N])


def lut_gemv(
    x: torch.Tensor,
    alpha: torch.Tensor,
    packed: torch.Tensor,
    group_size: int,
    impl: Literal["auto", "numba", "torch", "ref"] = "auto",
) -> torch.Tensor:
    """LUT GEMV for one or a batch of inputs (same contract as :func:`lut_gemv_ref`).

    For repeated products with one weight, build a :class:`LUTWeight` once (the compiled kernel wants a
    tiled byte layout; this function re-tiles on every call).

    Args:
        x: ``(K,)`` or ``(B, K)`` activations.
        alpha: ``(q, N, K/g)`` scales.
        packed: ``(q, N, K/8)`` uint8 planes.
        group_size: ``g``.
        impl: ``numba`` (compiled, tiles of rows in parallel), ``torch`` (vectorised gathers), ``ref``, or
            ``auto`` (numba when importable, else torch).

    Returns:
        ``(N,)`` or ``(B, N)``.

    Raises:
        ConfigError: For an unknown ``impl``.
    """
    torch = _torch()
    if impl not in ("auto", "numba", "torch", "ref"):
        raise ConfigError(f"unknown LUT GEMV impl {impl!r}; choose auto, numba, torch or ref")
    if impl in ("auto", "numba"):
        return LUTWeight(alpha, packed, group_size).matvec(x, impl)
    if x.dim() == 2:
        return torch.stack([lut_gemv(row, alpha, packed, group_size, impl) for row in x])
    if impl == "ref":
        return lut_gemv_ref(x, alpha, packed, group_size)
    lut = build_lut(x)  # (C, 256)
    q, N, C = packed.shape
    flat = packed.to(torch.int64) + 256 * torch.arange(C)  # (q, N, C) indices into lut.flatten()
    vals = lut.flatten()[flat]  # (q, N, C)
    per_group = vals.reshape(q, N, -1, group_size // 8).sum(-1)  # (q, N, K/g)
    return (alpha.to(x.dtype) * per_group).sum((0, 2))


# -- whole models ---------------------------------------------------------------------------------------


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
