from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.core.errors import DataError
from llmlab.tasks.wildbench.leaderboard import verify_leaderboard


def test_verify_leaderboard_passes_on_official_tables(shared_data: Path) -> None:
    checks = verify_leaderboard(shared_data / "wildbench-leaderboard")
    assert len(checks) > 5000
    assert max(c.diff for c in checks) < 1e-9
    files = {c.file for c in checks}
    assert {"score.json", "pairwise-haiku-K=500.json", "all_stat_wildbench.500.json"} <= files
    mix = [c for c in checks if c.model == "gpt-4o-2024-05-13" and c.field == "mixture_of_rewards.K=500"]
    assert mix and mix[0].reported == pytest.approx(24.755859375)


def test_verify_refuses_a_folder_without_tables(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no WildBench leaderboard tables"):
        verify_leaderboard(tmp_path)
