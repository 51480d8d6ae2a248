"""PH-LLM exams: official answer parsing, prompt structures, the 6 public questions end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from llmlab.cli import main
from llmlab.core.contracts import Item
from llmlab.core.errors import DataError
from llmlab.runner import EvalSpec, run_eval
from llmlab.tasks.ph_llm.mcq import PHLLMExam, build_prompt, load_mcq_csv, parse_choices, parse_tagged_answer


def test_tagged_answer_parsing_follows_the_official_format_with_f_allowed():
    assert parse_tagged_answer("reasoning <answer>(b)</answer> later <answer>(C)</answer>", "ABCD") == "B"
    assert parse_tagged_answer("<answer> (F) </answer>", "ABCDEF") == "F"  # official regex stops at (E)
    assert parse_tagged_answer("<answer>(E)</answer>", "ABCD") is None  # not an option of this question
    assert parse_tagged_answer("The answer is (C).", "ABCD") is None
    assert parse_tagged_answer(None) is None


def test_the_six_public_questions_parse_with_their_multiline_fields(shared_data):
    rows = load_mcq_csv(shared_data / "ph-llm" / "synthetic_mcq_data.csv")
    with (shared_data / "ph-llm" / "synthetic_mcq_data.csv").open(newline="") as f:
        raw = list(csv.DictReader(f))
    assert len(rows) == len(raw) == 6
    assert [r["domain"] for r in rows] == [r["domain"] for r in raw]
    assert {r["difficulty"] for r in rows if r["domain"] == "Fitness"} == {None}
    for r, rr in zip(rows, raw, strict=True):
        assert f"({r['answer']})" == rr["answer"] and r["answer"] in r["options"]
        assert "\n" in r["question"] or r["domain"] == "Fitness"


def test_choices_must_be_consecutive_labels():
    assert parse_choices('{"(A)": "x", "(B)": "y"}', "f:1") == {"A": "x", "B": "y"}
    with pytest.raises(DataError, match="in sequence"):
        parse_choices("{'(A)': 'x', '(C)': 'y'}", "f:1")
    with pytest.raises(DataError, match="dict literal"):
        parse_choices("A, B", "f:1")


def test_bad_answer_names_the_row(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text('question,choices,domain,difficulty,answer\n"Q?","{\'(A)\': \'x\', \'(B)\': \'y\'}",Sleep,Easy,(C)\n')
    with pytest.raises(DataError, match=r"row 1.*not one of the choice labels"):
        load_mcq_csv(p)


def test_prompt_structures():
    opts = {"A": "light in the evening", "B": "light in the morning"}
    direct = build_prompt("Which helps?", opts, "Sleep", "direct")
    assert direct.startswith("Instruction:") and "Sleep knowledge" in direct and "(A), (B)" in direct
    assert direct.endswith("Which helps?\n(A) light in the evening\n(B) light in the morning")  # options appended
    cot = build_prompt("Which helps?\n(A) x\n(B) y", opts, "Fitness", "cot")
    assert cot.count("<answer>(") == 2 and cot.rstrip().endswith("Let us reason step by step.")
    assert cot.count("(A) x") == 1  # options already in the text are not repeated
    sb = build_prompt("Which helps?", opts, "Sleep", "step_back")
    assert sb.rstrip().endswith("## Principles:") and "sleep expert" in sb


def test_score_and_aggregate_by_domain_and_difficulty():
    t = PHLLMExam({"prompt": "cot"})
    a = Item("a", "Q", "B", {"options": {"A": "x", "B": "y"}, "domain": "Sleep", "difficulty": "Easy"})
    b = Item("b", "Q", "A", {"options": {"A": "x", "B": "y"}, "domain": "Fitness", "difficulty": None})
    scores = [t.score(a, "<answer>(B)</answer>"), t.score(b, "Answer: A")]  # the second has no tag
    agg = t.aggregate(scores)
    assert agg["accuracy"] == 0.5 and agg["unparsed"] == 1
    assert agg["accuracy_by_domain"] == {"Fitness": 0.0, "Sleep": 1.0}
    assert agg["accuracy_by_difficulty"] == {"Easy": 1.0}
    assert PHLLMExam({"prompt": "cot", "parse": "lenient"}).score(b, "Answer: A").correct


def _run(tmp_path: Path, reply: str, *task_params: str, method: str = "direct", params: tuple[str, ...] = ()) -> dict:
    spec = EvalSpec(task="ph_llm.mcq", method=method, model_spec=f"mock:text={reply}", task_params=task_params,
                    params=params, runs_dir=str(tmp_path / "runs"), transcripts=False)
    s = run_eval(spec)
    assert s.n_errors == 0
    return {"n": s.n_scored, **s.aggregate}


def test_six_questions_end_to_end_through_eval(shared_data, tmp_path):
    key = [r["answer"] for r in load_mcq_csv(shared_data / "ph-llm" / "synthetic_mcq_data.csv")]
    out = _run(tmp_path, "Explanation: ... Answer: <answer>(C)</answer>")
    assert out["n"] == 6 and out["unparsed"] == 0
    assert out["accuracy"] == pytest.approx(key.count("C") / 6)
    sc = _run(tmp_path, "<answer>(A)</answer>", method="self_consistency", params=("k=3",))
    assert sc["accuracy"] == pytest.approx(key.count("A") / 6)


def test_cli_eval_runs_the_exam(shared_data, tmp_path, capsys):
    code = main(["eval", "ph_llm.mcq", "--model", "mock:text=<answer>(B)</answer>", "--no-progress",
                 "--runs-dir", str(tmp_path / "r"), "-t", "prompt=step_back", "-t", "domain=Sleep"])
    assert code == 0 and "accuracy_by_difficulty" in capsys.readouterr().out


def test_untagged_replies_are_unparsed_under_official_parsing(shared_data, tmp_path):
    out = _run(tmp_path, "The answer is (A)", "domain=Fitness")
    assert out["n"] == 3 and out["unparsed"] == 3 and out["accuracy"] == 0
    lenient = _run(tmp_path, "The answer is (A)", "domain=Fitness", "parse=lenient")
    assert lenient["unparsed"] == 0 and lenient["accuracy"] > 0
