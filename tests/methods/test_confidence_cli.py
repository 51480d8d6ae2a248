"""``llmlab confidence report`` on the real LLaMA-13B generations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.cli import main


def test_report_json(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    code = main(["confidence", "report", "--num-gens", "3", "--json"])
    out_text, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(out_text)
    assert rep["n"] == 500 and rep["num_gens"] == 3 and set(rep["features"]) == {"sd_agree", "sd_lexsim", "sd_numsets"}
    assert 0.5 < rep["combined"]["auroc"] <= 1.0
