"""ShiftAddLLM (arXiv 2406.05981) / LUT-GEMM: the LUT GEMV over binary-coded weights.

:func:`lut_gemv_ref` is the plain reference; :func:`lut_gemv` / :class:`LUTWeight` add a vectorised torch
path and the compiled numba kernel of :mod:`llmlab.models.shiftadd.lut_kernels` (imported only when numba
is installed), both tested against the reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmlab.core.errors import ConfigError, MissingExtraError
from llmlab.models.shiftadd.bcq import BCQWeight
from llmlab.models.shiftadd.config import _torch

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
        from llmlab.models.shiftadd import lut_kernels
    except ImportError:
        return None
    return lut_kernels.build_lut_nb, lut_kernels.kernel_for(T)


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
