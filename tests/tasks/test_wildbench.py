from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.methods.base import Roles
from llmlab.tasks.wildbench import (
    EMPTY_MARK,
    TASK_WEIGHTS,
    TRUNCATION_MARK,
    PairwiseJudgement,
    WildBench,
    adjusted,
    build_pairwise_prompt,
    build_score_prompt,
    pairwise_outcome,
    parse_choice,
    parse_score,
    reward_of_counts,
    shorten,
    task_groups,
    task_macro,
    verify_leaderboard,
    wb_reward,
    wb_score,
)
from llmlab.tasks.wildbench_cli import wildbench

CONV = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Write a haiku."}]


# -- §1.5 / §12.2 test vectors from the official tables -----------------------------------------------------

def test_reward_vectors_gpt4o_vs_haiku() -> None:
    assert reward_of_counts({"win_much": 342, "win": 108, "tie": 319, "lose": 100, "lose_much": 34}, 1024) == 0.3046875
    assert reward_of_counts({"win_much": 342, "win": 380, "tie": 37, "lose": 110, "lose_much": 34},
                            1024) == 0.4326171875


def test_task_macro_vector_and_weights() -> None:
    cats = {"Coding & Debugging": 0.4277, "Creative Tasks": 0.3135, "Information/Advice seeking": 0.2788,
            "Planning & Reasoning": 0.3671, "Math & Data Analysis": 0.4547}
    assert task_macro(cats) == pytest.approx(0.38192, abs=1e-4)
    assert sum(TASK_WEIGHTS.values()) == 4.75
    assert task_macro(cats) != pytest.approx(sum(cats.values()) / 5, abs=1e-4)  # weighted, not plain


def test_wb_score_adjustment_vector() -> None:
    assert adjusted(7.94037) == pytest.approx(5.88074)
    assert adjusted(5.0) == 0.0 and adjusted(1.0) == -8.0


def test_verify_leaderboard_passes_on_official_tables(shared_data: Path) -> None:
    checks = verify_leaderboard(shared_data / "wildbench-leaderboard")
    assert len(checks) > 5000
    assert max(c.diff for c in checks) < 1e-9
    files = {c.file for c in checks}
    assert {"score.json", "pairwise-haiku-K=500.json", "all_stat_wildbench.500.json"} <= files
    mix = [c for c in checks if c.model == "gpt-4o-2024-05-13" and c.field == "mixture_of_rewards.K=500"]
    assert mix and mix[0].reported == pytest.approx(24.755859375)


