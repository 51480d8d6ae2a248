from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.contracts import Roles
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.tasks.wildbench.task import WildBench

CONV = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Write a haiku."}]


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
    from llmlab.tasks.wildbench.rewards import TASK_WEIGHTS

    present = sum(w for c, w in TASK_WEIGHTS.items() if c not in rep["missing_categories"])
    assert rep["score"] == 9.0 and rep["adjusted_score"] == 8.0
    assert rep["task_macro_score"] == pytest.approx(8.0 * present / sum(TASK_WEIGHTS.values()))


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
                          roles=["judge=mock:py=tests.tasks.wildbench.test_task:_judge_prefers_good"],
                          task_params=["K=-1"], runs_dir=str(tmp_path / "runs"), run_id="wb"))
    assert s.n_scored == 6 and s.n_errors == 0
    assert s.calls == 12  # one policy call and one judge call per item
    assert s.aggregate["total"] == 6 and 0.5 <= s.aggregate["reward"] <= 1.0
