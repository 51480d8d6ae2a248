from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llmlab.core.errors import DataError
from llmlab.tasks.test_of_time.arithmetic import ToTArithmetic


def _arith_item(label: str, qtype: str = "duration"):
    task = ToTArithmetic()
    item, _ = task.item_from_record({"question": "q", "question_type": qtype, "label": label, "prediction": ""}, "x:1")
    return task, item


@pytest.mark.parametrize(
    ("label", "qtype", "prediction", "correct"),
    [
        ("{'answer': '1307'}", "duration", '{"answer": 1307}', True),
        ("{'answer': '1307'}", "duration", '{"answer": 1306}', False),
        ("{'hours': 17, 'minutes': 48, 'seconds': 51}", "duration", '{"hours": 17, "minutes": 48, "seconds": 51}',
         True),
        ("{'hours': 17, 'minutes': 48, 'seconds': 51}", "duration", '{"hours": 17, "minutes": 48, "seconds": 50}',
         False),
        ("{'hours': 17, 'minutes': 48, 'seconds': 51}", "duration", '{"hours": 17, "minutes": 48}', False),
        ("{'unordered_list': ['Thursday', 'Friday']}", "trick", '{"unordered_list": ["friday", "Thursday"]}', True),
        ("{'unordered_list': ['Thursday', 'Friday']}", "trick", '{"unordered_list": ["Friday"]}', False),
        ("{'ordered_list': ['Joe', 'Jenny']}", "compare", '{"ordered_list": ["Jenny", "Joe"]}', False),
        ('{"H": 2.0, "M": 13.0, "S": 30.0}', "multi_op", '{"H": 2, "M": 13, "S": 30}', True),
        ("{'day': 'same_day', 'time': '04:31'}", "timezone", '{"day": "same_day", "time": "4:31"}', True),
        ("{'day': '+2', 'time': '21:44:10'}", "multi_op", '{"day": "-2", "time": "21:44:10"}', False),
        ("{'answer': '352 BC'}", "add_subtract", "no json here", False),
    ],
)
def test_arithmetic_scoring(label: str, qtype: str, prediction: str, correct: bool) -> None:
    task, item = _arith_item(label, qtype)
    assert task.score(item, prediction).correct is correct


def test_arithmetic_aggregate_per_category() -> None:
    task = ToTArithmetic()
    recs = [
        {"question": "a", "question_type": "trick", "label": "{'answer': 'x'}", "prediction": '{"answer": "x"}'},
        {"question": "b", "question_type": "trick", "label": "{'answer': 'y'}", "prediction": '{"answer": "n"}'},
        {"question": "c", "question_type": "schedule", "label": "{'answer': 2}", "prediction": '{"answer": 2}'},
        {"question": "d", "question_type": "schedule", "label": "{'answer': 2}", "prediction": "?"},
    ]
    scores = [task.score(*task.item_from_record(r, f"p:{i}")) for i, r in enumerate(recs)]
    agg = task.aggregate(scores)
    assert agg["accuracy"] == 0.5
    assert agg["per_category"]["trick"]["accuracy"] == 0.5
    assert agg["per_category"]["schedule"] == {"n": 2, "accuracy": 0.5, "unparsed": 1}


def test_item_from_record_requires_keys() -> None:
    with pytest.raises(DataError, match=r"p\.jsonl:7: missing key 'label'"):
        ToTArithmetic().item_from_record({"question": "q", "question_type": "t", "prediction": "x"}, "p.jsonl:7")


def test_malformed_files_name_file_and_row(tmp_path: Path) -> None:
    good = {"question": "q", "question_type": "trick", "label": "{'answer': 'x'}"}
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([good, {"question": "q", "label": "{'answer': 'x'}"}]))
    with pytest.raises(DataError, match=r"bad\.json: row 1: missing key 'question_type'"):
        ToTArithmetic({"data_file": str(f)}).items()
    f.write_text(json.dumps([good, good, {**good, "label": "{'answer': 'x'"}]))
    with pytest.raises(DataError, match=r"bad\.json: row 2: label is not a Python literal"):
        ToTArithmetic({"data_file": str(f)}).items()
    with pytest.raises(DataError, match="data file not found"):
        ToTArithmetic({"data_file": str(tmp_path / "nope.json")}).items()


def test_real_data_counts_and_golden_scores_one(shared_data: Path) -> None:
    task = ToTArithmetic({"data_dir": str(shared_data)})
    items = task.items()
    assert len(items) == 1850
    counts = Counter(it.metadata["category"] for it in items)
    assert counts == {"add_subtract": 350, "compare": 350, "multi_op": 350, "schedule": 250, "trick": 250,
                      "duration": 200, "timezone": 100}
    fmt = Counter((it.metadata["category"], ",".join(it.metadata["keys"])) for it in items)
    assert fmt[("timezone", "day,time")] == 73 and fmt[("multi_op", "H,M,S")] == 100
    # golden answers through the method-side extractor score 1.0 everywhere
    scores = []
    for it in items:
        reply = "JSON = " + json.dumps({"explanation": "...", **it.target})
        scores.append(task.score(it, task.prompt(it).extract(reply)))  # type: ignore[misc]
    agg = task.aggregate(scores)
    assert agg["accuracy"] == 1.0 and agg["unparsed"] == 0
    assert set(agg["per_category"]) == set(counts)
