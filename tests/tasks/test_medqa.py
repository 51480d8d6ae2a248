"""MedQA: loading the real US test file, prompts, letter scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.core.contracts import Item
from llmlab.core.errors import DataError
from llmlab.tasks.medqa import MedQA, load_medqa


def test_real_file_counts_and_answers(shared_data: Path) -> None:
    items = list(MedQA().items())
    assert len(items) == 1273
    assert {it.target for it in items} <= set("ABCD")
    assert all(set(it.metadata["options"]) == set("ABCD") for it in items)
    assert sum(it.metadata["step"] == "step1" for it in items) == 679
    step23 = list(MedQA({"step": "step2&3"}).items())
    assert len(step23) == 594
    five = list(MedQA({"variant": "5_options"}).items())
    assert len(five) == 1273 and set(five[0].metadata["options"]) == set("ABCDE")
    assert items[0].target == "B"  # the first row's answer_idx


def test_prompt_and_score() -> None:
    task = MedQA()
    item = Item("medqa-0", "Which drug?", "C", {"options": {"A": "a", "B": "b", "C": "c", "D": "d"}})
    q = task.prompt(item)
    assert "Which drug?" in q.text and "C. c" in q.text and q.text.index("A. a") < q.text.index("D. d")
    assert q.extract is not None and q.extract("I think A... Answer: C") == "C"
    assert task.score(item, "C").correct
    assert not task.score(item, "Answer: D").correct
    s = task.score(item, "no idea")
    assert s.extracted is None and not s.correct
    assert task.aggregate([s, task.score(item, "C")]) == {"n": 2, "score": 0.5, "accuracy": 0.5, "unparsed": 1}


def test_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text('{"question": "q", "options": {"A": "x"}, "answer_idx": "B"}\n')
    with pytest.raises(DataError, match=r"t.jsonl:1"):
        load_medqa(p)


def test_prediction_records() -> None:
    item, pred = MedQA().item_from_record({"options": {"A": "x", "B": "y"}, "answer_idx": "B",
                                           "prediction": "Answer: B"}, "f:1")
    assert MedQA().score(item, pred).correct
    with pytest.raises(DataError, match="f:2"):
        MedQA().item_from_record({"options": {"A": "x"}, "answer_idx": "Z", "prediction": "A"}, "f:2")
