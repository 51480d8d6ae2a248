"""``llmlab eco tofu`` on the released TOFU logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.cli import main

RUN = "tofu-eval/data/ft_epoch5_lr2e-05_phi_{}_wd0.01/eval_results/ds_size300"


def test_tofu_command(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("scipy")
    code = main(["eco", "tofu", "--unlearned", str(shared_data / RUN.format("full")),
                                    "--retain", str(shared_data / RUN.format("retain90"))])
    out_text, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(out_text)
    assert rep["Forget Quality"] < 1e-10 and rep["Model Utility"] == pytest.approx(0.5221, abs=1e-4)
