"""Are We Done with MMLU? — MMLU-Redux 2.0 (Gema et al., arXiv:2406.04127; aryopg/mmlu-redux).

Implements
- The loader for all 57 annotated subject CSVs (``mmlu_redux/mmlu_<subject>.csv``, 100 rows each) with the
  error taxonomy of §2 of the paper: ``ok``, bad question clarity, bad options clarity, no correct answer,
  multiple correct answers, wrong groundtruth, plus Redux 2.0's ``expert``.
- Multiple-choice QA scoring (spec ``evaluation.md`` §3.3) under three label sets: ``original`` (MMLU's
  labels on all rows), ``ok_only`` (only rows annotated ``ok``, as lm-evaluation-harness PR #3410 does)
  and ``corrected`` (``ok`` rows + ``wrong groundtruth`` rows re-keyed to the annotated
  ``correct_answer``; every other error type dropped). Reports always break accuracy down into
  all / ok / not-ok, the paper's analysis (repo ``outputs/analyses/all_em_per_error.csv``).
- The error-detection task (repo ``scripts/*_taxonomy_binary.py``, ``src/taxonomy/evaluations.py``):
  the model sees question, choices and the ground-truth answer and says "ok" or "not ok"; metrics are
  exact match, TP/FP/FN/TN, precision, recall and F1 with **"ok" as the positive class**, as the official
  ``compute_metrics_binary`` does — plus the same metrics with "not ok" positive (what an error detector
  is usually judged by) and the share of each error type flagged.
- :func:`redux_stats` for ``llmlab data mmlu_redux stats``: per-subject and per-error-type counts
  (Virology: 57% erroneous, the paper's headline; overall 370/5700 = 6.49%).

Data quirks handled (none silently dropped; each is visible in :func:`redux_stats`)
- Delimiter: 48 files use ``,``, 9 use ``;`` (SOURCE.txt says 47/10; the headers say 48/9), detected from
  the header row (the delimiter under which the header holds the required columns). Column order differs
  between files; columns are read by name.
  ``mmlu_econometrics.csv`` carries two empty unnamed columns (ignored only while empty; non-empty extra
  cells are kept in ``extra``).
- Encoding: ``mmlu_moral_scenarios.csv`` is cp1252, not UTF-8 — decoded as UTF-8, else cp1252, else latin-1.
- Label spelling: ~27 spellings (``OK``, ``Ok``, ``ok ``, ``Wrong groundtruth``, ``wrong_groundtruth``...)
  normalised by stripping, lower-casing and ``_`` → space. A label outside the taxonomy is kept verbatim
  as its own category (and counts as not ok).
- ``correct_answer`` is free text in mixed formats: a 0-based index (``"2"``), a letter (``"C"``), lists
  (``"(0, 1)"``, ``"B,C"``, ``"2 and 3"``, ``"1 or 2"``), or prose (``"g = 2.105"``). Each row gets a
  counted kind: ``empty``, ``index``, ``letter``, ``index_list``, ``letter_list`` or ``text``.
- Malformed data (a missing column, an unparseable ``choices`` literal, an out-of-range ``answer``, a row
  with the wrong number of fields) raises one :class:`DataError` naming the file and row.

Deviations and choices
- ``corrected`` is OUR protocol (spec §3.3 "re-key wrong groundtruth, drop the rest"); the paper reports
  all / ok / not-ok exact match instead, which every report here also shows. ``wrong groundtruth`` rows
  whose ``correct_answer`` is empty or not a single option (5 rows) are dropped and counted;
  ``accept_multiple=True`` additionally keeps ``multiple correct answers`` rows whose list parses,
  accepting any listed option. One ``wrong groundtruth`` row (global_facts) names the original answer as
  the correct one; it is kept and flagged.
- Error-detection prompt wording is ours (same content as the official instruction and verbaliser).
  The official parser normalises the reply (lower case, punctuation/articles/whitespace removed) and
  counts anything but exactly "ok" as "not ok"; we do the same but first look for an ``ok``/``not ok``
  verdict inside a JSON object or the text (CoT/few-shot replies), and report unparsed replies
  (scored as "not ok", as officially) in ``unparsed``.

Predictions file for ``llmlab score mmlu_redux --predictions F`` (JSONL, one object per line):
``{"subject": str, "question": str, "choices": [str, ...] | "<python list literal>", "answer": int,
"error_type": str, "correct_answer": str, "prediction": str}`` — ``subject``, ``correct_answer`` and ``id``
are optional. ``prediction`` is the model's text (a letter is extracted) or a bare letter; for
``-t setting=error_detection`` it is "ok" / "not ok" (or the model's text).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmlab.backends.base import Message
from llmlab.core.errors import DataError
from llmlab.methods.base import Query
from llmlab.tasks.base import Item, Score, Task, TaskConfig

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

QA_PROMPT = (
    "Here is a multiple-choice question about {subject}. Exactly one option is correct.\n\n"
    "{question}\n{choices}\n\nReply with the letter of the correct option, as 'Answer: X'."
)
DETECTION_INSTRUCTION = (
    "You check exam questions. You are given a question, its answer options and the answer key. "
    "Reply 'ok' if the question and options are clear and the keyed answer is right. Reply 'not ok' if the "
    "keyed answer is wrong, no or several options are right, or the question or its options are unclear. "
    "Reply with only 'ok' or 'not ok', without any explanation."
)
DETECTION_PROMPT = "Question: {question}\nChoices:\n{choices}\nGround Truth Answer: {answer}\nYour Response: "


# ---------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------
# Label sets
# ---------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------
# Answer extraction
# ---------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------

def redux_stats(infos: Sequence[FileInfo], rows: Sequence[ReduxRow]) -> dict[str, Any]:
    """Counts for ``llmlab data mmlu_redux stats``: per subject, per error type, formats and files.

    Returns:
        A JSON-ready dict: ``n_files``, ``n_rows``, ``error_types`` (label → n), ``erroneous``
        (n and fraction not ok), ``subjects`` (subject → n, per-label counts, erroneous fraction),
        ``raw_spellings``, ``correct_answer_kinds`` (label → kind → n), ``corrected`` (status → n),
        ``unknown_labels``, ``flags`` and ``files`` (encoding/delimiter when not the common case).
    """
    types = Counter(r.error_type for r in rows)
    per_subject: dict[str, Counter[str]] = defaultdict(Counter)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    corrected: Counter[str] = Counter()
    for r in rows:
        per_subject[r.subject][r.error_type] += 1
        kinds[r.error_type][r.correct_answer_kind] += 1
        corrected[corrected_label(r)[1]] += 1
    subjects = {}
    for subj in sorted(per_subject):
        c = per_subject[subj]
        n = sum(c.values())
        subjects[subj] = {"n": n, **{t: c.get(t, 0) for t in ERROR_TYPES},
                          **{t: v for t, v in c.items() if t not in ERROR_TYPES},
                          "erroneous": (n - c.get("ok", 0)) / n if n else 0.0}
    n_rows = len(rows)
    n_bad = n_rows - types.get("ok", 0)
    ok_conflict = sum(1 for r in rows if r.is_ok and r.correct_answer_kind == "index"
                      and r.correct_indices != (r.answer,))
    return {
        "n_files": len(infos),
        "n_rows": n_rows,
        "error_types": dict(types.most_common()),
        "erroneous": {"n": n_bad, "fraction": n_bad / n_rows if n_rows else 0.0},
        "subjects": subjects,
        "raw_spellings": dict(Counter(r.raw_error_type for r in rows).most_common()),
        "correct_answer_kinds": {t: dict(c.most_common()) for t, c in sorted(kinds.items())},
        "corrected": dict(corrected.most_common()),
        "unknown_labels": sorted(t for t in types if t not in ERROR_TYPES),
        "flags": {
            "ok_rows_with_conflicting_correct_answer": ok_conflict,
            "wrong_groundtruth_same_as_original": corrected.get("rekeyed_same", 0),
            "rows_with_extra_cells": sum(1 for r in rows if r.extra),
        },
        "files": {
            i.subject: {"encoding": i.encoding, "delimiter": i.delimiter, "rows": i.n_rows}
            for i in infos if i.encoding != "utf-8" or i.delimiter != "," or i.n_rows != 100
        },
    }


# ---------------------------------------------------------------------------------------------------
# Task
# ---------------------------------------------------------------------------------------------------

class MMLUReduxConfig(TaskConfig):
    """Options of :class:`MMLURedux`.

    Attributes:
        setting: ``qa`` (answer the question) or ``error_detection`` (say whether the item is ok).
        labels: QA label set: ``original``, ``ok_only`` or ``corrected`` (see the module docstring).
        accept_multiple: In ``corrected``, keep ``multiple correct answers`` rows (any listed option counts).
        subjects: Only these subjects (file names without ``mmlu_`` / ``.csv``).
        data_file: A CSV or a folder of CSVs to use instead of the dataset folder.
    """

    setting: Literal["qa", "error_detection"] = "qa"
    labels: LabelSet = "original"
    accept_multiple: bool = False
    subjects: list[str] | None = None
    data_file: str | None = None


def _choices_block(choices: Sequence[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _acc(values: Iterable[bool]) -> dict[str, Any]:
    vals = list(values)
    return {"n": len(vals), "accuracy": sum(vals) / len(vals) if vals else None}


class MMLURedux(Task):
    """MMLU-Redux 2.0: QA under original / ok-only / corrected labels, or error detection.

    Example:
        >>> task = MMLURedux()
        >>> rec = {"question": "2+2?", "choices": ["3", "4"], "answer": 1, "error_type": "OK", "prediction": "B"}
        >>> item, pred = task.item_from_record(rec, "p.jsonl:1")
        >>> task.score(item, pred).correct
        True
    """

    name = "mmlu_redux"
    Config = MMLUReduxConfig

    @property
    def cfg(self) -> MMLUReduxConfig:
        assert isinstance(self.config, MMLUReduxConfig)
        return self.config

    def load(self) -> tuple[list[FileInfo], list[ReduxRow]]:
        """Read the configured CSVs (``data_file`` or ``<data>/mmlu-redux-2.0/mmlu_redux/``)."""
        cfg = self.cfg
        source = Path(cfg.data_file) if cfg.data_file is not None else self.data_path(DATASET, SUBDIR)
        return load_redux(source, cfg.subjects)

    def _item(self, row: ReduxRow, item_id: str | None = None) -> Item:
        cfg = self.cfg
        corr, status = corrected_label(row, cfg.accept_multiple)
        if cfg.setting == "error_detection":
            target: Any = "ok" if row.is_ok else "not ok"
        else:
            target = target_for(row, cfg.labels, cfg.accept_multiple)
        return Item(
            id=item_id if item_id is not None else f"{row.subject}/{row.row}",
            input={"subject": row.subject, "question": row.question, "choices": list(row.choices),
                   "answer": row.answer},
            target=target,
            metadata={"subject": row.subject, "error_type": row.error_type, "original": row.answer,
                      "corrected": corr, "corrected_status": status,
                      "correct_answer_kind": row.correct_answer_kind, "n_choices": len(row.choices)},
        )

    def items(self) -> list[Item]:
        _, rows = self.load()
        out = [self._item(r) for r in rows]
        if self.cfg.setting == "qa":
            out = [it for it in out if it.target is not None]
        return out

    def prompt(self, item: Item) -> Query:
        inp = item.input
        subject = str(inp["subject"]).replace("_", " ")
        n = len(inp["choices"])
        if self.cfg.setting == "error_detection":
            a = int(inp["answer"])
            user = DETECTION_PROMPT.format(question=inp["question"], choices=_choices_block(inp["choices"]),
                                           answer=f"{LETTERS[a]}. {inp['choices'][a]}")
            return Query((Message("system", DETECTION_INSTRUCTION), Message("user", user)),
                         extract=extract_verdict, metadata={"id": item.id})
        text = QA_PROMPT.format(subject=subject, question=inp["question"], choices=_choices_block(inp["choices"]))
        return Query((Message("user", text),), extract=lambda t: extract_choice(t, n),
                     metadata={"id": item.id, "choices": list(inp["choices"])})

    def score(self, item: Item, answer: str | None) -> Score:
        md = item.metadata
        details: dict[str, Any] = {"subject": md["subject"], "error_type": md["error_type"]}
        if self.cfg.setting == "error_detection":
            verdict = extract_verdict(answer)
            details["unparsed"] = verdict is None
            pred = verdict if verdict is not None else "not ok"  # official: anything but "ok" is "not ok"
            details["pred"] = pred
            ok = pred == item.target
            return Score(1.0 if ok else 0.0, correct=ok, extracted=verdict, details=details)
        letter = extract_choice(answer, int(md["n_choices"]))
        idx = LETTERS.index(letter) if letter is not None else None
        corr = md["corrected"]
        details["correct_original"] = idx == md["original"]
        details["correct_corrected"] = (idx in corr) if corr is not None else None
        details["corrected_status"] = md["corrected_status"]
        if item.target is None:
            details["excluded"] = md["corrected_status"] if self.cfg.labels == "corrected" else md["error_type"]
            return Score(0.0, correct=None, extracted=letter, details=details)
        ok = idx is not None and idx in item.target
        return Score(1.0 if ok else 0.0, correct=ok, extracted=letter, details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        if self.cfg.setting == "error_detection":
            return self._aggregate_detection(scores)
        scored = [s for s in scores if s.correct is not None]
        acc = sum(bool(s.correct) for s in scored) / len(scored) if scored else 0.0
        per_subject: dict[str, list[bool]] = defaultdict(list)
        per_type: dict[str, list[bool]] = defaultdict(list)
        for s in scored:
            per_subject[s.details["subject"]].append(bool(s.correct))
        for s in scores:
            per_type[s.details["error_type"]].append(bool(s.details["correct_original"]))
        corrected = [bool(s.details["correct_corrected"]) for s in scores if s.details["correct_corrected"] is not None]
        return {
            "n": len(scores),
            "n_scored": len(scored),
            "labels": self.cfg.labels,
            "score": acc,
            "accuracy": acc,
            "unparsed": sum(s.extracted is None for s in scored),
            "excluded": dict(Counter(str(s.details["excluded"]) for s in scores if "excluded" in s.details)),
            # the paper's analysis: exact match with the ORIGINAL labels on all / ok / not-ok rows
            "original": {
                "all": _acc(bool(s.details["correct_original"]) for s in scores),
                "ok": _acc(bool(s.details["correct_original"]) for s in scores if s.details["error_type"] == "ok"),
                "not_ok": _acc(bool(s.details["correct_original"]) for s in scores
                               if s.details["error_type"] != "ok"),
            },
            "corrected": _acc(corrected),
            "per_error_type_original": {t: _acc(v) for t, v in sorted(per_type.items())},
            "per_subject": {k: _acc(v) for k, v in sorted(per_subject.items())},
        }

    def _aggregate_detection(self, scores: Sequence[Score]) -> dict[str, Any]:
        tp = fp = fn = tn = 0
        flagged: dict[str, list[bool]] = defaultdict(list)
        per_subject: dict[str, list[bool]] = defaultdict(list)
        for s in scores:
            gold_ok = s.details["error_type"] == "ok"
            pred_ok = s.details["pred"] == "ok"
            tp += pred_ok and gold_ok
            fp += pred_ok and not gold_ok
            fn += (not pred_ok) and gold_ok
            tn += (not pred_ok) and not gold_ok
            flagged[s.details["error_type"]].append(not pred_ok)
            per_subject[s.details["subject"]].append(bool(s.correct))
        n = len(scores)
        em = (tp + tn) / n if n else 0.0
        return {
            "n": n,
            "score": em,
            "accuracy": em,
            "exact_match": em,
            "unparsed": sum(bool(s.details["unparsed"]) for s in scores),
            "TP": tp, "FP": fp, "FN": fn, "TN": tn,
            # positive class "ok", as the official compute_metrics_binary
            **_prf(tp, fp, fn),
            # the detector's view: positive class "not ok"
            "not_ok_positive": _prf(tn, fn, fp),
            "flagged_not_ok_by_error_type": {
                t: {"n": len(v), "rate": sum(v) / len(v)} for t, v in sorted(flagged.items())
            },
            "per_subject": {k: _acc(v) for k, v in sorted(per_subject.items())},
        }

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        if "prediction" not in record:
            raise DataError(f"{where}: missing 'prediction'")
        subject = str(record.get("subject") or "unknown")
        row = make_row(record, subject, 0, where)
        item = self._item(row, str(record["id"]) if record.get("id") is not None else where)
        pred = record["prediction"]
        if isinstance(pred, bool) or pred is None:
            raise DataError(f"{where}: 'prediction' must be text or an option index, got {pred!r}")
        if isinstance(pred, int):
            if not 0 <= pred < len(row.choices):
                raise DataError(f"{where}: prediction index {pred} out of range for {len(row.choices)} choices")
            pred = LETTERS[pred]
        return item, str(pred)


__all__ = [
    "ERROR_TYPES",
    "FileInfo",
    "MMLURedux",
    "ReduxRow",
    "corrected_label",
    "extract_choice",
    "extract_verdict",
    "load_redux",
    "normalize_error_type",
    "parse_correct_answer",
    "read_subject_csv",
    "redux_stats",
]