def test_verify_cli_flags_a_tampered_table(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "wildbench-leaderboard"
    for name in ("pairwise-haiku-K=500.json", "score.json"):
        shutil.copy(src / name, tmp_path / name)
        (tmp_path / name).chmod(0o644)
    runner = CliRunner()
    ok = runner.invoke(wildbench, ["verify-leaderboard", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    p = tmp_path / "score.json"
    d = json.loads(p.read_text())
    d["gpt-4o-2024-05-13"]["task_macro_score"] += 0.05
    p.write_text(json.dumps(d))
    bad = runner.invoke(wildbench, ["verify-leaderboard", str(tmp_path)])
    assert bad.exit_code == 1
    assert "task_macro_score" in bad.output and "gpt-4o-2024-05-13" in bad.output


def test_verify_refuses_a_folder_without_tables(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no WildBench leaderboard tables"):
        verify_leaderboard(tmp_path)


# -- K rule, skips, denominators ----------------------------------------------------------------------------

def test_k_rule_only_turns_slight_outcomes_into_ties() -> None:
    long, short = "x" * 701, "y" * 200
    assert pairwise_outcome("target", 1, long, short, K=500) == "tie"
    assert pairwise_outcome("target", 2, long, short, K=500) == "win_much"
    assert pairwise_outcome("ref", 1, short, long, K=500) == "tie"
    assert pairwise_outcome("ref", 2, short, long, K=500) == "lose_much"
    assert pairwise_outcome("target", 1, long, short, K=-1) == "win"
    assert pairwise_outcome("target", 1, "x" * 700, short, K=500) == "win"  # strictly more than K
    assert pairwise_outcome("ref", 1, long, short, K=500) == "lose"  # the loser being longer never flips


def test_k_rule_measures_the_truncated_text_in_the_prompt() -> None:
    target = " ".join(["word"] * 1500)  # truncated to 1000 words in the prompt
    pp = build_pairwise_prompt(CONV, ["ok?"], target, "short", target_is_a=True, max_words=1000)
    assert pp.target_text.endswith(TRUNCATION_MARK)
    assert len(pp.target_text) == len(" ".join(["word"] * 1000) + TRUNCATION_MARK)


def test_official_skip_keeps_skipped_items_in_the_denominator() -> None:
    js = [
        PairwiseJudgement("1", "target", 2, "a", "b", ("Creative Tasks",)),
        PairwiseJudgement("2", "ref", 1, "a", "b", ("Creative Tasks",)),
        PairwiseJudgement("3", "target", 2, "long" + TRUNCATION_MARK, "b", ("Creative Tasks",)),
        PairwiseJudgement("4", "target", 2, EMPTY_MARK, "b", ("Coding & Debugging",)),
    ]
    rep = wb_reward(js, K=-1)
    assert rep.total == 4 and rep.n_skipped == {"truncated": 1, "empty": 1}
    assert rep.reward == pytest.approx((1 - 0.5) / 4)
    assert rep.task_categorized_rewards == {"Creative Tasks": pytest.approx(0.25)}  # counted items only
    alt = wb_reward(js, K=-1, denominator="counted")
    assert alt.reward == pytest.approx((1 - 0.5) / 2)


def test_wb_score_categories_skip_truncated_outputs() -> None:
    rep = wb_score([(8.0, "fine", ["Creative Tasks"]), (4.0, "x" + TRUNCATION_MARK, ["Creative Tasks"]),
                    (6.0, "ok", ["Coding & Debugging"])])
    assert rep.score == pytest.approx(6.0) and rep.adjusted_score == pytest.approx(2.0)
    assert rep.task_categorized_scores == {"Creative Tasks": 6.0, "Coding & Debugging": 2.0}
    assert rep.task_macro_score == pytest.approx((0.5 * 6 + 1.25 * 2) / 1.75)


def test_task_groups_merge_and_deduplicate() -> None:
    assert task_groups("Math", ["Data Analysis", "Reasoning"]) == ["Math & Data Analysis", "Planning & Reasoning"]
    assert task_groups("Editing", ["Others"]) == ["Creative Tasks"]


# -- prompts and parsing ------------------------------------------------------------------------------------

def test_prompt_structure_and_placement() -> None:
    pp = build_pairwise_prompt(CONV, ["Is it 5-7-5?", "Is it about nature?"], "TARGET", "REF", target_is_a=False)
    p = pp.prompt
    assert "{$" not in p
    assert "USER: hi\n\nASSISTANT: hello\n\n" in p
    assert re.search(r"<\|begin_of_query\|>\s*Write a haiku.\s*<\|end_of_query\|>", p)
    assert re.search(r"<\|begin_of_response_A\|>\s*REF\s*<\|end_of_response_A\|>", p)
    assert re.search(r"<\|begin_of_response_B\|>\s*TARGET\s*<\|end_of_response_B\|>", p)
    assert "- Is it 5-7-5?\n- Is it about nature?\n" in p
    for key in ("analysis of A", "analysis of B", "reason of A=B", "reason of A>B", "reason of B>A", "choice"):
        assert f'"{key}"' in p
    s = build_score_prompt(CONV, ["c"], "")
    assert EMPTY_MARK in s and '"score"' in s and "<|begin_of_response|>" in s


def test_shorten() -> None:
    assert shorten("a b c", 3) == "a b c"
    assert shorten("a b c d", 2) == "a b" + TRUNCATION_MARK
    assert shorten("a b c d", -1) == "a b c d"


def test_parse_choice_and_score() -> None:
    assert parse_choice('{"choice": "B++", "analysis of A": "x"}') == ("B", 2)
    assert parse_choice('Here you go:\n{"analysis of A": "has "quotes"", "choice": "A+"}') == ("A", 1)
    assert parse_choice('{"choice": "A=B"}') == ("tie", 0)
    assert parse_choice('{"choice": "C"}') is None
    assert parse_choice("no json") is None
    assert parse_score('{"strengths": "s", "weaknesses": "w", "score": "7"}') == 7.0
    assert parse_score('{"score": 8}') == 8.0
    assert parse_score('{"score": "great"}') is None


# -- the task with a judge role (mock judge) ----------------------------------------------------------------

def _judge_prefers_good(request: GenerateRequest, index: int) -> str:
    text = request.messages[-1].content if request.messages else ""
    a = re.search(r"<\|begin_of_response_A\|>(.*?)<\|end_of_response_A\|>", text, re.S)
    if a is None:
        return '{"strengths": "", "weaknesses": "", "score": "9"}'
    return json.dumps({"choice": "A++" if "GOOD" in a.group(1) else "B+"})


def _write_rows(path: Path, n: int) -> None:
    rows = [{"session_id": f"s{i}", "conversation_input": CONV, "checklist": ["c1"],
             "primary_tag": "Coding & Debugging", "secondary_tags": ["Math"],
             "reference_outputs": {"claude-3-haiku-20240307": "ref answer"}}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.anyio
async def test_pairwise_judging_maps_positions_back_to_target(tmp_path: Path) -> None:
    data = tmp_path / "wb.jsonl"
    _write_rows(data, 12)
    task = WildBench({"data_file": str(data), "baseline": "haiku", "K": -1})
    items = list(task.items())
    assert len({it.metadata["target_is_a"] for it in items}) == 2  # both orders occur
    backend = MockBackend(_judge_prefers_good)
    roles = Roles(Model("mock:echo"), judge=Model(backend))
    scores = [await task.ascore(it, "GOOD answer", roles) for it in items]
    # target shown as A → judge says A++ (win_much); shown as B → judge says B+ (slightly, target wins)
    for it, s in zip(items, scores, strict=True):
        assert s.details["winner"] == "target"
        assert s.value == (1.0 if it.metadata["target_is_a"] else 0.5)
    assert all(r.temperature == 0.0 for r in backend.requests)
    rep = task.aggregate(scores)
    assert rep["total"] == 12 and rep["n_dropped"] == 0
    assert set(rep["task_categorized_rewards"]) == {"Coding & Debugging", "Math & Data Analysis"}


@pytest.mark.anyio
async def test_empty_output_official_vs_preset(tmp_path: Path) -> None:
    data = tmp_path / "wb.jsonl"
    _write_rows(data, 1)
    item = next(iter(WildBench({"data_file": str(data)}).items()))
    backend = MockBackend(_judge_prefers_good)
    roles = Roles(Model(backend))
    official = WildBench({"data_file": str(data), "K": -1})
    s = await official.ascore(item, "", roles)
    assert len(backend.requests) == 1  # official: the judge is still called ...
    assert official.aggregate([s])["reward"] == 0.0 and official.aggregate([s])["n_skipped"] == {"empty": 1}
    preset = WildBench({"data_file": str(data), "K": -1, "empty_policy": "preset"})
    p = await preset.ascore(item, "   ", roles)
    assert len(backend.requests) == 1  # ... the preset policy does not call it
    assert preset.aggregate([p])["reward"] == -1.0


@pytest.mark.anyio
async def test_unparsable_verdict_is_dropped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "wb.jsonl"
    _write_rows(data, 2)
    task = WildBench({"data_file": str(data)})
    roles = Roles(Model(MockBackend(["I cannot decide."])))
    scores = [await task.ascore(it, "x", roles) for it in task.items()]
    rep = task.aggregate(scores)
    assert rep["n_dropped"] == 2 and rep["total"] == 0


@pytest.mark.anyio
async def test_score_mode(tmp_path: Path) -> None:
    data = tmp_path / "wb.jsonl"
    _write_rows(data, 3)
    task = WildBench({"data_file": str(data), "mode": "score"})
    roles = Roles(Model(MockBackend(_judge_prefers_good)))
    scores = [await task.ascore(it, "answer", roles) for it in task.items()]
    rep = task.aggregate(scores)
    assert rep["score"] == 9.0 and rep["adjusted_score"] == 8.0 and rep["task_macro_score"] == 8.0


def test_sync_score_points_to_the_judge_api(tmp_path: Path) -> None:
    data = tmp_path / "wb.jsonl"
    _write_rows(data, 1)
    task = WildBench({"data_file": str(data)})
    with pytest.raises(UnsupportedFeatureError, match="judge"):
        task.score(next(iter(task.items())), "x")
    with pytest.raises(DataError, match="not found"):
        list(WildBench({"data_file": str(tmp_path / "none.jsonl")}).items())


def test_llmlab_eval_with_a_judge_role_end_to_end(tmp_path: Path) -> None:
    """`llmlab eval wildbench --data F --role judge=...`: the runner calls the judge through ascore."""
    from llmlab.runner import EvalSpec, run_eval

    data = tmp_path / "wb.jsonl"
    _write_rows(data, 6)
    s = run_eval(EvalSpec(task="wildbench", method="direct", model_spec="mock:text=GOOD answer", data=str(data),
                          roles=["judge=mock:py=tests.tasks.test_wildbench:_judge_prefers_good"],
                          task_params=["K=-1"], runs_dir=str(tmp_path / "runs"), run_id="wb"))
    assert s.n_scored == 6 and s.n_errors == 0
    assert s.calls == 12  # one policy call and one judge call per item
    assert s.aggregate["total"] == 6 and 0.5 <= s.aggregate["reward"] <= 1.0
