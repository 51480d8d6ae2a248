from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.ssm import (  # noqa: E402
    numba_available,
    selective_scan,
    selective_scan_ref,
    selective_state_update,
)
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture

IMPLS = ["chunked"] + (["numba"] if numba_available() else [])


def _inputs(seed: int, b: int, d: int, L: int, n: int, dtype=torch.float32, grad=True):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_(grad)

    u = r(b, d, L)
    delta = r(b, d, L, scale=0.5)
    A = (-torch.rand(d, n, generator=g, dtype=dtype) * 4 - 0.1).requires_grad_(grad)
    B, C = r(b, n, L), r(b, n, L)
    D, z, bias = r(d), r(b, d, L), r(d, scale=0.5)
    return u, delta, A, B, C, D, z, bias


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("seed,b,d,L,n", [(0, 2, 5, 37, 4), (1, 1, 8, 16, 16), (2, 3, 3, 1, 2), (3, 2, 4, 50, 3)])
@pytest.mark.parametrize("full", [True, False])
def test_scan_parity_forward_backward_fp32(impl, seed, b, d, L, n, full):
    u, delta, A, B, C, D, z, bias = _inputs(seed, b, d, L, n)
    kw = dict(D=D, z=z, delta_bias=bias, delta_softplus=True) if full else {}
    if not full:  # without softplus the step sizes must be positive, as in Mamba
        delta = delta.detach().abs().requires_grad_()
    wrt = [u, delta, A, B, C] + ([D, z, bias] if full else [])
    outs = []
    for fn in (selective_scan_ref, lambda *a, **k: selective_scan(*a, impl=impl, **k)):
        y, h = fn(u, delta, A, B, C, return_last_state=True, **kw)
        loss = (y * torch.sin(y)).sum() + (h ** 2).sum()
        outs.append((y, h, torch.autograd.grad(loss, wrt)))
    (y0, h0, g0), (y1, h1, g1) = outs
    assert _rel(y1, y0) < 1e-5 and _rel(h1, h0) < 1e-5
    for a, r in zip(g1, g0, strict=True):
        assert _rel(a, r) < 1e-5


@pytest.mark.parametrize("impl", IMPLS)
def test_scan_parity_fp64_tight(impl):
    u, delta, A, B, C, D, z, bias = _inputs(5, 2, 6, 29, 4, dtype=torch.float64)
    y0 = selective_scan_ref(u, delta, A, B, C, D, z, bias, True)
    y1 = selective_scan(u, delta, A, B, C, D, z, bias, True, impl=impl)
    g0 = torch.autograd.grad(y0.sum(), [u, delta, A, B, C])
    g1 = torch.autograd.grad(y1.sum(), [u, delta, A, B, C])
    assert torch.allclose(y0, y1, atol=1e-10)
    for a, r in zip(g1, g0, strict=True):
        assert torch.allclose(a, r, atol=1e-9)


def test_reference_gradcheck_tiny():
    u, delta, A, B, C, D, z, bias = _inputs(7, 1, 2, 5, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda *a: selective_scan_ref(*a, delta_softplus=True), (u, delta, A, B, C, D, z, bias)
    )


def test_grouped_and_time_invariant_bc_match_reference():
    u, delta, A, _, _, D, z, bias = _inputs(4, 2, 6, 11, 3)
    g = torch.Generator().manual_seed(9)
    Bg, Cg = torch.randn(2, 3, 3, 11, generator=g), torch.randn(2, 3, 3, 11, generator=g)
    y0 = selective_scan_ref(u, delta, A, Bg, Cg, D, z, bias, True)
    y1 = selective_scan(u, delta, A, Bg, Cg, D, z, bias, True)
    assert _rel(y1, y0) < 1e-5
    # grouped with one group == plain (batch, n, L)
    y2 = selective_scan_ref(u, delta, A, Bg[:, :1], Cg[:, :1])
    y3 = selective_scan_ref(u, delta, A, Bg[:, 0], Cg[:, 0])
    assert torch.allclose(y2, y3)
    Bt, Ct = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    kw = dict(delta_bias=bias, delta_softplus=True)  # positive step sizes (a negative one makes h grow)
    assert _rel(selective_scan(u, delta, A, Bt, Ct, **kw), selective_scan_ref(u, delta, A, Bt, Ct, **kw)) < 1e-5


