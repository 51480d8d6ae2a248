"""The Husky evaluation sets on the real data, and their answer normalisation (official vs ours)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.core.contracts import Item
from llmlab.core.errors import DataError
from llmlab.tasks.husky_eval import (
    Bamboogle,
    HotpotQA,
    HuskyMATH,
    StrategyQA,
    TabMWP,
    f1_score,
    final_answer,
    normalize_answer,
    official_tabmwp_em,
    whole_number,
    yes_no,
)

ROWS = [(Bamboogle, 125, "bamboogle-0"), (HotpotQA, 1000, "hotpotqa-3"), (StrategyQA, 300, "strategyqa-0"),
        (TabMWP, 1000, "tabmwp-0"), (HuskyMATH, 5000, "husky_math-0")]


@pytest.mark.parametrize(("cls", "n", "first_id"), ROWS)
def test_real_sets_load_and_every_reference_scores_itself_correct(shared_data: Path, cls: type, n: int,
                                                                     first_id: str) -> None:
    task = cls()
    items = list(task.items())
    assert len(items) == n and items[0].id == first_id and len({i.id for i in items}) == n
    ref = (lambda t: "yes" if t else "no") if cls is StrategyQA else str
    wrong = [i.id for i in items if not task.score(i, f"Some reasoning. The answer is {ref(i.target)}.").correct]
    assert wrong == []
    q = task.prompt(items[0])
    assert q.metadata["question"] == items[0].input and q.metadata["max_steps"] == (10 if cls is HuskyMATH else 5)
    assert items[0].input in q.text


def test_final_answer_forms() -> None:
    assert final_answer("Reasoning.\nThe answer is James Madison.") == "James Madison"
    assert final_answer("the answer is: **Titan IIIE**") == "Titan IIIE"
    assert final_answer("So $\\boxed{12}$.") == "12"
    assert final_answer("The answer is $\\frac{1}{2}$.") == "\\frac{1}{2}"
    assert final_answer(None) == "" and final_answer("Paris") == "Paris"


def test_squad_em_and_f1() -> None:
    assert normalize_answer("The Titan-IIIE, a rocket.") == "titaniiie rocket"
    t = Bamboogle()
    s = t.score(Item("b", "Q", "james madison"), "The answer is President James Madison.")
    assert not s.correct and s.details["f1"] == pytest.approx(0.8)
    assert f1_score("yes", "no") == 0.0 and f1_score("no", "no") == 1.0
    agg = t.aggregate([s, t.score(Item("b2", "Q", "1999"), "1999")])
    assert agg["em"] == 0.5 and agg["f1"] == pytest.approx(0.9)


def test_strategyqa_yes_no_and_the_official_prefix_rule() -> None:
    t = StrategyQA()
    assert t.score(Item("s", "Q", True), "Yes, because ...").correct
    assert t.score(Item("s", "Q", False), "The answer is no.").correct
    assert not t.score(Item("s", "Q", False), "yes").correct
    not_sure = t.score(Item("s", "Q", False), "not sure")
    assert not not_sure.correct and not_sure.details["official"]  # official: "not sure".startswith("no")
    assert yes_no("True.") is True and yes_no("") is None


def test_tabmwp_numbers_by_value_unlike_the_official_first_number() -> None:
    t = TabMWP()
    assert t.score(Item("t", "Q", "3/10"), "The answer is 0.3.").correct
    wrong = t.score(Item("t", "Q", "3/10"), "The answer is 3/11.")
    assert not wrong.correct and wrong.details["official"]  # official reads both as 3.0
    assert t.score(Item("t", "Q", "1,250"), "$1,250.00").correct
    assert t.score(Item("t", "Q", "shortage"), "There is a shortage").details["f1"] > 0
    assert t.score(Item("t", "Q", "shortage"), "a shortage.").correct
    assert official_tabmwp_em("2:40 P.M.", "2:35 P.M.")
    assert not t.score(Item("t", "Q", "2:35 P.M."), "2:40 P.M.").correct
    assert whole_number("12%") == 12 and whole_number("about 12") is None


def test_math_equivalence_and_unit_strip() -> None:
    t = HuskyMATH()
    assert t.score(Item("m", "Q", "10"), "The answer is 10 meters").correct
    assert t.score(Item("m", "Q", "\\frac{3}{4}"), "The answer is \\boxed{0.75}.").correct
    assert not t.score(Item("m", "Q", "2"), "The answer is 3.").correct
    assert t.score(Item("m", "Q", "2"), None).extracted is None


def test_bad_data_line_and_prediction_records(tmp_path: Path) -> None:
    d = tmp_path / "husky-eval" / "bamboogle"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text('{"index": 0, "question": "Q?", "answer": "a"}\n{"index": 1, "question": 3}\n')
    with pytest.raises(DataError, match=r"test.jsonl:2: each line needs a 'question' string and an 'answer'"):
        list(Bamboogle({"data_dir": str(tmp_path)}).items())
    item, pred = Bamboogle().item_from_record({"answer": "x", "prediction": "The answer is x."}, "f:1")
    assert Bamboogle().score(item, pred).correct
    with pytest.raises(DataError, match="f:2: a bamboogle prediction line needs"):
        Bamboogle().item_from_record({"answer": "x"}, "f:2")
