from __future__ import annotations

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.methods.prm import (
    LLMPRM,
    parse_step_scores,
)

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


