"""The LLM-as-PRM prompt (our wording: the question, numbered steps, one "Step i: p" line per step)."""

from __future__ import annotations

LLM_PRM_PROMPT = (
    "You are grading a solution one step at a time.\n\n"
    "Question:\n{question}\n\n"
    "Solution:\n{steps}\n\n"
    "For each step, judge whether it is correct given the question and the steps before it. Reply with one "
    'line per step, "Step <i>: <p>", where <p> is the probability in [0, 1] that step <i> is correct.'
)
