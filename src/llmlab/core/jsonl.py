"""Reading JSONL with errors that name ``file:line`` — the one place every loader and scorer uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError


def read_jsonl(path: str | Path, *, what: str = "data file") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, record)`` for each non-blank line; ``where`` is ``"<path>:<line>"``.

    Raises:
        DataError: The file is missing or unreadable, a line is not JSON, or not a JSON object.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
        >>> _ = p.write_text(chr(10).join(['{"a": 1}', '', '{"a": 2}']))
        >>> [(w.rsplit(":", 1)[1], r["a"]) for w, r in read_jsonl(p)]
        [('1', 1), ('3', 2)]
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} not found: {p}")
    try:
        fh = p.open(encoding="utf-8-sig")  # a UTF-8 byte-order mark (Windows editors) is accepted
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc})") from None
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{p}:{lineno}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
                yield where, record
        except UnicodeDecodeError as exc:
            raise DataError(f"{p}: not UTF-8 text ({exc.reason})") from None