def test_single_step_update_equals_full_scan():
    u, delta, A, B, C, D, z, bias = _inputs(11, 2, 5, 9, 4, grad=False)
    y_full, h_full = selective_scan_ref(u, delta, A, B, C, D, z, bias, True, return_last_state=True)
    state = torch.zeros(2, 5, 4)
    for t in range(9):
        y_t, state = selective_state_update(state, u[..., t], delta[..., t], A, B[..., t], C[..., t], D,
                                            z[..., t], bias, True)
        assert torch.allclose(y_t, y_full[..., t], atol=1e-5)
    assert torch.allclose(state, h_full, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_initial_state_continues_a_split_sequence(impl):
    u, delta, A, B, C, *_ = _inputs(12, 1, 4, 20, 3, grad=False)
    delta = delta.abs()
    y, h = selective_scan(u, delta, A, B, C, return_last_state=True, impl=impl)
    ya, ha = selective_scan(u[..., :7], delta[..., :7], A, B[..., :7], C[..., :7], return_last_state=True,
                            impl=impl)
    yb, hb = selective_scan(u[..., 7:], delta[..., 7:], A, B[..., 7:], C[..., 7:], return_last_state=True,
                            initial_state=ha, impl=impl)
    assert torch.allclose(torch.cat([ya, yb], -1), y, atol=1e-5)
    assert torch.allclose(hb, h, atol=1e-5)


def test_bad_shapes_and_impl_raise_config_error():
    u, delta, A, B, C, *_ = _inputs(0, 1, 4, 5, 3, grad=False)
    with pytest.raises(ConfigError):
        selective_scan(u, delta[..., :3], A, B, C)
    with pytest.raises(ConfigError):
        selective_scan(u, delta, A[:2], B, C)
    with pytest.raises(ConfigError, match="impl"):
        selective_scan(u, delta, A, B, C, impl="cuda")  # type: ignore[arg-type]


def test_auto_falls_back_to_chunked_for_dtypes_the_kernel_cannot_take():
    u, delta, A, B, C, *_ = _inputs(13, 1, 4, 6, 2, grad=False)
    delta = delta.abs()
    args = [t.to(torch.bfloat16) for t in (u, delta, A, B, C)]
    y = selective_scan(*args)  # auto: no numba for bf16, chunked path instead
    y_ref = selective_scan_ref(*[t.float() for t in args])
    assert y.dtype == torch.bfloat16 and torch.allclose(y.float(), y_ref, atol=5e-2, rtol=5e-2)
    with pytest.raises(ConfigError, match="float32/float64"):
        selective_scan(*args, impl="numba")


@pytest.mark.parametrize("impl", ["ref", "chunked", "auto"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_inputs_come_back_in_their_dtype(impl, dtype):
    from llmlab.models.ssm import selective_scan

    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    u, delta = torch.randn(1, 3, 6).to(dt), torch.rand(1, 3, 6).to(dt)
    A = -torch.rand(3, 4) - 0.5
    B, C, D = torch.randn(1, 4, 6).to(dt), torch.randn(1, 4, 6).to(dt), torch.ones(3)
    out, last = selective_scan(u, delta, A, B, C, D, delta_softplus=True, return_last_state=True, impl=impl)
    assert out.dtype == dt and last.dtype == torch.float32
    ref = selective_scan(u.float(), delta.float(), A, B.float(), C.float(), D, delta_softplus=True, impl="ref")
    assert torch.allclose(out.float(), ref, atol=2e-2, rtol=2e-2)  # computed in float32, rounded once
