from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.core.errors import DataError
from llmlab.tasks.mmlu_redux.data import load_redux
from llmlab.tasks.mmlu_redux.scoring import corrected_label
from llmlab.tasks.mmlu_redux.task import MMLURedux


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


def test_real_data_golden_predictions(shared_data: Path, tmp_path: Path) -> None:
    task = MMLURedux({"data_dir": str(shared_data), "labels": "corrected"})
    items = task.items()
    assert len(items) == 5330 + 102
    scores = [task.score(it, "ABCD"[it.target[0]]) for it in items]
    assert task.aggregate(scores)["accuracy"] == 1.0
    assert all(json.dumps(it.input) for it in items[:5])
