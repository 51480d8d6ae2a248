"""The base shared by both ToT tasks: data files, exact-match scoring, reports.

Data files are a JSON list or JSONL of objects; a prediction is correct iff every label key matches after
normalisation; reports give overall, per-category and per-format accuracy.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.test_of_time.answers import _values_equal, canonical_answer, normalize_value


def _load_json_rows(path: Path) -> list[dict[str, Any]]:
    """A JSON list or a JSONL file of objects; errors name file and row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    stripped = text.lstrip()
    rows: list[Any]
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i}: expected a JSON object, got {type(row).__name__}")
    return rows


def _require(row: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    for key in keys:
        if key not in row:
            raise DataError(f"{where}: missing key '{key}' (has: {', '.join(sorted(map(str, row)))})")


def _format_name(keys: Sequence[str]) -> str:
    return ",".join(keys)


def _breakdown(scores: Sequence[Score], key: str) -> dict[str, dict[str, float | int]]:
    groups: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        groups[str(s.details.get(key, "?"))].append(s)
    return {
        g: {"n": len(v), "accuracy": sum(bool(s.correct) for s in v) / len(v),
            "unparsed": sum(s.extracted is None for s in v)}
        for g, v in sorted(groups.items())
    }


class ToTConfig(TaskConfig):
    """Options of the ToT tasks.

    Attributes:
        data_file: A JSON list / JSONL file to use instead of the dataset folder.
        categories: Only these question types (``None``: all).
    """

    data_file: str | None = None
    categories: list[str] | None = None


class _ToTBase(Task):
    Config = ToTConfig
    dataset = ""
    filename = ""
    required: tuple[str, ...] = ("question", "question_type", "label")

    def _path(self) -> Path:
        cfg = self.config
        assert isinstance(cfg, ToTConfig)
        if cfg.data_file is not None:
            path = Path(cfg.data_file)
            if not path.exists():
                raise DataError(f"data file not found: {path}")
            return path
        return self.data_path(self.dataset, self.filename)

    def load(self) -> list[Item]:
        """Read and validate every row (errors name file and row)."""
        cfg = self.config
        assert isinstance(cfg, ToTConfig)
        path = self._path()
        items = [self._make_item(row, f"{path}: row {i}", i) for i, row in enumerate(_load_json_rows(path))]
        if cfg.categories is not None:
            items = [it for it in items if it.metadata["category"] in cfg.categories]
        return items

    def items(self) -> list[Item]:
        return self.load()

    @abstractmethod
    def _make_item(self, row: Mapping[str, Any], where: str, index: int) -> Item:
        """Build one item from a data row (``where`` names file and row for errors)."""

    def _keys(self, item: Item) -> list[str]:
        return list(item.metadata["keys"])

    def prompt(self, item: Item) -> Query:
        extract: Callable[[str], str | None] = partial(canonical_answer, keys=self._keys(item))
        return Query.from_text(str(item.input), extract=extract)

    def score(self, item: Item, answer: str | None) -> Score:
        keys = self._keys(item)
        got = canonical_answer(answer, keys)
        details = {"category": item.metadata["category"], "format": _format_name(keys)}
        if got is None:
            return Score(0.0, correct=False, extracted=None, details=details)
        pred = json.loads(got)
        gold = {k: normalize_value(item.target[k], k) for k in keys}
        ok = all(_values_equal(pred[k], gold[k]) for k in keys)
        return Score(1.0 if ok else 0.0, correct=ok, extracted=got, details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        n = len(scores)
        acc = sum(bool(s.correct) for s in scores) / n if n else 0.0
        return {
            "n": n,
            "score": acc,
            "accuracy": acc,
            "unparsed": sum(s.extracted is None for s in scores),
            "per_category": _breakdown(scores, "category"),
            "per_format": _breakdown(scores, "format"),
        }

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        _require(record, (*self.required, "prediction"), where)
        item = self._make_item(record, where, -1)
        item_id = str(record["id"]) if record.get("id") is not None else where
        item = Item(item_id, item.input, item.target, item.metadata)
        pred = record["prediction"]
        return item, pred if isinstance(pred, str) else json.dumps(pred)
