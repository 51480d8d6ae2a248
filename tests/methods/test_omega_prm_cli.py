from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from llmlab.cli import cli
from llmlab.methods.prm import read_math_aps, read_math_shepherd, read_prm800k
from tests.helpers.omega_world import ANSWER, QUESTION


def _run(tmp_path: Path, layout: str) -> tuple[Path, str]:
    data = tmp_path / "problems.jsonl"
    data.write_text(json.dumps({"question": QUESTION, "answer": ANSWER}) + "\n")
    out = tmp_path / f"{layout}.jsonl"
    result = CliRunner().invoke(cli, [
        "omegaprm", "collect", "--model", "mock:py=tests.helpers.omega_world:default_reply", "--data", str(data),
        "-p", "k=4", "-p", "search_limit=100", "-p", "rollout_budget=1000", "--layout", layout, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def _truth(steps: list[str]) -> list[float]:
    """A step is correct iff neither it nor an earlier step is a wrong ("oops") step."""
    out, bad = [], False
    for s in steps:
        bad = bad or "oops" in s or "still confused" in s
        out.append(0.0 if bad else 1.0)
    return out


def test_collect_writes_each_layout_with_true_labels(tmp_path: Path) -> None:
    out, text = _run(tmp_path, "math-shepherd")
    assert "1 problems (0 skipped by the filter)" in text and "18 searches" in text
    shepherd = read_math_shepherd(out)
    assert shepherd and all(ex.labels == _truth(ex.steps) for ex in shepherd)
    out, _ = _run(tmp_path, "prm800k")
    for ex in read_prm800k(out):
        assert all(lab is None or lab == t for lab, t in zip(ex.labels, _truth(ex.steps), strict=True))
    out, _ = _run(tmp_path, "math-aps-tree")
    tree_examples = read_math_aps(out)
    out, _ = _run(tmp_path, "math-aps")
    flat_examples = read_math_aps(out)
    # The flat layout rebuilds a tree by longest-prefix parents: other paths, the same labelled prefixes.
    assert tree_examples and flat_examples
    for ex in [*tree_examples, *flat_examples]:
        for lab, t in zip(ex.labels, _truth(ex.steps), strict=True):
            assert lab is None or (lab > 0) == (t > 0)
