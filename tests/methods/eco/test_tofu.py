"""TOFU metrics checked against the authors' released Phi-1.5 eval logs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llmlab.methods.eco.tofu import (
    forget_quality,
    load_tofu_results,
    model_utility,
    tofu_report,
    truth_ratio,
    truth_ratios,
)

RUN = "ft_epoch5_lr2e-05_phi_{}_wd0.01/eval_results/ds_size300"


def _logs(shared_data: Path, which: str) -> dict:  # type: ignore[type-arg]
    return load_tofu_results(shared_data / "tofu-eval" / "data" / RUN.format(which))


def test_truth_ratio_by_hand() -> None:
    assert truth_ratio(2.0, [3.0, 4.0, 5.0]) == pytest.approx(math.e**2)
    assert truth_ratio(1.0, [1.0]) == 1.0


def test_truth_ratio_matches_logged_field(shared_data: Path) -> None:
    """Our R from the logged losses is the reciprocal of the logged per-question ``truth_ratio``."""
    pytest.importorskip("scipy")
    for which in ("full", "retain90"):
        for fname, log in _logs(shared_data, which).items():
            ours = truth_ratios(log)
            logged = list(log["truth_ratio"].values())
            assert len(ours) == len(logged) > 0
            assert all(math.isclose(1 / a, b, rel_tol=1e-5) for a, b in zip(ours, logged, strict=True)), fname


def test_forget_quality_and_utility_on_real_logs(shared_data: Path) -> None:
    pytest.importorskip("scipy")
    full, retain90 = _logs(shared_data, "full"), _logs(shared_data, "retain90")
    rep = tofu_report(full, retain90)
    # The model trained on the forget set is far from the one never trained on it: tiny KS p-value.
    assert rep["Forget Quality"] < 1e-10
    assert rep["Forget Quality"] == pytest.approx(2.194e-16, rel=1e-3)
    # The retain model compared with itself is indistinguishable.
    assert tofu_report(retain90, retain90)["Forget Quality"] == 1.0
    # Model utility: harmonic mean of the 9 non-forget numbers (values recorded in docs/eco.md)
    mu = model_utility(full)
    nine = [v for k, v in mu.items() if "Forget" not in k and k != "Model Utility"]
    assert len(nine) == 9
    assert mu["Model Utility"] == pytest.approx(9 / sum(1 / v for v in nine))
    assert mu["Model Utility"] == pytest.approx(0.5221, abs=1e-4)
    assert model_utility(retain90)["Model Utility"] == pytest.approx(0.5320, abs=1e-4)
    # forget-set truth-ratio summary is mean min(R, 1/R) ∈ (0, 1]
    assert 0 < mu["Truth Ratio Forget"] <= 1
    assert forget_quality([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
