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

Package layout (the submodules; every public name is re-exported here):

* :mod:`~llmlab.tasks.mmlu_redux.data`: loading and normalising the subject CSVs.
* :mod:`~llmlab.tasks.mmlu_redux.scoring`: the label sets, answer and verdict extraction, metrics helpers.
* :mod:`~llmlab.tasks.mmlu_redux.stats`: :func:`redux_stats`.
* :mod:`~llmlab.tasks.mmlu_redux.prompts`: the QA and error-detection templates.
* :mod:`~llmlab.tasks.mmlu_redux.task`: :class:`MMLURedux` and its config.
"""

from __future__ import annotations

from llmlab.tasks.mmlu_redux.data import (
    DATASET,
    ERROR_TYPES,
    LETTERS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SUBDIR,
    FileInfo,
    ReduxRow,
    load_redux,
    make_row,
    normalize_error_type,
    parse_correct_answer,
    read_subject_csv,
    redux_files,
)
from llmlab.tasks.mmlu_redux.prompts import DETECTION_INSTRUCTION, DETECTION_PROMPT, QA_PROMPT
from llmlab.tasks.mmlu_redux.scoring import LabelSet, corrected_label, extract_choice, extract_verdict, target_for
from llmlab.tasks.mmlu_redux.stats import redux_stats
from llmlab.tasks.mmlu_redux.task import MMLURedux, MMLUReduxConfig

__all__ = [
    "DATASET",
    "DETECTION_INSTRUCTION",
    "DETECTION_PROMPT",
    "ERROR_TYPES",
    "LETTERS",
    "OPTIONAL_COLUMNS",
    "QA_PROMPT",
    "REQUIRED_COLUMNS",
    "SUBDIR",
    "FileInfo",
    "LabelSet",
    "MMLURedux",
    "MMLUReduxConfig",
    "ReduxRow",
    "corrected_label",
    "extract_choice",
    "extract_verdict",
    "load_redux",
    "make_row",
    "normalize_error_type",
    "parse_correct_answer",
    "read_subject_csv",
    "redux_files",
    "redux_stats",
    "target_for",
]
