from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.tasks.mmlu_redux.data import load_redux
from llmlab.tasks.mmlu_redux.stats import redux_stats


def test_real_data_label_counts_and_virology(shared_data: Path) -> None:
    infos, rows = load_redux(shared_data / "mmlu-redux-2.0")
    stats = redux_stats(infos, rows)
    assert stats["n_files"] == 57 and stats["n_rows"] == 5700
    assert stats["error_types"] == {"ok": 5330, "bad question clarity": 132, "wrong groundtruth": 107,
                                    "multiple correct answers": 39, "no correct answer": 35, "expert": 32,
                                    "bad options clarity": 25}
    assert stats["subjects"]["virology"]["erroneous"] == pytest.approx(0.57)
    assert stats["erroneous"]["fraction"] == pytest.approx(0.0649, abs=5e-5)
    # SOURCE.txt and spec §3.2 say 10 semicolon files; the headers show 9
    assert sum(1 for f in stats["files"].values() if f["delimiter"] == ";") == 9
    assert stats["files"]["moral_scenarios"]["encoding"] == "cp1252"
    assert stats["unknown_labels"] == []
    # every correct_answer is classified; nothing is dropped silently
    assert sum(sum(k.values()) for k in stats["correct_answer_kinds"].values()) == 5700
    assert sum(stats["corrected"].values()) == 5700
