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
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.core.jsonl import read_jsonl
from llmlab.methods.base import Query, Roles
from llmlab.tasks.base import Item, Score, Task, TaskConfig

# -- constants -----------------------------------------------------------------------------------------

CHOICES: tuple[str, ...] = ("A++", "A+", "A=B", "B+", "B++")
OUTCOMES: tuple[str, ...] = ("win_much", "win", "tie", "lose", "lose_much")
REWARDS: dict[str, float] = {"win_much": 1.0, "win": 0.5, "tie": 0.0, "lose": -0.5, "lose_much": -1.0}

BASELINES: dict[str, str] = {
    "gpt4t": "gpt-4-turbo-2024-04-09",
    "haiku": "claude-3-haiku-20240307",
    "llama": "Llama-2-70b-chat-hf",
}
"""Short name (as in the leaderboard tables) → the baseline model of WB-Reward."""

TRUNCATION_MARK = "... (truncated)"
EMPTY_MARK = "[This model response is empty.]"

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


# -- prompt composition ---------------------------------------------------------------------------------


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
    """Fill :data:`SCORE_TEMPLATE` (official v2.0625 score runs use no truncation, ``max_words=-1``)."""
    history, query = history_and_query(conversation, max_words)
    return (
        SCORE_TEMPLATE.replace("{$history}", history)
        .replace("{$user_query}", query)
        .replace("{$model_output}", _output_text(output, max_words))
        .replace("{$checklist}", _checklist_text(checklist))
    )


# -- parsing ----------------------------------------------------------------------------------------------


def extract_field(text: str, key: str, *, allow_unquoted: bool = False) -> str | None:
    """A field of the judge's JSON: ``json.loads`` first, then the official regex fallbacks.

    Example:
        >>> extract_field('Sure! {"choice": "A+"} done', "choice")
        'A+'
    """
    try:
        obj = json.loads(text)
        if isinstance(obj, dict) and key in obj:
            return str(obj[key])
    except (json.JSONDecodeError, ValueError):
        pass
    k = re.escape(key)
    for pattern, flags in ((rf'"{k}"\s*:\s*"([^"]*?)"', 0), (rf'"{k}"\s*:\s*"(.*?)"', re.DOTALL)):
        m = re.search(pattern, text, flags)
        if m:
            return m.group(1)
    if allow_unquoted:
        m = re.search(rf'"{k}"\s*:\s*([^,}}\s]+)', text)
        if m:
            return m.group(1)
    return None


def parse_choice(text: str) -> tuple[Literal["A", "B", "tie"], int] | None:
    """Judge text → ``(winner, extent)``: ``A++`` → (A, 2), ``A+`` → (A, 1), ``A=B`` → (tie, 0), ...

    Returns:
        ``None`` when there is no known choice (the official batch path drops such items).
    """
    choice = extract_field(text, "choice")
    if choice is None:
        return None
    choice = choice.strip()
    table: dict[str, tuple[Literal["A", "B", "tie"], int]] = {
        "A++": ("A", 2), "A+": ("A", 1), "A=B": ("tie", 0), "B+": ("B", 1), "B++": ("B", 2),
    }
    return table.get(choice)


