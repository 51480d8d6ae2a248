"""Selective scan (Mamba-1 S6) in pure PyTorch, with an optional fused CPU kernel (numba).

Paper: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces" (arXiv 2312.00752),
§3.2 (selection), Algorithm 2 and eq. (2a)-(2b) with the ZOH discretisation of A and the Euler step for B,
as used by Samba ("Samba: Simple Hybrid State Space Models for Efficient Unlimited Context Language
Modeling", arXiv 2406.07522, §2.1).

Recurrence, per batch b, channel d and state n::

    h_t = exp(delta_t * A[d, n]) * h_{t-1} + delta_t * u_t * B_t[n]
    y_t = sum_n h_t[n] * C_t[n] + D[d] * u_t ;   y_t <- y_t * silu(z_t)

Three implementations share mamba's calling convention
``selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
return_last_state=False)`` so that they can be swapped for ``mamba_ssm``'s CUDA kernel:

* :func:`selective_scan_ref` - the sequential loop (same semantics as mamba's ``selective_scan_ref``);
  always present, the oracle for everything else.
* ``impl="chunked"`` - a chunked closed form in plain PyTorch: inside a chunk of T steps the state is a
  masked lower-triangular sum with decay ``exp(segsum(delta*A))`` (the future is masked to -inf before the
  exp, and for delta > 0, A < 0 every exponent is <= 0, so nothing overflows); the state is carried between
  chunks; differentiable by autograd. The correctness fallback when numba is missing (slow on CPU).
* ``impl="numba"`` - a fused CPU kernel (forward and hand-written backward) that keeps the (n,) state in
  registers and parallelises over (batch, channel); wrapped in a ``torch.autograd.Function``. In float32,
  ``exp(delta*A)`` is computed by a vectorisable Cody-Waite + polynomial exp (relative error ~2e-7;
  arguments are clamped to [-87, 88]) because scalar ``math.exp`` was the bottleneck; float64 uses
  ``math.exp``.
* :func:`selective_state_update` - one recurrent decoding step (constant state).

``impl="auto"`` picks numba when it is importable and the tensors are on CPU, else the chunked path.

Precision: float16/bfloat16 inputs are computed in float32 and the output is cast back to the input's dtype
(mamba's ``selective_scan_ref`` and kernel do the same); the returned last state stays float32.

Deviations from mamba's CUDA kernel (deliberate):
* Only real-valued A (Mamba-1 / Samba); complex A is not supported.
* B and C may be (batch, n, L), grouped (batch, groups, n, L) or time-invariant (d, n); only the first
  form takes the fused kernel, the others the chunked path. Computation is in the input dtype (float32 /
  float64) rather than always-fp32 accumulation, so fp64 gradient checks are possible.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llmlab.core.errors import ConfigError, MissingExtraError
from llmlab.models._deps import require_torch

if TYPE_CHECKING:  # pragma: no cover
    import torch

ScanImpl = Literal["auto", "ref", "chunked", "numba"]


def _torch() -> Any:
    return require_torch("the selective scan")


def _expand_bc(X: torch.Tensor, batch: int, d: int, L: int) -> torch.Tensor:
    """Bring B or C to (batch, d, n, L) views (no copy for the (batch, n, L) case)."""
    if X.dim() == 2:  # (d, n), time-invariant
        return X[None, :, :, None].expand(batch, d, X.shape[1], L)
    if X.dim() == 3:  # (B, n, L)
        return X[:, None].expand(batch, d, X.shape[1], L)
    if X.dim() == 4:  # (B, G, n, L): channel group g = c // (d // G)
        g = X.shape[1]
        if d % g:
            raise ConfigError(f"d={d} channels are not divisible into {g} B/C groups")
        return X.repeat_interleave(d // g, dim=1)
    raise ConfigError(f"B/C must have 2, 3 or 4 dims, got shape {tuple(X.shape)}")


def _prepare_delta(delta: torch.Tensor, delta_bias: torch.Tensor | None, delta_softplus: bool) -> torch.Tensor:
    torch = _torch()
    if delta_bias is not None:
        delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = torch.nn.functional.softplus(delta)
    return delta


def _finish(
    y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None
) -> torch.Tensor:
    torch = _torch()
    if D is not None:
        y = y + u * D[..., None]
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    return y


def _upcast(*ts: Any) -> list[Any]:
    """Half-precision inputs computed in float32, as mamba's scan does (its output is cast back)."""
    torch = _torch()
    return [t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t for t in ts]


