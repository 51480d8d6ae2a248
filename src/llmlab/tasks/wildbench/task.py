"""The WildBench task: items from WildBench v2 rows, judged by ``roles["judge"]`` (pairwise or score mode)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.core.contracts import Item, Query, Roles, Score
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.core.jsonl import read_jsonl
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.wildbench.parsing import parse_choice, parse_score
from llmlab.tasks.wildbench.prompts import EMPTY_MARK, _output_text, build_pairwise_prompt, build_score_prompt
from llmlab.tasks.wildbench.rewards import (
    BASELINES,
    REWARDS,
    PairwiseJudgement,
    adjusted,
    is_skipped,
    pairwise_outcome,
    task_groups,
    wb_reward,
    wb_score,
)


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
