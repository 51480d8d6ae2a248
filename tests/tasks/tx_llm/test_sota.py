"""The paper's SOTA table (arXiv 2406.06316v1, Tables A.7/A.8): invariants, the paper's own checks, the rule."""

from __future__ import annotations

from statistics import median

import pytest

from llmlab.cli import main
from llmlab.tasks.tx_llm import sota as S

# Table A.6 of the paper: median relative difference of Tx-LLM (M) from SOTA per feature type.
TABLE_A6 = {"SMILES + Text": 0.048, "Nucleotide + Amino acid": -0.007, "Amino acid": -0.080, "SMILES": -0.082,
            "Amino acid + SMILES": -0.482, "Nucleotide": -0.888}


def test_every_row_is_consistent_and_cites_its_source() -> None:
    assert len(S.SOTA) + len(S.NO_SOTA) == 66  # the paper's 66 tasks
    assert not {k.lower() for k in S.SOTA} & {k.lower() for k in S.NO_SOTA}
    for name, e in S.SOTA.items():
        assert e.metric in S.KIND_METRICS[e.kind], name
        assert e.table == ("A.7" if e.kind == "binary" else "A.8"), name
        assert e.value > 0 and e.txllm >= 0, name
        assert e.verified and e.ref in S.REFERENCES, name
        assert "2406.06316" in e.source and f"Table {e.table}" in e.source and f"[{e.ref}]" in e.source
        assert S.sota_entry(name.upper()) is e and S.sota_entry(name.replace("_", " ")) is e


def test_tdc_leaderboard_datasets_use_tdcs_metric_and_split() -> None:
    by_key = {k.lower(): e for k, e in S.SOTA.items()}
    assert set(S.TDC_LEADERBOARD_METRICS) <= set(by_key)  # the paper compares every leaderboard dataset
    for key, metric in S.TDC_LEADERBOARD_METRICS.items():
        e = by_key[key]
        assert e.metric == metric, key
        assert e.split == ("combination" if key.startswith("drugcomb") else "temporal"
                           if key == "bindingdb_patent" else "scaffold"), key


def test_the_papers_table_reproduces_its_table_a6_and_binary_above_count() -> None:
    by_feature: dict[str, list[float]] = {}
    for e in S.SOTA.values():
        by_feature.setdefault(e.feature, []).append(S.relative_difference(e.metric, e.txllm, e.value))
    assert set(by_feature) == set(TABLE_A6)  # Amino acid + Text has only DisGeNET, which has no SOTA
    for feature, want in TABLE_A6.items():
        assert median(by_feature[feature]) == pytest.approx(want, abs=1.5e-3), feature  # tabled values are rounded
    binary = [S.classify(e.metric, e.txllm, e.value) for e in S.SOTA.values() if e.kind == "binary"]
    assert binary.count("above") == 12  # §4.1: Tx-LLM outperformed SOTA on 12 binary classification datasets


@pytest.mark.parametrize("metric,value,sota,want", [
    ("auroc", 0.990, 0.988, "above"),   # HIA_Hou in Table A.7
    ("auroc", 0.882, 0.915, "near"),    # BBB_Martins
    ("auroc", 0.786, 0.871, "near"),    # AMES: -9.8%
    ("auprc", 0.659, 0.739, "below"),   # CYP2D6_Veith: -10.8%
    ("mae", 14.057, 16.858, "above"),   # DrugComb_CSS: lower MAE is better
    ("mae", 0.432, 0.285, "below"),     # Caco2_Wang
    ("mse", 0.24, 0.219, "near"),       # DAVIS-like: +9.6% MSE
    ("spearman", 0.5, 0.5, "near"),     # equal is not better
    ("auroc", 0.9 * 0.8, 0.8, "near"),  # exactly 10% worse: still near
    ("auroc", 0.9 * 0.8 - 1e-6, 0.8, "below"),
    ("mae", 1.1 * 0.5, 0.5, "near"),
    ("mae", 1.1 * 0.5 + 1e-6, 0.5, "below"),
])
def test_above_near_below_follow_the_papers_rule(metric: S.Metric, value: float, sota: float, want: str) -> None:
    assert S.classify(metric, value, sota) == want


def test_compare_to_sota_reports_status_source_and_refuses_other_metrics() -> None:
    c = S.compare_to_sota("ames", 0.786)
    assert c is not None and c["status"] == "near" and c["sota"] == 0.871 and c["verified"] is True
    assert c["relative"] == pytest.approx((0.786 - 0.871) / 0.871) and c["split"] == "scaffold"
    assert "Turon" in c["source"] and c["txllm"] == 0.786
    assert S.compare_to_sota("AMES", 0.786, tolerance=0.05)["status"] == "below"  # type: ignore[index]
    assert S.compare_to_sota("AMES", 0.786, metric="auprc")["status"] == "incomparable"  # type: ignore[index]
    assert S.compare_to_sota("AMES", None)["status"] == "undefined"  # type: ignore[index]
    assert S.compare_to_sota("Phase1_Trial", 0.6)["status"] == "above"  # type: ignore[index]
    assert S.compare_to_sota("TAP", 1.0) is None and S.compare_to_sota("USPTO-50K", 0.5) is None
    assert S.compare_to_sota("Nope", 0.5) is None


def test_cli_lists_every_row_with_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["txllm", "sota"]) == 0
    out = capsys.readouterr().out
    for name, e in S.SOTA.items():
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert f"{e.value:.3f}" in line and e.source in line and " yes " in line
    assert "TAP" in out and "10%" in out
    assert main(["txllm", "sota", "--catalogue"]) == 0
    short = capsys.readouterr().out
    assert "phase1 (Phase1_Trial)" in short and "PAMPA_NCATS" not in short and "USPTO-50K" in short
