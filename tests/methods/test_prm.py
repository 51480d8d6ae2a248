from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ConfigError, DataError
from llmlab.methods.prm import (
    LLMPRM,
    FunctionPRM,
    PRMWeightedSC,
    StepExample,
    flat_to_tree,
    parse_step_scores,
    read_math_aps,
    read_math_shepherd,
    read_prm800k,
    reduce_steps,
    to_math_shepherd,
    to_prm800k,
    tree_to_flat,
    weighted_vote,
)

# -- data layouts on the real sample files ---------------------------------------------------------


def test_math_shepherd_round_trip(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "omegaprm-samples" / "samples_math-shepherd.jsonl"
    examples = read_math_shepherd(path)
    assert len(examples) == 7
    first = examples[0]
    assert first.question.startswith("Janet pays $40/hour") and len(first.steps) == 5
    assert first.labels == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert examples[1].labels == [0.0, 0.0, 0.0]
    # Writing back and reading again gives the same steps and labels.
    out = tmp_path / "shepherd.jsonl"
    out.write_text("\n".join(json.dumps(to_math_shepherd(ex)) for ex in examples) + "\n")
    again = read_math_shepherd(out)
    assert [(e.steps, e.labels) for e in again] == [(e.steps, e.labels) for e in examples]
    # And our writer reproduces the file's own label line for the first record.
    original = json.loads(path.read_text().splitlines()[0])
    assert to_math_shepherd(first, task="GSM8K")["label"].split("Step 1:")[1].replace("\n", " ").split() == (
        original["label"].split("Step 1:")[1].replace("\n", " ").split()
    )


def test_prm800k_round_trip(shared_data: Path, tmp_path: Path) -> None:
    examples = read_prm800k(shared_data / "omegaprm-samples" / "samples_prm800k.jsonl")
    assert len(examples) == 6
    assert examples[0].question.startswith("Three pencils and a jumbo eraser")
    assert all(lab in (0.0, 1.0, None) for ex in examples for lab in ex.labels)
    out = tmp_path / "prm800k.jsonl"
    out.write_text("\n".join(json.dumps(to_prm800k(ex)) for ex in examples) + "\n")
    assert [(e.steps, e.labels) for e in read_prm800k(out)] == [(e.steps, e.labels) for e in examples]


def test_math_aps_flat_and_tree(shared_data: Path) -> None:
    folder = shared_data / "omegaprm-samples"
    flat_examples = read_math_aps(folder / "samples_math-aps.jsonl")
    tree_examples = read_math_aps(folder / "samples_math-aps-tree.jsonl")
    assert flat_examples and tree_examples
    for ex in [*flat_examples, *tree_examples]:
        assert ex.labels[-1] is not None and all(lab is None or 0.0 <= lab <= 1.0 for lab in ex.labels)
    # The flat file's records survive flat -> tree -> flat as a bag of (prefix-steps, MC).
    rec = json.loads((folder / "samples_math-aps.jsonl").read_text().splitlines()[0])
    q = rec["question"]

    def bag(records: list[dict[str, Any]]) -> list[tuple[str, float]]:
        return sorted(("\n\n".join(p.strip() for p in r["solution_prefix"][len(q):].split("\n\n") if p.strip()),
                       r["mc_value"]) for r in records)

    assert bag(tree_to_flat(q, flat_to_tree(q, rec["reasoning_steps"]))) == bag(rec["reasoning_steps"])


def test_bad_layouts_are_one_line_errors() -> None:
    with pytest.raises(DataError, match="2 steps but 1 labels"):
        StepExample("q", ["a", "b"], [1.0])
    with pytest.raises(DataError, match="root"):
        flat_to_tree("q", [{"solution_prefix": "q\n\na", "mc_value": 1.0}][1:] or [])
    with pytest.raises(DataError, match="every step"):
        to_math_shepherd(StepExample("q", ["a"], [None]))


# -- LLM-as-PRM --------------------------------------------------------------------------------------


def test_parse_step_scores() -> None:
    assert parse_step_scores("Step 1: 0.9\nStep 2: **0.2**\nStep 3: correct\nStep 9: 1", 3) == [0.9, 0.2, 1.0]
    assert parse_step_scores("nothing", 2) == [None, None]


LLM_PRM_GOLDEN = (
    "You are grading a solution one step at a time.\n\n"
    "Question:\nWhat is 2+3?\n\n"
    "Solution:\nStep 1: 2+3 = 5\n\nStep 2: \\boxed{5}\n\n"
    "For each step, judge whether it is correct given the question and the steps before it. Reply with one "
    'line per step, "Step <i>: <p>", where <p> is the probability in [0, 1] that step <i> is correct.'
)


def test_llm_prm_prompt_and_default_score() -> None:
    backend = MockBackend(["Step 1: 0.8"])
    prm = LLMPRM(Model(backend))
    scores = run_sync(prm.score_steps("What is 2+3?", ["2+3 = 5", "\\boxed{5}"]))
    assert scores == [0.8, 0.5] and prm.unrated == 1
    (req,) = backend.requests
    assert req.messages is not None and req.messages[-1].text == LLM_PRM_GOLDEN and req.temperature == 0.0


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
