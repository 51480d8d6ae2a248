from __future__ import annotations

import pytest

from llmlab.tasks.cs_bench import (
    assertion_score_literal,
    assertion_verdict,
    fill_judge_score,
    gold_letter,
    gold_truth,
    mc_choice,
    mc_choice_official,
    open_judge_score,
)


@pytest.mark.parametrize(("text", "official", "fixed"), [
    ("C", "C", "C"),
    ("c", "C", "C"),
    ("The answer is a queue, so C", "A", "C"),
    ("A stack is LIFO; B", "A", "B"),
    ("(d)", "D", "D"),
    ("选项C", None, "C"),
    ("Answer: b", "B", "B"),
    ("no idea", None, None),
    ("A. stack", "A", "A"),
])
def test_mc_official_and_fixed(text: str, official: str | None, fixed: str | None) -> None:
    assert mc_choice_official(text) == official
    assert mc_choice(text) == fixed


def test_assertion_literal_is_always_zero_and_fixed_reads_truth() -> None:
    assert assertion_score_literal("true", True) == 0
    assert assertion_score_literal("false", False) == 0
    assert assertion_verdict("The statement is FALSE.") is False
    assert assertion_verdict("Wahr") is True
    assert assertion_verdict("错误") is False
    assert assertion_verdict("maybe") is None


def test_gold_normalisation_recovers_translation_debris() -> None:
    assert gold_letter('"D"') == "D"
    assert gold_letter("Il s'agit de: A") == "A"
    assert gold_letter("抱歉，你能提供更多内容让我翻译吗？") is None
    assert gold_letter("Eine") is None
    assert gold_truth("Vrai") is True and gold_truth("Falsch") is False and gold_truth(True) is True


def test_judge_parses_take_the_last_number() -> None:
    assert fill_judge_score("0 mistakes, score 1") == 1
    assert fill_judge_score("none") == 0
    assert open_judge_score("tier 3: 7-8 points; I give 8") == 0.8
    assert open_judge_score("10") == 1.0
    assert open_judge_score("score 11") == 0
