"""The ``tx_llm`` task: TDC tasks as TxT prompts, scored per task with TDC's metric and compared with SOTA."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.tx_llm.codecs import (
    N_BINS,
    Binning,
    binary_label,
    format_bin,
    parse_bin,
    parse_binary,
    parse_smiles,
    same_molecules,
)
from llmlab.tasks.tx_llm.data import TxData, find_tdc_files, load_tdc, select_exemplars
from llmlab.tasks.tx_llm.metrics import median, task_metric
from llmlab.tasks.tx_llm.prompts import TASKS, format_answer, format_prompt
from llmlab.tasks.tx_llm.sota import NEAR_SOTA_TOLERANCE, compare_to_sota


class TxLLMConfig(TaskConfig):
    """Options of the Tx-LLM task.

    Args:
        data_dir: Folder holding ``tdc/<Name>/...`` (default: the usual search order, then PyTDC).
        tasks: TDC datasets to evaluate (default: every one of :data:`TASKS` found locally).
        split: ``test`` (default), ``valid`` or ``train``.
        shots: Few-shot exemplars from the train split (0: zero-shot).
        shot_selector: ``random`` or ``tanimoto`` (nearest neighbours by Morgan-fingerprint similarity).
        max_per_task: Keep at most this many items per task (the first ones).
        seed: Seed of the exemplar choice and of a single-file split.
        near_sota_tolerance: Relative margin for "near SOTA" (the paper's 10%, §4.1).
        system: An optional system message.
    """

    tasks: list[str] | None = None
    split: Literal["test", "valid", "train"] = "test"
    shots: int = 0
    shot_selector: Literal["random", "tanimoto"] = "random"
    max_per_task: int | None = None
    seed: int = 0
    near_sota_tolerance: float = Field(default=NEAR_SOTA_TOLERANCE, ge=0.0, le=1.0)
    system: str | None = None


class TxLLM(Task):
    r"""TDC tasks in the TxT prompt format, scored per task with TDC's metric and compared with SOTA.

    Example:
        >>> task = TxLLM()
        >>> item = Item("BBB_Martins-0", "...", "B", {"task": "BBB_Martins", "kind": "binary", "y": 1.0})
        >>> task.score(item, "Answer: (B)").correct
        True
    """

    name = "tx_llm"
    Config = TxLLMConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.loaded: dict[str, TxData] = {}

    @property
    def cfg(self) -> TxLLMConfig:
        assert isinstance(self.config, TxLLMConfig)
        return self.config

    def _names(self) -> list[str]:
        if self.cfg.tasks is not None:
            unknown = [t for t in self.cfg.tasks if t not in TASKS]
            if unknown:
                raise ConfigError(f"unknown Tx-LLM task(s) {unknown}. Available: {', '.join(TASKS)}")
            return list(self.cfg.tasks)
        found = [n for n in TASKS if find_tdc_files(n, self.cfg.data_dir) is not None]
        if not found:
            raise DataError("no TDC data found for any Tx-LLM task; pass --data-dir DIR holding "
                            "tdc/<Name>/{train,valid,test}.csv, or -p tasks=[BBB_Martins] with PyTDC installed")
        return found

    def items(self) -> Iterable[Item]:
        for name in self._names():
            data = self.loaded.get(name) or load_tdc(name, self.cfg.data_dir, seed=42)
            self.loaded[name] = data
            task, binning = data.task, data.binning()
            rows = data.splits[self.cfg.split]
            if self.cfg.max_per_task is not None:
                rows = rows[: self.cfg.max_per_task]
            train_median = None
            if binning is not None:
                train_median = median([binning.unit(float(r[task.target])) for r in data.splits["train"]])
            for i, row in enumerate(rows):
                shots = select_exemplars(task, row, data.splits["train"], self.cfg.shots, self.cfg.shot_selector,
                                         self.cfg.seed)
                text = format_prompt(task, row, shots, binning)
                meta: dict[str, Any] = {"task": name, "kind": task.kind}
                if task.kind == "binary":
                    target: Any = format_answer(task, row)[1]
                    meta["y"] = float(binary_label(row[task.target]))
                elif task.kind == "regression":
                    assert binning is not None
                    target = binning.to_bin(float(row[task.target]))
                    meta.update(y=binning.unit(float(row[task.target])), lo=binning.lo, hi=binning.hi,
                                fallback=train_median)
                else:
                    target = row[task.target]
                yield Item(f"{name}-{i}", text, target, meta)

    def prompt(self, item: Item) -> Query:
        kind = item.metadata["kind"]
        extract = {"binary": parse_binary, "regression": lambda t: _opt_str(parse_bin(t)),
                   "generation": parse_smiles}[kind]
        msgs = (Message("system", self.cfg.system),) if self.cfg.system is not None else ()
        return Query((*msgs, Message("user", item.input)), extract=extract,
                     metadata={"id": item.id, "task": item.metadata["task"], "kind": kind})

    def score(self, item: Item, answer: str | None) -> Score:
        kind, meta = item.metadata["kind"], item.metadata
        details: dict[str, Any] = {"task": meta["task"], "kind": kind, "y": meta.get("y")}
        if kind == "regression":
            details["fallback"] = meta.get("fallback")
        if kind == "binary":
            prob = _as_prob(answer)
            letter = None if prob is not None else parse_binary(answer)
            pred = prob if prob is not None else (None if letter is None else float(letter == "B"))
            details["pred"] = pred
            if pred is None:
                return Score(0.0, correct=False, extracted=None, details=details)
            ok = (pred >= 0.5) == (meta["y"] == 1.0)
            return Score(float(ok), correct=ok, extracted=letter if letter else f"{pred:.4f}", details=details)
        if kind == "regression":
            b = parse_bin(answer)
            if b is None:
                details["pred"] = None
                return Score(0.0, correct=None, extracted=None, details=details)
            binning = Binning(meta["lo"], meta["hi"])
            details["pred"] = binning.from_bin(b)
            return Score(1.0 - abs(b - int(item.target)) / N_BINS, correct=b == int(item.target),
                         extracted=format_bin(b), details=details)
        got = parse_smiles(answer)
        ok = same_molecules(got, str(item.target))
        details["pred"] = float(ok)
        return Score(float(ok), correct=ok, extracted=got, details=details)

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``{id, prediction | score}``: ``id`` is an item id of these settings (``BBB_Martins-3``)."""
        items = getattr(self, "_by_id", None)
        if items is None:
            items = self._by_id = {it.id: it for it in self.items()}
        key, pred = record.get("id"), record.get("score", record.get("prediction"))
        if not isinstance(key, str) or key not in items or pred is None:
            raise DataError(f"{where}: a Tx-LLM prediction line needs an 'id' of the loaded tasks (e.g. "
                            f"{next(iter(items), 'BBB_Martins-0')!r}) and a 'prediction' (or a binary 'score')")
        return items[key], str(pred)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        by_task: dict[str, list[Score]] = {}
        for s in scores:
            by_task.setdefault(s.details.get("task", "?"), []).append(s)
        tasks: dict[str, Any] = {}
        for name, ss in by_task.items():
            spec = TASKS.get(name)
            if spec is None:
                continue
            ys = [1.0] * len(ss) if spec.kind == "generation" else [float(s.details["y"]) for s in ss]
            preds = [_pred_or_fallback(s, spec.kind) for s in ss]
            value = task_metric(spec.metric, ys, preds)
            tasks[name] = {"metric": spec.metric, "value": value, "n": len(ss),
                           "unparsed": sum(1 for s in ss if s.details.get("pred") is None),
                           "vs_sota": compare_to_sota(name, value, self.cfg.near_sota_tolerance, spec.metric)}
        out["tasks"] = tasks
        out["metric_by_task"] = {k: v["value"] for k, v in tasks.items() if v["value"] is not None}
        cmp = [v["vs_sota"] for v in tasks.values() if v["vs_sota"] is not None]
        out["vs_sota"] = {st: sum(1 for c in cmp if c["status"] == st) for st in ("above", "near", "below")}
        out["vs_sota"]["compared"] = len(cmp)
        out["vs_sota"]["sota_verified"] = sum(1 for c in cmp if c["verified"])
        invalid = sum(len(d.invalid) for d in self.loaded.values())
        if self.loaded:
            out["invalid_smiles_dropped"] = invalid
        return out


def _pred_or_fallback(s: Score, kind: str) -> float:
    """A score's prediction; an unparsed reply is kept as uninformative, never dropped.

    Binary: 0.5; regression: the train median (``fallback``); generation: wrong (0).
    """
    p = s.details.get("pred")
    if p is not None:
        return float(p)
    if kind == "regression" and s.details.get("fallback") is not None:
        return float(s.details["fallback"])
    return 0.5 if kind == "binary" else 0.0


def _opt_str(v: int | None) -> str | None:
    return None if v is None else format_bin(v)


def _as_prob(answer: str | None) -> float | None:
    """A bare probability (a prediction file's binary ``score``), else ``None``."""
    if answer is None:
        return None
    try:
        p = float(answer)
    except ValueError:
        return None
    return p if 0.0 <= p <= 1.0 else None
