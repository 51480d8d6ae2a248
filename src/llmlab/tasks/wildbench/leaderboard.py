"""Verifying official WildBench leaderboard tables (``llmlab wildbench verify-leaderboard``).

Every reward, mixture, task macro and WB-Score entry is recomputed from the components in the tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError
from llmlab.tasks.wildbench.rewards import OUTCOMES, TASK_WEIGHTS, adjusted, reward_of_counts, task_macro


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