def parse_score(text: str) -> float | None:
    """Judge text → the 1–10 score as a float, or ``None`` (dropped) when absent or not a number."""
    raw = extract_field(text, "score", allow_unquoted=True)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# -- outcomes and aggregation -----------------------------------------------------------------------------


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
    """Weighted mean over the categories present in ``values`` (official task-macro).

    Example:
        >>> round(task_macro({"Creative Tasks": 1.0, "Coding & Debugging": 0.0}), 4)
        0.2857
    """
    keys = [k for k in values if k in weights]
    den = sum(weights[k] for k in keys)
    return sum(weights[k] * values[k] for k in keys) / den if den else 0.0


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
                "task_macro_reward": self.task_macro_reward, "n_skipped": self.n_skipped,
                "n_dropped": self.n_dropped, "denominator": self.denominator}


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
    """WB-Score of one model: raw mean, adjusted ``(s − 5) × 2``, per-category adjusted, task macro."""

    score: float
    adjusted_score: float
    task_categorized_scores: dict[str, float]
    task_macro_score: float
    total: int
    n_dropped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "adjusted_score": self.adjusted_score,
                "task_categorized_scores": self.task_categorized_scores,
                "task_macro_score": self.task_macro_score, "adjusted_task_macro_score": self.task_macro_score,
                "total": self.total, "n_dropped": self.n_dropped}


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
    mean = sum(scores) / len(scores) if scores else 0.0
    cats = {g: adjusted(sum(v) / len(v)) for g, v in per_cat.items()}
    return ScoreReport(mean, adjusted(mean), cats, task_macro(cats), len(scores), n_dropped)


# -- the task ---------------------------------------------------------------------------------------------


class WildBenchConfig(TaskConfig):
    """WildBench options.

    Attributes:
        data_file: A local JSONL of WildBench v2 rows (``session_id``, ``conversation_input``, ``checklist``,
            ``primary_tag``, ``secondary_tags``; for pairwise mode ``reference_outputs: {baseline: text}``).
            Default: ``wildbench/v2.jsonl`` in the data folder (the HF data is AI2 ImpACT-licensed and not
            shipped).
        mode: ``pairwise`` (WB-Reward) or ``score`` (WB-Score).
        baseline: Short name of the baseline (``haiku``, ``gpt4t``, ``llama``) or a key of
            ``reference_outputs``.
        K: Length margin for WB-Reward (−1: off).
        max_words: Truncation in the judge prompt (pairwise official 1000; score official −1).
        denominator: ``official`` or ``counted`` (see :func:`wb_reward`).
        empty_policy: ``official`` (judge, then skip) or ``preset`` (no judge call; preset result).
        seed: A/B order seed (official 42).
        judge_max_tokens: Judge completion budget (official 1024).
    """

    data_file: str | None = None
    mode: Literal["pairwise", "score"] = "pairwise"
    baseline: str = "haiku"
    K: int = 500
    max_words: int | None = None
    denominator: Literal["official", "counted"] = "official"
    empty_policy: Literal["official", "preset"] = "official"
    seed: int = 42
    judge_max_tokens: int = 1024


