from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.cli import cli, main
from llmlab.tasks.data_cli import data


def _mini_redux(root: Path) -> Path:
    d = root / "mmlu-redux-2.0" / "mmlu_redux"
    d.mkdir(parents=True)
    for subject, labels in {"virology": ["ok", "Wrong Groundtruth", "bad_question_clarity", "OK"],
                            "anatomy": ["ok", "ok"]}.items():
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";" if subject == "anatomy" else ",")
        w.writerow(["question", "choices", "answer", "error_type", "source", "correct_answer", "potential_reason"])
        for i, lab in enumerate(labels):
            w.writerow([f"q{i}", "['a', 'b', 'c', 'd']", "0", lab, "", "1" if "Wrong" in lab else "", ""])
        (d / f"mmlu_{subject}.csv").write_text(buf.getvalue())
    return root


def test_mmlu_redux_stats_json(tmp_path: Path) -> None:
    root = _mini_redux(tmp_path)
    res = CliRunner().invoke(data, ["mmlu_redux", "stats", "--json", "--data-dir", str(root)])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert stats["error_types"] == {"ok": 4, "wrong groundtruth": 1, "bad question clarity": 1}
    assert stats["subjects"]["virology"]["erroneous"] == 0.5
    assert stats["subjects"]["anatomy"]["erroneous"] == 0.0
    assert stats["files"]["anatomy"]["delimiter"] == ";"


def test_mmlu_redux_stats_table_through_lazy_cli(tmp_path: Path) -> None:
    root = _mini_redux(tmp_path)
    res = CliRunner().invoke(cli, ["data", "mmlu_redux", "stats", "--data-dir", str(root)])
    assert res.exit_code == 0, res.output
    virology = next(line for line in res.output.splitlines() if "virology" in line)
    assert "50%" in virology
    assert "ALL" in res.output and "33.33%" in res.output


def test_missing_data_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["data", "mmlu_redux", "stats", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and err.startswith("error: data file mmlu-redux-2.0/mmlu_redux not found")
    assert len(err.strip().splitlines()) == 1


def test_real_virology_57_percent(shared_data: Path) -> None:
    res = CliRunner().invoke(data, ["mmlu_redux", "stats", "--json", "--data-dir", str(shared_data),
                                    "--subject", "virology"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["subjects"]["virology"]["erroneous"] == pytest.approx(0.57)


def test_tot_arithmetic_stats(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(json.dumps([
        {"question": "a", "question_type": "trick", "label": "{'answer': 'x'}"},
        {"question": "b", "question_type": "trick", "label": "{'unordered_list': ['x']}"},
        {"question": "c", "question_type": "timezone", "label": "{'hours': 1, 'minutes': 0}"},
    ]))
    res = CliRunner().invoke(data, ["tot_arithmetic", "stats", "--json", "--file", str(f)])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert stats["categories"] == {"trick": 2, "timezone": 1}
    assert stats["formats"]["trick"] == {"answer": 1, "unordered_list": 1}


# -- `llmlab score` end to end -----------------------------------




def _score_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    rc = main(["score", *args, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


def test_score_cli_tot_arithmetic(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads((shared_data / "tot-arithmetic" / "test.json").read_text())
    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(json.dumps({**r, "prediction": r["label"]}) + "\n" for r in rows))
    agg = _score_json(capsys, "tot_arithmetic", "--predictions", str(golden))
    assert agg["accuracy"] == 1.0 and agg["n"] == 1850
    # every 4th answer replaced by a wrong one: hand count 1850 - ceil(1850 / 4) = 1387 right
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("".join(
        json.dumps({**r, "prediction": r["label"] if i % 4 else '{"answer": "nonsense", "hours": -1}'}) + "\n"
        for i, r in enumerate(rows)))
    agg = _score_json(capsys, "tot_arithmetic", "--predictions", str(wrong))
    assert agg["accuracy"] == pytest.approx(1387 / 1850)


def test_score_cli_mmlu_redux(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmlab.tasks.mmlu_redux import load_redux

    _, rows = load_redux(_mini_redux(tmp_path))
    recs = [{"subject": r.subject, "question": r.question, "choices": list(r.choices), "answer": r.answer,
             "error_type": r.raw_error_type, "correct_answer": r.correct_answer, "prediction": "A"} for r in rows]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert _score_json(capsys, "mmlu_redux", "--predictions", str(f))["accuracy"] == 1.0
    # corrected labels: the wrong-groundtruth row is re-keyed to B, the unclear one dropped -> 4 of 5
    agg = _score_json(capsys, "mmlu_redux", "--predictions", str(f), "-t", "labels=corrected")
    assert (agg["n_scored"], agg["accuracy"]) == (5, 0.8)


def test_score_cli_bad_record_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"question": "q", "question_type": "trick", "label": "{'answer': 'x'",
                             "prediction": "x"}) + "\n")
    rc = main(["score", "tot_arithmetic", "--predictions", str(f)])
    err = capsys.readouterr().err
    assert rc != 0 and f"{f}:1: label is not a Python literal" in err


def test_score_cli_tot_semantic_golden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmlab.tasks.test_of_time import generate_semantic

    rows = generate_semantic(16, seed=4)
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({**r, "prediction": r["label"]}) + "\n" for r in rows))
    assert _score_json(capsys, "tot_semantic", "--predictions", str(f))["accuracy"] == 1.0
    f.write_text("".join(json.dumps({**r, "prediction": r["label"] if i < 12 else "E0"}) + "\n"
                         for i, r in enumerate(rows)))
    assert _score_json(capsys, "tot_semantic", "--predictions", str(f))["accuracy"] == 0.75


def test_eval_cli_tot_arithmetic_with_mock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_file = tmp_path / "tot.json"
    data_file.write_text(json.dumps([
        {"question": "a", "question_type": "trick", "label": "{'answer': 'unanswerable'}"},
        {"question": "b", "question_type": "trick", "label": "{'answer': '2004-01-11'}"},
        {"question": "c", "question_type": "add_subtract", "label": "{'answer': 'Unanswerable'}"},
    ]))
    rc = main(["eval", "tot_arithmetic", "--model", 'mock:text={"answer": "unanswerable"}', "--no-progress",
               "-t", f"data_file={data_file}", "--runs-dir", str(tmp_path / "runs")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert re.search(r"accuracy\s*│\s*0\.6667", out.out), out.out
