from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from llmlab.core.errors import DataError
from llmlab.tasks.mmlu_redux import (
    MMLURedux,
    corrected_label,
    extract_choice,
    extract_verdict,
    load_redux,
    normalize_error_type,
    parse_correct_answer,
    read_subject_csv,
    redux_stats,
)

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


def test_corrected_protocol_counts(folder: Path) -> None:
    _, rows = load_redux(folder)
    status = Counter(corrected_label(r)[1] for r in rows)
    assert status == {"ok": 2, "rekeyed": 2, "dropped: wrong groundtruth with empty correct_answer": 1,
                      "dropped: multiple correct answers": 1, "dropped: no correct answer": 1,
                      "dropped: expert": 1, "dropped: bad question clarity": 1}
    multi = next(r for r in rows if r.error_type == "multiple correct answers")
    assert corrected_label(multi, accept_multiple=True) == ((0, 1), "multiple")


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


def test_extract_choice() -> None:
    assert extract_choice("B") == "B"
    assert extract_choice("(c)") == "C"
    assert extract_choice("B. Paris") == "B"
    assert extract_choice("I think... Answer: D") == "D"
    assert extract_choice("The answer is (A), not B. Final answer: C") == "C"
    assert extract_choice("**B**") == "B"
    assert extract_choice("A good question without a verdict") is None
    assert extract_choice("Answer: E") is None  # only 4 options
    assert extract_choice("Answer: E", 5) == "E"


def test_extract_verdict_follows_official_normalisation() -> None:
    assert extract_verdict("ok") == "ok"
    assert extract_verdict("Not OK.") == "not ok"
    assert extract_verdict("not_ok") == "not ok"
    assert extract_verdict('{"Classification": "not ok", "Reason": "x"}') == "not ok"
    assert extract_verdict("The item looks ok to me") == "ok"
    assert extract_verdict("unsure") is None


def _records(folder: Path, pred_of) -> list[dict]:
    _, rows = load_redux(folder)
    return [{"subject": r.subject, "question": r.question, "choices": list(r.choices), "answer": r.answer,
             "error_type": r.raw_error_type, "correct_answer": r.correct_answer, "prediction": pred_of(r)}
            for r in rows]


def _score(task: MMLURedux, records: list[dict]) -> dict:
    return task.aggregate([task.score(*task.item_from_record(rec, f"p:{i}")) for i, rec in enumerate(records)])


def test_qa_label_sets_hand_counted(folder: Path) -> None:
    recs = _records(folder, lambda r: "ABCD"[r.answer])  # always MMLU's original label
    orig = _score(MMLURedux({"labels": "original"}), recs)
    assert orig["accuracy"] == 1.0 and orig["n_scored"] == 9
    assert orig["original"]["ok"] == {"n": 2, "accuracy": 1.0}
    # corrected: 2 ok (right) + 2 re-keyed wrong-groundtruth (now wrong) scored; 5 dropped
    corr = _score(MMLURedux({"labels": "corrected"}), recs)
    assert (corr["n_scored"], corr["accuracy"]) == (4, 0.5)
    assert sum(corr["excluded"].values()) == 5
    assert _score(MMLURedux({"labels": "ok_only"}), recs)["n_scored"] == 2
    # predictions following the corrected key score 1.0 there, and 0.5 on original labels of those rows
    recs2 = _records(folder, lambda r: "ABCD"[(corrected_label(r)[0] or (r.answer,))[0]])
    assert _score(MMLURedux({"labels": "corrected"}), recs2)["accuracy"] == 1.0
    assert _score(MMLURedux({"labels": "corrected"}), recs2)["original"]["all"]["accuracy"] == 7 / 9
    # accept_multiple keeps the (0, 1) row; predicting option B (1) is accepted
    recs3 = _records(folder, lambda r: "B")
    agg = _score(MMLURedux({"labels": "corrected", "accept_multiple": True}), recs3)
    assert agg["n_scored"] == 5
    # scored: q1 (key A), q2 (re-keyed C), q3 (re-keyed D), q5 (A or B), the cp1252 row (D): B right once
    assert agg["accuracy"] == 1 / 5


