"""Option-letter parsing."""

from __future__ import annotations

import pytest

from llmlab.grading.choices import extract_letter


@pytest.mark.parametrize(("text", "want"), [
    ("B", "B"), ("(c)", "C"), ("D.", "D"), ("B. Because", "B"),
    ("First A looks right, but no.\nAnswer: C", "C"),
    ("The answer is (B). Final answer: D", "D"),
    ("I pick **A**", "A"),
    ("A good question without a choice.", None),
    ("Answer: E", None),
    ("", None), (None, None),
])
def test_extract_letter(text: str | None, want: str | None) -> None:
    assert extract_letter(text, "ABCD") == want


def test_five_options() -> None:
    assert extract_letter("Answer: E", "ABCDE") == "E"
