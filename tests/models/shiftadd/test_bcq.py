import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.models import shiftadd as sa  # noqa: E402


def _w(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# -- BCQ ----------------------------------------------------------------------------------------------


def test_bcq_one_bit_greedy_is_sign_times_mean_abs():
    w = _w(5, 16)
    alpha, B = sa.bcq_quantize(w, bits=1, rounds=0)
    assert torch.allclose(alpha[:, 0], w.abs().mean(-1), atol=1e-6)
    assert torch.equal(B[..., 0], torch.where(w >= 0, 1.0, -1.0))


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_bcq_error_non_increasing_planes_binary_scales_sorted(bits):
    w = _w(64, 32, seed=bits)
    hist: list[float] = []
    alpha, B = sa.bcq_quantize(w, bits=bits, rounds=12, history=hist)
    assert len(hist) == 13
    assert all(b <= a + 1e-9 * hist[0] for a, b in itertools.pairwise(hist))
    assert hist[-1] < hist[0]  # alternating actually improves over greedy
    assert set(B.unique().tolist()) <= {-1.0, 1.0}
    assert (alpha >= 0).all()
    assert (alpha[:, :-1] >= alpha[:, 1:]).all()
    # the returned planes are optimal for the returned scales
    assert torch.equal(B, sa.nearest_codeword(w, alpha))


def test_nearest_codeword_equals_bruteforce():
    w = _w(40, 24, seed=3)
    alpha = _w(40, 3, seed=4).abs()
    assert torch.equal(sa.nearest_codeword(w, alpha), sa.nearest_codeword_bruteforce(w, alpha))


def test_apot_one_term_gives_exact_powers_of_two():
    x = _w(1000, seed=5) * 3
    y = sa.apot_round(x, 1)
    e = torch.log2(y.abs())
    assert torch.equal(e, torch.round(e))
    assert torch.equal(torch.sign(y), torch.sign(x))
    # relative error of rounding log2 to the nearest integer is below 2^0.5 - 1
    assert ((y - x).abs() / x.abs()).max() < math.sqrt(2) - 1 + 1e-6


def test_apot_terms_decompose_and_shiftadd_scales_are_pot_sums():
    x = _w(300, seed=6)
    for terms in (1, 2, 3):
        y = sa.apot_round(x, terms)
        r = y.clone()
        for _ in range(terms):  # peel the largest power of two each time
            nz = r != 0
            e = torch.floor(torch.log2(r.abs().clamp_min(1e-300)))
            # a sum of <= terms signed powers of two: greedy peeling may need the exponent above too
            p = torch.where(nz, torch.sign(r) * 2.0**e, torch.zeros_like(r))
            p2 = torch.where(nz, torch.sign(r) * 2.0 ** (e + 1), torch.zeros_like(r))
            r = torch.where((r - p).abs() <= (r - p2).abs(), r - p, r - p2)
        assert torch.equal(r, torch.zeros_like(r)), terms
    err = [(sa.apot_round(x, t) - x).abs().mean().item() for t in (1, 2, 3)]
    assert err[0] > err[1] > err[2]
    cfg = sa.QuantConfig(method="shiftadd", bits=3, group_size=16, apot_terms=1, rounds=3)
    _, bcq = sa.obs_quantize(_w(8, 32, seed=7), torch.eye(32), cfg)
    a = bcq.alpha[bcq.alpha != 0]
    e = torch.log2(a)
    assert torch.equal(e, torch.round(e))


def test_pack_unpack_round_trip():
    planes = torch.where(_w(3, 5, 64, seed=12) > 0, 1.0, -1.0)
    packed = sa.pack_planes(planes)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 5, 8)
    assert torch.equal(sa.unpack_planes(packed), planes)
