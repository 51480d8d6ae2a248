"""Test of Time prompt templates (ToT-Semantic; the wording is ours, the official text is not public)."""

from __future__ import annotations

SEMANTIC_PROMPT = (
    "Below are facts about anonymised entities (E...) and relations (R...). Each fact holds for every year "
    "from its start year to its end year, both included.\n\n{facts}\n\nQuestion: {question}\n\n"
    'Reply with JSON only, in the form {{"explanation": "<your reasoning>", "answer": "<your answer>"}}.'
)
FACT_TEMPLATE = "{subject} was the {relation} of {object} from {start} to {end}."