def _check(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ConfigError(f"u and delta must both be (batch, d, L); got {tuple(u.shape)} and {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != u.shape[1]:
        raise ConfigError(f"A must be (d, n) with d={u.shape[1]}; got {tuple(A.shape)}")
    if A.is_complex():
        raise ConfigError("complex A is not supported (Samba uses real Mamba-1 A)")


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Sequential selective scan: the slow, obvious reference.

    Args:
        u: Input, (batch, d, L).
        delta: Step sizes before bias/softplus, (batch, d, L).
        A: State matrix (real, negative for stability), (d, n).
        B: Input matrix, (batch, n, L), (batch, groups, n, L) or (d, n).
        C: Output matrix, same shapes as B.
        D: Skip connection, (d,), or None.
        z: Gate, (batch, d, L); the output is multiplied by ``silu(z)``. None for no gate.
        delta_bias: Added to delta before the softplus, (d,).
        delta_softplus: Apply softplus to delta.
        return_last_state: Also return the final state (batch, d, n).
        initial_state: Starting state (batch, d, n); zeros when None.

    Returns:
        y, (batch, d, L); or ``(y, last_state)`` when ``return_last_state``.

    Raises:
        ConfigError: On inconsistent shapes.

    Example:
        >>> import torch
        >>> u = torch.randn(1, 4, 8); dt = torch.rand(1, 4, 8); A = -torch.rand(4, 3)
        >>> B = torch.randn(1, 3, 8); C = torch.randn(1, 3, 8)
        >>> selective_scan_ref(u, dt, A, B, C).shape
        torch.Size([1, 4, 8])
    """
    torch = _torch()
    _check(u, delta, A)
    dtype_in = u.dtype  # the output comes back in the input's dtype (mamba); the state stays float32
    u, delta, B, C, delta_bias = _upcast(u, delta, B, C, delta_bias)
    batch, d, L = u.shape
    delta = _prepare_delta(delta, delta_bias, delta_softplus)
    Bx = _expand_bc(B, batch, d, L)  # (B, d, n, L)
    Cx = _expand_bc(C, batch, d, L)  # (B, d, n, L)
    h = initial_state if initial_state is not None else u.new_zeros(batch, d, A.shape[1])  # (B, d, n)
    ys = []
    # unbind (not indexing) so that autograd stacks the per-step gradients once instead of materialising a
    # full-size zero gradient per step (O(L) instead of O(L^2) backward)
    for dt, ut, bt, ct in zip(delta.unbind(-1), u.unbind(-1), Bx.unbind(-1), Cx.unbind(-1), strict=True):
        dt = dt[..., None]  # (B, d, 1)
        h = torch.exp(dt * A) * h + dt * ut[..., None] * bt  # (B, d, n)
        ys.append((h * ct).sum(-1))  # (B, d)
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, d, 0)  # (B, d, L)
    out = _finish(y, u, D, z).to(dtype_in)
    return (out, h) if return_last_state else out


def selective_state_update(
    state: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One recurrent step (decoding): O(d·n) work and memory, independent of the position.

    Args:
        state: Current state, (batch, d, n).
        u: Input at this step, (batch, d).
        delta: Step size before bias/softplus, (batch, d).
        A: (d, n).
        B: (batch, n) or (d, n).
        C: (batch, n) or (d, n).
        D: (d,) or None.
        z: (batch, d) or None.
        delta_bias: (d,) or None.
        delta_softplus: Apply softplus to delta.

    Returns:
        ``(y, new_state)`` with y (batch, d) and new_state (batch, d, n).
    """
    torch = _torch()
    if delta_bias is not None:
        delta = delta + delta_bias
    if delta_softplus:
        delta = torch.nn.functional.softplus(delta)
    Bt = B[:, None, :] if B.shape[0] == u.shape[0] and B.shape != A.shape else B[None]  # (B|1, d|1, n)
    Ct = C[:, None, :] if C.shape[0] == u.shape[0] and C.shape != A.shape else C[None]
    dt = delta[..., None]  # (B, d, 1)
    state = torch.exp(dt * A) * state + dt * u[..., None] * Bt  # (B, d, n)
    y = (state * Ct).sum(-1)  # (B, d)
    if D is not None:
        y = y + u * D
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    return y, state


# -- chunked closed form (plain PyTorch, differentiable) ----------------------------------------------


def _scan_chunked_core(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    Bx: torch.Tensor,
    Cx: torch.Tensor,
    h0: torch.Tensor,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output (B, d, L) and last state; delta already biased/softplussed, B/C as (B, d, n, L)."""
    torch = _torch()
    h = h0  # (B, d, n)
    ys = []
    # split (not slicing) so that autograd concatenates chunk gradients once
    pieces = zip(delta.split(chunk, -1), u.split(chunk, -1), Bx.split(chunk, -1), Cx.split(chunk, -1), strict=True)
    for dt, uc, bc, cc in pieces:  # (B, d, T), (B, d, T), (B, d, n, T), (B, d, n, T)
        T = dt.shape[-1]
        la = dt[:, :, None, :] * A[None, :, :, None]  # (B, d, n, T)  log decay per step, <= 0
        cum = torch.cumsum(la, dim=-1)  # (B, d, n, T)
        # seg[t, s] = sum_{s < r <= t} la_r = cum_t - cum_s ; masked for s > t before exp (never overflows)
        seg = cum[..., :, None] - cum[..., None, :]  # (B, d, n, T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=u.device).tril()
        decay = torch.exp(seg.masked_fill(~mask, float("-inf")))  # (B, d, n, T, T)
        x = dt * uc  # (B, d, T)
        bx = bc * x[:, :, None, :]  # (B, d, n, T)
        hs = torch.einsum("bdnts,bdns->bdnt", decay, bx) + torch.exp(cum) * h[..., None]  # (B, d, n, T)
        ys.append((hs * cc).sum(2))  # (B, d, T)
        h = hs[..., -1]
    y = torch.cat(ys, dim=-1) if ys else u.new_zeros(u.shape)
    return y, h


# -- fused numba kernel ------------------------------------------------------------------------------


# float32 constants of the vectorisable exp (Cody-Waite range reduction + degree-7 Taylor polynomial).
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_LO = np.float32(-87.0)
_EXP_HI = np.float32(88.0)
_P2, _P3, _P4 = np.float32(1 / 2), np.float32(1 / 6), np.float32(1 / 24)
_P5, _P6, _P7 = np.float32(1 / 120), np.float32(1 / 720), np.float32(1 / 5040)
_ONE, _HALF = np.float32(1.0), np.float32(0.5)


def _exp_row(dt, a, fast, poly, ebits, scale, out):  # pragma: no cover - compiled by numba (inlined)
    # out[k] = exp(dt * a[k]). fast (float32): exp(z) = 2^m · e^r with m = round(z / ln2), |r| <= ln2 / 2,
    # e^r by a polynomial and 2^m written as IEEE exponent bits (``scale`` is a float32 view of ``ebits``);
    # written as two plain loops so LLVM vectorises them (no SVML needed). z is clamped to [-87, 88]:
    # exp(-87) ~ 1.6e-38 stands in for smaller values (it only ever multiplies a state). Relative error ~2e-7.
    n = a.shape[0]
    if fast:
        for k in range(n):
            z = min(max(dt * a[k], _EXP_LO), _EXP_HI)
            m = math.floor(z * _LOG2E + _HALF)
            r = z - m * _LN2_HI - m * _LN2_LO
            poly[k] = _ONE + r * (_ONE + r * (_P2 + r * (_P3 + r * (_P4 + r * (_P5 + r * (_P6 + r * _P7))))))
            ebits[k] = (np.int32(m) + np.int32(127)) << np.int32(23)
        for k in range(n):
            out[k] = poly[k] * scale[k]
    else:
        for k in range(n):
            out[k] = math.exp(dt * a[k])


def _fwd_kernel(u, delta, A, B, C, h0, y, hlast, fast):  # pragma: no cover - compiled by numba
    # u, delta: (BD, L); A: (BD, n) (rows of A per (b, d)); B, C: (batch, L, n); flattened so that the
    # parallel loop runs over batch*d, each thread keeping its (n,) state local.
    nbd, L = u.shape
    n = A.shape[1]
    d = nbd // B.shape[0]
    for i in _prange(nbd):
        b = i // d
        h = h0[i].copy()
        a = A[i]
        e = np.empty(n, dtype=u.dtype)
        poly = np.empty(n, dtype=np.float32)
        ebits = np.empty(n, dtype=np.int32)
        scale = ebits.view(np.float32)
        for t in range(L):
            dt = delta[i, t]
            x = dt * u[i, t]
            _exp_row_c(dt, a, fast, poly, ebits, scale, e)
            acc = 0.0
            for k in range(n):
                hk = e[k] * h[k] + x * B[b, t, k]
                h[k] = hk
                acc += hk * C[b, t, k]
            y[i, t] = acc
        hlast[i] = h


def _bwd_kernel(u, delta, A, B, C, h0, dy, dhlast, du, ddelta, dA, dB, dC, dh0, fast):  # pragma: no cover
    # Compiled by numba. Recompute the forward states of one (b, d) row, then run the adjoint recurrence
    # g_t = dy_t C_t + exp(dt_{t+1} A) g_{t+1} backwards. dB/dC are written per row and summed over d by
    # the caller (no races between threads).
    nbd, L = u.shape
    n = A.shape[1]
    d = nbd // B.shape[0]
    for i in _prange(nbd):
        b = i // d
        a = A[i]
        e = np.empty(n, dtype=u.dtype)
        poly = np.empty(n, dtype=np.float32)
        ebits = np.empty(n, dtype=np.int32)
        scale = ebits.view(np.float32)
        hs = np.empty((L + 1, n), dtype=u.dtype)
        hs[0] = h0[i]
        for t in range(L):
            dt = delta[i, t]
            x = dt * u[i, t]
            _exp_row_c(dt, a, fast, poly, ebits, scale, e)
            for k in range(n):
                hs[t + 1, k] = e[k] * hs[t, k] + x * B[b, t, k]
        g = dhlast[i].copy()
        dai = np.zeros(n, dtype=u.dtype)
        for t in range(L - 1, -1, -1):
            dt = delta[i, t]
            ut = u[i, t]
            gy = dy[i, t]
            _exp_row_c(dt, a, fast, poly, ebits, scale, e)
            dd = 0.0
            dx = 0.0
            for k in range(n):
                gk = g[k] + gy * C[b, t, k]  # dL/dh_t
                dC[i, t, k] = gy * hs[t + 1, k]
                t1 = gk * e[k] * hs[t, k]  # through exp(dt * A)
                dd += t1 * a[k] + gk * ut * B[b, t, k]
                dai[k] += t1 * dt
                dx += gk * B[b, t, k]
                dB[i, t, k] = gk * dt * ut
                g[k] = gk * e[k]
            ddelta[i, t] = dd
            du[i, t] = dx * dt
        dA[i] = dai
        dh0[i] = g


_prange = range  # replaced by numba.prange inside compiled code (numba treats prange specially)
_exp_row_c: Any = _exp_row  # replaced by its compiled (inlined) version


@functools.cache
def _numba_kernels() -> tuple[Any, Any] | None:
    """Compile (lazily, cached on disk) the forward and backward kernels; None when numba is missing."""
    try:
        import numba
    except ImportError:
        return None
    global _prange, _exp_row_c
    _prange = numba.prange
    _exp_row_c = numba.njit(inline="always", fastmath=True, cache=True)(_exp_row)
    # fastmath lets LLVM vectorise the state loops (reassociating the reduction over n only)
    fwd = numba.njit(parallel=True, fastmath=True, cache=True)(_fwd_kernel)
    bwd = numba.njit(parallel=True, fastmath=True, cache=True)(_bwd_kernel)
    return fwd, bwd


def numba_available() -> bool:
    """Whether the fused numba kernel can be used."""
    return _numba_kernels() is not None


def _numba_function() -> Any:
    torch = _torch()

    function_base: Any = torch.autograd.Function

    class _NumbaScan(function_base):
        """y, h_last = scan(u, delta, A, B, C, h0) with B, C as (batch, n, L); numba forward/backward."""

        @staticmethod
        def forward(ctx: Any, u: Any, delta: Any, A: Any, B: Any, C: Any, h0: Any) -> Any:
            fwd, _ = _numba_kernels()  # type: ignore[misc]
            batch, d, L = u.shape
            n = A.shape[1]
            u_ = u.detach().contiguous().reshape(batch * d, L)
            dl_ = delta.detach().contiguous().reshape(batch * d, L)
            A_ = A.detach().expand(batch, d, n).contiguous().reshape(batch * d, n)
            B_ = B.detach().transpose(1, 2).contiguous()  # (B, L, n)
            C_ = C.detach().transpose(1, 2).contiguous()  # (B, L, n)
            h0_ = h0.detach().contiguous().reshape(batch * d, n)
            y = torch.empty_like(u_)
            hl = torch.empty_like(h0_)
            fast = u_.dtype == torch.float32
            fwd(u_.numpy(), dl_.numpy(), A_.numpy(), B_.numpy(), C_.numpy(), h0_.numpy(), y.numpy(), hl.numpy(),
                fast)
            ctx.save_for_backward(u_, dl_, A_, B_, C_, h0_)
            ctx.shape = (batch, d, L, n)
            return y.reshape(batch, d, L), hl.reshape(batch, d, n)

        @staticmethod
        def backward(ctx: Any, dy: Any, dhl: Any) -> Any:
            _, bwd = _numba_kernels()  # type: ignore[misc]
            u_, dl_, A_, B_, C_, h0_ = ctx.saved_tensors
            batch, d, L, n = ctx.shape
            dy_ = (dy if dy is not None else u_.new_zeros(batch, d, L)).contiguous().reshape(batch * d, L)
            dhl_ = (dhl if dhl is not None else u_.new_zeros(batch, d, n)).contiguous().reshape(batch * d, n)
            du = torch.empty_like(u_)
            ddl = torch.empty_like(dl_)
            dA = torch.empty_like(A_)
            dB = torch.empty(batch * d, L, n, dtype=u_.dtype)
            dC = torch.empty(batch * d, L, n, dtype=u_.dtype)
            dh0 = torch.empty_like(h0_)
            bwd(u_.numpy(), dl_.numpy(), A_.numpy(), B_.numpy(), C_.numpy(), h0_.numpy(), dy_.numpy(),
                dhl_.numpy(), du.numpy(), ddl.numpy(), dA.numpy(), dB.numpy(), dC.numpy(), dh0.numpy(),
                u_.dtype == torch.float32)
            dA_out = dA.reshape(batch, d, n).sum(0)  # (d, n)
            dB_out = dB.reshape(batch, d, L, n).sum(1).transpose(1, 2)  # (B, n, L)
            dC_out = dC.reshape(batch, d, L, n).sum(1).transpose(1, 2)  # (B, n, L)
            return (du.reshape(batch, d, L), ddl.reshape(batch, d, L), dA_out, dB_out, dC_out,
                    dh0.reshape(batch, d, n))

    return _NumbaScan


_NUMBA_FN: Any = None


def _scan_numba_core(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, h0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    global _NUMBA_FN
    if _NUMBA_FN is None:
        _NUMBA_FN = _numba_function()
    y, h = _NUMBA_FN.apply(u, delta, A, B, C, h0)
    return y, h


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    impl: ScanImpl = "auto",
    chunk: int = 8,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Fast selective scan with mamba's calling convention; matches :func:`selective_scan_ref`.

    Args:
        u: Input, (batch, d, L).
        delta: Step sizes before bias/softplus, (batch, d, L).
        A: (d, n), real.
        B: (batch, n, L), (batch, groups, n, L) or (d, n).
        C: Same shapes as B.
        D: (d,) or None.
        z: (batch, d, L) or None.
        delta_bias: (d,) or None.
        delta_softplus: Apply softplus to delta.
        return_last_state: Also return the final state (batch, d, n).
        initial_state: Starting state (batch, d, n); zeros when None.
        impl: ``"auto"`` (numba on CPU when installed, else chunked), ``"numba"``, ``"chunked"``, ``"ref"``.
        chunk: Chunk length of the chunked path.

    Returns:
        y, (batch, d, L); or ``(y, last_state)``.

    Raises:
        ConfigError: On inconsistent shapes or an unknown ``impl``.
        MissingExtraError: ``impl="numba"`` without numba installed.

    Example:
        >>> import torch
        >>> u = torch.randn(2, 4, 33); dt = torch.randn(2, 4, 33); A = -torch.rand(4, 3)
        >>> B = torch.randn(2, 3, 33); C = torch.randn(2, 3, 33)
        >>> y = selective_scan(u, dt, A, B, C, delta_softplus=True)
        >>> torch.allclose(y, selective_scan_ref(u, dt, A, B, C, delta_softplus=True), atol=1e-5)
        True
    """
    if impl == "ref":
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                                  initial_state)
    if impl not in ("auto", "chunked", "numba"):
        raise ConfigError(f"unknown scan impl '{impl}'. Available: auto, ref, chunked, numba")
    _check(u, delta, A)
    dtype_in = u.dtype  # the output comes back in the input's dtype (mamba); the state stays float32
    u, delta, B, C, delta_bias = _upcast(u, delta, B, C, delta_bias)
    batch, d, L = u.shape
    dl = _prepare_delta(delta, delta_bias, delta_softplus)
    h0 = initial_state if initial_state is not None else u.new_zeros(batch, d, A.shape[1])
    import torch

    kernel_ok = u.device.type == "cpu" and all(
        t.dtype in (torch.float32, torch.float64) and t.dtype == u.dtype for t in (delta, A, B, C))
    if impl == "numba" and not kernel_ok:
        raise ConfigError("impl='numba' needs CPU float32/float64 tensors of one dtype; use impl='chunked'")
    use_numba = kernel_ok and (impl == "numba" or (impl == "auto" and numba_available()))
    if impl == "numba" and not numba_available():
        raise MissingExtraError("numba", "torch", "the fused CPU selective scan")
    if use_numba and B.dim() == 3 and C.dim() == 3:
        # the fused kernel takes (batch, n, L) B/C; other forms take the chunked path
        y, h = _scan_numba_core(u, dl, A, B, C, h0)
        out = _finish(y, u, D, z).to(dtype_in)
        return (out, h) if return_last_state else out
    Bx = _expand_bc(B, batch, d, L)  # (B, d, n, L)
    Cx = _expand_bc(C, batch, d, L)  # (B, d, n, L)
    y, h = _scan_chunked_core(u, dl, A, Bx, Cx, h0, max(1, int(chunk)))
    out = _finish(y, u, D, z).to(dtype_in)
    return (out, h) if return_last_state else out


__all__ = [
    "ScanImpl",
    "numba_available",
    "selective_scan",
    "selective_scan_ref",
    "selective_state_update",
]
