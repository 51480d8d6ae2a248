from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from llmlab.grading.math_answers import (
    canonical_math_answer,
    canonical_number,
    extract_gsm8k_answer,
    extract_math_answer,
    gsm8k_reference,
    is_equiv,
    last_boxed_only_string,
    numbers_equivalent,
    remove_boxed,
    strip_string,
)

# (free text, canonical answer) — each line is one rule of the GSM8K extractor.
GSM8K_CASES = [
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ("#### 1,450,000", "1450000"),
    ("The answer is $1,234.50", "1234.5"),
    ("The answer is $1,234.50.", "1234.5"),
    ("so the total is \\boxed{42}.", "42"),
    ("$\\boxed{\\$1,234.50}$", "1234.5"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("**Answer:** 7", "7"),
    ("Answer: 3/4", "0.75"),
    ("\\frac{3}{4}", "0.75"),
    ("\\dfrac34", "0.75"),
    ("-\\frac{1}{2}", "-0.5"),
    ("The temperature ends at -5 degrees.", "-5"),
    ("It ends at −3.", "-3"),
    ("She lost -$5 in total", "-5"),
    ("The discount is 25%.", "25"),
    ("#### 18 dollars", "18"),
    ("He drives at 5 km/h", "5"),
    ("She has 7 apples.", "7"),
    ("1,234,567 people", "1234567"),
    ("The answer is 12.", "12"),
    ("18.00", "18"),
    ("#### -12.50 dollars", "-12.5"),
    ("#### 1/3", "1/3"),
    (".5", "0.5"),
    ("Answer: 5 + 3 = 8", "8"),
    ("The answer is 20% of 50 = 10", "10"),
    ("The answer is:\n\n42", "42"),
    ("Final Answer: The final answer is $18$. I hope it is correct.", "18"),
    # A range's hyphen is not a minus sign.
    ("Read pages 10-12", "12"),
    # Groups of three only: a list is several numbers.
    ("Pick 1,2,3", "3"),
]


@pytest.mark.parametrize(("text", "expected"), GSM8K_CASES)
def test_gsm8k_extraction(text: str, expected: str) -> None:
    assert extract_gsm8k_answer(text) == expected


@pytest.mark.parametrize(("text", "expected"), GSM8K_CASES)
def test_gsm8k_extraction_is_idempotent(text: str, expected: str) -> None:
    once = extract_gsm8k_answer(text)
    assert extract_gsm8k_answer(once) == once


def test_marker_beats_last_number() -> None:
    # The last number is 30, but an explicit marker says 15.
    assert extract_gsm8k_answer("First 10 then 20.\nThe answer is 15.\nCheck: 15*2=30") == "15"
    assert extract_gsm8k_answer("#### 72\nThat is 3 more than 69.") == "72"
    assert extract_gsm8k_answer("\\boxed{6} because 2*3=6 and not 7") == "6"


def test_marker_priority_and_last_occurrence() -> None:
    # "####" outranks a box, a box outranks an answer phrase.
    assert extract_gsm8k_answer("The answer is 5. \\boxed{6}\n#### 7") == "7"
    assert extract_gsm8k_answer("The answer is 5. So \\boxed{6}") == "6"
    # Within one kind, the last occurrence wins (a self-correction).
    assert extract_gsm8k_answer("The answer is 5. Wait, no: the answer is 6.") == "6"
    # A marker with no number after it falls through to the next rule.
    assert extract_gsm8k_answer("####\nI think it is 4 apples") == "4"


def test_no_number_gives_none() -> None:
    assert extract_gsm8k_answer("I do not know.") is None
    assert extract_gsm8k_answer("") is None
    assert extract_gsm8k_answer(None) is None


def test_canonical_number_forms() -> None:
    assert canonical_number(Fraction(18)) == "18"
    assert canonical_number(Fraction("1234.50")) == "1234.5"
    assert canonical_number(Fraction(-3, 4)) == "-0.75"
    assert canonical_number(Fraction(1, 3)) == "1/3"
    assert canonical_number(Fraction(-1, 80)) == "-0.0125"
    assert canonical_number(Fraction(0)) == "0"


def test_numbers_equivalent() -> None:
    assert numbers_equivalent("18", "18.0")
    assert numbers_equivalent("18", "18.00")
    assert numbers_equivalent("1,234.50", "1234.5")
    assert numbers_equivalent("0.75", "\\frac{3}{4}")
    assert numbers_equivalent("0.333333", "1/3")  # within the relative tolerance
    assert not numbers_equivalent("0.33", "1/3")
    assert not numbers_equivalent("18", "19")
    assert not numbers_equivalent("-18", "18")
    assert not numbers_equivalent(None, "18")
    assert not numbers_equivalent("no number", "18")


def test_gsm8k_reference() -> None:
    assert gsm8k_reference("9 * 2 = <<9*2=18>>18 dollars.\n#### 18") == "18"
    assert gsm8k_reference("a\n#### 1,600") == "1600"
    assert gsm8k_reference("no final line, just 18") is None
    assert gsm8k_reference("#### none") is None


# -- MATH ----------------------------------------------------------------------------------------------


def test_last_boxed_only_string_matches_braces() -> None:
    text = "first \\boxed{1}, then $\\boxed{\\frac{1}{2}}$ done"
    assert last_boxed_only_string(text) == "\\boxed{\\frac{1}{2}}"
    assert last_boxed_only_string("\\fbox{3}") == "\\fbox{3}"
    assert last_boxed_only_string("$\\boxed 5$") == "\\boxed 5"
    assert last_boxed_only_string("no box") is None
    assert last_boxed_only_string("\\boxed{unclosed") is None


def test_remove_boxed() -> None:
    assert remove_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert remove_boxed("\\boxed 5") == "5"
    assert remove_boxed("\\fbox{x}") == "x"
    assert remove_boxed("5") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\tfrac12", "\\frac{1}{2}"),
        ("\\frac1{2}", "\\frac{1}{2}"),
        ("0.5", "\\frac{1}{2}"),
        ("3/4", "\\frac{3}{4}"),
        ("x = 3/4", "\\frac{3}{4}"),  # left side of "=" has <= 2 chars
        ("abc = 3", "abc=3"),  # left side too long: kept
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("\\$5", "5"),
        ("50\\%", "50"),
        ("10 \\text{ cm}", "10"),
        ("\\sqrt2", "\\sqrt{2}"),
        (".5", "\\frac{1}{2}"),  # "." -> "0.5" -> 1/2
        ("{.3}", "{0.3}"),
        ("a\nb", "ab"),
        ("\\!1", "1"),
    ],
)
def test_strip_string(raw: str, expected: str) -> None:
    assert strip_string(raw) == expected


