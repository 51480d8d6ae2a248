from __future__ import annotations

from llmlab.tasks.wildbench.parsing import parse_choice, parse_score


def test_parse_choice_and_score() -> None:
    assert parse_choice('{"choice": "B++", "analysis of A": "x"}') == ("B", 2)
    assert parse_choice('Here you go:\n{"analysis of A": "has "quotes"", "choice": "A+"}') == ("A", 1)
    assert parse_choice('{"choice": "A=B"}') == ("tie", 0)
    assert parse_choice('{"choice": "C"}') is None
    assert parse_choice("no json") is None
    assert parse_score('{"strengths": "s", "weaknesses": "w", "score": "7"}') == 7.0
    assert parse_score('{"score": 8}') == 8.0
    assert parse_score('{"score": "great"}') is None
