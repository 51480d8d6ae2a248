"""ShiftAddLLM BCQ vs the official quantizers on the same weights: our reconstruction error is never higher.

Runs only when pointed at an official checkout (GATECH-EIC/ShiftAddLLM); it imports the two official files
``quantizers/bcq_quant/bcq.py`` (``quantize``: plain BCQ) and ``quantizers/bcq_quant/bcq_shift.py``
(``quantize_shift``: power-of-two scales) by path, with their hard-coded ``.cuda()`` made a no-op on CPU:

    LLMLAB_SHIFTADD_OFFICIAL=/path/to/ShiftAddLLM python -m pytest tests/parity/test_shiftadd_bcq_official.py -q -s

The grid (every configuration is one parametrised case, on a 64x256 weight of each distribution, seed 0):

* plain BCQ: bits 1-4 x group 8, 16, 32, 128, whole row x rounds 0, 1, 5, 15 x gaussian, laplace,
  student-t(3), gaussian with 1% outliers (320 cases);
* power-of-two scales: bits 2-4 x the same groups x rounds 1, 5, 15 x 1, 2, 3 APoT terms x the same
  distributions (540 cases). Bits 1 and rounds 0 are left out: there the official ``quantize_shift`` never
  rounds its scales (its refine loop runs only for ``rounds > 0 and qbits > 1``), so it is not a
  power-of-two quantizer to compare with.

Each case asserts ``||W - Ŵ_ours||² <= ||W - Ŵ_official||² (1 + 1e-6)`` (the official code runs in float32)
and that our scales are exact sums of ``apot_terms`` powers of two; ``-s`` prints one summary line per
part (worst and median ratio ours/official) at the end of the run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from llmlab.models.shiftadd import apot_round, bcq_quantize  # noqa: E402

OFFICIAL = os.environ.get("LLMLAB_SHIFTADD_OFFICIAL")
BCQ_DIR = Path(OFFICIAL) / "quantizers" / "bcq_quant" if OFFICIAL is not None else Path("-")
if OFFICIAL is None or not (BCQ_DIR / "bcq_shift.py").is_file():  # one skip, not one per grid cell
    pytest.skip("set LLMLAB_SHIFTADD_OFFICIAL to a GATECH-EIC/ShiftAddLLM checkout", allow_module_level=True)

N, K = 64, 256
GROUPS = (8, 16, 32, 128, -1)
DISTS = ("gaussian", "laplace", "student_t3", "outliers")
PLAIN = [(b, g, r, d) for b in (1, 2, 3, 4) for g in GROUPS for r in (0, 1, 5, 15) for d in DISTS]
SHIFT = [(b, g, r, t, d) for b in (2, 3, 4) for g in GROUPS for r in (1, 5, 15) for t in (1, 2, 3) for d in DISTS]
RATIOS: dict[str, list[float]] = {"plain": [], "shift": []}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_official_{name}", BCQ_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def official(request: pytest.FixtureRequest) -> dict[str, Any]:
    if not torch.cuda.is_available():  # the official files call .cuda() on every tensor they make
        mp = pytest.MonkeyPatch()
        mp.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
        request.addfinalizer(mp.undo)
    mods = {"bcq": _load("bcq"), "shift": _load("bcq_shift")}
    request.addfinalizer(_summary)
    return mods


def _summary() -> None:
    for part, r in RATIOS.items():
        if r:
            s = sorted(r)
            print(f"\n{part}: {len(s)} cases, ours/official error ratio worst {s[-1]:.6f} "
                  f"median {s[len(s) // 2]:.6f} best {s[0]:.6f}; ours <= official in "
                  f"{sum(x <= 1 + 1e-6 for x in s)}/{len(s)}")


def _weight(dist: str) -> Any:
    gen = torch.Generator().manual_seed(0)
    if dist == "gaussian":
        return torch.randn(N, K, generator=gen)
    if dist == "laplace":
        u = torch.rand(N, K, generator=gen) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * u.abs())
    if dist == "student_t3":
        z = torch.randn(N, K, generator=gen)
        chi2 = (torch.randn(3, N, K, generator=gen) ** 2).sum(0)
        return z / torch.sqrt(chi2 / 3)
    w = torch.randn(N, K, generator=gen)
    mask = torch.rand(N, K, generator=gen) < 0.01
    return torch.where(mask, w * 10, w)


def _ours(w: Any, bits: int, g: int, rounds: int, terms: int | None) -> tuple[Any, Any]:
    gs = K if g == -1 else g
    alpha, B = bcq_quantize(w.reshape(-1, gs).double(), bits, rounds, apot_terms=terms)
    return (B * alpha[:, None, :]).sum(-1).reshape(N, K), alpha


def _err(w: Any, w_hat: Any) -> float:
    return float(((w.double() - w_hat.double()) ** 2).sum())


@pytest.mark.parametrize(("bits", "group", "rounds", "dist"), PLAIN)
def test_plain_bcq_not_worse(official: dict[str, Any], bits: int, group: int, rounds: int, dist: str) -> None:
    w = _weight(dist)
    theirs = official["bcq"].quantize(w.clone(), bits, rounds=rounds, group_size=group)[0]
    ours, _ = _ours(w, bits, group, rounds, None)
    e_ours, e_theirs = _err(w, ours), _err(w, theirs)
    RATIOS["plain"].append(e_ours / e_theirs)
    assert e_ours <= e_theirs * (1 + 1e-6), (e_ours, e_theirs)


@pytest.mark.parametrize(("bits", "group", "rounds", "terms", "dist"), SHIFT)
def test_power_of_two_bcq_not_worse(
    official: dict[str, Any], bits: int, group: int, rounds: int, terms: int, dist: str
) -> None:
    w = _weight(dist)
    theirs = official["shift"].quantize_shift(w.clone(), bits, rounds=rounds, group_size=group, apot_nums=terms)[0]
    ours, alpha = _ours(w, bits, group, rounds, terms)
    assert torch.equal(apot_round(alpha, terms), alpha)  # our scales really are APoT values
    e_ours, e_theirs = _err(w, ours), _err(w, theirs)
    RATIOS["shift"].append(e_ours / e_theirs)
    assert e_ours <= e_theirs * (1 + 1e-6), (e_ours, e_theirs)
