"""Short-answer text normalisation shared by QA tasks (Husky's eval sets) and methods (black-box confidence)."""

from __future__ import annotations

import re
import string

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles a/an/the, single spaces.

    Example:
        >>> normalize_answer("The  James Madison!")
        'james madison'
        >>> normalize_answer("  The Eiffel-Tower! ")
        'eiffeltower'
    """
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


__all__ = ["normalize_answer"]
