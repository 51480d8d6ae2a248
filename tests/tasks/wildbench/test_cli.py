from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from llmlab.tasks.wildbench.cli import wildbench


def test_verify_cli_flags_a_tampered_table(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "wildbench-leaderboard"
    for name in ("pairwise-haiku-K=500.json", "score.json"):
        shutil.copy(src / name, tmp_path / name)
        (tmp_path / name).chmod(0o644)
    runner = CliRunner()
    ok = runner.invoke(wildbench, ["verify-leaderboard", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    p = tmp_path / "score.json"
    d = json.loads(p.read_text())
    d["gpt-4o-2024-05-13"]["task_macro_score"] += 0.05
    p.write_text(json.dumps(d))
    bad = runner.invoke(wildbench, ["verify-leaderboard", str(tmp_path)])
    assert bad.exit_code == 1
    assert "task_macro_score" in bad.output and "gpt-4o-2024-05-13" in bad.output
