"""WB-Reward and WB-Score aggregation (paper §3.3–3.4; spec ``evaluation.md`` §1.5–1.6).

Outcomes and their rewards, the length rule K, the official skip rule for truncated/empty outputs,
the merged task categories and the weighted task macro.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llmlab.tasks.wildbench.prompts import EMPTY_MARK, TRUNCATION_MARK

OUTCOMES: tuple[str, ...] = ("win_much", "win", "tie", "lose", "lose_much")
REWARDS: dict[str, float] = {"win_much": 1.0, "win": 0.5, "tie": 0.0, "lose": -0.5, "lose_much": -1.0}

BASELINES: dict[str, str] = {
    "gpt4t": "gpt-4-turbo-2024-04-09",
    "haiku": "claude-3-haiku-20240307",
    "llama": "Llama-2-70b-chat-hf",
}
"""Short name (as in the leaderboard tables) → the baseline model of WB-Reward."""

TASK_GROUPS: dict[str, str] = {
    "Information seeking": "Information/Advice seeking",
    "Advice seeking": "Information/Advice seeking",
    "Creative Writing": "Creative Tasks",
    "Editing": "Creative Tasks",
    "Brainstorming": "Creative Tasks",
    "Role playing": "Creative Tasks",
    "Others": "Creative Tasks",
    "Reasoning": "Planning & Reasoning",
    "Planning": "Planning & Reasoning",
    "Math": "Math & Data Analysis",
    "Data Analysis": "Math & Data Analysis",
    "Coding & Debugging": "Coding & Debugging",
}
"""The 12 WildBench tags → the 5 merged categories used for task-macro scores."""

TASK_WEIGHTS: dict[str, float] = {
    "Creative Tasks": 0.5,
    "Planning & Reasoning": 1.25,
    "Math & Data Analysis": 1.0,
    "Information/Advice seeking": 0.75,
    "Coding & Debugging": 1.25,
}


def is_skipped(*texts: str) -> str | None:
    """Why the official aggregation skips an item (``"truncated"``/``"empty"``), or ``None``."""
    for t in texts:
        if t.endswith(TRUNCATION_MARK):
            return "truncated"
    for t in texts:
        if t == EMPTY_MARK:
            return "empty"
    return None


def pairwise_outcome(winner: str, extent: int, target_text: str, ref_text: str, K: int = -1) -> str:
    """One judged item → an outcome of :data:`OUTCOMES` from the target's point of view.

    Args:
        winner: ``"target"``, ``"ref"`` or ``"tie"``.
        extent: 2 (much), 1 (slightly), 0 (tie).
        target_text: The target's text as in the prompt (characters are counted).
        ref_text: The baseline's text as in the prompt.
        K: Length margin in characters; ``-1`` disables the rule. Only "slightly" outcomes become ties.

    Example:
        >>> pairwise_outcome("target", 1, "x" * 700, "y" * 100, K=500)
        'tie'
    """
    lt, lr = len(target_text), len(ref_text)
    if winner == "target":
        if extent == 2:
            return "win_much"
        return "tie" if K >= 0 and lt > lr + K else "win"
    if winner == "ref":
        if extent == 2:
            return "lose_much"
        return "tie" if K >= 0 and lr > lt + K else "lose"
    return "tie"


def reward_of_counts(counts: Mapping[str, float], total: float | None = None) -> float:
    """``(win_much + ½ win − ½ lose − lose_much) / total`` (``total`` defaults to the counted items)."""
    n = total if total is not None else sum(counts.get(o, 0) for o in OUTCOMES)
    if not n:
        return 0.0
    return sum(REWARDS[o] * counts.get(o, 0) for o in OUTCOMES) / n


def task_macro(values: Mapping[str, float], weights: Mapping[str, float] = TASK_WEIGHTS) -> float:
    """Weighted task macro as the official ``_create_tables.py``: ``Σ_c w_c·v_c / Σ_all w`` over all five.

    A category with no item contributes 0 to the sum but keeps its weight in the denominator, so a run on
    a subset of categories reports a value pulled towards 0 (the reports list the missing categories in
    ``missing_categories``); on the full benchmark all five are present and this is the weighted mean.

    Example:
        >>> round(task_macro({"Creative Tasks": 1.0, "Coding & Debugging": 0.0}), 4)  # 0.5 / 4.75
        0.1053
    """
    den = sum(weights.values())
    return sum(weights[k] * values[k] for k in values if k in weights) / den if den else 0.0


def missing_categories(values: Mapping[str, float], weights: Mapping[str, float] = TASK_WEIGHTS) -> list[str]:
    """The merged categories with no scored item (they count as 0 in :func:`task_macro`)."""
    return [k for k in weights if k not in values]


def task_groups(primary_tag: str, secondary_tags: Iterable[str] = ()) -> list[str]:
    """The de-duplicated merged categories of a task's primary and secondary tags."""
    out: list[str] = []
    for tag in (primary_tag, *secondary_tags):
        g = TASK_GROUPS.get(tag)
        if g is not None and g not in out:
            out.append(g)
    return out


