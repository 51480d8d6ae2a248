"""Parity: our TOFU metrics vs the official ``aggregate_eval_stat.py`` on the released eval logs.

Run with a checkout of locuslab/tofu (any commit with ``aggregate_eval_stat.py``):

    LLMLAB_TOFU_OFFICIAL=/path/to/tofu python -m pytest tests/parity/test_tofu_aggregate.py -q

The official module imports hydra/omegaconf only for its CLI entry point; the test injects stand-ins for
those two modules so that ``get_model_utility`` and ``get_forget_quality`` can be called as they are.
Skips with the reason when the variable is unset.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

from llmlab.methods.eco.tofu import load_tofu_results, tofu_report

OFFICIAL = os.environ.get("LLMLAB_TOFU_OFFICIAL")
RUN = "ft_epoch5_lr2e-05_phi_{}_wd0.01/eval_results/ds_size300"


def _official() -> types.ModuleType:
    if OFFICIAL is None:
        pytest.skip("set LLMLAB_TOFU_OFFICIAL to a locuslab/tofu checkout to run the parity check")
    path = Path(OFFICIAL) / "aggregate_eval_stat.py"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    pytest.importorskip("scipy")
    hydra = types.ModuleType("hydra")
    hydra.main = lambda **kw: (lambda f: f)  # type: ignore[attr-defined]
    omegaconf = types.ModuleType("omegaconf")
    omegaconf.OmegaConf = object  # type: ignore[attr-defined]
    sys.modules.setdefault("hydra", hydra)
    sys.modules.setdefault("omegaconf", omegaconf)
    spec = importlib.util.spec_from_file_location("tofu_aggregate_official", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("unlearned", ["full", "retain90"])
def test_aggregate_matches_official(shared_data: Path, unlearned: str) -> None:
    off = _official()
    base = shared_data / "tofu-eval" / "data"
    ckpt, retain = load_tofu_results(base / RUN.format(unlearned)), load_tofu_results(base / RUN.format("retain90"))
    theirs = off.get_model_utility(ckpt)
    theirs["Forget Quality"] = off.get_forget_quality(ckpt, retain)["Forget Quality"]
    ours = tofu_report(ckpt, retain)
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(float(v), rel=1e-9, abs=1e-300), k
