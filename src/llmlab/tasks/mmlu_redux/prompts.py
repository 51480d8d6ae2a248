"""MMLU-Redux prompt templates: multiple-choice QA and error detection.

The wording is ours; the detection prompt has the official instruction's content and verbaliser.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmlab.tasks.mmlu_redux.data import LETTERS

QA_PROMPT = (
    "Here is a multiple-choice question about {subject}. Exactly one option is correct.\n\n"
    "{question}\n{choices}\n\nReply with the letter of the correct option, as 'Answer: X'."
)
DETECTION_INSTRUCTION = (
    "You check exam questions. You are given a question, its answer options and the answer key. "
    "Reply 'ok' if the question and options are clear and the keyed answer is right. Reply 'not ok' if the "
    "keyed answer is wrong, no or several options are right, or the question or its options are unclear. "
    "Reply with only 'ok' or 'not ok', without any explanation."
)
DETECTION_PROMPT = "Question: {question}\nChoices:\n{choices}\nGround Truth Answer: {answer}\nYour Response: "


def _choices_block(choices: Sequence[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
