"""Shared pieces of the three NATURAL PLAN tasks: data loading, the task base, times, few-shot assembly."""

from __future__ import annotations

import json
import random
import re
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.natural_plan import prompts

Record = dict[str, Any]


# -- violations ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Violation:
    """One broken constraint: ``constraint`` is its short name, ``message`` says how it is broken."""

    constraint: str
    message: str

    def __str__(self) -> str:
        return f"{self.constraint}: {self.message}"


# -- times ---------------------------------------------------------------------------------------------

_AMPM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*([AaPp][Mm])\s*$")


def hm_to_min(text: str) -> int:
    """``"9:30"`` / ``"13:00"`` → minutes after midnight.

    Raises:
        ValueError: Not ``H:MM``.
    """
    h, _, m = text.strip().partition(":")
    if not (h.isdigit() and m.isdigit()):
        raise ValueError(f"not a time: {text!r}")
    return int(h) * 60 + int(m)


def min_to_hm(minutes: int) -> str:
    """Minutes after midnight → ``"9:30"`` (24-hour clock, no leading zero, as in the official data)."""
    return f"{minutes // 60}:{minutes % 60:02d}"


def ampm_to_min(text: str) -> int:
    """``"3:45PM"`` → minutes after midnight (``12:xxAM`` is just after midnight).

    Raises:
        ValueError: Not ``H:MMAM``/``H:MMPM``.
    """
    m = _AMPM.match(text)
    if not m or not 1 <= int(m.group(1)) <= 12 or int(m.group(2)) > 59:
        raise ValueError(f"not a time: {text!r}")
    h = int(m.group(1)) % 12 + (12 if m.group(3).upper() == "PM" else 0)
    return h * 60 + int(m.group(2))


def min_to_ampm(minutes: int) -> str:
    """Minutes after midnight → ``"3:45PM"`` (the official ``%I:%M%p`` without a leading zero)."""
    h, m = divmod(minutes % (24 * 60), 60)
    return f"{(h - 1) % 12 + 1}:{m:02d}{'AM' if h < 12 else 'PM'}"


# -- generator knobs -----------------------------------------------------------------------------------

IntRange = int | list[int]


def pick_int(rng: random.Random, spec: IntRange, what: str) -> int:
    """An int knob given as ``5`` or ``[lo, hi]`` (inclusive) → one draw.

    Raises:
        ConfigError: A list that is not two ints with lo <= hi.
    """
    from llmlab.core.errors import ConfigError

    if isinstance(spec, int):
        return spec
    if len(spec) != 2 or spec[0] > spec[1]:
        raise ConfigError(f"knob '{what}' must be an int or [lo, hi] with lo <= hi, got {spec}")
    return rng.randint(spec[0], spec[1])


def knob_bounds(spec: IntRange) -> tuple[int, int]:
    return (spec, spec) if isinstance(spec, int) else (spec[0], spec[-1])


def attach_fewshot(
    records: list[Record],
    *,
    shots: int,
    bucket: Callable[[Record], Hashable],
    make_shot: Callable[[Hashable, int], Record],
    problem: Callable[[Record], str],
    solution: Callable[[Record], str],
    preamble: str,
) -> None:
    """Fill ``prompt_0shot`` / ``prompt_5shot`` of ``records`` in the official data's layout.

    The 0-shot prompt is the bare task text (the official files add nothing to it). The few-shot prompt
    is ``preamble``, ``shots`` solved examples and the query; as in the official files the examples are
    the SAME for every query of one size (``bucket``: the trip's city count, ...), and they are separate
    instances (``make_shot(bucket, j)``), never a query of the file.

    Args:
        records: The generated instances (their ``_problem`` is the bare task text).
        shots: Examples per few-shot prompt.
        bucket: Record → its size key (the examples share it).
        make_shot: ``(bucket, j)`` → the ``j``-th solved example of that size (deterministic).
        problem: Record → task text.
        solution: Record → solution text.
        preamble: First paragraph of every few-shot prompt.
    """
    cache: dict[Hashable, str] = {}
    for rec in records:
        key = bucket(rec)
        if key not in cache:
            chosen = [make_shot(key, j) for j in range(shots)]
            cache[key] = "\n\n\n".join(prompts.SHOT.format(task=problem(r), solution=solution(r)) for r in chosen)
        query = prompts.QUERY.format(task=problem(rec))
        rec["prompt_0shot"] = problem(rec)
        rec["prompt_5shot"] = f"{preamble} {prompts.FEWSHOT_INTRO}\n\n{cache[key]}\n\n\n{query}"


