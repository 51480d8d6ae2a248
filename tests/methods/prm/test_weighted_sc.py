from __future__ import annotations

from typing import Any

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.prm import (
    FunctionPRM,
    PRMWeightedSC,
    reduce_steps,
    weighted_vote,
)

# -- PRM-weighted self-consistency ------------------------------------------------------------------


def test_reductions_and_vote_by_hand() -> None:
    assert reduce_steps([0.9, 0.5, 0.8], "product") == pytest.approx(0.36)
    assert reduce_steps([], "min") == 0.0
    assert weighted_vote([None, "a"], [5.0, 0.1]) == ("a", {"a": 0.1})
    assert weighted_vote(["b", "a"], [0.5, 0.5])[0] == "b"  # tie: first seen


SAMPLES = [
    "x = 3\n\nso \\boxed{3}",  # answer 3, steps scored 0.9, 0.3
    "x = 3\n\nso \\boxed{3}",
    "x = 3\n\nso \\boxed{3}",
    "y = 4\n\ny is 4\n\nso \\boxed{4}",  # answer 4, steps scored 0.9, 0.95, 0.8
    "y = 4\n\ny is 4\n\nso \\boxed{4}",
]
STEP_SCORES = {"x = 3": 0.9, "so \\boxed{3}": 0.3, "y = 4": 0.9, "y is 4": 0.95, "so \\boxed{4}": 0.8}


def _solve(vote: str, reduce: str) -> Any:
    prm = FunctionPRM(lambda q, steps: [STEP_SCORES[s] for s in steps])
    method = PRMWeightedSC({"n": 5, "vote": vote, "reduce": reduce}, prm=prm)
    return run_sync(method.solve(Query.from_text("x or y?"), Roles(Model(MockBackend(SAMPLES)))))


def test_weighted_vote_beats_majority_on_hand_example() -> None:
    sol = _solve("weighted", "min")
    # min: answer 3 -> 3 * 0.3 = 0.9; answer 4 -> 2 * 0.8 = 1.6. Majority says 3 (3 votes to 2).
    assert sol.answer == "4"
    assert sol.trace["weighted"] == pytest.approx({"3": 0.9, "4": 1.6})
    assert sol.trace["majority_answer"] == "3" and sol.trace["majority"] == {"3": 3, "4": 2}
    assert sol.trace["best_of_n_answer"] == "4"
    # last: 3 -> 0.9, 4 -> 1.6 (same); product: 3 -> 3 * 0.27 = 0.81, 4 -> 2 * 0.684 = 1.368.
    assert _solve("weighted", "product").trace["weighted"] == pytest.approx({"3": 0.81, "4": 1.368})
    assert _solve("majority", "min").answer == "3"
    assert _solve("best_of_n", "last").answer == "4"


def test_weighted_sc_samples_once_and_grades_each_with_llm_prm() -> None:
    policy = MockBackend(SAMPLES)
    grader = MockBackend(lambda req, i: "Step 1: 0.9\nStep 2: 0.1\nStep 3: 0.9")
    method = PRMWeightedSC({"n": 5})
    sol = run_sync(method.solve(Query.from_text("x or y?"), Roles(Model(policy), prm=Model(grader))))
    assert len(policy.requests) == 1 and policy.requests[0].n == 5
    assert len(grader.requests) == 5
    # min over (0.9, 0.1) for both answers' solutions (the third score only applies to 3-step ones).
    assert sol.trace["solution_scores"] == pytest.approx([0.1] * 5)
    assert sol.answer == "3"


def test_weighted_sc_rejects_unknown_roles_and_prm_specs() -> None:
    roles = Roles(Model(MockBackend(SAMPLES)), judge=Model("mock:echo"))
    with pytest.raises(ConfigError, match="no role 'judge'"):
        run_sync(PRMWeightedSC({"n": 1}).solve(Query.from_text("q"), roles))
    with pytest.raises(ConfigError, match="not understood"):
        run_sync(PRMWeightedSC({"n": 1, "prm": "bogus"}).solve(Query.from_text("q"), Roles(Model("mock:echo"))))
