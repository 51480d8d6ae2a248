"""Gwet's AC2 and the agreement analysis on the released PH-LLM ratings."""

from __future__ import annotations

import itertools
import math

import pytest

from llmlab.cli import main
from llmlab.core.errors import DataError
from llmlab.tasks.ph_llm.agreement import (
    analyze,
    bootstrap_ci,
    contingency,
    gwet_ac2,
    pivot,
    rater_pairs,
    rater_type,
    spearman,
)


def _ac2_by_definition(a, b):
    """Gwet's AC2 for two raters straight from the textbook sums (no shortcuts)."""
    cats = sorted(set(a) | set(b))
    q = len(cats)
    w = {(k, m): 1 - ((k - m) / (cats[-1] - cats[0])) ** 2 for k in cats for m in cats}
    n = len(a)
    pa = sum(w[(x, y)] for x, y in zip(a, b, strict=True)) / n
    pi = {k: (a.count(k) + b.count(k)) / (2 * n) for k in cats}
    pe = sum(w.values()) / (q * (q - 1)) * sum(p * (1 - p) for p in pi.values())
    return (pa - pe) / (1 - pe)


def test_ac2_matches_its_definition_and_is_symmetric():
    import random

    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(5, 40)
        a = [rng.choice([1, 2, 3, 4, 5]) for _ in range(n)]
        b = [min(5, max(1, x + rng.choice([-1, 0, 0, 1]))) for x in a]
        assert gwet_ac2(a, b) == pytest.approx(_ac2_by_definition(a, b), abs=1e-12)
        assert gwet_ac2(a, b) == pytest.approx(gwet_ac2(b, a), abs=1e-12)
    assert gwet_ac2([3, 4, 5], [3, 4, 5]) == 1.0
    assert gwet_ac2([1, 5, 1, 5], [5, 1, 5, 1]) < 0  # systematic disagreement
    with pytest.raises(DataError):
        gwet_ac2([1, 2], [1])


def test_bootstrap_ci_brackets_the_estimate():
    a = [5, 5, 4, 5, 3, 4, 5, 5, 2, 5] * 10
    b = [5, 4, 4, 5, 3, 5, 5, 4, 2, 5] * 10
    lo, hi = bootstrap_ci(a, b, n_boot=300, seed=1)
    assert lo < gwet_ac2(a, b) < hi and hi - lo < 0.3
    assert bootstrap_ci(a, b, n_boot=300, seed=1) == (lo, hi)


def test_contingency_pairs_and_types():
    m = contingency([5, 4, 4, 1], [5, 5, 4, 2])
    assert sum(map(sum, m)) == 4 and m[3][4] == 1 and m[4][4] == 1 and m[0][1] == 1
    rows = [{"case_study_id": "c", "tag": "t", "principle": "p", "conversation_source": "s", "rater": r, "rating": v}
            for r, v in (("sleep_primary_a", "5"), ("sleep_secondary_b", "4"), ("sleep_primary_c", "3"))]
    assert rater_pairs(pivot(rows)) == sorted(itertools.combinations(sorted(r["rater"] for r in rows), 2))
    assert rater_type("fitness_secondary_d") == "secondary" and rater_type("rating_autoeval_x") == "autoeval"
    assert spearman([1, 2, 3], [2, 4, 9]) == pytest.approx(1.0) and math.isnan(spearman([1, 1], [1, 2]))


def test_released_ratings_reproduce_the_papers_agreement_statements(shared_data):
    rep = analyze(shared_data / "ph-llm" / "autoeval_ratings", n_boot=50)
    assert rep["claims"] and all(rep["claims"].values()), {k: v for k, v in rep["claims"].items() if not v}
    for r in rep["verticals"].values():
        for p in r["expert_pairs"]:
            assert sum(map(sum, p["contingency"])) == p["n"]
            assert p["ci"][0] <= p["ac2"] <= p["ci"][1]
            assert p["kind"] in ("primary-primary", "primary-secondary", "secondary-secondary")


def test_agreement_command(shared_data, capsys):
    assert main(["phllm", "agreement", "--n-boot", "0", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert out.count("[holds]") == 9 and "FAILS" not in out
    assert main(["phllm", "agreement", "--n-boot", "-2"]) == 2
