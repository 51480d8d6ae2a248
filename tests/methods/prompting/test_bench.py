from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.cli import cli, main
from llmlab.core.contracts import Item
from llmlab.methods.prompting.bench import category, condition_prompt, extract_report_answer, load_prompts
from llmlab.tasks.mmlu_redux import MMLURedux

ITEM = Item("x/1", {"subject": "college_physics", "question": "Which is a vector?", "choices": ["mass", "force"],
                    "answer": 1}, (1,))


def test_extract_report_answer() -> None:
    assert extract_report_answer('{\n"reasoning": "x (A) is wrong",\n"answer": "D"}') == "D"
    assert extract_report_answer("I pick (A), no wait, (C).") == "C"
    assert extract_report_answer("Answer: B") == "B"
    assert extract_report_answer("nothing") is None


def test_category() -> None:
    assert category("college_physics") == "STEM" and category("philosophy") == "Humanities"
    assert category("sociology") == "Social Sciences" and category("marketing") == "Other"


def test_condition_prompts_from_the_report_file(shared_data: Path) -> None:
    prompts = load_prompts(shared_data / "prompt-report" / "prompts.json")
    zs = condition_prompt("zero_shot", ITEM, prompts, 0)
    assert zs == (
        "Solve the following problem and return your answer as (A), (B), (C) or (D) with parentheses surrounding "
        "the correct letter.\n\nQuestion: Which is a vector?\nChoices:\n(A) mass\n(B) force\nAnswer:"
    )
    assert condition_prompt("zero_shot", ITEM, prompts, 1).startswith(prompts["baseline2"])
    cot = condition_prompt("zero_shot_cot", ITEM, prompts, 1)
    assert cot.endswith("\n" + prompts["plan-and-solve"])
    fs = condition_prompt("few_shot", ITEM, prompts, 0)
    assert prompts["MMLU STEM"].strip() in fs and fs.endswith("(B) force\nAnswer:")
    fsc = condition_prompt("few_shot_cot", ITEM, prompts, 0)
    assert '"answer": "B"' in fsc and fsc.endswith("Response:")


def test_bench_cli_on_mmlu_redux(shared_data: Path, tmp_path: Path) -> None:
    items = MMLURedux({"data_dir": str(shared_data), "subjects": ["anatomy"]}).items()[:12]
    expected = sum(1 in it.target for it in items) / len(items)  # the mock always says (B)
    out = tmp_path / "bench"
    result = CliRunner().invoke(cli, [
        "bench", "prompting", "--model", "mock:text=So the answer is (B).", "--limit", "12", "--sc-n", "3",
        "--data-dir", str(shared_data), "-t", "subjects=[anatomy]", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    assert [(r["condition"], r["self_consistency"]) for r in rows] == [
        (c, sc) for sc in (1, 3) for c in ("zero_shot", "zero_shot_cot", "few_shot", "few_shot_cot")]
    assert all(r["accuracy"] == pytest.approx(expected) and r["n"] == 12 for r in rows)
    assert [r["calls"] for r in rows] == [12] * 4 + [36] * 4
    assert "| few_shot_cot | 3 | 12 |" in (out / "table.md").read_text()
    pytest.importorskip("matplotlib")
    assert (out / "bars.png").stat().st_size > 1000


def test_bench_rejects_other_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "prompting", "--task", "gsm8k", "--model", "mock:echo"])
    err = capsys.readouterr().err
    assert code != 0 and "mmlu_redux only" in err and len(err.strip().splitlines()) == 1
