import pytest

torch = pytest.importorskip("torch")

from llmlab.models import shiftadd as sa  # noqa: E402


def _w(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# -- LUT GEMV ---------------------------------------------------------------------------------------------



def test_build_lut_entries_are_signed_sums():
    x = _w(16, seed=13).double()
    lut = sa.build_lut(x)
    m = torch.arange(256)
    signs = ((m[:, None] >> torch.arange(8)) & 1).double() * 2 - 1  # (256, 8)
    assert torch.allclose(lut, x.reshape(2, 8) @ signs.T, atol=1e-12)


@pytest.mark.parametrize("impl", ["ref", "torch", "numba"])
def test_lut_gemv_equals_dequantized_dense_product(impl):
    if impl == "numba":
        pytest.importorskip("numba")
    W = _w(48, 64, seed=14)
    _, bcq = sa.obs_quantize(W, None, sa.QuantConfig(method="bcq", bits=3, group_size=32, rounds=3))
    Wd = bcq.dequantize()
    packed = bcq.packed()
    x = _w(64, seed=15)
    # float64 dense product is the oracle; the LUT path in float64 must agree to rounding
    y64 = sa.lut_gemv(x.double(), bcq.alpha.double(), packed, 32, impl=impl)
    assert torch.allclose(y64, Wd.double() @ x.double(), atol=1e-10)
    y32 = sa.lut_gemv(x, bcq.alpha, packed, 32, impl=impl)
    assert torch.allclose(y32, Wd @ x, atol=1e-4, rtol=1e-5)
    X = _w(3, 64, seed=16)
    assert torch.allclose(sa.lut_gemv(X, bcq.alpha, packed, 32, impl=impl), X @ Wd.T, atol=1e-4)
