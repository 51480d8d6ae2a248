r"""Multiple-choice answer parsing shared by MCQ tasks (``medqa``) and methods that grade MCQ replies (MedFuzz).

Example:
    >>> extract_letter("The findings point to B.\nAnswer: (C)", "ABCD"), extract_letter("A good question.", "ABCD")
    ('C', None)
"""

from __future__ import annotations

import re


def extract_letter(text: str | None, letters: str = "ABCD") -> str | None:
    """The option letter a reply commits to, or ``None``.

    Tried in order: an explicit ``Answer: X`` / ``the answer is (X)`` (the LAST one wins, so a chain of
    thought may mention other options first); a bold ``**X**``; a reply that is only a letter (``"B"``,
    ``"(B)"``, ``"B."``) or starts with ``"B. "`` / ``"(B) "``. A sentence starting with the article "A"
    is not a letter.

    Args:
        text: The model's reply.
        letters: The valid option letters, e.g. ``"ABCD"`` or ``"ABCDE"``.
    """
    if text is None or not letters:
        return None
    cls = f"[{re.escape(letters)}]"
    hits = re.findall(rf"(?i:answer)(?:\s+is)?\s*[:\-]?\s*\**\s*\(?({cls})\)?(?![A-Za-z])", text)
    if hits:
        return str(hits[-1])
    bold = re.findall(rf"\*\*\(?({cls})\)?[.):]?\*\*", text)
    if bold:
        return str(bold[-1])
    t = text.strip()
    m = re.fullmatch(rf"\(?({cls})\)?[.):]?", t, flags=re.I)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    m = re.match(rf"\(?({cls})\)?[.):]\s", t)
    if m:
        return m.group(1)
    return None
