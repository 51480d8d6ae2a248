r"""CS-Bench: A Comprehensive Benchmark for Large Language Models towards Computer Science Mastery.

Song et al., arXiv:2406.08587 (ICLR 2025); official code csbench/csbench (``create_input.py``,
``gen_judgment.py``, ``show_result.py``). Spec: ``evaluation.md`` §4.

Implements
- The loader for ``CSBench-{EN,CN,DE,FR}/{test,valid}.json`` (2183 / 236 rows per language): four formats
  (multiple choice, assertion, fill-in-the-blank, open-ended), four domains, Knowledge/Reasoning tags.
- Prompts with the structure of ``create_input.py`` (:mod:`~llmlab.tasks.cs_bench.prompts`; our wording,
  the official one can be supplied with ``-t templates=FILE``).
- Scoring as ``gen_judgment.py``: multiple choice and assertion by regex; fill-in-the-blank (0/1) and
  open-ended (1-10, /10) by ``roles["judge"]`` with the official rubric's structure and parse (last number).
- Aggregation as ``show_result.py``: Tag × Format and Domain × Tag means (:func:`show_result`).

Deviations (each a documented official bug; both numbers are reported)
- Multiple choice: the official case-insensitive ``\b[ABCD]\b`` reads the article "a" as option A; ``score``
  uses :func:`~llmlab.tasks.cs_bench.scoring.mc_choice`, ``details["score_official"]`` the official rule.
- Assertion: the official compare (``"true" == "TRUE"``) scores every assertion 0; both ``score`` and
  ``score_official`` use the case-insensitive intent (``score_official_literal`` is the shipped 0), with the
  German/French gold words (Wahr/Falsch, Vrai/Faux) mapped to booleans.
- ``gen_judgment.py`` calls an undefined ``call_gpt4`` (NameError when judging); we call the judge role.
- The official repo has English and Chinese templates only (its judge prompt is ``None`` for German and
  French); DE/FR items use the English templates.
- Data: 12 DE/FR test multiple-choice answers are translation debris (``"D"`` with quotes, "Il s'agit de:
  A", an apology). A single consistent letter is recovered (10 rows); the rest (DE: 2 rows) have no gold
  answer: they are left out of ``score`` and counted in ``n_gold_invalid`` (officially they score 0).
"""

from __future__ import annotations

from llmlab.tasks.cs_bench.scoring import (
    assertion_score_literal,
    assertion_verdict,
    assertion_verdict_official,
    fill_judge_score,
    gold_letter,
    gold_truth,
    mc_choice,
    mc_choice_official,
    mc_score_official,
    open_judge_score,
)
from llmlab.tasks.cs_bench.task import DOMAINS, FORMATS, LANGUAGES, TAGS, CSBench, CSBenchConfig, show_result

__all__ = [
    "DOMAINS",
    "FORMATS",
    "LANGUAGES",
    "TAGS",
    "CSBench",
    "CSBenchConfig",
    "assertion_score_literal",
    "assertion_verdict",
    "assertion_verdict_official",
    "fill_judge_score",
    "gold_letter",
    "gold_truth",
    "mc_choice",
    "mc_choice_official",
    "mc_score_official",
    "open_judge_score",
    "show_result",
]
