r"""CS-Bench answer extraction and judge-reply parsing, official and fixed (spec ``evaluation.md`` §4.3).

Official ``gen_judgment.py`` rules reproduced by the ``*_official`` functions:

- multiple choice: the FIRST match of ``\b[ABCD]\b`` with ``re.IGNORECASE``, upper-cased, equals the answer;
- assertion: the first ``\b(true|false)\b`` in the lower-cased output equals ``str(Answer).upper()`` —
  ``"true" != "TRUE"``, so the official script gives every assertion 0 (:func:`assertion_score_literal`);
- fill-in-the-blank judge reply: the LAST ``\b(0|1)\b`` (no match: 0);
- open-ended judge reply: the LAST ``\b([1-9]|10)\b`` divided by 10 (no match: 0).

Fixes (the ``score`` a task reports; ``score_official`` keeps the official multiple-choice rule):

- :func:`mc_choice`: the official regex is case-insensitive, so the English article "a" ("the answer is a
  queue, option C") is read as option A. We look, in order, for an explicit "answer/option is X", a
  parenthesised letter ``(C)``, a reply that is only a letter, a reply opening with ``C.``/``C)``/``C:``,
  and finally the first UPPER-CASE standalone letter, skipping a capital "A" used as an article (followed
  by a lower-case word).
- :func:`assertion_verdict`: the evident intent (case-insensitive truth value), with the translated words of
  the German and French sets (``Wahr``/``Falsch``, ``Vrai``/``Faux``, which the official upper-cased compare
  can never match either) and Chinese 正确/错误.
"""

from __future__ import annotations

import re

LETTERS = ("A", "B", "C", "D")

_OFFICIAL_MC = re.compile(r"\b[ABCD]\b", re.IGNORECASE)
_OFFICIAL_TF = re.compile(r"\b(true|false)\b")
_OFFICIAL_FILL = re.compile(r"\b(0|1)\b")
_OFFICIAL_OPEN = re.compile(r"\b([1-9]|10)\b")

_EXPLICIT = re.compile(
    r"(?:answer|option|choice|antwort|réponse|reponse|答案|选项)\s*(?:is|:|：|ist|est)?\s*[:：]?\s*"
    r"[\(（\[\"“']?\s*([A-Da-d])\s*[\)）\]\"”']?(?![A-Za-z])(?!\s+[a-z])",
    re.IGNORECASE,
)
_PAREN = re.compile(r"[\(（]\s*([A-D])\s*[\)）]")
_ONLY = re.compile(r"^\W*([A-Da-d])\W*$")
_OPENING = re.compile(r"^\s*\**\s*([A-D])\s*(?:[.:)：）]|$)")
_UPPER = re.compile(r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])")

_TRUE = ("true", "wahr", "vrai", "richtig", "正确", "对")
_FALSE = ("false", "falsch", "faux", "错误", "错")
_TF_WORD = re.compile(r"\b(true|false|wahr|falsch|vrai|faux|richtig)\b|(正确|错误|对|错)", re.IGNORECASE)


def mc_choice_official(output: str) -> str | None:
    """The official multiple-choice extraction: first case-insensitive standalone A-D, upper-cased."""
    matches = _OFFICIAL_MC.findall(output)
    return matches[0].upper() if matches else None


def mc_score_official(output: str, answer: object) -> int:
    """The official multiple-choice score (1/0), ``answer`` compared as ``str(answer).upper()``."""
    choice = mc_choice_official(output)
    return int(choice is not None and choice == str(answer).upper())


def mc_choice(output: str) -> str | None:
    """Our multiple-choice extraction (see the module docstring); ``None`` when no option is named.

    Example:
        >>> mc_choice("The answer is a queue, so option C.")
        'C'
        >>> mc_choice_official("The answer is a queue, so option C.")
        'A'
    """
    text = output.strip()
    for pattern in (_EXPLICIT, _PAREN, _ONLY, _OPENING):
        m = pattern.search(text)
        if m:
            return m.group(1).upper()
    for m in _UPPER.finditer(text):
        rest = text[m.end():]
        if m.group(1) == "A" and re.match(r"\s+[a-z]", rest):
            continue  # "A stack is ...": the article, not option A
        return m.group(1)
    return None


def assertion_verdict(output: str) -> bool | None:
    """The first truth word in ``output`` (true/false and the DE/FR/CN words); ``None`` when none."""
    m = _TF_WORD.search(output)
    if not m:
        return None
    word = (m.group(1) or m.group(2)).lower()
    return word in _TRUE


def assertion_verdict_official(output: str) -> str | None:
    """The official assertion extraction: first ``true``/``false`` in the lower-cased output."""
    m = _OFFICIAL_TF.search(output.lower())
    return m.group(0) if m else None


def assertion_score_literal(output: str, answer: object) -> int:
    """The official assertion score exactly as shipped: ``"true" == "TRUE"`` is never true, so always 0."""
    verdict = assertion_verdict_official(output)
    return int(verdict is not None and verdict == str(answer).upper())


def gold_truth(answer: object) -> bool | None:
    """An assertion's gold value from ``True``/``False`` or the translated ``Wahr``/``Vrai``/... strings."""
    if isinstance(answer, bool):
        return answer
    word = str(answer).strip().strip("\"'“”").lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def gold_letter(answer: object) -> str | None:
    """A multiple-choice gold letter; recovers the letter from the DE/FR sets' translation debris.

    Several German/French rows hold ``"D"`` with quotes, or a translator's sentence around the letter
    ("Il s'agit de: A"). When every standalone capital A-D in the string is the same letter it is that
    letter; otherwise (e.g. an apology with no letter) the gold answer is unknown (``None``).
    """
    s = str(answer).strip()
    if s in LETTERS:
        return s
    found = set(re.findall(r"(?<![A-Za-z])([A-D])(?![A-Za-z])", s))
    return found.pop() if len(found) == 1 else None


def fill_judge_score(judge_text: object) -> int:
    """Official fill-in-the-blank parse: the last standalone 0 or 1 of the judge reply (none: 0)."""
    matches = _OFFICIAL_FILL.findall(judge_text if isinstance(judge_text, str) else str(judge_text))
    return int(matches[-1]) if matches else 0


def open_judge_score(judge_text: object) -> float:
    """Official open-ended parse: the last standalone 1..10 of the judge reply, over 10 (none: 0)."""
    matches = _OFFICIAL_OPEN.findall(judge_text if isinstance(judge_text, str) else str(judge_text))
    return int(matches[-1]) / 10 if matches else 0
