from __future__ import annotations

import pytest

from llmlab.core.errors import DataError
from llmlab.tasks.test_of_time.answers import canonical_answer, normalize_value, parse_answer, parse_label


def test_parse_answer_takes_last_block_with_the_keys() -> None:
    text = 'First {"answer": "wrong"} then JSON = {"explanation": "a {nested} brace", "answer": "352 BC"}'
    assert parse_answer(text, ["answer"]) == {"answer": "352 BC"}
    assert parse_answer('{"explanation": "x"}', ["answer"]) is None
    assert parse_answer(None, ["answer"]) is None


def test_parse_answer_accepts_python_literals_and_unquoted_values() -> None:
    assert parse_answer("{'hours': 5, 'minutes': 0}", ["hours", "minutes"]) == {"hours": 5, "minutes": 0}
    # The question asks for `"answer": <year> <era>` unquoted: invalid JSON, read leniently.
    assert parse_answer('JSON = {"explanation": "it\'s 8 years", "answer": 352 BC}', ["answer"]) == {
        "answer": "352 BC"
    }
    # The compare category's own example misspells the key.
    assert parse_answer('{"unorered_list": ["Bob"]}', ["unordered_list"]) == {"unordered_list": ["Bob"]}


def test_normalize_value_rules() -> None:
    assert normalize_value("1307") == normalize_value(1307) == 1307.0
    assert normalize_value("  Same_Day ") == "same_day"
    assert normalize_value("4:31") == "04:31"
    unordered = normalize_value(["Kyle", "bob", "kyle"], "unordered_list")
    assert unordered == normalize_value(["BOB", "Kyle"], "unordered_list")
    assert normalize_value(["a", "b"], "ordered_list") != normalize_value(["b", "a"], "ordered_list")
    # idempotent: the canonical form survives another round
    once = canonical_answer('{"unordered_list": ["Joe", "Kyle"]}', ["unordered_list"])
    assert canonical_answer(once, ["unordered_list"]) == once


def test_parse_label_is_safe_and_names_the_row() -> None:
    assert parse_label("{'answer': '352 BC'}", "f.json: row 3") == {"answer": "352 BC"}
    with pytest.raises(DataError, match=r"f\.json: row 3: label is not a Python literal"):
        parse_label("__import__('os').system('true')", "f.json: row 3")
    with pytest.raises(DataError, match="row 4: label must be a non-empty dict"):
        parse_label("['a']", "f.json: row 4")
