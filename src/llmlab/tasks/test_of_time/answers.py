"""Test of Time answer parsing and normalisation, shared by ToT-Arithmetic and ToT-Semantic.

No official parser exists: the last ``{...}`` block holding the label's keys is read as JSON, then as a
Python literal, then key by key with a lenient regex; labels are parsed with :func:`ast.literal_eval`.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmlab.core.errors import DataError

# The `compare` category's own format example misspells the key (50 rows); accept it.
KEY_ALIASES: dict[str, tuple[str, ...]] = {"unordered_list": ("unorered_list",)}

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _brace_blocks(text: str) -> list[str]:
    """Top-level ``{...}`` blocks of ``text`` (quote-aware, so braces inside strings do not count)."""
    blocks: list[str] = []
    depth = 0
    start = -1
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'" and depth > 0:
            # An apostrophe inside prose (e.g. "it's") must not open a string: only treat ' as a quote
            # when it follows a structural character.
            prev = text[:i].rstrip()[-1:] if i else ""
            if ch == '"' or prev in "{[,:":
                quote = ch
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(text[start : i + 1])
    return blocks


def _literal(block: str) -> Any:
    try:
        return json.loads(block)
    except (json.JSONDecodeError, ValueError):
        pass
    try:
        return ast.literal_eval(block)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _lenient_value(block: str, key: str) -> Any:
    """Read ``"key": value`` from a block that is not valid JSON (value up to the next key or brace)."""
    m = re.search(
        r"[\"']" + re.escape(key) + r"[\"']\s*:\s*(.+?)\s*(?:,\s*[\"'][A-Za-z_]+[\"']\s*:|\}\s*$)", block, re.S
    )
    if m is None:
        return None
    raw = m.group(1).strip()
    val = _literal(raw)
    if val is not None:
        return val
    return raw.strip("\"' ")


def parse_answer(text: str | None, keys: Sequence[str]) -> dict[str, Any] | None:
    """Find the answer dict with ``keys`` in a model reply.

    Args:
        text: The model's reply (or a bare JSON / Python dict literal).
        keys: The label's keys (``["answer"]``, ``["hours", "minutes"]`` ...).

    Returns:
        ``{key: value}`` for every key, or ``None`` if some key could not be found.

    Example:
        >>> parse_answer('JSON = {"explanation": "8 years later", "answer": "352 BC"}', ["answer"])
        {'answer': '352 BC'}
    """
    if text is None:
        return None
    blocks = _brace_blocks(text)
    for block in reversed(blocks):
        obj = _literal(block)
        if isinstance(obj, dict):
            found = _pick(obj, keys)
            if found is not None:
                return found
    for block in reversed(blocks):
        lenient: dict[str, Any] = {}
        for key in keys:
            val = None
            for k in (key, *KEY_ALIASES.get(key, ())):
                val = _lenient_value(block, k)
                if val is not None:
                    break
            if val is None:
                break
            lenient[key] = val
        if len(lenient) == len(keys):
            return lenient
    return None


def _pick(obj: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    lower = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in keys:
        for k in (key, *KEY_ALIASES.get(key, ())):
            if k in obj:
                out[key] = obj[k]
                break
            if k.lower() in lower:
                out[key] = lower[k.lower()]
                break
        else:
            return None
    return out


def normalize_value(value: Any, key: str = "answer") -> Any:
    """Canonical form of one answer value (idempotent).

    Numbers (and numeric strings) become floats, ``H:MM[:SS]`` times get a zero-padded hour, other strings
    are lower-cased with whitespace collapsed; ``unordered_list`` becomes a sorted list of the JSON-encoded
    elements (set semantics, duplicates dropped), ``ordered_list`` a list of them in order.

    Example:
        >>> normalize_value("1307"), normalize_value(" 352  BC "), normalize_value(["B", "a"], "unordered_list")
        (1307.0, '352 bc', ['"a"', '"b"'])
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple | set):
        items = [normalize_value(v) for v in value]
        if key == "unordered_list":
            return sorted({json.dumps(v) for v in items})
        return [json.dumps(v) for v in items] if key == "ordered_list" else items
    if value is None:
        return None
    s = " ".join(str(value).split()).strip().lower()
    s = s.strip("\"'").rstrip(".").strip()
    if key in ("unordered_list", "ordered_list") and "," in s:
        return normalize_value([p for p in s.split(",") if p.strip()], key)
    if _NUM_RE.match(s):
        return float(s)
    m = _TIME_RE.match(s)
    if m is not None:
        return f"{int(m.group(1)):02d}:{m.group(2)}" + (f":{m.group(3)}" if m.group(3) is not None else "")
    return s


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)
    return bool(a == b)


def canonical_answer(text: str | None, keys: Sequence[str]) -> str | None:
    """The normalised answer as a stable JSON string (for voting and scoring), or ``None``.

    Example:
        >>> canonical_answer('{"hours": "5", "minutes": 0}', ["hours", "minutes"])
        '{"hours": 5.0, "minutes": 0.0}'
    """
    parsed = parse_answer(text, keys)
    if parsed is None:
        return None
    return json.dumps({k: normalize_value(parsed[k], k) for k in keys}, sort_keys=True)


def parse_label(raw: Any, where: str) -> dict[str, Any]:
    """Parse a ToT label (a Python-dict literal string, or already a dict).

    Raises:
        DataError: Not a literal, or not a non-empty dict (the message names ``where``).

    Example:
        >>> parse_label("{'answer': '352 BC'}", "test.json: row 0")
        {'answer': '352 BC'}
    """
    if isinstance(raw, dict):
        value: Any = raw
    else:
        try:
            value = ast.literal_eval(str(raw))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise DataError(f"{where}: label is not a Python literal ({type(exc).__name__}: {raw!r:.80})") from None
    if not isinstance(value, dict) or not value:
        raise DataError(f"{where}: label must be a non-empty dict literal, got {raw!r:.80}")
    return {str(k): v for k, v in value.items()}


def normalize_semantic(value: Any, question_type: str) -> str:
    """Canonical string of a ToT-Semantic answer (entities case-insensitive, numbers as integers/floats).

    Example:
        >>> normalize_semantic(" e59, E57 ", "timeline"), normalize_semantic(1982.0, "event_at_what_time")
        ('e59,e57', '1982')
    """
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    s = " ".join(str(value).split()).strip().strip("\"'").rstrip(".").strip().lower()
    if question_type == "timeline":
        return ",".join(p.strip() for p in s.strip("[]").split(",") if p.strip())
    if _NUM_RE.match(s):
        x = float(s)
        return str(int(x)) if x.is_integer() else repr(x)
    return s