@dataclass(frozen=True)
class PairwiseJudgement:
    """One item's pairwise verdict, with everything the official aggregation needs.

    ``outcome`` is ``None`` when the item is skipped (``skip`` says why).
    """

    session_id: str
    winner: Literal["target", "ref", "tie"]
    extent: int
    target_text: str
    ref_text: str
    groups: tuple[str, ...] = ()
    preset: bool = False


@dataclass
class RewardReport:
    """WB-Reward for one target vs one baseline (fractions in [−1, 1]; the leaderboard shows ×100)."""

    K: int
    counts: dict[str, int]
    total: int
    reward: float
    task_categorized_results: dict[str, dict[str, int]]
    task_categorized_rewards: dict[str, float]
    task_macro_reward: float
    n_skipped: dict[str, int] = field(default_factory=dict)
    n_dropped: int = 0
    denominator: str = "official"

    def as_dict(self) -> dict[str, Any]:
        return {**self.counts, "total": self.total, "reward": self.reward, "K": self.K,
                "task_categorized_results": self.task_categorized_results,
                "task_categorized_rewards": self.task_categorized_rewards,
                "task_macro_reward": self.task_macro_reward,
                "missing_categories": missing_categories(self.task_categorized_rewards),
                "n_skipped": self.n_skipped, "n_dropped": self.n_dropped, "parse_failures": self.n_dropped,
                "denominator": self.denominator}


def wb_reward(
    judgements: Iterable[PairwiseJudgement],
    K: int = -1,
    *,
    denominator: Literal["official", "counted"] = "official",
    n_dropped: int = 0,
) -> RewardReport:
    """Aggregate pairwise verdicts into WB-Reward as the official ``_create_tables.py`` does.

    Args:
        judgements: Parsed verdicts (parse failures are not judgements: pass their count as ``n_dropped``).
        K: Length margin (−1: off).
        denominator: ``"official"``: skipped items count as 0 in the overall reward; ``"counted"``: excluded.
        n_dropped: Items whose verdict could not be parsed (reported, never in any denominator).

    Returns:
        A :class:`RewardReport`.
    """
    counts = dict.fromkeys(OUTCOMES, 0)
    cat_counts: dict[str, dict[str, int]] = {}
    skipped: dict[str, int] = {}
    total = 0
    for j in judgements:
        total += 1
        why = None if j.preset else is_skipped(j.target_text, j.ref_text)
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        outcome = pairwise_outcome(j.winner, j.extent, j.target_text, j.ref_text, K)
        counts[outcome] += 1
        for g in j.groups:
            cat_counts.setdefault(g, dict.fromkeys(OUTCOMES, 0))[outcome] += 1
    counted = sum(counts.values())
    den = total if denominator == "official" else counted
    cat_rewards = {g: reward_of_counts(c) for g, c in cat_counts.items()}
    return RewardReport(K, counts, total, reward_of_counts(counts, den), cat_counts, cat_rewards,
                        task_macro(cat_rewards), skipped, n_dropped, denominator)


@dataclass
class ScoreReport:
    """WB-Score of one model: raw mean, adjusted ``(s − 5) × 2``, per-category adjusted, task macro.

    With no parsed score at all, the scores are ``None`` (never the worst grade): ``n_dropped`` says how many
    judge replies could not be parsed.
    """

    score: float | None
    adjusted_score: float | None
    task_categorized_scores: dict[str, float]
    task_macro_score: float | None
    total: int
    n_dropped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "adjusted_score": self.adjusted_score,
                "task_categorized_scores": self.task_categorized_scores,
                "task_macro_score": self.task_macro_score, "adjusted_task_macro_score": self.task_macro_score,
                "missing_categories": missing_categories(self.task_categorized_scores),
                "total": self.total, "n_dropped": self.n_dropped, "parse_failures": self.n_dropped}


def adjusted(score: float) -> float:
    """WB-Score adjustment: 5 ("borderline") maps to 0, 10 to 10, 1 to −8."""
    return (score - 5.0) * 2.0


def wb_score(items: Iterable[tuple[float, str, Sequence[str]]], *, n_dropped: int = 0) -> ScoreReport:
    """Aggregate parsed scores.

    Args:
        items: ``(score, output_text_as_in_prompt, groups)`` per judged item.
        n_dropped: Items whose score could not be parsed.
    """
    scores: list[float] = []
    per_cat: dict[str, list[float]] = {}
    for s, text, groups in items:
        scores.append(s)
        if is_skipped(text) is None:
            for g in groups:
                per_cat.setdefault(g, []).append(s)
    if not scores:
        return ScoreReport(None, None, {}, None, 0, n_dropped)
    mean = sum(scores) / len(scores)
    cats = {g: adjusted(sum(v) / len(v)) for g, v in per_cat.items()}
    return ScoreReport(mean, adjusted(mean), cats, task_macro(cats), len(scores), n_dropped)