class WildBench(Task):
    """WildBench v2 (judge-scored). Scoring needs a judge: use :meth:`ascore` with ``roles["judge"]``.

    Example:
        >>> t = WildBench({"mode": "score"})
        >>> t.config.mode
        'score'
    """

    name = "wildbench"
    Config = WildBenchConfig

    @property
    def cfg(self) -> WildBenchConfig:
        assert isinstance(self.config, WildBenchConfig)
        return self.config

    def _max_words(self) -> int:
        mw = self.cfg.max_words
        return mw if mw is not None else (1000 if self.cfg.mode == "pairwise" else -1)

    def items(self) -> Iterable[Item]:
        path = Path(self.cfg.data_file) if self.cfg.data_file is not None else self.data_path("wildbench", "v2.jsonl")
        if not path.is_file():
            raise DataError(f"WildBench file {path} not found; pass --data PATH (JSONL of WildBench v2 rows)")
        rng = random.Random(self.cfg.seed)  # official: seed once, one draw per item in dataset order
        for where, record in read_jsonl(path, what="WildBench file"):
            item = self.item_from_record(record, where)[0]
            yield Item(item.id, item.input, item.target, {**item.metadata, "target_is_a": rng.random() < 0.5})

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        for key in ("session_id", "conversation_input", "checklist"):
            if key not in record:
                raise DataError(f"{where}: WildBench row needs '{key}'")
        groups = task_groups(str(record.get("primary_tag", "Others")), record.get("secondary_tags", []))
        meta = {"checklist": list(record["checklist"]), "groups": groups,
                "reference_outputs": dict(record.get("reference_outputs", {}))}
        item = Item(str(record["session_id"]), list(record["conversation_input"]), None, meta)
        return item, str(record.get("output", ""))

    def prompt(self, item: Item) -> Query:
        from llmlab.backends.base import Message

        msgs = tuple(Message("user" if t.get("role") == "user" else "assistant", str(t.get("content", "")))
                     for t in item.input)
        return Query(msgs, metadata={"session_id": item.id})

    def score(self, item: Item, answer: str | None) -> Score:
        raise UnsupportedFeatureError(
            "WildBench is scored by a judge model: call `await task.ascore(item, answer, roles)` with a 'judge' role"
        )

    def _reference(self, item: Item) -> str | None:
        refs = item.metadata.get("reference_outputs", {})
        name = self.cfg.baseline
        for key in (name, BASELINES.get(name, name)):
            if key in refs:
                return refs[key]
        raise DataError(f"item {item.id}: no reference output for baseline '{name}' (reference_outputs keys: "
                        f"{sorted(refs)})")

    async def ascore(self, item: Item, answer: str | None, roles: Roles) -> Score:
        """Judge one answer with ``roles["judge"]`` (temperature 0) and return its :class:`Score`.

        ``Score.value`` is the reward (pairwise) or the adjusted score (score mode); ``details`` keeps the
        verdict and the texts as shown to the judge so :meth:`aggregate` can re-apply K and the skip rule.
        A verdict that cannot be parsed gives ``details["dropped"] = True``.
        """
        from llmlab.backends.base import GenerateRequest, Message

        judge = roles["judge"]
        groups = tuple(item.metadata.get("groups", ()))
        checklist = item.metadata.get("checklist", [])
        mw = self._max_words()
        if self.cfg.mode == "score":
            prompt = build_score_prompt(item.input, checklist, answer, max_words=mw)
            shown = _output_text(answer, mw).strip()
            if self.cfg.empty_policy == "preset" and shown == EMPTY_MARK:
                return Score(adjusted(1.0), details={"score": 1.0, "text": shown, "groups": groups, "preset": True})
            resp = await judge.generate(GenerateRequest(messages=(Message("user", prompt),), temperature=0.0,
                                                        max_tokens=self.cfg.judge_max_tokens))
            s = parse_score(resp.text)
            if s is None:
                return Score(0.0, details={"dropped": True, "judge": resp.text})
            return Score(adjusted(s), details={"score": s, "text": shown, "groups": groups, "judge": resp.text})
        ref = self._reference(item)
        target_is_a = item.metadata.get("target_is_a")
        if target_is_a is None:  # an item not from items(): a per-item draw, stable across runs
            target_is_a = random.Random(f"{self.cfg.seed}:{item.id}").random() < 0.5
        pp = build_pairwise_prompt(item.input, checklist, answer, ref, target_is_a=bool(target_is_a), max_words=mw)
        base = {"target_text": pp.target_text, "ref_text": pp.ref_text, "groups": groups,
                "target_is_a": pp.target_is_a}
        if self.cfg.empty_policy == "preset" and EMPTY_MARK in (pp.target_text, pp.ref_text):
            t_empty, r_empty = pp.target_text == EMPTY_MARK, pp.ref_text == EMPTY_MARK
            winner, extent = ("tie", 0) if t_empty and r_empty else (("ref", 2) if t_empty else ("target", 2))
            out = pairwise_outcome(winner, extent, pp.target_text, pp.ref_text, self.cfg.K)
            return Score(REWARDS[out], details={**base, "winner": winner, "extent": extent, "preset": True})
        resp = await judge.generate(GenerateRequest(messages=(Message("user", pp.prompt),), temperature=0.0,
                                                    max_tokens=self.cfg.judge_max_tokens))
        verdict = parse_choice(resp.text)
        if verdict is None:
            return Score(0.0, details={**base, "dropped": True, "judge": resp.text})
        side, extent = verdict
        winner = "tie" if side == "tie" else ("target" if (side == "A") == pp.target_is_a else "ref")
        skip = is_skipped(pp.target_text, pp.ref_text)
        out = pairwise_outcome(winner, extent, pp.target_text, pp.ref_text, self.cfg.K)
        value = 0.0 if skip is not None else REWARDS[out]
        return Score(value, details={**base, "winner": winner, "extent": extent, "skip": skip, "judge": resp.text})

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """WB-Reward (pairwise) or WB-Score (score mode) over the scored items, official rules."""
        dropped = sum(1 for s in scores if s.details.get("dropped"))
        kept = [s for s in scores if not s.details.get("dropped")]
        if self.cfg.mode == "score":
            return wb_score(((s.details["score"], s.details["text"], s.details["groups"]) for s in kept),
                            n_dropped=dropped).as_dict()
        judgements = [PairwiseJudgement("", s.details["winner"], s.details["extent"], s.details["target_text"],
                                        s.details["ref_text"], tuple(s.details["groups"]),
                                        bool(s.details.get("preset"))) for s in kept]
        return wb_reward(judgements, self.cfg.K, denominator=self.cfg.denominator, n_dropped=dropped).as_dict()


