r"""Final-answer extraction and equivalence for GSM8K and MATH.

GSM8K (Cobbe et al., 2021, arXiv 2110.14168; data openai/grade-school-math). A reference solution ends with
``#### <number>``. The usual scoring takes the text after "####" (or the last number), strips commas and
``$`` and compares numerically. Model output is free text, so :func:`extract_gsm8k_answer` looks for an
explicit final-answer marker before it falls back to the last number. The markers, in priority order:

1. ``#### <answer>``, the form our prompt asks for (its last occurrence);
2. the last ``\boxed{...}`` (or ``\fbox{...}``);
3. "answer is / answer: / answer =" phrases, including ``**Answer:** 7`` and Minerva's "The final answer
   is $18$" (the last occurrence);
4. the last number anywhere in the text.

Inside a marker's span (up to the end of its sentence or line), a ``=`` moves the span to after the last
``=`` ("The answer is 5 + 3 = 8" gives 8), and the first number in the span is the answer. Numbers may
carry a sign (``-``/``−``), ``$``, thousands commas, a decimal part, a trailing ``%`` or unit (ignored),
and may be fractions ``3/4`` or ``\frac{3}{4}`` / ``\dfrac34``. A number becomes a canonical string:
an integer (``"18"``), a terminating decimal without trailing zeros (``"1234.5"``), or a reduced fraction
(``"1/3"``) when the decimal would not terminate. The canonical form makes voting exact. Extraction is
idempotent: ``extract_gsm8k_answer(extract_gsm8k_answer(t)) == extract_gsm8k_answer(t)``.

MATH (Hendrycks et al., 2021, arXiv 2103.03874): :func:`last_boxed_only_string`, :func:`remove_boxed`,
:func:`strip_string` and :func:`is_equiv` follow the scoring of the official ``modeling/math_equivalence.py``
and ``modeling/eval_math_gpt.py``. They are written from the description in
``shared/specs/evaluation.md`` §10.2; no code was copied.

MATH final answers in free text (:func:`extract_math_final`: the last ``\boxed{}``, else the last "the
answer is ..." statement) and a lenient equivalence, :func:`math_equal`, our own implementation of the kind
of normalisation PRM800K's grader performs (no code read or copied): hendrycks' :func:`is_equiv` first, then
:func:`normalize_math_answer` (``$``, ``\text{}`` wrappers, ``\left``/``\right``, degrees, ``%``, a leading
``x =``, trailing unit words, thousands commas) and structural checks: numbers by value, intervals/tuples
elementwise with the same brackets, sets / comma lists / ``\pm`` pairs in any order, and simple expressions
by sympy (the ``math`` extra; without sympy that last check says "not equal").

Deliberate deviations:

- GSM8K equivalence compares numbers as exact fractions and also accepts a relative difference up to
  ``1e-6``, so ``18``, ``18.0`` and ``"18.00"`` are equal and so are ``0.333333`` and ``1/3``. The usual
  scorer compares strings after stripping commas, which would count "18.00" as wrong.
- A percentage keeps its number (``"25%"`` → ``25``, not ``0.25``): GSM8K references are written that way.
- Mixed numbers ("1 1/2"), numbers written as words and scientific notation are not parsed.
- MATH ``strip_string`` drops a plain ``%`` as well as ``\%``. The spec lists both; the official code
  removes only the escaped form, twice.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any

# -- numbers -------------------------------------------------------------------------------------------

# A sign counts only when it does not follow a word character or a closing bracket, so "10-12" gives 12,
# not -12. Thousands commas need complete groups of three ("1,2,3" is three numbers).
_SIGN = r"(?:(?<![\w)\]}])[-−]\s?)?"
_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMBER = rf"{_SIGN}\\?\$?\s?(?:{_UNSIGNED})"
_LATEX_FRAC = (
    r"\\[dt]?frac\s*(?:\{\s*(?P<fn>[^{}]+?)\s*\}|(?P<fn1>\d))"
    r"\s*(?:\{\s*(?P<fd>[^{}]+?)\s*\}|(?P<fd1>\d))"
)
NUMBER_RE = re.compile(
    rf"(?P<lsign>{_SIGN})(?P<latex>{_LATEX_FRAC})"
    rf"|(?P<num>{_NUMBER})(?:\s?/\s?(?P<den>{_UNSIGNED}))?"
)

# Relative tolerance for float formatting differences (see the module docstring).
REL_TOL = 1e-6


@functools.lru_cache(maxsize=8192)  # Fractions are immutable; the same few numbers recur in every reply and target
def _to_fraction(raw: str) -> Fraction | None:
    """Parse one plain number such as ``-$1,234.50`` into an exact fraction."""
    s = raw.replace(",", "").replace("\\$", "").replace("$", "").replace("−", "-").replace(" ", "")
    if not s or s in ("-", "."):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _match_value(m: re.Match[str]) -> Fraction | None:
    """The value of one :data:`NUMBER_RE` match."""
    if m.group("latex"):
        top = m.group("fn") if m.group("fn") is not None else m.group("fn1")
        bottom = m.group("fd") if m.group("fd") is not None else m.group("fd1")
        a, b = _to_fraction(top), _to_fraction(bottom)
        if a is None or b is None or b == 0:
            return None
        return -(a / b) if m.group("lsign").strip() else a / b
    value = _to_fraction(m.group("num"))
    den = _to_fraction(m.group("den")) if m.group("den") is not None else None
    if value is not None and den is not None and den != 0:
        return value / den
    return value


def canonical_number(value: Fraction) -> str:
    """The canonical string of a number: integer, terminating decimal, or reduced ``p/q``.

    Example:
        >>> canonical_number(Fraction(3, 4)), canonical_number(Fraction(18)), canonical_number(Fraction(1, 3))
        ('0.75', '18', '1/3')
    """
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * (10**places // value.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")
    return f"-{text}" if value < 0 else text


def parse_number(text: str) -> Fraction | None:
    """The value of the first number in ``text`` (see :data:`NUMBER_RE`), or ``None``.

    Example:
        >>> parse_number("$1,234.50 in total")
        Fraction(2469, 2)
    """
    for m in NUMBER_RE.finditer(text):
        value = _match_value(m)
        if value is not None:
            return value
    return None


def last_number(text: str) -> Fraction | None:
    """The value of the last number in ``text``, or ``None``."""
    for m in reversed(list(NUMBER_RE.finditer(text))):
        value = _match_value(m)
        if value is not None:
            return value
    return None


# -- GSM8K ---------------------------------------------------------------------------------------------

_HASHES_RE = re.compile(r"####")
_ANSWER_PHRASE_RE = re.compile(
    r"\banswer\b\s*(?:\*\*|__)?\s*(?:is|was|would be|will be|should be|=|:)\s*(?:\*\*|__)?\s*:?",
    re.IGNORECASE,
)
# A sentence ends at a period followed by whitespace or the end (so "1,234.50" is not cut).
_SENTENCE_END_RE = re.compile(r"\.(?=\s|$)|\n")


def _span_value(span: str) -> Fraction | None:
    """The answer in the text after a marker: its sentence, after the last ``=``, first number."""
    end = _SENTENCE_END_RE.search(span)
    if end is not None and end.start() > 0:
        span = span[: end.start()]
    elif end is not None:  # the span starts with a line break: the answer is on the next line
        rest = span[end.end():].lstrip()
        nxt = _SENTENCE_END_RE.search(rest)
        span = rest[: nxt.start()] if nxt is not None else rest
    if "=" in span:
        span = span.rsplit("=", 1)[1]
    return parse_number(span)


def extract_gsm8k_value(text: str) -> Fraction | None:
    """The numeric final answer in free text (see the module docstring for the rules), or ``None``."""
    for m in reversed(list(_HASHES_RE.finditer(text))):
        value = _span_value(text[m.end():])
        if value is not None:
            return value
    boxed = last_boxed_only_string(text)
    if boxed is not None:
        inner = remove_boxed(boxed)
        value = parse_number(inner) if inner is not None else None
        if value is not None:
            return value
    for m in reversed(list(_ANSWER_PHRASE_RE.finditer(text))):
        value = _span_value(text[m.end():])
        if value is not None:
            return value
    return last_number(text)


def extract_gsm8k_answer(text: str | None) -> str | None:
    r"""The canonical final answer (for voting and scoring) in free text, or ``None`` if it has none.

    Args:
        text: A model's output, a reference solution, or an already-extracted answer.

    Returns:
        The canonical number string (``"18"``, ``"1234.5"``, ``"0.75"``, ``"1/3"``), or ``None``.

    Example:
        >>> extract_gsm8k_answer("So she makes $18.00 a day.\n#### 18")
        '18'
        >>> extract_gsm8k_answer("The answer is $1,234.50.")
        '1234.5'
    """
    if text is None:
        return None
    value = extract_gsm8k_value(text)
    return canonical_number(value) if value is not None else None


def gsm8k_reference(answer: str) -> str | None:
    r"""The canonical final answer of a dataset solution (the number after its last ``####``).

    Returns ``None`` when there is no ``####`` or no number after it.

    Example:
        >>> gsm8k_reference("9 * 2 = <<9*2=18>>18\n#### 18")
        '18'
    """
    if "####" not in answer:
        return None
    value = parse_number(answer.rsplit("####", 1)[1])
    return canonical_number(value) if value is not None else None


def numbers_equivalent(a: str | Fraction | None, b: str | Fraction | None, rel_tol: float = REL_TOL) -> bool:
    r"""Whether two answers are the same number (exact, or within a relative ``rel_tol``).

    Strings are parsed with :func:`extract_gsm8k_value`, so free text works too; ``None`` equals nothing.

    Example:
        >>> numbers_equivalent("18", "18.00"), numbers_equivalent("0.75", "\\frac{3}{4}")
        (True, True)
    """
    x = extract_gsm8k_value(a) if isinstance(a, str) else a
    y = extract_gsm8k_value(b) if isinstance(b, str) else b
    if x is None or y is None:
        return False
    if x == y:
        return True
    return abs(float(x) - float(y)) <= rel_tol * max(abs(float(x)), abs(float(y)))


# -- MATH (hendrycks) ----------------------------------------------------------------------------------


def last_boxed_only_string(text: str) -> str | None:
    r"""The last ``\boxed{...}`` (or ``\fbox{...}``, or ``\boxed X``) of ``text``, braces matched.

    Example:
        >>> last_boxed_only_string("a \\boxed{1} then \\boxed{\\frac{1}{2}}.")
        '\\boxed{\\frac{1}{2}}'
    """
    idx = text.rfind("\\boxed")
    if idx < 0:
        idx = text.rfind("\\fbox")
        if idx < 0:
            return None
    if text.startswith("\\boxed ", idx):  # "\boxed 5": up to the next "$" or the end
        tail = text[idx:].split("$", 1)[0]
        return tail.rstrip()
    depth = 0
    for i in range(idx, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[idx : i + 1]
    return None


def remove_boxed(boxed: str) -> str | None:
    r"""Strip the ``\boxed{`` ... ``}`` (or ``\fbox{``, ``\boxed ``) wrapper; ``None`` if not wrapped."""
    if boxed.startswith("\\boxed "):
        return boxed[len("\\boxed ") :]
    for left in ("\\boxed{", "\\fbox{"):
        if boxed.startswith(left) and boxed.endswith("}"):
            return boxed[len(left) : -1]
    return None


def _fix_fracs(s: str) -> str:
    r"""``\frac12`` → ``\frac{1}{2}``, ``\frac1{2}`` → ``\frac{1}{2}`` (single-character arguments)."""
    head, *rest = s.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if part.startswith("{"):
            out += part
            continue
        if len(part) < 2:
            return s
        a, b = part[0], part[1]
        out += "{" + a + "}" + (b if b == "{" else "{" + b + "}") + part[2:]
    return out


def _fix_a_slash_b(s: str) -> str:
    r"""``"3/4"`` (two integers and nothing else) → ``\frac{3}{4}``."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


def _remove_right_units(s: str) -> str:
    r"""Drop a trailing ``\text{ unit}``; more than one occurrence is an error (as in the official code)."""
    if "\\text{ " not in s:
        return s
    parts = s.split("\\text{ ")
    if len(parts) != 2:
        raise ValueError("more than one '\\text{ ' in the answer")
    return parts[0]


def _fix_sqrt(s: str) -> str:
    r"""``\sqrt2`` → ``\sqrt{2}`` (a single-character argument)."""
    head, *rest = s.split("\\sqrt")
    out = head
    for part in rest:
        out += "\\sqrt" + (part if part.startswith("{") or not part else "{" + part[0] + "}" + part[1:])
    return out


def strip_string(s: str) -> str:
    r"""Normalise a MATH answer, in the order of the hendrycks ``_strip_string``.

    Raises:
        ValueError: The answer holds more than one ``\text{ `` (:func:`is_equiv` then compares raw strings).

    Example:
        >>> strip_string("\\dfrac{1}{2}"), strip_string("0.5"), strip_string("x = 3/4")
        ('\\frac{1}{2}', '\\frac{1}{2}', '\\frac{3}{4}')
    """
    s = s.replace("\n", "")
    s = s.replace("\\!", "")
    s = s.replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    s = _remove_right_units(s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = _fix_sqrt(s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def is_equiv(a: str | None, b: str | None) -> bool:
    r"""MATH equivalence: ``strip_string(a) == strip_string(b)``.

    Both ``None`` → True, one ``None`` → False; if normalisation fails, the raw strings are compared.

    Example:
        >>> is_equiv("\\frac12", "0.5"), is_equiv("10^{\\circ}", "10"), is_equiv("1", None)
        (True, True, False)
    """
    if a is None and b is None:
        return True
    if a is None or b is None:
        return False
    try:
        return strip_string(a) == strip_string(b)
    except ValueError:
        return a == b


def extract_math_answer(text: str | None) -> str | None:
    r"""MATH's answer in ``text``: the content of its last ``\boxed{...}``, or ``None`` when it has none.

    Example:
        >>> extract_math_answer("so $\\boxed{\\frac{3}{4}}$.")
        '\\frac{3}{4}'
    """
    if text is None:
        return None
    boxed = last_boxed_only_string(text)
    return remove_boxed(boxed) if boxed is not None else None


def canonical_math_answer(text: str | None) -> str | None:
    r"""The normalised boxed answer (:func:`strip_string` of :func:`extract_math_answer`), for voting.

    Answers that :func:`is_equiv` calls equal get the same key. Not idempotent: the key holds no
    ``\boxed``, so extracting from it again gives ``None`` (as the official scorer would).

    Example:
        >>> canonical_math_answer("\\boxed{\\dfrac{1}{2}}") == canonical_math_answer("\\boxed{0.5}")
        True
    """
    inner = extract_math_answer(text)
    if inner is None:
        return None
    try:
        return strip_string(inner)
    except ValueError:
        return inner


# -- MATH: final answers stated in free text, and PRM800K-style equivalence ---------------------------

_MATH_PHRASE_RE = re.compile(
    r"(?:final answer|answer)\s*(?:\*\*|__)?\s*(?:is|was|would be|will be|should be|=|:)\s*(?:\*\*|__)?\s*:?\s*",
    re.IGNORECASE,
)
_DOLLAR_SPAN_RE = re.compile(r"^\$+(.+?)\$+")


def _stated_answer(text: str) -> str | None:
    """The answer after the last "answer is" phrase: a ``$...$`` span, else the rest of the sentence."""
    matches = list(_MATH_PHRASE_RE.finditer(text))
    if not matches:
        return None
    tail = text[matches[-1].end():].strip()
    m = _DOLLAR_SPAN_RE.match(tail)
    if m is not None:
        return m.group(1).strip()
    end = _SENTENCE_END_RE.search(tail)
    span = tail[: end.start()] if end is not None else tail
    span = span.strip().rstrip(".").strip()
    return span or None


def extract_math_final(text: str | None) -> str | None:
    r"""A MATH final answer in free text: the last ``\boxed{}``, else the last "answer is ..." statement.

    Example:
        >>> extract_math_final("so $\\boxed{\\frac{3}{4}}$."), extract_math_final("The answer is $x=3$.")
        ('\\frac{3}{4}', 'x=3')
    """
    if text is None:
        return None
    boxed = extract_math_answer(text)
    if boxed is not None:
        return boxed
    return _stated_answer(text)


# Unit words dropped after a number (PRM800K's grader drops units the same way; our list).
_UNIT_WORDS = (
    "square units", "sq units", "units", "unit", "square feet", "square inches", "square meters",
    "square centimeters", "cubic feet", "cubic inches", "cubic units", "sq ft", "feet", "foot", "ft",
    "inches", "inch", "in", "meters", "meter", "m", "centimeters", "centimeter", "cm", "millimeters",
    "mm", "kilometers", "km", "miles", "mile", "mph", "yards", "yard", "dollars", "dollar", "cents", "cent",
    "degrees", "degree", "hours", "hour", "minutes", "minute", "seconds", "second", "days", "day",
    "weeks", "week", "years", "year", "pounds", "pound", "ounces", "ounce", "people", "ways", "students",
)
_UNIT_RE = re.compile(
    r"(?<=[\d}\s])\s*(?:" + "|".join(re.escape(u) for u in sorted(_UNIT_WORDS, key=len, reverse=True))
    + r")(?:\^\{?[23]\}?|\^[23])?\s*$"
)
_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal)\s*\{([^{}]*)\}")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_VAR_EQ_RE = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?!=)")


def normalize_math_answer(s: str) -> str:
    r"""Normalise a MATH final answer for comparison (our reading of what PRM800K's grader does).

    Drops ``$``, ``\text{}`` wrappers (keeping their text), ``\left``/``\right``, spacing commands,
    degrees, ``%``, a leading ``x =``, trailing unit words, thousands commas and spaces; turns
    ``\dfrac``/``\tfrac`` into ``\frac`` and ``a/b`` into ``\frac{a}{b}``.

    Example:
        >>> normalize_math_answer("\\text{(B)}"), normalize_math_answer("x = 1,000 \\text{ cm}")
        ('(B)', '1000')
    """
    s = s.strip()
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\:", "").replace("\\ ", " ")
    s = s.replace("\\displaystyle", "")
    for _ in range(3):  # nested wrappers
        s = _TEXT_RE.sub(lambda m: m.group(1), s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\bigl", "").replace("\\bigr", "")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("°", "").replace("\\circ", "")
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace("\\leq", "≤").replace("\\geq", "≥").replace("\\le", "≤").replace("\\ge", "≥")
    s = _VAR_EQ_RE.sub("", s.strip())
    s = s.strip().rstrip(".").strip()
    for _ in range(2):
        s = _UNIT_RE.sub("", s).strip()
    if _THOUSANDS_RE.match(s.replace(" ", "")):
        s = s.replace(",", "")
    s = s.replace(" ", "")
    s = _fix_sqrt(s)
    s = _fix_fracs(s)
    s = _fix_a_slash_b(s)
    if s.startswith("."):
        s = "0" + s
    return s


def _split_top(s: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets and braces."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


_PLAIN_FRAC_RE = re.compile(r"^(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}$")


def _as_number(s: str) -> Fraction | None:
    r"""The value of an answer that is exactly one number (integer, decimal, ``\frac{a}{b}``)."""
    m = _PLAIN_FRAC_RE.match(s)
    if m is not None:
        a, b = Fraction(m.group(2)), Fraction(m.group(3))
        if b == 0:
            return None
        return -(a / b) if m.group(1) else a / b
    if re.fullmatch(r"-?\d+(?:\.\d+)?|-?\.\d+", s):
        return Fraction(s)
    return None


def _latex_to_sympy(s: str) -> Any:
    """A sympy expression for simple LaTeX (fractions, roots, powers, pi), or ``None``."""
    import sympy

    t = s
    for _ in range(4):
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", t)
        t = re.sub(r"\\sqrt\[(\d+)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", t)
        t = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", t)
    t = t.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("^", "**")
    t = t.replace("{", "(").replace("}", ")")
    if "\\" in t or not re.fullmatch(r"[\w\s().*/+\-]+", t):
        return None
    t = re.sub(r"(\d)([a-zA-Z(])", r"\1*\2", t)  # 2x -> 2*x, 2(x) -> 2*(x), 2sqrt(3) -> 2*sqrt(3)
    t = re.sub(r"\)\(", ")*(", t)
    return sympy.sympify(t, rational=True)


def _symbolic_equal(a: str, b: str) -> bool:
    """Whether two simple expressions are equal by sympy (lazy import; ``False`` without sympy)."""
    if len(a) > 80 or len(b) > 80:
        return False
    try:
        import sympy
    except ImportError:
        return False
    try:
        ea, eb = _latex_to_sympy(a), _latex_to_sympy(b)
        if ea is None or eb is None:
            return False
        return bool(sympy.simplify(ea - eb) == 0)
    except Exception:  # any parse failure means "not shown equal"
        return False


def _pm_expand(s: str) -> list[str] | None:
    r"""``a \pm b`` → ``[a+b, a-b]``; ``None`` without ``\pm``."""
    if "\\pm" not in s or s.count("\\pm") != 1:
        return None
    head, tail = s.split("\\pm")
    return [f"{head}+{tail}" if head else tail, f"{head}-{tail}" if head else f"-{tail}"]


def _atom_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    x, y = _as_number(a), _as_number(b)
    if x is not None and y is not None:
        return x == y or abs(float(x) - float(y)) <= REL_TOL * max(abs(float(x)), abs(float(y)))
    return _symbolic_equal(a, b)


def _unordered_equal(xs: list[str], ys: list[str]) -> bool:
    if len(xs) != len(ys):
        return False
    left = list(ys)
    for x in xs:
        for j, y in enumerate(left):
            if _normalized_equal(x, y):
                del left[j]
                break
        else:
            return False
    return True


def _normalized_equal(a: str, b: str) -> bool:
    if _atom_equal(a, b):
        return True
    pa, pb = _pm_expand(a), _pm_expand(b)
    if pa is not None or pb is not None:
        xs = pa if pa is not None else _split_top(a)
        ys = pb if pb is not None else _split_top(b)
        return _unordered_equal(xs, ys)
    # Intervals and tuples: same brackets, elementwise (order matters).
    if len(a) > 1 and len(b) > 1 and a[0] in "([" and b[0] in "([" and a[-1] in ")]" and b[-1] in ")]":
        if (a[0], a[-1]) != (b[0], b[-1]):
            return False
        xs, ys = _split_top(a[1:-1]), _split_top(b[1:-1])
        return len(xs) == len(ys) and all(_normalized_equal(x, y) for x, y in zip(xs, ys, strict=True))
    # Sets: \{...\} or {...}; and bare comma lists (several solutions): order does not matter.
    sa, sb = _set_body(a), _set_body(b)
    xs = _split_top(sa if sa is not None else a)
    ys = _split_top(sb if sb is not None else b)
    if len(xs) > 1 or len(ys) > 1:
        return _unordered_equal(xs, ys)
    return False


def _set_body(s: str) -> str | None:
    for left, right in (("\\{", "\\}"), ("{", "}")):
        if s.startswith(left) and s.endswith(right):
            return s[len(left) : -len(right)]
    return None


def math_equal(prediction: str | None, reference: str | None) -> bool:
    r"""MATH answer equivalence: hendrycks' :func:`is_equiv`, then PRM800K-style normalisation and checks.

    After :func:`normalize_math_answer`, answers are equal when the strings match, when both are one
    number of equal value, when sympy shows the difference of two simple expressions is 0, when both are
    intervals/tuples with the same brackets and equal elements in order, or when both are sets or comma
    lists (or a ``\pm`` pair) with equal elements in any order.

    Example:
        >>> math_equal("\\dfrac{1}{2}", "1/2"), math_equal("(1,2]", "(1, 2)"), math_equal("\\pm 2", "-2, 2")
        (True, False, True)
    """
    if prediction is None or reference is None:
        return False
    if is_equiv(prediction, reference):
        return True
    a, b = normalize_math_answer(prediction), normalize_math_answer(reference)
    if not a or not b:
        return False
    return _normalized_equal(a, b)


def canonical_math_final(text: str | None) -> str | None:
    r"""A voting key for a MATH final answer: :func:`extract_math_final`, normalised, numbers canonical.

    Answers equal as numbers get the same key (``\dfrac12``, ``0.5``, ``1/2`` → ``"0.5"``); other answers
    get their :func:`normalize_math_answer` form. A text with no box and no "answer is" counts as a bare
    answer when it is one token (no whitespace), so the function is idempotent on its own output.

    Example:
        >>> canonical_math_final("\\boxed{\\dfrac12}"), canonical_math_final("The answer is 0.5.")
        ('0.5', '0.5')
    """
    found = extract_math_final(text)
    if found is None:
        bare = text.strip() if text is not None else ""
        if not bare or len(bare) > 100 or any(ch.isspace() for ch in bare):
            return None
        found = bare
    norm = normalize_math_answer(found)
    value = _as_number(norm)
    return canonical_number(value) if value is not None else (norm or None)
