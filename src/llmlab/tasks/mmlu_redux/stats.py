"""MMLU-Redux statistics for ``llmlab data mmlu_redux stats``.

Per-subject and per-error-type counts (Virology: 57% erroneous, the paper's headline; overall
370/5700 = 6.49%).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from llmlab.tasks.mmlu_redux.data import ERROR_TYPES, FileInfo, ReduxRow
from llmlab.tasks.mmlu_redux.scoring import corrected_label


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
