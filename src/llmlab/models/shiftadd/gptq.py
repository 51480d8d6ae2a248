"""ShiftAddLLM (arXiv 2406.05981) §3.2: the OBS/GPTQ column loop with error compensation, and RTN.

The same loop quantizes with the uniform grid (RTN per group; GPTQ with compensation) or with BCQ
(bcq; shiftadd = BCQ + power-of-two scales + compensation), in the row (LUT) or column ("Acc.") layout.
See :mod:`llmlab.models.shiftadd` for the deviations from the official code.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llmlab.models.shiftadd.bcq import BCQWeight, bcq_quantize, nearest_codeword
from llmlab.models.shiftadd.config import QuantConfig, _torch

if TYPE_CHECKING:  # pragma: no cover
    import torch


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



# -- the OBS loop ----------------------------------------------------------------------------------------


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
