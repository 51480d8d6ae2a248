from __future__ import annotations

import pytest

from llmlab.tasks.wildbench.prompts import EMPTY_MARK, TRUNCATION_MARK
from llmlab.tasks.wildbench.rewards import (
    TASK_WEIGHTS,
    PairwiseJudgement,
    adjusted,
    pairwise_outcome,
    reward_of_counts,
    task_groups,
    task_macro,
    wb_reward,
    wb_score,
)


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


def test_k_rule_only_turns_slight_outcomes_into_ties() -> None:
    long, short = "x" * 701, "y" * 200
    assert pairwise_outcome("target", 1, long, short, K=500) == "tie"
    assert pairwise_outcome("target", 2, long, short, K=500) == "win_much"
    assert pairwise_outcome("ref", 1, short, long, K=500) == "tie"
    assert pairwise_outcome("ref", 2, short, long, K=500) == "lose_much"
    assert pairwise_outcome("target", 1, long, short, K=-1) == "win"
    assert pairwise_outcome("target", 1, "x" * 700, short, K=500) == "win"  # strictly more than K
    assert pairwise_outcome("ref", 1, long, short, K=500) == "lose"  # the loser being longer never flips


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
    # official _create_tables.py: divided by the weights of all five categories (4.75), present or not
    assert rep.task_macro_score == pytest.approx((0.5 * 6 + 1.25 * 2) / 4.75)
    assert rep.as_dict()["missing_categories"] == ["Planning & Reasoning", "Math & Data Analysis",
                                                   "Information/Advice seeking"]


def test_wb_score_with_no_parsed_score_is_none_not_the_worst_grade() -> None:
    rep = wb_score([], n_dropped=3)
    assert rep.score is None and rep.adjusted_score is None and rep.task_macro_score is None
    assert rep.as_dict()["parse_failures"] == 3


def test_task_groups_merge_and_deduplicate() -> None:
    assert task_groups("Math", ["Data Analysis", "Reasoning"]) == ["Math & Data Analysis", "Planning & Reasoning"]
    assert task_groups("Editing", ["Others"]) == ["Creative Tasks"]
