"""``llmlab medfuzz run`` on the real MedQA items with scripted models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.cli import main


def test_run_on_medqa_with_scripted_models(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fuzz.jsonl"
    code = main([
        "medfuzz", "run", "--target", "mock:text=Reasoning.\nAnswer: B", "--attacker",
        "mock:text=<question>A rewritten vignette.</question><characteristics>x</characteristics>",
        "--limit", "6", "-p", "max_turns=2", "-p", "n_controls=3", "--out", str(out), "--json"])
    out_text, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(out_text)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    correct = sum(r["answer"] == "B" for r in rows)  # the target always answers B
    assert rep["n"] == 6 and rep["accuracy_before"] == correct / 6
    assert rep["successful_attacks"] == 0 and rep["accuracy_after"] == rep["accuracy_before"]
    assert all(len(r["turns"]) == (2 if r["answer"] == "B" else 0) for r in rows)


def test_bad_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["medfuzz", "run", "--target", "mock:echo", "--attacker", "mock:echo",
                                    "-p", "max_turns=0"])
    err = capsys.readouterr().err
    assert code != 0 and "max_turns" in err and len(err.strip().splitlines()) == 1


def test_mmlu_redux_medical_subjects(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fuzz.jsonl"
    code = main(["medfuzz", "run", "--task", "mmlu_redux", "-t", "subjects=[clinical_knowledge]",
                 "--target", "mock:text=Answer: A", "--attacker", "mock:text=<question>rewrite</question>",
                 "--limit", "4", "-p", "max_turns=1", "-p", "n_controls=0", "--out", str(out), "--json"])
    _, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["id"].startswith("clinical_knowledge/") for r in rows)
    assert [r["original_correct"] for r in rows] == [r["answer"] == "A" for r in rows]
