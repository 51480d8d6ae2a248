"""Compiled (numba) LUT GEMV kernels for :mod:`llmlab.models.shiftadd.lut`; imported only when numba is present.

The kernel of ShiftAddLLM / LUT-GEMM (arXiv 2406.05981 §3.4, arXiv 2206.09557) on the CPU: per input, a
table of the 256 signed sums of every 8-activation chunk (built with additions only); per tile of T output
rows, per group and bit-plane, one table lookup per packed byte, accumulated, then scaled by α.
The layout is tiled so that a tile's bytes are contiguous and a group's tables stay in L1.
Compiled code is cached on disk for the default tile (``cache=True``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

TILE = 32  # rows per tile; a compile-time constant so the partial sums stay in registers


@numba.njit(cache=True)
def build_lut_nb(x: Any, lut: Any) -> None:  # pragma: no cover - jitted
    """Fill ``lut (K/8, 256)`` with ``Σ_j ±x[8c+j]`` (bit j of the index set → +) by recursive doubling."""
    C = lut.shape[0]
    for c in range(C):
        s = 0.0
        for j in range(8):
            s += x[8 * c + j]
        lut[c, 0] = -s
        n = 1
        for j in range(8):
            two_x = 2 * x[8 * c + j]
            for m in range(n):
                lut[c, n + m] = lut[c, m] + two_x
            n *= 2


@numba.njit(parallel=True, fastmath=True, cache=True)
def lut_kernel_32(lut: Any, alpha_t: Any, packed_t: Any, cpg: int, out: Any) -> None:  # pragma: no cover
    """``out[t·T + j] = Σ_groups Σ_planes α · Σ_{chunks in group} lut[c, byte]`` for ``T = TILE``.

    Args:
        lut: ``(C, 256)`` tables.
        alpha_t: ``(N/T, G, q, T)`` scales.
        packed_t: ``(N/T, C, q, T)`` bytes.
        cpg: Chunks (of 8 activations) per group.
        out: ``(N,)`` result.
    """
    nt, C, q, _ = packed_t.shape
    G = C // cpg
    for t in numba.prange(nt):
        acc = np.zeros(TILE, out.dtype)
        for gi in range(G):
            for i in range(q):
                part = np.zeros(TILE, out.dtype)
                for c in range(gi * cpg, gi * cpg + cpg):
                    table = lut[c]
                    row = packed_t[t, c, i]
                    for j in range(TILE):
                        part[j] += table[row[j]]
                a = alpha_t[t, gi, i]
                for j in range(TILE):
                    acc[j] += a[j] * part[j]
        out[t * TILE : (t + 1) * TILE] = acc


@functools.cache
def kernel_for(T: int) -> Callable[..., Any]:
    """The kernel for tile ``T`` (``TILE`` is precompiled and cached; others compile on first use)."""
    if T == TILE:
        return lut_kernel_32

    @numba.njit(parallel=True, fastmath=True)
    def kernel(lut: Any, alpha_t: Any, packed_t: Any, cpg: int, out: Any) -> None:  # pragma: no cover
        nt, C, q, _ = packed_t.shape
        G = C // cpg
        for t in numba.prange(nt):
            acc = np.zeros(T, out.dtype)
            for gi in range(G):
                for i in range(q):
                    part = np.zeros(T, out.dtype)
                    for c in range(gi * cpg, gi * cpg + cpg):
                        table = lut[c]
                        row = packed_t[t, c, i]
                        for j in range(T):
                            part[j] += table[row[j]]
                    a = alpha_t[t, gi, i]
                    for j in range(T):
                        acc[j] += a[j] * part[j]
            out[t * T : (t + 1) * T] = acc

    return kernel
