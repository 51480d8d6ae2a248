"""PH-LLM case-study rubric: principles per section, judge prompt, Likert parsing, the judge-role task."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.contracts import Roles
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.runner import EvalSpec, run_eval
from llmlab.tasks.ph_llm.rubric import (
    OVERALL_PRINCIPLES,
    PRINCIPLES,
    SECTION_PRINCIPLES,
    PHLLMCaseStudy,
    build_judge_prompt,
    parse_likert,
    principles_for,
)


def test_rubric_has_the_released_principles_and_sections(shared_data):
    assert len(PRINCIPLES) == 15 and len(SECTION_PRINCIPLES) == 12 and len(OVERALL_PRINCIPLES) == 3
    import csv

    for v in ("sleep", "fitness"):
        with (shared_data / "ph-llm" / "autoeval_ratings" / f"{v}_human_expert_ratings.tsv").open() as f:
            seen: dict[str, set[str]] = {}
            for r in csv.DictReader(f, delimiter="\t"):
                seen.setdefault(r["tag"], set()).add(r["principle"])
        for tag, principles in seen.items():  # every released (section, principle) pair is one we rate
            assert principles == set(principles_for(tag)), (v, tag)
            PHLLMCaseStudy().item_from_record({"case_study_id": "x", "vertical": v, "tag": tag, "data": "d"}, "f:1")


def test_each_principle_has_five_ordered_statements():
    for p, (criterion, opts) in PRINCIPLES.items():
        assert criterion and len(opts) == 5 and len(set(opts)) == 5, p
        prompt = build_judge_prompt("fitness", "training_load", p, "ACWR 1.6", "Your load spiked.")
        assert all(f"{i}. {o}" in prompt for i, o in enumerate(opts, 1))
        assert "ACWR 1.6" in prompt and "Your load spiked." in prompt


@pytest.mark.parametrize("reply,want", [
    ("4. Most of the important user data is present.", 4), ("  5", 5), ("Rating: **2**", 2),
    ("**3** There are a few", 3), ("I'd pick 2. There is a lot", 2), ("12 assumptions", None),
    ("4.5", None), ("no idea", None), ("", None),
])
def test_parse_likert(reply, want):
    assert parse_likert(reply) == want


def test_bad_section_is_one_clear_error():
    with pytest.raises(DataError, match="f:3: unknown sleep section 'training_load'"):
        PHLLMCaseStudy().item_from_record({"case_study_id": "x", "vertical": "sleep", "tag": "training_load",
                                           "data": "d"}, "f:3")
    with pytest.raises(DataError, match="needs a 'data' string"):
        PHLLMCaseStudy().item_from_record({"case_study_id": "x", "vertical": "sleep", "tag": "insights"}, "f:3")
    item, _ = PHLLMCaseStudy().item_from_record({"case_study_id": "x", "vertical": "sleep", "tag": "insights",
                                                 "data": "d"}, "f:1")
    with pytest.raises(UnsupportedFeatureError, match="judge"):
        PHLLMCaseStudy().score(item, "text")


def test_judge_rates_every_principle_of_the_section():
    task = PHLLMCaseStudy()
    sec, _ = task.item_from_record({"case_study_id": "c", "vertical": "sleep", "tag": "etiology", "data": "d"}, "f")
    ovr, _ = task.item_from_record({"case_study_id": "c", "vertical": "sleep", "tag": "overall", "data": "d"}, "f")
    # a judge that gives 2 on the hallucination criterion, 5 elsewhere, and nonsense on readability
    def reply(request, i):
        text = request.messages[-1].content
        if "hallucinated or fabricated" in text:
            return "2. There is a lot of fabricated content."
        if "Criterion: The case study is easy to read" in text:
            return "Looks fine to me."
        return "5. All good."

    roles = Roles(Model("mock:echo"), judge=Model(MockBackend(reply)))
    s = anyio.run(task.ascore, sec, "Possible circadian delay.", roles)
    assert set(s.details["ratings"]) == set(SECTION_PRINCIPLES) and s.details["ratings"]["no_hallucinations"] == 2
    assert s.value == pytest.approx((11 * 1.0 + 0.25) / 12)
    s2 = anyio.run(task.ascore, ovr, "Whole case study.", roles)
    assert s2.details["unparsed"] == ["readable"] and set(s2.details["ratings"]) == {"non_harmful", "overall_quality"}
    agg = task.aggregate([s, s2])
    assert agg["unparsed"] == 1 and agg["mean_rating_by_principle"]["no_hallucinations"] == 2
    assert set(agg["mean_rating_by_section"]) == {"sleep/etiology", "sleep/overall"}


def test_case_studies_end_to_end_with_a_judge_role(tmp_path: Path):
    data = tmp_path / "cs.jsonl"
    lines = [{"case_study_id": "SC1", "vertical": "sleep", "tag": "insights", "data": "sleep 5.9 h; efficiency 81%"},
             {"case_study_id": "FC1", "vertical": "fitness", "tag": "assessment", "data": "ACWR 1.4; RHR up 4 bpm"}]
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    spec = EvalSpec(task="ph_llm.case_study", model_spec="mock:text=Your sleep is short.",
                    roles=("judge=mock:text=4. Most of it is present.",), data=str(data),
                    runs_dir=str(tmp_path / "runs"), transcripts=False)
    s = run_eval(spec)
    assert s.n_scored == 2 and s.n_errors == 0
    assert s.aggregate["mean_rating"] == 4 and s.aggregate["score"] == pytest.approx(0.75)
    assert s.calls == 2 + 2 * 12  # one coach call per section, one judge call per principle