def problem_text(prompt: str) -> str:
    """The query problem of a (0-shot or few-shot) prompt: after the last ``TASK:``, before ``SOLUTION:``."""
    text = prompt.split("TASK:")[-1]
    return text.split("SOLUTION:")[0].strip()


# -- loading -------------------------------------------------------------------------------------------

def load_official(path: str | Path) -> list[tuple[str, Record]]:
    """Read a NATURAL PLAN JSON file: the official object keyed by example id, or a list of records.

    Args:
        path: The file (official ``data/*.json`` or ``llmlab generate`` output).

    Returns:
        ``[(id, record), ...]`` in file order (a list's records use their ``id`` key, else ``#<index>``).

    Raises:
        DataError: Missing/unreadable file, bad JSON, or a record that is not an object.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"NATURAL PLAN data file {p} not found; pass the official data/*.json or a file "
                        "written by 'llmlab generate natural_plan.<task>'")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read ({exc})") from None
    if isinstance(data, dict):
        pairs = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        pairs = [(str(v.get("id", f"#{i}")) if isinstance(v, dict) else f"#{i}", v) for i, v in enumerate(data)]
    else:
        raise DataError(f"{p}: expected a JSON object keyed by example id (the official layout) or a list")
    for key, rec in pairs:
        if not isinstance(rec, dict):
            raise DataError(f"{p}: record '{key}' is not a JSON object")
    return pairs


def require(record: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Raise one DataError line naming ``where`` and the first missing key.

    Raises:
        DataError: A key is missing.
    """
    for key in keys:
        if key not in record:
            raise DataError(f"{where}: missing key '{key}' (expected the official NATURAL PLAN schema)")


