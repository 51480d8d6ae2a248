"""BBH object counting and word sorting: data, official splits, official integer parsing, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Item, Roles
from llmlab.core.errors import DataError
from llmlab.tasks.bbh import BBHObjectCounting, BBHWordSorting, parse_integer_answer, sorted_words

# (text, official parse, official parse of the first line): outputs of textgrad 0.1.8's
# tasks.big_bench_hard.parse_integer_answer, run in a scratch venv (its fallback for "no number" is 0).
OFFICIAL = [
    ("Answer: 7", 7, 7), ("I have 3 apples and 4 pears, so 7.", 7, 7), ("Answer: 12.", 12, 12),
    ("Answer: $1,234", 1234, 1234), ("x 3.5 y", 3, 3), ("2nd try: 9th", 9, 9), ("no digits here", 0, 0),
    ("", 0, 0), ("Answer: 5\n\nExplanation with 10 items", 10, 5), ("a.5", 0, 0), ("v1.2.3", 1, 1),
    ("Answer: 08", 8, 8),
]


@pytest.mark.parametrize(("text", "official", "official_first_line"), OFFICIAL)
def test_integer_parser_matches_official(text: str, official: int, official_first_line: int) -> None:
    ours = parse_integer_answer(text)
    assert (ours if ours is not None else 0) == official
    first = parse_integer_answer(text, only_first_line=True)
    assert (first if first is not None else 0) == official_first_line


def test_object_counting_split_and_prompt(shared_data: Path) -> None:
    sizes = {s: len(BBHObjectCounting({"split": s}).items()) for s in ("train", "val", "test", "all")}
    assert sizes == {"train": 50, "val": 100, "test": 100, "all": 250}
    task = BBHObjectCounting()
    raw = json.loads((shared_data / "bbh" / "bbh" / "object_counting.json").read_text())["examples"]
    first = task.items()[0]
    assert first.input == raw[150]["input"] and first.target == raw[150]["target"]
    q = task.prompt(first)
    assert q.messages[0].role == "system" and "Answer: $VALUE" in q.messages[0].text
    assert q.messages[1].text == raw[150]["input"]
    q2 = BBHObjectCounting({"system_prompt": "Count."}).prompt(first)
    assert q2.messages[0].text == "Count."


def test_object_counting_score() -> None:
    task = BBHObjectCounting()
    item = Item("x", "How many?", "8")
    assert task.score(item, "There are eight: 1+2+5 = 8.\nAnswer: 8").correct
    assert not task.score(item, "Answer: 7").correct
    s = task.score(item, "I cannot tell.")
    assert not s.correct and s.extracted is None


def test_word_sorting_exact_match(shared_data: Path) -> None:
    task = BBHWordSorting()
    item = task.items()[0]
    words = str(item.target).split()
    assert task.score(item, "Let me sort.\nAnswer: " + ", ".join(w.capitalize() for w in words)).correct
    assert not task.score(item, "Answer: " + " ".join(reversed(words))).correct or len(set(words)) == 1
    assert sorted_words("first line\nbanana apple") == ["banana", "apple"]
    assert sorted_words("") is None


def test_word_sorting_judge_mode() -> None:
    task = BBHWordSorting({"judge": True})
    item = Item("x", "Sort: b a", "a b")
    yes = Roles(Model("mock:text=<ACCURACY> 1 </ACCURACY>"))
    s = run_sync(task.ascore(item, "Answer: b a", yes))
    assert s.correct and s.details["exact_match"] is False
    s = run_sync(task.ascore(item, "Answer: a b", Roles(Model(MockBackend(["I think so"])))))
    assert not s.correct and s.details["judge_unparsed"]


def test_missing_data_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        BBHObjectCounting({"data_dir": str(tmp_path)}).items()
    (tmp_path / "bbh" / "bbh").mkdir(parents=True)
    (tmp_path / "bbh" / "bbh" / "object_counting.json").write_text('{"examples": [{"input": 1}]}')
    with pytest.raises(DataError, match="example 0"):
        BBHObjectCounting({"data_dir": str(tmp_path)}).items()


def test_score_file_records() -> None:
    task = BBHObjectCounting()
    item, pred = task.item_from_record({"input": "q", "target": "3", "prediction": "Answer: 3"}, "p:1")
    assert task.score(item, pred).correct
    with pytest.raises(DataError, match="missing 'target'"):
        task.item_from_record({"input": "q", "prediction": "x"}, "p:2")
