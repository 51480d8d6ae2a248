"""WildBench: pairwise WB-Reward and absolute WB-Score with task checklists.

Paper: "WildBench: Benchmarking LLMs with Challenging Tasks from Real Users in the Wild" (Lin et al.,
arXiv 2406.04770); official code allenai/WildBench (commit d6b8dcaf377d). Spec: ``specs/evaluation.md`` §1.

Implemented:

- Judge prompts (§1.2–1.3, paper §3.2): the official structure (instruction → history and current query in
  ``<|begin_of_history|>``/``<|begin_of_query|>`` blocks → response(s) → checklist block → rules → JSON
  output format with the official keys), filled with ``str.replace`` on the official ``{$...}``
  placeholders; history/query/responses truncated to the first ``max_words`` space-separated tokens plus
  ``"... (truncated)"`` (pairwise: 1000; score: no truncation). The instruction wording is ours.
- Parsing (§1.4): ``json.loads`` first, then the official regex fallbacks; an unparsable judgement or an
  unknown choice is *dropped* (counted, not scored), as the batch path does.
- WB-Reward (§1.5, paper §3.3): five outcomes with rewards +1, +0.5, 0, −0.5, −1 against one of three
  baselines (GPT-4-Turbo, Claude-3-Haiku, Llama-2-70B-chat); the length rule "a *slightly* better/worse
  outcome becomes a tie when the winner's text is more than K characters longer than the loser's", with
  the lengths taken of the texts as they appear in the judge prompt (after the 1000-word truncation and
  ``strip()``), and never applied to "much" outcomes; K = −1 disables it.
- Truncated/empty outputs: official — an item where either text ends with ``"... (truncated)"`` or is the
  empty marker is skipped but stays in the denominator (it counts as 0), while per-category rewards divide
  by *counted* items only (the official inconsistency, kept). Ours, selectable: ``denominator="counted"``
  excludes skipped items from the overall denominator too, and ``empty_policy="preset"`` does not call the
  judge for empty outputs and scores the preset result (both empty → tie, target empty → lose_much,
  baseline empty → win_much) instead of skipping.
- WB-Score (§1.6, paper §3.4): raw 1–10 score, adjusted ``(s − 5) × 2``; per-category adjusted scores over
  items whose output is neither truncated nor empty.
- Task macro (§1.5–1.6): weighted mean over the five merged categories with weights 0.5 (Creative Tasks),
  1.25 (Planning & Reasoning), 1 (Math & Data Analysis), 0.75 (Information/Advice seeking), 1.25 (Coding &
  Debugging); a task counts in every group of its primary and secondary tags.
- :func:`verify_leaderboard`: recompute every reward, mixture, task macro and WB-Score entry of official
  leaderboard tables (``pairwise-*-K=*.json``, ``score*.json``, ``all_stat_wildbench.*.json``) from the
  components in those tables.

The judge is a role: any :class:`~llmlab.backends.model.Model` (an API model, a local one, or a method
wrapped as a backend) passed as ``roles["judge"]``.

Deviations from the official code:

1. The official code also *presets* results for empty outputs but then calls the judge anyway (neither the
   batch nor the instant path uses the preset). Default here is the observable official behaviour (judge
   called, item skipped at aggregation); ``empty_policy="preset"`` is the documented alternative.
2. No ``response_format={"type": "json_object"}``: the backend contract has no such field; the parser's
   regex fallback covers judges that wrap their JSON in prose (the official instant path does the same).
3. A/B order: :meth:`WildBench.items` draws ``random.Random(seed).random() < 0.5`` once per item in file
   order (official: ``random.seed(42)`` then one draw per item), so the assignment is fixed before any
   concurrent judging and equals the official one for the dataset order and seed 42; an item built
   elsewhere gets a stable per-item draw.

Package layout (the submodules; every public name is re-exported here):

* :mod:`~llmlab.tasks.wildbench.prompts`: the pairwise and score judge templates, truncation and filling.
* :mod:`~llmlab.tasks.wildbench.parsing`: reading the judge's JSON verdict (choice or score).
* :mod:`~llmlab.tasks.wildbench.rewards`: outcomes, the K rule, the skip rule, WB-Reward, WB-Score and the
  task macro.
* :mod:`~llmlab.tasks.wildbench.task`: :class:`WildBench` and its config.
* :mod:`~llmlab.tasks.wildbench.leaderboard`: :func:`verify_leaderboard` on the official tables.
* :mod:`~llmlab.tasks.wildbench.cli`: ``llmlab wildbench verify-leaderboard``.
"""

from __future__ import annotations

from llmlab.tasks.wildbench.leaderboard import Check, verify_leaderboard
from llmlab.tasks.wildbench.parsing import extract_field, parse_choice, parse_score
from llmlab.tasks.wildbench.prompts import (
    CHOICES,
    EMPTY_MARK,
    PAIRWISE_TEMPLATE,
    SCORE_TEMPLATE,
    TRUNCATION_MARK,
    PairwisePrompt,
    build_pairwise_prompt,
    build_score_prompt,
    history_and_query,
    shorten,
)
from llmlab.tasks.wildbench.rewards import (
    BASELINES,
    OUTCOMES,
    REWARDS,
    TASK_GROUPS,
    TASK_WEIGHTS,
    PairwiseJudgement,
    RewardReport,
    ScoreReport,
    adjusted,
    is_skipped,
    pairwise_outcome,
    reward_of_counts,
    task_groups,
    task_macro,
    wb_reward,
    wb_score,
)
from llmlab.tasks.wildbench.task import WildBench, WildBenchConfig

__all__ = [
    "BASELINES",
    "CHOICES",
    "EMPTY_MARK",
    "OUTCOMES",
    "PAIRWISE_TEMPLATE",
    "REWARDS",
    "SCORE_TEMPLATE",
    "TASK_GROUPS",
    "TASK_WEIGHTS",
    "TRUNCATION_MARK",
    "Check",
    "PairwiseJudgement",
    "PairwisePrompt",
    "RewardReport",
    "ScoreReport",
    "WildBench",
    "WildBenchConfig",
    "adjusted",
    "build_pairwise_prompt",
    "build_score_prompt",
    "extract_field",
    "history_and_query",
    "is_skipped",
    "pairwise_outcome",
    "parse_choice",
    "parse_score",
    "reward_of_counts",
    "shorten",
    "task_groups",
    "task_macro",
    "verify_leaderboard",
    "wb_reward",
    "wb_score",
]