# -- verifying official leaderboard tables ----------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One recomputed number: where it is, what the table says, what we recompute."""

    file: str
    model: str
    field: str
    reported: float
    recomputed: float

    @property
    def diff(self) -> float:
        return abs(self.reported - self.recomputed)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read leaderboard table ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of model -> stats")
    return data


_PAIRWISE_RE = re.compile(r"^pairwise-(?P<ref>[A-Za-z0-9_]+)-K=(?P<K>-?\d+)\.json$")
_ALLSTAT_RE = re.compile(r"^all_stat_wildbench\.(?P<K>-?\d+)\.json$")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def verify_leaderboard(directory: str | Path) -> list[Check]:
    """Recompute every reward, mixture, task macro and WB-Score in official leaderboard tables.

    Files understood (others are ignored): ``pairwise-<ref>-K=<K>.json`` (reward from the outcome counts
    and ``total``; per-category rewards from the per-category counts; task macro from the category
    rewards), ``score*.json`` (adjusted score; task macro from category scores) and
    ``all_stat_wildbench.<K>.json`` (mixtures, task macros, ``RewardScore_Avg``, and — when the matching
    pairwise/score tables are in the folder — every ``<ref>_reward`` and ``WB_score`` entry; a model missing
    from a pairwise table, or compared with itself, must show 0 as in the official merge).

    Args:
        directory: Folder with the tables.

    Returns:
        Every check made (see :attr:`Check.diff`).

    Raises:
        DataError: The folder does not exist or holds none of these tables.
    """
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"leaderboard folder {d} not found")
    checks: list[Check] = []
    pairwise: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(d.glob("pairwise-*-K=*.json")):
        m = _PAIRWISE_RE.match(path.name)
        if m is None:
            continue
        table = _load(path)
        pairwise[(m["ref"], int(m["K"]))] = table
        for model, row in table.items():
            def add(fld: str, reported: Any, value: float, _p: Path = path, _m: str = model) -> None:
                r = _num(reported)
                if r is not None:
                    checks.append(Check(_p.name, _m, fld, r, value))

            counts = {o: row.get(o, 0) for o in OUTCOMES}
            add("reward", row.get("reward"), reward_of_counts(counts, row.get("total")))
            cat_rewards = row.get("task_categorized_rewards", {})
            for cat, cc in row.get("task_categorized_results", {}).items():
                add(f"task_categorized_rewards.{cat}", cat_rewards.get(cat), reward_of_counts(cc))
            if cat_rewards:
                add("task_macro_reward", row.get("task_macro_reward"), task_macro(cat_rewards))
    scores: dict[str, dict[str, Any]] = {}
    for path in sorted(d.glob("score*.json")):
        table = _load(path)
        if path.name == "score.json":
            scores = table
        for model, row in table.items():
            s, adj = _num(row.get("score")), _num(row.get("adjusted_score"))
            if s is not None and adj is not None:
                checks.append(Check(path.name, model, "adjusted_score", adj, adjusted(s)))
            cats = row.get("task_categorized_scores", {})
            for fld in ("task_macro_score", "adjusted_task_macro_score"):
                r = _num(row.get(fld))
                if r is not None and cats:
                    checks.append(Check(path.name, model, fld, r, task_macro(cats)))
    for path in sorted(d.glob("all_stat_wildbench.*.json")):
        m = _ALLSTAT_RE.match(path.name)
        if m is None:
            continue
        checks.extend(_verify_all_stat(path, int(m["K"]), pairwise, scores))
    if not checks:
        raise DataError(f"{d}: no WildBench leaderboard tables (pairwise-*-K=*.json, score.json, "
                        "all_stat_wildbench.*.json) found")
    return checks


