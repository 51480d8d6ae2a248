"""Parsing WildBench judge replies (spec ``evaluation.md`` §1.4).

``json.loads`` first, then the official regex fallbacks; an unparsable reply or an unknown choice gives
``None`` (the item is dropped, not scored).
"""

from __future__ import annotations

import json
import math
import re
from typing import Literal


def extract_field(text: str, key: str, *, allow_unquoted: bool = False) -> str | None:
    """A field of the judge's JSON: ``json.loads`` first, then the official regex fallbacks.

    Example:
        >>> extract_field('Sure! {"choice": "A+"} done', "choice")
        'A+'
    """
    try:
        obj = json.loads(text)
        if isinstance(obj, dict) and key in obj:
            return str(obj[key])
    except (json.JSONDecodeError, ValueError):
        pass
    k = re.escape(key)
    for pattern, flags in ((rf'"{k}"\s*:\s*"([^"]*?)"', 0), (rf'"{k}"\s*:\s*"(.*?)"', re.DOTALL)):
        m = re.search(pattern, text, flags)
        if m:
            return m.group(1)
    if allow_unquoted:
        m = re.search(rf'"{k}"\s*:\s*([^,}}\s]+)', text)
        if m:
            return m.group(1)
    return None


def parse_choice(text: str) -> tuple[Literal["A", "B", "tie"], int] | None:
    """Judge text → ``(winner, extent)``: ``A++`` → (A, 2), ``A+`` → (A, 1), ``A=B`` → (tie, 0), ...

    Returns:
        ``None`` when there is no known choice (the official batch path drops such items).
    """
    choice = extract_field(text, "choice")
    if choice is None:
        return None
    choice = choice.strip()
    table: dict[str, tuple[Literal["A", "B", "tie"], int]] = {
        "A++": ("A", 2), "A+": ("A", 1), "A=B": ("tie", 0), "B+": ("B", 1), "B++": ("B", 2),
    }
    return table.get(choice)


def parse_score(text: str) -> float | None:
    """Judge text → the 1–10 score as a float, or ``None`` (dropped) when absent or not a number."""
    raw = extract_field(text, "score", allow_unquoted=True)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None
