"""The Prompt Report (Schulhoff et al., 2024, arXiv 2406.06608): its text techniques as composable strategies.

Modules: :mod:`.base` (registry, context, spec composition, the ``prompting`` method), :mod:`.techniques`
(one small strategy per technique), :mod:`.prompts` (templates), :mod:`.taxonomy` (the report's taxonomy
and what is built; ``llmlab list prompting``), :mod:`.bench` (the report's MMLU benchmark of techniques,
§6.1, on MMLU-Redux; ``llmlab bench prompting``).
"""

from llmlab.methods.prompting.base import TECHNIQUES, Ctx, Prompting, PromptingConfig, Result, build, parse_spec

__all__ = ["TECHNIQUES", "Ctx", "Prompting", "PromptingConfig", "Result", "build", "parse_spec"]