def test_error_detection_metrics_ok_positive(folder: Path) -> None:
    # predict "ok" for the first 5 rows, "not ok" after; gold: ok rows are q1 and the cp1252 row (7th)
    _, rows = load_redux(folder)
    recs = _records(folder, lambda r: "ok")
    for i, rec in enumerate(recs):
        rec["prediction"] = "ok" if i < 5 else "Not OK"
    agg = _score(MMLURedux({"setting": "error_detection"}), recs)
    gold_ok = [r.is_ok for r in rows]
    pred_ok = [i < 5 for i in range(len(rows))]
    tp = sum(g and p for g, p in zip(gold_ok, pred_ok, strict=True))
    fp = sum((not g) and p for g, p in zip(gold_ok, pred_ok, strict=True))
    fn = sum(g and not p for g, p in zip(gold_ok, pred_ok, strict=True))
    assert (agg["TP"], agg["FP"], agg["FN"]) == (tp, fp, fn) == (1, 4, 1)
    assert agg["precision"] == pytest.approx(1 / 5) and agg["recall"] == pytest.approx(1 / 2)
    assert agg["exact_match"] == pytest.approx((1 + 3) / 9)
    assert agg["not_ok_positive"]["recall"] == pytest.approx(3 / 7)
    # an unparsable reply counts as "not ok" (official) and is reported
    recs[0]["prediction"] = "hmm"
    assert _score(MMLURedux({"setting": "error_detection"}), recs)["unparsed"] == 1


def test_prompts(folder: Path) -> None:
    task = MMLURedux({"data_file": str(folder), "setting": "error_detection"})
    item = task.items()[1]
    q = task.prompt(item)
    assert q.messages[0].role == "system"
    assert "Ground Truth Answer: B. x" in q.text
    qa = MMLURedux({"data_file": str(folder)})
    qa_item = qa.items()[0]
    query = qa.prompt(qa_item)
    assert "A. w\nB. x\nC. y\nD. z" in query.text
    assert query.extract is not None and query.extract("Answer: A") == "A"
    assert qa.score(qa_item, query.extract("Answer: A")).correct is True


def test_item_from_record_errors() -> None:
    task = MMLURedux()
    with pytest.raises(DataError, match="p:3: missing 'error_type'"):
        task.item_from_record({"question": "q", "choices": ["a", "b"], "answer": 0, "prediction": "A"}, "p:3")
    with pytest.raises(DataError, match="p:4: missing 'prediction'"):
        task.item_from_record({"question": "q", "choices": ["a", "b"], "answer": 0, "error_type": "ok"}, "p:4")
    item, pred = task.item_from_record(
        {"question": "q", "choices": "['a', 'b']", "answer": 1, "error_type": "ok", "prediction": 1}, "p:5")
    assert pred == "B" and task.score(item, pred).correct


# -- the real data ---------------------------------------------------------------------------------------


def test_real_data_label_counts_and_virology(shared_data: Path) -> None:
    infos, rows = load_redux(shared_data / "mmlu-redux-2.0")
    stats = redux_stats(infos, rows)
    assert stats["n_files"] == 57 and stats["n_rows"] == 5700
    assert stats["error_types"] == {"ok": 5330, "bad question clarity": 132, "wrong groundtruth": 107,
                                    "multiple correct answers": 39, "no correct answer": 35, "expert": 32,
                                    "bad options clarity": 25}
    assert stats["subjects"]["virology"]["erroneous"] == pytest.approx(0.57)
    assert stats["erroneous"]["fraction"] == pytest.approx(0.0649, abs=5e-5)
    # SOURCE.txt and spec §3.2 say 10 semicolon files; the headers show 9
    assert sum(1 for f in stats["files"].values() if f["delimiter"] == ";") == 9
    assert stats["files"]["moral_scenarios"]["encoding"] == "cp1252"
    assert stats["unknown_labels"] == []
    # every correct_answer is classified; nothing is dropped silently
    assert sum(sum(k.values()) for k in stats["correct_answer_kinds"].values()) == 5700
    assert sum(stats["corrected"].values()) == 5700


def test_real_data_golden_predictions(shared_data: Path, tmp_path: Path) -> None:
    task = MMLURedux({"data_dir": str(shared_data), "labels": "corrected"})
    items = task.items()
    assert len(items) == 5330 + 102
    scores = [task.score(it, "ABCD"[it.target[0]]) for it in items]
    assert task.aggregate(scores)["accuracy"] == 1.0
    assert all(json.dumps(it.input) for it in items[:5])