def prompt_of(record: Mapping[str, Any]) -> str:
    """The record's 0-shot prompt, else its 5-shot prompt (for parsing the instance's constraints)."""
    for key in ("prompt_0shot", "prompt_5shot"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


# -- the task base -------------------------------------------------------------------------------------

class NaturalPlanConfig(TaskConfig):
    """Options of the three NATURAL PLAN tasks.

    Attributes:
        data_file: The official JSON file (``data/<task>.json``) or an ``llmlab generate`` output. When
            absent, ``<data_dir>/natural_plan/<task>.json`` is looked up.
        prompt: ``"5shot"`` (the paper's setting, ``prompt_5shot``) or ``"0shot"`` (``prompt_0shot``).
        generate: Instead of a file, generate this many instances (seeded by ``seed``).
        seed: Seed of ``generate``.
        knobs: Generator knobs (see ``llmlab generate``), used with ``generate``.
    """

    data_file: str | None = None
    prompt: Literal["5shot", "0shot"] = "5shot"
    generate: int | None = None
    seed: int = 0
    knobs: dict[str, Any] = {}


class NaturalPlanTask(Task):
    """Common loading, prompting and aggregation; subclasses score and generate."""

    Config = NaturalPlanConfig
    FILE: ClassVar[str] = ""
    KEYS: ClassVar[tuple[str, ...]] = ()
    SCORE_KEYS: ClassVar[tuple[str, ...]] = ()
    BUCKET: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    @abstractmethod
    def generator(n: int, seed: int, **knobs: Any) -> list[Record]:
        """The task's instance generator."""

    @abstractmethod
    def extract(self, text: str) -> str | None:
        """The canonical answer in ``text`` (preserves what the official scorer reads)."""

    def _records(self) -> list[tuple[str, Record, str]]:
        """``[(id, record, where), ...]`` from ``generate`` or the data file."""
        cfg = self.config
        assert isinstance(cfg, NaturalPlanConfig)
        if cfg.generate is not None:
            recs = self.generator(cfg.generate, cfg.seed, **cfg.knobs)
            return [(r["id"], r, f"generated record '{r['id']}'") for r in recs]
        path = Path(cfg.data_file) if cfg.data_file is not None else self.data_path("natural_plan", self.FILE)
        return [(k, r, f"{path}: record '{k}'") for k, r in load_official(path)]

    def items(self) -> Iterable[Item]:
        cfg = self.config
        assert isinstance(cfg, NaturalPlanConfig)
        key = f"prompt_{cfg.prompt}"
        out = []
        for item_id, rec, where in self._records():
            require(rec, (*self.KEYS, key), where)
            out.append(self._item(item_id, rec, rec[key], where))
        return out

    def check_record(self, rec: Record, where: str) -> None:
        """Raise a DataError naming ``where`` when a field has the wrong shape (subclasses add checks)."""

    def extra_meta(self, rec: Record) -> dict[str, Any]:
        """Extra metadata of an item (the bucket fields when the record lacks them)."""
        return {}

    def _item(self, item_id: str, rec: Record, prompt: str, where: str) -> Item:
        self.check_record(rec, where)
        meta = {k: rec[k] for k in rec if not k.startswith("prompt_") and k != "pred_5shot_pro"}
        meta["problem"] = problem_text(prompt_of(rec))
        meta.update(self.extra_meta(rec))
        return Item(id=item_id, input=prompt, target=rec["golden_plan"], metadata=meta)

    def prompt(self, item: Item) -> Query:
        return Query((Message("user", str(item.input)),), extract=self.extract,
                     metadata={"id": item.id, "task": self.name})

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """One JSONL line: the official record keys (plus ``id``) and ``prediction``.

        ``prediction`` may be a string, or a list of step strings (a meeting plan in the ``golden_plan``
        list form); when absent, the official ``pred_5shot_pro`` is used.

        Raises:
            DataError: A key needed for scoring is missing (the message names ``where`` and the key).
        """
        rec = dict(record)
        require(rec, self.SCORE_KEYS, where)
        pred: Any = rec.get("prediction", rec.get("pred_5shot_pro"))
        if pred is None:
            raise DataError(f"{where}: missing key 'prediction' (or the official 'pred_5shot_pro')")
        if isinstance(pred, list):
            pred = join_steps(pred)
        if not isinstance(pred, str):
            raise DataError(f"{where}: 'prediction' must be a string or a list of strings")
        item = self._item(str(rec.get("id", where)), rec, prompt_of(rec), where)
        return item, pred

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Both metrics: ``official`` (= ``score``, the paper's) and ``strict`` (our constraint validator).

        ``strict`` is the mean over items whose constraints could be read (``strict_n`` of them); buckets
        follow the official scripts (trip: cities; meeting: people; calendar: people and days).
        """
        n = len(scores)
        official = [s.value for s in scores]
        strict = [s.details.get("valid") for s in scores]
        known = [bool(v) for v in strict if v is not None]
        buckets: dict[str, list[Score]] = defaultdict(list)
        for s in scores:
            key = s.details.get("bucket")
            if key is not None:
                buckets[str(key)].append(s)
        return {
            "n": n,
            "score": sum(official) / n if n else 0.0,
            "accuracy": sum(official) / n if n else None,
            "official": sum(official) / n if n else 0.0,
            "strict": sum(known) / len(known) if known else None,
            "strict_n": len(known),
            # Flat {bucket: value} dicts (the report plots the first one as bars).
            "official_by_bucket": {k: sum(s.value for s in v) / len(v) for k, v in sorted(buckets.items())},
            "strict_by_bucket": {k: _mean([s.details.get("valid") for s in v]) for k, v in sorted(buckets.items())},
            "n_by_bucket": {k: len(v) for k, v in sorted(buckets.items())},
        }

    def _bucket(self, item: Item) -> str:
        return ",".join(f"{k}={item.metadata.get(k)}" for k in self.BUCKET)


def _mean(values: Sequence[Any]) -> float | None:
    known = [bool(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def join_steps(steps: Sequence[Any]) -> str:
    """A step list (a meeting ``golden_plan``) → one text the official sentence splitter reads back."""
    parts = [str(s).strip().rstrip(".").strip() for s in steps]
    return " ".join(f"{p}." for p in parts if p)