def test_strip_string_rejects_two_units() -> None:
    with pytest.raises(ValueError):
        strip_string("1 \\text{ m} + 2 \\text{ m}")


def test_is_equiv() -> None:
    assert is_equiv("\\frac12", "0.5")
    assert is_equiv("\\dfrac{3}{4}", "3/4")
    assert is_equiv("10^{\\circ}", "10")
    assert not is_equiv("\\frac{1}{3}", "0.33")
    assert is_equiv(None, None)
    assert not is_equiv("1", None)
    # Normalisation fails (two units): raw strings are compared.
    two = "1 \\text{ m} + 2 \\text{ m}"
    assert is_equiv(two, two)
    assert not is_equiv(two, "1+2")


def test_extract_math_answer() -> None:
    assert extract_math_answer("So $x = \\boxed{\\frac{3}{4}}$.") == "\\frac{3}{4}"
    assert extract_math_answer("no box here") is None
    assert extract_math_answer(None) is None
    assert canonical_math_answer("\\boxed{\\dfrac{1}{2}}") == canonical_math_answer("\\boxed{0.5}")


# -- MATH final answers and PRM800K-style equivalence (the hard cases) -------------------------------

from llmlab.grading.math_answers import extract_math_final, math_equal, normalize_math_answer  # noqa: E402

MATH_EQUAL = [
    # fractions: \frac vs /, \dfrac, \tfrac, one-character arguments, decimals
    ("\\frac{1}{2}", "1/2"), ("\\dfrac{3}{4}", "\\frac34"),
    ("\\tfrac{3}{4}", "0.75"), ("-\\frac{1}{3}", "\\frac{-1}{3}"),
    # units and \text{}
    ("5 \\text{ cm}", "5"), ("12\\text{ inches}", "12"), ("10 square units", "10"), ("\\text{Evelyn}", "Evelyn"),
    ("\\textbf{(C)}", "(C)"), ("\\$18.00", "18"),
    # degrees
    ("30^\\circ", "30"), ("30^{\\circ}", "30"), ("30 degrees", "30"), ("30°", "30"),
    # percent, thousands, leading variable
    ("50\\%", "50"), ("1,000", "1000"), ("x = 5", "5"), ("k=-2", "-2"),
    # intervals (same brackets, elementwise) and tuples
    ("[2,5)", "[2, 5)"), ("(-\\infty, 3)", "(-\\infty,3)"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    # sets and lists of solutions, any order
    ("\\{1,2,3\\}", "\\{3, 2, 1\\}"), ("-2, 1", "1,-2"),
    # plus-minus
    ("\\pm 2", "-2, 2"), ("3\\pm\\sqrt{2}", "3+\\sqrt{2}, 3-\\sqrt{2}"),
    # radicals and simple algebra (sympy)
    ("2\\sqrt{3}", "\\sqrt{12}"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"), ("x^2+2x", "2x+x^2"),
]
MATH_DIFFERENT = [
    ("11", "1"), ("(1,2]", "(1,2)"), ("(1,2)", "(2,1)"), ("\\frac{1}{2}", "\\frac{1}{3}"), ("2\\sqrt{3}", "3\\sqrt{2}"),
    ("\\{1,2\\}", "\\{1,2,3\\}"), ("\\pm 2", "2"), ("x+1", "x-1"), ("A", "B"), ("5", None),
]


@pytest.mark.parametrize(("a", "b"), MATH_EQUAL)
def test_math_equal_hard_cases(a: str, b: str) -> None:
    assert math_equal(a, b) and math_equal(b, a)


@pytest.mark.parametrize(("a", "b"), MATH_DIFFERENT)
def test_math_equal_tells_apart(a: str, b: str | None) -> None:
    assert not math_equal(a, b)


def test_normalize_math_answer() -> None:
    assert normalize_math_answer("$x = 1,000 \\text{ cm}$") == "1000"
    assert normalize_math_answer("\\dfrac{1}{2}") == "\\frac{1}{2}"


@pytest.mark.parametrize(("text", "expected"), [
    ("so $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
    ("\\boxed{1} then \\boxed{2}", "2"),
    ("The answer is $x=3$.", "x=3"),
    ("Final Answer: The final answer is $18$. I hope it is correct.", "18"),
    ("Thus the answer is 7.", "7"),
    ("no answer here", None),
])
def test_extract_math_final(text: str, expected: str | None) -> None:
    assert extract_math_final(text) == expected


def test_math500_reference_solutions_are_equivalent_to_their_answers(shared_data: Path) -> None:
    import json

    rows = [json.loads(line) for line in (shared_data / "math-500" / "test500.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    assert all(math_equal(extract_math_final(r["solution"]), r["answer"]) for r in rows)
