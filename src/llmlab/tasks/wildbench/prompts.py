"""WildBench judge prompts: the pairwise (WB-Reward) and absolute (WB-Score) templates and their filling.

Paper §3.2; spec ``evaluation.md`` §1.2–1.3. The official structure and ``{$...}`` placeholders, our
instruction wording; history, query and responses truncated to ``max_words`` space-separated tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmlab.core.errors import DataError

CHOICES: tuple[str, ...] = ("A++", "A+", "A=B", "B+", "B++")

TRUNCATION_MARK = "... (truncated)"
EMPTY_MARK = "[This model response is empty.]"

PAIRWISE_TEMPLATE = """# Instruction

You are an expert evaluator. Your task is to compare two AI responses to the same conversation and decide
which one is better. Read the conversation history, the current user query, and both responses carefully,
then judge them with the checklist below.

# Conversation between User and AI

## History
<|begin_of_history|>

{$history}

<|end_of_history|>

## Current User Query
<|begin_of_query|>

{$user_query}

<|end_of_query|>

## Response A
<|begin_of_response_A|>

{$candidate_A}

<|end_of_response_A|>

## Response B
<|begin_of_response_B|>

{$candidate_B}

<|end_of_response_B|>

# Evaluation

## Checklist

<|begin_of_checklist|>

{$checklist}

<|end_of_checklist|>

Please use this checklist to guide your evaluation, but do not limit your assessment to the checklist.

## Rules

Judge how well each response answers the current user query in the context of the history. Analyse each
response against the checklist items first, then compare them. Do not let the length of a response or the
order in which the responses are shown affect your judgement. Choose one of:
- "A++": Response A is much better than Response B.
- "A+": Response A is slightly better than Response B.
- "A=B": Response A and Response B are of the same quality. Use this choice sparingly.
- "B+": Response B is slightly better than Response A.
- "B++": Response B is much better than Response A.

## Output Format

Reply with a JSON object only:
```
{
    "analysis of A": "[your analysis of Response A]",
    "analysis of B": "[your analysis of Response B]",
    "reason of A=B": "[where A and B are equally good or bad]",
    "reason of A>B": "[where A is better than B]",
    "reason of B>A": "[where B is better than A]",
    "choice": "[A++ or A+ or A=B or B+ or B++]"
}
```
"""

SCORE_TEMPLATE = """# Instruction

You are an expert evaluator. Your task is to rate the quality of an AI response to a conversation. Read
the conversation history, the current user query, and the response carefully, then judge it with the
checklist below.

# Conversation between User and AI

## History
<|begin_of_history|>

{$history}

<|end_of_history|>

## Current User Query
<|begin_of_query|>

{$user_query}

<|end_of_query|>

## AI Response
<|begin_of_response|>

{$model_output}

<|end_of_response|>

# Evaluation

## Checklist

<|begin_of_checklist|>

{$checklist}

<|end_of_checklist|>

Please use this checklist to guide your evaluation, but do not limit your assessment to the checklist.

## Rules

Judge how well the response answers the current user query in the context of the history. Analyse the
response against the checklist items, list its strengths and weaknesses, then give a score from 1 to 10:
- Score 1–2: very poor; irrelevant, or with severe mistakes.
- Score 3–4: poor; does not really help the user, with major problems.
- Score 5–6: fair; helps somewhat but has noticeable issues.
- Score 7–8: good; useful, with minor room for improvement.
- Score 9–10: perfect; fully addresses the query with no issues.

## Output Format

Reply with a JSON object only:
```
{
    "strengths": "[the strengths of the response]",
    "weaknesses": "[the weaknesses of the response]",
    "score": "[1 to 10]"
}
```
"""


def shorten(text: str, max_words: int) -> str:
    """Keep the first ``max_words`` space-separated tokens and mark the cut (official ``shorten``).

    Example:
        >>> shorten("a b c d", 2)
        'a b... (truncated)'
    """
    if max_words <= 0:
        return text
    words = text.split(" ")
    if len(words) <= max_words:
        return text
    return " ".join(words[:max_words]) + TRUNCATION_MARK


def history_and_query(conversation: Sequence[Mapping[str, Any]], max_words: int = -1) -> tuple[str, str]:
    """Render all turns but the last as ``USER: ...``/``ASSISTANT: ...`` history; the last is the query.

    Raises:
        DataError: An empty conversation.
    """
    if not conversation:
        raise DataError("a WildBench conversation needs at least one turn")
    history = ""
    for turn in conversation[:-1]:
        who = "USER" if turn.get("role") == "user" else "ASSISTANT"
        history += f"{who}: {turn.get('content', '')}\n\n"
    return shorten(history, max_words), shorten(str(conversation[-1].get("content", "")), max_words)


def _checklist_text(checklist: Sequence[str]) -> str:
    return "".join(f"- {c}\n" for c in checklist)


def _output_text(output: str | None, max_words: int) -> str:
    if output is None or not output.strip():
        return EMPTY_MARK
    return shorten(output, max_words)


@dataclass(frozen=True)
class PairwisePrompt:
    """A pairwise judge prompt and what is needed to score its verdict later.

    Attributes:
        target_is_a: Whether the evaluated model's response is shown as A.
        target_text: The target's text as it appears in the prompt (truncated, stripped) — the K rule and
            the skip rule use it.
        ref_text: The baseline's text as it appears in the prompt.
    """

    prompt: str
    target_is_a: bool
    target_text: str
    ref_text: str


def build_pairwise_prompt(
    conversation: Sequence[Mapping[str, Any]],
    checklist: Sequence[str],
    target_output: str | None,
    ref_output: str | None,
    *,
    target_is_a: bool,
    max_words: int = 1000,
) -> PairwisePrompt:
    """Fill :data:`PAIRWISE_TEMPLATE` for one task.

    Args:
        conversation: The WildBench ``conversation_input`` turns (dicts with role, content).
        checklist: The task's checklist questions.
        target_output: The evaluated model's response.
        ref_output: The baseline model's response.
        target_is_a: Show the target as response A.
        max_words: Truncation of history, query and responses (official pairwise: 1000; ≤ 0: none).

    Returns:
        A :class:`PairwisePrompt`.
    """
    history, query = history_and_query(conversation, max_words)
    t, r = _output_text(target_output, max_words), _output_text(ref_output, max_words)
    a, b = (t, r) if target_is_a else (r, t)
    prompt = (
        PAIRWISE_TEMPLATE.replace("{$history}", history)
        .replace("{$user_query}", query)
        .replace("{$candidate_A}", a)
        .replace("{$candidate_B}", b)
        .replace("{$checklist}", _checklist_text(checklist))
    )
    return PairwisePrompt(prompt, target_is_a, t.strip(), r.strip())


def build_score_prompt(
    conversation: Sequence[Mapping[str, Any]], checklist: Sequence[str], output: str | None, *, max_words: int = -1
) -> str:
    """Fill :data:`SCORE_TEMPLATE` (official v2.0625 score runs use no truncation, ``max_words=-1``).

    An empty output is passed to the judge as the empty string, as the official score template does (the
    pairwise template shows :data:`EMPTY_MARK`); the aggregation still skips it as empty.
    """
    history, query = history_and_query(conversation, max_words)
    shown = _output_text(output, max_words)
    return (
        SCORE_TEMPLATE.replace("{$history}", history)
        .replace("{$user_query}", query)
        .replace("{$model_output}", "" if shown == EMPTY_MARK else shown)
        .replace("{$checklist}", _checklist_text(checklist))
    )