def _verify_all_stat(
    path: Path, K: int, pairwise: Mapping[tuple[str, int], Mapping[str, Any]], scores: Mapping[str, Any]
) -> list[Check]:
    out: list[Check] = []
    table = _load(path)
    refs = ("haiku", "llama", "gpt4t")
    cats = list(TASK_WEIGHTS)
    for model, row in table.items():
        def get(key: str, _row: Mapping[str, Any] = row) -> float | None:
            return _num(_row.get(key))

        def add(fld: str, value: float | None, _m: str = model) -> None:
            r = get(fld)
            if r is not None and value is not None:
                out.append(Check(path.name, _m, fld, r, value))

        rewards = [get(f"{ref}_reward.K={K}") for ref in refs]
        if all(v is not None for v in rewards):
            add(f"mixture_of_rewards.K={K}", sum(v for v in rewards if v is not None) / 3)
        macros = [get(f"{ref}_reward.task_macro.K={K}") for ref in refs]
        if all(v is not None for v in macros):
            add(f"task_macro_reward.K={K}", sum(v for v in macros if v is not None) / 3)
        for ref in refs:
            per_cat = {c: get(f"{ref}_reward.{c}.K={K}") for c in cats}
            if all(v is not None for v in per_cat.values()):
                add(f"{ref}_reward.task_macro.K={K}", task_macro({c: v for c, v in per_cat.items() if v is not None}))
            pw = pairwise.get((ref, K))
            if pw is not None:
                prow = pw.get(model)
                add(f"{ref}_reward.K={K}", 100 * prow["reward"] if prow else 0.0)
                add(f"{ref}_reward.task_macro.K={K}", 100 * prow["task_macro_reward"] if prow else 0.0)
                for c in cats:
                    v = prow["task_categorized_rewards"].get(c) if prow else 0.0
                    add(f"{ref}_reward.{c}.K={K}", 100 * v if v is not None else None)
        for c in cats:
            vals = [get(f"{ref}_reward.{c}.K={K}") for ref in refs]
            if all(v is not None for v in vals):
                add(f"mixture_of_rewards.{c}.K={K}", sum(v for v in vals if v is not None) / 3)
        wb_cats = {c: get(f"WB_score.{c}") for c in cats}
        if all(v is not None for v in wb_cats.values()):
            add("WB_score.task_macro", task_macro({c: v for c, v in wb_cats.items() if v is not None}))
        tm, trm = get("WB_score.task_macro"), get(f"task_macro_reward.K={K}")
        if tm is not None and trm is not None:
            add("RewardScore_Avg", (tm + trm) / 2)
        srow = scores.get(model)
        if srow is not None:
            add("WB_score", 10 * srow["adjusted_score"])
            add("WB_score.task_macro", 10 * srow["task_macro_score"])
            for c, v in srow.get("task_categorized_scores", {}).items():
                add(f"WB_score.{c}", 10 * v)
    return out


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
