"""MMLU-Redux scoring protocols: QA label sets, answer/verdict extraction, detection metrics.

Label sets ``original``, ``ok_only`` and ``corrected`` (see the package docstring); the error-detection
verdict follows the official normalisation.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable
from typing import Any, Literal

from llmlab.tasks.mmlu_redux.data import LETTERS, ReduxRow

LabelSet = Literal["original", "ok_only", "corrected"]


def corrected_label(row: ReduxRow, accept_multiple: bool = False) -> tuple[tuple[int, ...] | None, str]:
    """The accepted options under the ``corrected`` protocol, and the reason/status.

    Returns:
        ``(indices, status)``; ``indices`` is ``None`` when the row is dropped. Status is one of ``ok``,
        ``rekeyed``, ``rekeyed_same`` (annotated correct answer equals the original), ``multiple``,
        ``dropped: <why>``.

    Example:
        >>> r = ReduxRow("s", 1, "q", ("a", "b", "c"), 0, "wrong groundtruth", "Wrong Groundtruth", "C",
        ...              "letter", (2,))
        >>> corrected_label(r)
        ((2,), 'rekeyed')
    """
    if row.is_ok:
        return (row.answer,), "ok"
    if row.error_type == "wrong groundtruth":
        if row.correct_answer_kind in ("index", "letter"):
            new = row.correct_indices
            return new, ("rekeyed_same" if new == (row.answer,) else "rekeyed")
        return None, f"dropped: wrong groundtruth with {row.correct_answer_kind} correct_answer"
    if row.error_type == "multiple correct answers" and accept_multiple and row.correct_indices:
        return row.correct_indices, "multiple"
    return None, f"dropped: {row.error_type}"


def target_for(row: ReduxRow, labels: LabelSet, accept_multiple: bool = False) -> tuple[int, ...] | None:
    """Accepted options of ``row`` under a label set, or ``None`` when the row is not scored."""
    if labels == "original":
        return (row.answer,)
    if labels == "ok_only":
        return (row.answer,) if row.is_ok else None
    return corrected_label(row, accept_multiple)[0]


def extract_choice(text: str | None, n_choices: int = 4) -> str | None:
    """The option letter a reply commits to, or ``None``.

    Accepts a bare letter (``"B"``, ``"(B)"``, ``"B. Paris"``), ``"Answer: B"`` / ``"the answer is (B)"``
    (last one wins) and ``"**B**"``. A leading English article ("A good choice ...") is NOT a letter.

    Example:
        >>> extract_choice("Let me think... The answer is (C)."), extract_choice("A good question.")
        ('C', None)
    """
    if text is None:
        return None
    letters = LETTERS[:n_choices]
    t = text.strip()
    cls = f"[{letters}]"
    if re.fullmatch(rf"\(?({cls}|[{letters.lower()}])\)?[.)]?", t):
        return t.strip("().").upper()
    m = re.match(rf"\(?({cls})\)?(?:[.):]\s|[.):]?$)", t)
    if m:
        return m.group(1)
    hits = re.findall(rf"(?i:answer)(?:\s+is)?\s*[:\-]?\s*\**\(?({cls})\)?(?![A-Za-z])", t)
    if hits:
        return str(hits[-1])
    bold = re.findall(rf"\*\*\(?({cls})\)?[.)]?\*\*", t)
    if bold:
        return str(bold[-1])
    return None


def _norm_official(s: str) -> str:
    """The official ``normalize_error_type``: lower, drop punctuation and articles, remove all spaces."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return "".join(s.split())


def extract_verdict(text: str | None) -> str | None:
    """``"ok"`` / ``"not ok"`` from a detector's reply, or ``None`` if it gives neither.

    Example:
        >>> extract_verdict("Not OK."), extract_verdict('{"Classification": "ok"}'), extract_verdict("maybe")
        ('not ok', 'ok', None)
    """
    if text is None:
        return None
    whole = _norm_official(text)
    if whole in ("ok", "notok"):
        return "ok" if whole == "ok" else "not ok"
    for block in re.findall(r"\{[^{}]*\}", text):
        try:
            obj = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for v in obj.values():
                n = _norm_official(str(v))
                if n in ("ok", "notok"):
                    return "ok" if n == "ok" else "not ok"
    low = text.lower()
    if re.search(r"\bnot[\s_-]*ok\b", low):
        return "not ok"
    if re.search(r"\bok\b", low):
        return "ok"
    return None


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _acc(values: Iterable[bool]) -> dict[str, Any]:
    vals = list(values)
    return {"n": len(vals), "accuracy": sum(vals) / len(vals) if vals else None}
