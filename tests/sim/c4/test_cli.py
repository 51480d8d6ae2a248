from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from llmlab.sim.cli import sim


def test_sim_c4_writes_both_experiments(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "c4"
    res = CliRunner().invoke(sim, ["c4", "--nodes", "16", "--nodes-per-leaf", "8", "--spines", "4", "--jobs", "2",
                                   "--nodes-per-job", "4", "--seeds", "2", "--failures", "1", "--trials", "1",
                                   "--size-mib", "16", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "result.json").read_text())
    p = rec["planning"]
    assert p["plan_steered_by_sport"] and p["planned"] >= p["ecmp"]["max"] - 1e-9
    assert p["planned"] <= p["ideal"] + 1e-9
    assert set(rec["diagnosis"]["classes"]) == {"port_down", "degraded_link", "dead_link", "slow_gpu", "hung_rank",
                                                "none"}
    assert (out / "planning.png").stat().st_size > 0 and (out / "diagnosis.png").stat().st_size > 0
