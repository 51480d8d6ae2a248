"""The two experiments of docs/c4.md at the documented scale (slow: several minutes on 2 cores)."""

from __future__ import annotations

import pytest

from llmlab.sim.c4.experiments import experiment_diagnosis, experiment_planning
from llmlab.sim.c4.network import ClusterSpec


@pytest.mark.slow
def test_planning_closes_most_of_the_ecmp_gap_at_64_nodes():
    r = experiment_planning(ClusterSpec(), n_jobs=8, nodes_per_job=8, seeds=100)
    assert r["gap_ecmp"] > 0.2  # ECMP leaves a real gap (paper: ~30%)
    assert r["closed_fraction"] > 0.8  # planning closes most of it
    assert r["with_failures"]["replanned"] > r["with_failures"]["ecmp"]["p90"]


@pytest.mark.slow
def test_c4d_attributes_every_fault_class():
    r = experiment_diagnosis(ClusterSpec(), trials=30)
    for kind, v in r["classes"].items():
        if kind == "none":
            assert v["false_alarms"] == 0
        else:
            assert v["precision"] >= 0.9 and v["recall"] >= 0.9, (kind, v)
