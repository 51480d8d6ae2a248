"""``llmlab eval bamboogle --method husky --role action=SPEC --role code=SPEC ...`` with scripted models."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from llmlab.cli import main
from llmlab.tasks.husky_eval import Bamboogle, exact_match


def test_eval_bamboogle_with_one_scripted_model_per_role(shared_data: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    action = tmp_path / "action.yaml"
    action.write_text(yaml.safe_dump({
        "rules": [{"pattern": r"Solution history:\nNone\n", "reply": "[code] Count the letters of the question."},
                  {"pattern": r"Step: Count the letters.*\nStep: ", "reply": "[finish] The answer is james madison."}],
        "default": "[search] Find who was president in 1812."}))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "madison.txt").write_text("James Madison was the president of the United States in 1812.")
    runs = tmp_path / "runs"
    code = main(["eval", "bamboogle", "--method", "husky", "--model", "mock:text=The count is 3.",
                 "--role", f"action=mock:{action}", "--role", "code=mock:text=print(len('abc'))",
                 "--role", "search=mock:text=president 1812", "--role", "commonsense=mock:text=It is Madison.",
                 "-p", f"documents={docs}", "-p", "code_prefix=''", "--limit", "3", "--concurrency", "3",
                 "--runs-dir", str(runs), "--run-id", "hk", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    items = list(Bamboogle().items())[:3]
    db = sqlite3.connect(runs / "hk" / "run.sqlite")
    rows = db.execute("SELECT item_id, answer, calls, trace, correct FROM items ORDER BY idx").fetchall()
    assert [r[0] for r in rows] == [i.id for i in items]
    assert [bool(r[4]) for r in rows] == [exact_match("james madison", str(i.target)) for i in items]
    assert "em" in out and "f1" in out
    for _item_id, answer, calls, trace_json, _ in rows:
        trace = json.loads(trace_json)
        assert answer == "james madison" and trace["tools"] == ["code", "search"]
        assert trace["steps"][0]["result"] == "3.0" and trace["steps"][0]["output"] == "It is Madison."
        assert trace["steps"][1]["result"].startswith("madison: James Madison")
        assert calls == 3 + 2 + 2  # 3 actions; code + writer; query + writer
    n_calls = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    assert n_calls == 21  # every call of every item is in the transcript store
