"""GPQA from a user's file: columns, shuffling (per item / official / none), letter scoring, with textgrad."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.gpqa import GPQA, extract_letter

COLS = ["Record ID", "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]


def _file(tmp_path: Path, n: int = 20) -> Path:
    path = tmp_path / "gpqa.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLS)
        for i in range(n):
            w.writerow([f"rec{i}", f"Question {i}?", f"right {i}", f"wrong a{i}", f"wrong b{i}", f"wrong c{i}"])
    return path


def test_items_prompt_and_score(tmp_path: Path) -> None:
    task = GPQA({"data_file": str(_file(tmp_path))})
    items = task.items()
    assert len(items) == 20
    for it in items:
        assert it.input["choices"]["ABCD".index(it.target)].startswith("right")
    assert len({it.target for it in items}) > 1  # the correct letter varies
    q = task.prompt(items[0])
    assert "'Answer: $LETTER'" in q.text and "\nA) " in q.text and "\nD) " in q.text
    assert task.score(items[0], f"...\nAnswer: {items[0].target}").correct
    assert q.extract is not None and q.extract("Answer: d") == "D"


def test_official_order_puts_every_answer_at_c(tmp_path: Path) -> None:
    """textgrad seeds 42 before each shuffle: the same permutation for every question (checked in its venv)."""
    items = GPQA({"data_file": str(_file(tmp_path)), "shuffle": "official"}).items()
    assert {it.target for it in items} == {"C"}
    assert {it.target for it in GPQA({"data_file": str(_file(tmp_path)), "shuffle": "none"}).items()} == {"D"}


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data"):
        GPQA().items()
    bad = tmp_path / "bad.csv"
    bad.write_text("Question,Correct Answer\nq,a\n")
    with pytest.raises(DataError, match="Incorrect Answer 1"):
        GPQA({"data_file": str(bad)}).items()
    assert extract_letter("no answer") is None


def test_textgrad_eval_on_a_gpqa_file(tmp_path: Path) -> None:
    import sqlite3

    from llmlab.cli import main

    rc = main(["eval", "gpqa", "--data", str(_file(tmp_path, 3)), "--method", "textgrad", "-p", "iterations=1",
               "-m", "mock:py=tests.methods.textgrad.helpers:reply_mc", "--runs-dir", str(tmp_path / "runs"),
               "--run-id", "g", "--no-progress"])
    assert rc == 0
    rows = sqlite3.connect(tmp_path / "runs" / "g" / "run.sqlite").execute("SELECT answer, calls FROM items").fetchall()
    assert len(rows) == 3 and all(calls == 4 for _, calls in rows)  # zero-shot + loss, feedback, update
