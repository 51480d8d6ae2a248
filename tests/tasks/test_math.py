from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.cli import cli
from llmlab.core.contracts import Item
from llmlab.core.errors import DataError
from llmlab.core.registry import TASKS
from llmlab.tasks.math import MATH

PROMPT_GOLDEN = (
    "Solve the following math problem. Reason step by step, separating steps with a blank line, and put "
    "your final answer in \\boxed{}.\n\nProblem: What is $1+1$?"
)


def test_registered() -> None:
    assert TASKS.get("math") is MATH


def test_real_math500(shared_data: Path) -> None:
    task = MATH({"data_dir": str(shared_data)})
    items = list(task.items())
    assert len(items) == 500 and len({i.id for i in items}) == 500
    subjects = Counter(i.metadata["subject"] for i in items)
    assert subjects["Algebra"] == 124 and subjects["Counting & Probability"] == 38
    # The reference solutions score 1 on all 500 items, both lenient and hendrycks-strict.
    scores = [task.score(i, i.metadata["solution"]) for i in items]
    report = task.aggregate(scores)
    assert report["accuracy"] == 1.0 and report["strict_accuracy"] == 1.0
    level5 = list(MATH({"data_dir": str(shared_data), "level": 5}).items())
    assert len(level5) == 134


def test_prompt_golden() -> None:
    q = MATH().prompt(Item("t/1", "What is $1+1$?", "2"))
    assert q.text == PROMPT_GOLDEN and q.extract is not None
    assert q.extract("so \\boxed{2}.") == "2"
    # Voting keys: equal numbers share one, and the task scores the key like free text.
    assert q.extract("\\boxed{\\dfrac12}") == q.extract("The answer is 0.5.") == "0.5"
    assert MATH().score(Item("t", "q", "\\frac{1}{2}"), q.extract("\\boxed{1/2}")).correct
    for text in ("\\boxed{(1, 2]}", "The answer is $x = 3$.", "\\boxed{\\frac{\\sqrt{3}}{2}}"):
        key = q.extract(text)
        assert key is not None and q.extract(key) == key
    assert q.extract("no answer given") is None


def test_score_free_text_and_extracted() -> None:
    task = MATH()
    item = Item("t", "q", "\\left( 3, \\frac{\\pi}{2} \\right)")
    assert task.score(item, "Thus $\\boxed{(3,\\frac{\\pi}{2})}$.").correct
    assert task.score(item, "(3, \\frac{\\pi}{2})").correct
    assert not task.score(item, "\\boxed{(3, \\pi)}").correct
    none = task.score(item, "I am not sure.\nMaybe later.")
    assert none.extracted is None and not none.correct
    assert not task.score(item, None).correct
    # Lenient vs strict: sqrt(12) = 2 sqrt(3) only for the lenient grader.
    s = task.score(Item("t", "q", "2\\sqrt{3}"), "\\boxed{\\sqrt{12}}")
    assert s.correct and s.details["strict"] is False


def test_llmlab_score_math(tmp_path: Path) -> None:
    lines = [
        {"reference": "\\frac{1}{2}", "prediction": "So the answer is \\boxed{0.5}."},  # right
        {"reference": "We get $\\boxed{10^\\circ}$.", "prediction": "The answer is 10."},  # right
        {"reference": "[2,5)", "prediction": "\\boxed{(2,5)}"},  # wrong
        {"reference": 7, "prediction": 7},  # right
        {"reference": "3", "prediction": "no idea\nreally"},  # no answer
    ]
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(cli, ["score", "math", "--predictions", str(preds), "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 5 and report["accuracy"] == pytest.approx(3 / 5) and report["no_answer"] == 1
    assert [json.loads(x)["correct"] for x in out.read_text().splitlines()] == [True, True, False, True, False]


@pytest.mark.parametrize(("record", "message"), [
    ({"prediction": "1"}, "missing 'reference'"),
    ({"reference": "1", "prediction": ["x"]}, "'prediction' must be a string"),
    ({"reference": "", "prediction": "1"}, "non-empty"),
])
def test_item_from_record_errors(record: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        MATH().item_from_record(record, "p.jsonl:3")


def test_only_test_split() -> None:
    with pytest.raises(DataError, match="only the 'test' split"):
        list(MATH({"split": "train"}).items())
