from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.core.errors import DataError
from llmlab.tasks.mmlu_redux.data import load_redux, normalize_error_type, parse_correct_answer, read_subject_csv


def test_normalize_and_parse_correct_answer() -> None:
    assert {normalize_error_type(s) for s in ("OK", "Ok", "ok ", " oK")} == {"ok"}
    assert normalize_error_type("bad_question_clarity") == normalize_error_type("Bad Question Clarity")
    cases = {
        "2": ("index", (2,)), "C": ("letter", (2,)), "(0, 1)": ("index_list", (0, 1)), "0,1": ("index_list", (0, 1)),
        "B,C": ("letter_list", (1, 2)), "2 and 3": ("index_list", (2, 3)), "1 or 2": ("index_list", (1, 2)),
        "0 1 3": ("index_list", (0, 1, 3)), "": ("empty", ()), "g = 2.105": ("text", ()), "30": ("text", ()),
        "A good one": ("text", ()), "7": ("text", ()),
    }
    for raw, want in cases.items():
        assert parse_correct_answer(raw, 4) == want, raw


def test_loader_handles_delimiters_encodings_and_formats(folder: Path) -> None:
    infos, rows = load_redux(folder.parent)
    assert [i.subject for i in infos] == ["alpha", "beta", "gamma"]
    assert {i.subject: (i.delimiter, i.encoding) for i in infos} == {
        "alpha": (",", "utf-8"), "beta": (";", "utf-8"), "gamma": (",", "cp1252")}
    by_q = {r.question: r for r in rows}
    assert by_q["q5; with a semicolon"].correct_indices == (0, 1)
    assert by_q["caf\u00e9 \u2019quote\u2019"].error_type == "ok"
    assert by_q["q9"].error_type == "bad question clarity"
    assert by_q["q3"].correct_answer_kind == "letter" and by_q["q3"].correct_indices == (3,)
    assert by_q["q2"].row == 2 and by_q["q2"].choices == ("w", "x", "y", "z")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("question,choices,answer,source\nq,\"['a','b']\",0,s\n", r"row 0 \(header\): missing column\(s\) error_type"),
        ("question|choices|answer|error_type\nq|x|0|ok\n", r"row 0 \(header\): columns are not separated"),
        ('question,choices,answer,error_type\nq,"[\'a\',\'b\']",0,ok\nq2,"[\'a\' \'b\'",1,ok\n',
         r"row 2 \(line 3\): 'choices' is not a Python list literal"),
        ('question,choices,answer,error_type\nq,"[\'a\',\'b\']",5,ok\n',
         r"row 1 \(line 2\): 'answer' 5 is out of range"),
        ('question,choices,answer,error_type\nq;"[\'a\',\'b\']";0;ok\n',
         r"row 1 \(line 2\): expected 4 fields, got 2 \(wrong delimiter"),
        ('question,choices,answer,error_type\nq,"[\'a\',\'b\']",0,\n', r"row 1 \(line 2\): empty 'error_type'"),
    ],
)
def test_malformed_csv_names_file_and_row(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "mmlu_bad.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=r"mmlu_bad\.csv: " + match):
        read_subject_csv(f)
