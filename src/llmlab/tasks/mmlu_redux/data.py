"""MMLU-Redux 2.0 data: loading and normalising the 57 annotated subject CSVs.

Every data quirk listed in the package docstring (delimiters, encodings, label spellings, free-text
``correct_answer``) is handled here; malformed data raises one :class:`DataError` naming file and row.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError

DATASET = "mmlu-redux-2.0"
SUBDIR = "mmlu_redux"
ERROR_TYPES = (
    "ok",
    "bad question clarity",
    "bad options clarity",
    "no correct answer",
    "multiple correct answers",
    "wrong groundtruth",
    "expert",
)
REQUIRED_COLUMNS = ("question", "choices", "answer", "error_type")
OPTIONAL_COLUMNS = ("source", "correct_answer", "potential_reason")
LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class ReduxRow:
    """One annotated MMLU question.

    Attributes:
        subject: From the file name (``mmlu_virology.csv`` → ``virology``).
        row: 1-based data row in the file (the header is row 0).
        answer: MMLU's original 0-based label.
        error_type: Normalised label; ``raw_error_type`` keeps the file's spelling.
        correct_answer_kind: ``empty | index | letter | index_list | letter_list | text``.
        correct_indices: 0-based options named by ``correct_answer`` (empty unless a kind above names options).
    """

    subject: str
    row: int
    question: str
    choices: tuple[str, ...]
    answer: int
    error_type: str
    raw_error_type: str
    correct_answer: str = ""
    correct_answer_kind: str = "empty"
    correct_indices: tuple[int, ...] = ()
    source: str = ""
    potential_reason: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_ok(self) -> bool:
        return self.error_type == "ok"


@dataclass(frozen=True)
class FileInfo:
    """How one CSV was read."""

    path: str
    subject: str
    encoding: str
    delimiter: str
    columns: tuple[str, ...]
    n_rows: int


def normalize_error_type(raw: str) -> str:
    """Canonical error label: strip, lower-case, ``_`` → space, collapse spaces.

    Example:
        >>> normalize_error_type(" Wrong_Groundtruth "), normalize_error_type("OK")
        ('wrong groundtruth', 'ok')
    """
    return " ".join(raw.replace("_", " ").lower().split())


_LIST_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bor\b|\s)\s*")


def parse_correct_answer(raw: str, n_choices: int) -> tuple[str, tuple[int, ...]]:
    """Classify an annotator's ``correct_answer`` and read the options it names.

    Digits are 0-based option indices (the file's ``answer`` convention), letters A.. map to 0...

    Returns:
        ``(kind, indices)`` with kind one of ``empty``, ``index``, ``letter``, ``index_list``,
        ``letter_list``, ``text`` (free text: no indices).

    Example:
        >>> parse_correct_answer("(0, 1)", 4), parse_correct_answer("C", 4), parse_correct_answer("g = 2.105", 4)
        (('index_list', (0, 1)), ('letter', (2,)), ('text', ()))
    """
    s = raw.strip()
    if not s:
        return "empty", ()
    inner = s.strip("()[]").strip()
    tokens = [t for t in _LIST_SPLIT.split(inner) if t]
    if not tokens:
        return "text", ()
    if all(t.isdigit() and int(t) < n_choices for t in tokens):
        idx = tuple(int(t) for t in tokens)
        kind = "index"
    elif all(len(t) == 1 and t in LETTERS[:n_choices] for t in tokens):
        idx = tuple(LETTERS.index(t) for t in tokens)
        kind = "letter"
    else:
        return "text", ()
    if len(set(idx)) != len(idx):
        return "text", ()
    return (kind, idx) if len(idx) == 1 else (f"{kind}_list", tuple(sorted(idx)))


def _decode(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(enc), "utf-8" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: cannot decode as UTF-8, cp1252 or latin-1")  # pragma: no cover - latin-1 total


def _subject_of(path: Path) -> str:
    stem = path.stem
    return stem[len("mmlu_"):] if stem.startswith("mmlu_") else stem


def _parse_choices(raw: str, where: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise DataError(f"{where}: 'choices' is not a Python list literal ({raw[:60]!r})") from None
    if not isinstance(value, list | tuple) or len(value) < 2 or len(value) > len(LETTERS):
        raise DataError(f"{where}: 'choices' must be a list of 2-26 options, got {raw[:60]!r}")
    return tuple(str(v) for v in value)


def _parse_answer(raw: Any, n: int, where: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise DataError(f"{where}: 'answer' must be a 0-based option index, got {raw!r}") from None
    if not 0 <= value < n:
        raise DataError(f"{where}: 'answer' {value} is out of range for {n} choices")
    return value


def make_row(record: Mapping[str, Any], subject: str, row: int, where: str,
             extra: Mapping[str, str] | None = None) -> ReduxRow:
    """Validate one record (a CSV row or a predictions-file object) into a :class:`ReduxRow`.

    Raises:
        DataError: A required field is missing or malformed (the message starts with ``where``).
    """
    for col in REQUIRED_COLUMNS:
        if col not in record or record[col] is None:
            raise DataError(f"{where}: missing '{col}'")
    raw_choices = record["choices"]
    choices = (tuple(str(c) for c in raw_choices) if isinstance(raw_choices, list | tuple)
               else _parse_choices(str(raw_choices), where))
    answer = _parse_answer(record["answer"], len(choices), where)
    raw_label = str(record["error_type"])
    label = normalize_error_type(raw_label)
    if not label:
        raise DataError(f"{where}: empty 'error_type'")
    correct = str(record.get("correct_answer") or "")
    kind, idx = parse_correct_answer(correct, len(choices))
    return ReduxRow(
        subject=subject, row=row, question=str(record["question"]), choices=choices, answer=answer,
        error_type=label, raw_error_type=raw_label, correct_answer=correct, correct_answer_kind=kind,
        correct_indices=idx, source=str(record.get("source") or ""),
        potential_reason=str(record.get("potential_reason") or ""), extra=dict(extra or {}),
    )


def read_subject_csv(path: str | Path) -> tuple[FileInfo, list[ReduxRow]]:
    """Read one MMLU-Redux CSV (delimiter and encoding detected, columns by name).

    Raises:
        DataError: Unreadable file, no header with the required columns under ``,``/``;``/tab, a row with
            the wrong number of fields, or a malformed field — naming the file and row.
    """
    path = Path(path)
    try:
        text, encoding = _decode(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    first = text.split("\n", 1)[0].rstrip("\r")
    delimiter = header = None
    for cand in (",", ";", "\t"):
        cols = [c.strip().lower() for c in next(csv.reader([first], delimiter=cand), [])]
        if all(c in cols for c in REQUIRED_COLUMNS):
            delimiter, header = cand, cols
            break
    if delimiter is None or header is None:
        found = [c for c in REQUIRED_COLUMNS if c in first.lower()]
        missing = [c for c in REQUIRED_COLUMNS if c not in found]
        why = (f"missing column(s) {', '.join(missing)}" if missing
               else "columns are not separated by ',' or ';' (wrong delimiter?)")
        raise DataError(f"{path}: row 0 (header): {why}; header is {first[:100]!r}")
    subject = _subject_of(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader)
    rows: list[ReduxRow] = []
    for k, fields in enumerate(reader, 1):
        if not fields or all(not f.strip() for f in fields):
            continue
        where = f"{path}: row {k} (line {reader.line_num})"
        if len(fields) < len(header):
            raise DataError(
                f"{where}: expected {len(header)} fields, got {len(fields)} (wrong delimiter or unquoted "
                f"'{delimiter}'?)"
            )
        record = dict(zip(header, fields, strict=False))
        extra = {f"column_{i}" if not header[i] else header[i]: v for i, v in enumerate(fields)
                 if (i >= len(header) or header[i] not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)) and v.strip()}
        rows.append(make_row(record, subject, k, where, extra))
    info = FileInfo(str(path), subject, encoding, delimiter, tuple(header), len(rows))
    return info, rows


def redux_files(folder: str | Path) -> list[Path]:
    """The subject CSVs of a folder (``mmlu_redux/``, the dataset folder, or a data dir holding it), sorted."""
    folder = Path(folder)
    if (folder / DATASET / SUBDIR).is_dir():
        folder = folder / DATASET / SUBDIR
    elif (folder / SUBDIR).is_dir():
        folder = folder / SUBDIR
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(f"no CSV files in {folder}")
    return files


def load_redux(
    source: str | Path, subjects: Sequence[str] | None = None
) -> tuple[list[FileInfo], list[ReduxRow]]:
    """Load a folder of subject CSVs (or one CSV file).

    Args:
        source: ``.../mmlu-redux-2.0``, ``.../mmlu_redux`` or a single ``.csv``.
        subjects: Keep only these subjects (``None``: all).

    Raises:
        DataError: Malformed data, or a requested subject with no file.
    """
    path = Path(source)
    if not path.exists():
        raise DataError(f"data not found: {path}")
    files = [path] if path.is_file() else redux_files(path)
    if subjects is not None:
        wanted = set(subjects)
        files = [f for f in files if _subject_of(f) in wanted]
        missing = wanted - {_subject_of(f) for f in files}
        if missing:
            raise DataError(f"no CSV for subject(s) {', '.join(sorted(missing))} in {path}")
    infos: list[FileInfo] = []
    rows: list[ReduxRow] = []
    for f in files:
        info, file_rows = read_subject_csv(f)
        infos.append(info)
        rows.extend(file_rows)
    return infos, rows
