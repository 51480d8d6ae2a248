"""Side by side with irrCAC (the library the official PH-LLM figures notebook calls): AC2 on every released pair.

Runs when ``irrCAC`` and ``pandas`` are importable and the shared ratings are present; skips with the reason
otherwise. irrCAC is in no extra (it pins scipy==1.12, which excludes the numpy 2 that datatrove needs); install it
beside the project without its pins (run 2026-12-04: 2 passed)::

    pip install --no-deps --target "$SCRATCH"/irrcac irrCAC==0.4.4
    PYTHONPATH="$SCRATCH"/irrcac python -m pytest tests/parity/test_ph_llm_irrcac.py -q
"""

from __future__ import annotations

import pytest

from llmlab.tasks.ph_llm.agreement import HUMAN_COLUMNS, gwet_ac2, pivot, rater_pairs, read_tsv

irr = pytest.importorskip("irrCAC.raw", reason="irrCAC is not installed (pip install irrCAC==0.4.4)")
pd = pytest.importorskip("pandas")


@pytest.mark.parametrize("vertical", ["sleep", "fitness"])
def test_ac2_equals_irrcac_on_every_expert_pair(shared_data, vertical):
    rows = read_tsv(shared_data / "ph-llm" / "autoeval_ratings" / f"{vertical}_human_expert_ratings.tsv",
                    HUMAN_COLUMNS)
    piv = pivot(rows)
    pairs = rater_pairs(piv)
    assert len(pairs) == {"sleep": 12, "fitness": 11}[vertical]
    for a, b in pairs:
        xs = [r[a] for r in piv.values() if a in r and b in r]
        ys = [r[b] for r in piv.values() if a in r and b in r]
        ref = irr.CAC(pd.DataFrame({"a": xs, "b": ys}), weights="quadratic").gwet()["est"]["coefficient_value"]
        assert gwet_ac2(xs, ys) == pytest.approx(ref, abs=1e-5)  # irrCAC rounds to 5 digits
