"""Our Tx-LLM SOTA table vs TDC's own files: the leaderboard metrics/splits and the leaderboard entries.

Runs only when pointed at official checkouts (each test skips with the reason otherwise):

    LLMLAB_TDC_OFFICIAL=/path/to/TDC                      # mims-harvard/TDC (the folder holding tdc/metadata.py)
    LLMLAB_TDC_WEBSITE=/path/to/tdc2website-flask         # mims-harvard/tdc2website-flask (benchmark/leaderboards.py)
    python -m pytest tests/parity/test_tx_llm_tdc.py -q

Neither file is imported: both are read as Python literals (``ast``), so no TDC install is needed. Run
2026-12-04 against TDC c310c35f and tdc2website-flask d5425bef: see docs/tx_llm.md.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import pytest

from llmlab.tasks.tx_llm import sota as S

TDC = os.environ.get("LLMLAB_TDC_OFFICIAL")
WEBSITE = os.environ.get("LLMLAB_TDC_WEBSITE")
TDC_NAMES = {"roc-auc": "auroc", "pr-auc": "auprc", "pcc": "pearson", "spearman": "spearman", "mae": "mae"}


def _literals(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


@pytest.mark.skipif(not TDC, reason="set LLMLAB_TDC_OFFICIAL to a mims-harvard/TDC checkout")
def test_leaderboard_metrics_and_splits_are_tdcs() -> None:
    meta = _literals(Path(str(TDC)) / "tdc" / "metadata.py")
    metrics = {**meta["admet_metrics"], **{k: v for k, v in meta["drugsyn_metrics"].items()
                                           if k in meta["drugsyn_benchmark"]["Synergy"]}, **meta["dti_dg_metrics"]}
    assert {k: TDC_NAMES[v] for k, v in metrics.items()} == S.TDC_LEADERBOARD_METRICS
    by_key = {k.lower(): e for k, e in S.SOTA.items()}
    splits = {**meta["admet_splits"], **meta["drugsyn_splits"]}
    for key, split in splits.items():
        assert by_key[key].split == split, key  # scaffold (ADMET), combination (DrugCombo)
    assert meta["dti_dg_splits"] == {"bindingdb_patent": "group"} and by_key["bindingdb_patent"].split == "temporal"


@pytest.mark.skipif(not WEBSITE, reason="set LLMLAB_TDC_WEBSITE to a mims-harvard/tdc2website-flask checkout")
def test_every_leaderboard_sota_is_an_entry_of_tdcs_leaderboard() -> None:
    boards = _literals(Path(str(WEBSITE)) / "benchmark" / "leaderboards.py")["_LEADERBOARDS"]
    by_key = {k.lower(): v for k, v in boards.items()}
    found, absent = [], []
    for name in S.TDC_LEADERBOARD_METRICS:
        e = S.sota_entry(name)
        assert e is not None
        board = by_key.get(name)
        if board is None:
            absent.append(name)
            continue
        values = [row[-1] for row in board[3]]
        assert any(abs(v - e.value) < 5e-4 for v in values), (name, e.value, values[:5])
        found.append(name)
    assert absent == ["drugcomb_css"]  # TDC's site lists no DrugComb CSS leaderboard
    assert len(found) == 27
