"""The ``folder`` fixture shared by the MMLU-Redux tests: three small subject CSVs with the real quirks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

HEADER = ["question", "choices", "answer", "error_type", "source", "correct_answer", "potential_reason"]
CH = "['w', 'x', 'y', 'z']"


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER, delimiter: str = ",",
           encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter)
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "mmlu-redux-2.0" / "mmlu_redux"
    d.mkdir(parents=True)
    _write(d / "mmlu_alpha.csv", [
        ["q1", CH, "0", "OK", "", "", ""],
        ["q2", CH, "1", "Wrong Groundtruth", "", "2", ""],
        ["q3", CH, "2", "wrong_groundtruth ", "", "D", ""],
        ["q4", CH, "3", "Wrong groundtruth", "", "", ""],
    ])
    # semicolon-separated, columns in another order
    hdr = ["question", "choices", "answer", "correct_answer", "error_type", "source", "potential_reason"]
    _write(d / "mmlu_beta.csv", [
        ["q5; with a semicolon", CH, "0", "(0, 1)", "multiple correct answers", "", ""],
        ["q6", CH, "1", "g = 2.105", "No Correct Answer", "", ""],
        ["q7", CH, "2", "", "expert", "", ""],
    ], header=hdr, delimiter=";")
    # cp1252 (not UTF-8), with two empty unnamed trailing columns like mmlu_econometrics.csv
    _write(d / "mmlu_gamma.csv", [["caf\u00e9 \u2019quote\u2019", CH, "3", "Ok", "", "", "", "", ""],
                                  ["q9", CH, "0", "bad_question_clarity", "", "", "", "", ""]],
           header=[*HEADER, "", ""], encoding="cp1252")
    return d
