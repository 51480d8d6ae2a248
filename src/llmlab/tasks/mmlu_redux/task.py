"""The MMLU-Redux task: QA under a label set, or error detection, on the loaded rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.tasks.base import Task, TaskConfig
from llmlab.tasks.mmlu_redux.data import DATASET, LETTERS, SUBDIR, FileInfo, ReduxRow, load_redux, make_row
from llmlab.tasks.mmlu_redux.prompts import DETECTION_INSTRUCTION, DETECTION_PROMPT, QA_PROMPT, _choices_block
from llmlab.tasks.mmlu_redux.scoring import (
    LabelSet,
    _acc,
    _prf,
    corrected_label,
    extract_choice,
    extract_verdict,
    target_for,
)


class MMLUReduxConfig(TaskConfig):
    """Options of :class:`MMLURedux`.

    Attributes:
        setting: ``qa`` (answer the question) or ``error_detection`` (say whether the item is ok).
        labels: QA label set: ``original``, ``ok_only`` or ``corrected`` (see the module docstring).
        accept_multiple: In ``corrected``, keep ``multiple correct answers`` rows (any listed option counts).
        subjects: Only these subjects (file names without ``mmlu_`` / ``.csv``).
        data_file: A CSV or a folder of CSVs to use instead of the dataset folder.
    """

    setting: Literal["qa", "error_detection"] = "qa"
    labels: LabelSet = "original"
    accept_multiple: bool = False
    subjects: list[str] | None = None
    data_file: str | None = None


class MMLURedux(Task):
    """MMLU-Redux 2.0: QA under original / ok-only / corrected labels, or error detection.

    Example:
        >>> task = MMLURedux()
        >>> rec = {"question": "2+2?", "choices": ["3", "4"], "answer": 1, "error_type": "OK", "prediction": "B"}
        >>> item, pred = task.item_from_record(rec, "p.jsonl:1")
        >>> task.score(item, pred).correct
        True
    """

    name = "mmlu_redux"
    Config = MMLUReduxConfig

    @property
    def cfg(self) -> MMLUReduxConfig:
        assert isinstance(self.config, MMLUReduxConfig)
        return self.config

    def load(self) -> tuple[list[FileInfo], list[ReduxRow]]:
        """Read the configured CSVs (``data_file`` or ``<data>/mmlu-redux-2.0/mmlu_redux/``)."""
        cfg = self.cfg
        source = Path(cfg.data_file) if cfg.data_file is not None else self.data_path(DATASET, SUBDIR)
        return load_redux(source, cfg.subjects)

    def _item(self, row: ReduxRow, item_id: str | None = None) -> Item:
        cfg = self.cfg
        corr, status = corrected_label(row, cfg.accept_multiple)
        if cfg.setting == "error_detection":
            target: Any = "ok" if row.is_ok else "not ok"
        else:
            target = target_for(row, cfg.labels, cfg.accept_multiple)
        return Item(
            id=item_id if item_id is not None else f"{row.subject}/{row.row}",
            input={"subject": row.subject, "question": row.question, "choices": list(row.choices),
                   "answer": row.answer},
            target=target,
            metadata={"subject": row.subject, "error_type": row.error_type, "original": row.answer,
                      "corrected": corr, "corrected_status": status,
                      "correct_answer_kind": row.correct_answer_kind, "n_choices": len(row.choices)},
        )

    def items(self) -> list[Item]:
        _, rows = self.load()
        out = [self._item(r) for r in rows]
        if self.cfg.setting == "qa":
            out = [it for it in out if it.target is not None]
        return out

    def prompt(self, item: Item) -> Query:
        inp = item.input
        subject = str(inp["subject"]).replace("_", " ")
        n = len(inp["choices"])
        if self.cfg.setting == "error_detection":
            a = int(inp["answer"])
            user = DETECTION_PROMPT.format(question=inp["question"], choices=_choices_block(inp["choices"]),
                                           answer=f"{LETTERS[a]}. {inp['choices'][a]}")
            return Query((Message("system", DETECTION_INSTRUCTION), Message("user", user)),
                         extract=extract_verdict, metadata={"id": item.id})
        text = QA_PROMPT.format(subject=subject, question=inp["question"], choices=_choices_block(inp["choices"]))
        return Query((Message("user", text),), extract=lambda t: extract_choice(t, n),
                     metadata={"id": item.id, "choices": list(inp["choices"])})

    def score(self, item: Item, answer: str | None) -> Score:
        md = item.metadata
        details: dict[str, Any] = {"subject": md["subject"], "error_type": md["error_type"]}
        if self.cfg.setting == "error_detection":
            verdict = extract_verdict(answer)
            details["unparsed"] = verdict is None
            pred = verdict if verdict is not None else "not ok"  # official: anything but "ok" is "not ok"
            details["pred"] = pred
            ok = pred == item.target
            return Score(1.0 if ok else 0.0, correct=ok, extracted=verdict, details=details)
        letter = extract_choice(answer, int(md["n_choices"]))
        idx = LETTERS.index(letter) if letter is not None else None
        corr = md["corrected"]
        details["correct_original"] = idx == md["original"]
        details["correct_corrected"] = (idx in corr) if corr is not None else None
        details["corrected_status"] = md["corrected_status"]
        if item.target is None:
            details["excluded"] = md["corrected_status"] if self.cfg.labels == "corrected" else md["error_type"]
            return Score(0.0, correct=None, extracted=letter, details=details)
        ok = idx is not None and idx in item.target
        return Score(1.0 if ok else 0.0, correct=ok, extracted=letter, details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        if self.cfg.setting == "error_detection":
            return self._aggregate_detection(scores)
        scored = [s for s in scores if s.correct is not None]
        acc = sum(bool(s.correct) for s in scored) / len(scored) if scored else 0.0
        per_subject: dict[str, list[bool]] = defaultdict(list)
        per_type: dict[str, list[bool]] = defaultdict(list)
        for s in scored:
            per_subject[s.details["subject"]].append(bool(s.correct))
        for s in scores:
            per_type[s.details["error_type"]].append(bool(s.details["correct_original"]))
        corrected = [bool(s.details["correct_corrected"]) for s in scores if s.details["correct_corrected"] is not None]
        return {
            "n": len(scores),
            "n_scored": len(scored),
            "labels": self.cfg.labels,
            "score": acc,
            "accuracy": acc,
            "unparsed": sum(s.extracted is None for s in scored),
            "excluded": dict(Counter(str(s.details["excluded"]) for s in scores if "excluded" in s.details)),
            # the paper's analysis: exact match with the ORIGINAL labels on all / ok / not-ok rows
            "original": {
                "all": _acc(bool(s.details["correct_original"]) for s in scores),
                "ok": _acc(bool(s.details["correct_original"]) for s in scores if s.details["error_type"] == "ok"),
                "not_ok": _acc(bool(s.details["correct_original"]) for s in scores
                               if s.details["error_type"] != "ok"),
            },
            "corrected": _acc(corrected),
            "per_error_type_original": {t: _acc(v) for t, v in sorted(per_type.items())},
            "per_subject": {k: _acc(v) for k, v in sorted(per_subject.items())},
        }

    def _aggregate_detection(self, scores: Sequence[Score]) -> dict[str, Any]:
        tp = fp = fn = tn = 0
        flagged: dict[str, list[bool]] = defaultdict(list)
        per_subject: dict[str, list[bool]] = defaultdict(list)
        for s in scores:
            gold_ok = s.details["error_type"] == "ok"
            pred_ok = s.details["pred"] == "ok"
            tp += pred_ok and gold_ok
            fp += pred_ok and not gold_ok
            fn += (not pred_ok) and gold_ok
            tn += (not pred_ok) and not gold_ok
            flagged[s.details["error_type"]].append(not pred_ok)
            per_subject[s.details["subject"]].append(bool(s.correct))
        n = len(scores)
        em = (tp + tn) / n if n else 0.0
        return {
            "n": n,
            "score": em,
            "accuracy": em,
            "exact_match": em,
            "unparsed": sum(bool(s.details["unparsed"]) for s in scores),
            "TP": tp, "FP": fp, "FN": fn, "TN": tn,
            # positive class "ok", as the official compute_metrics_binary
            **_prf(tp, fp, fn),
            # the detector's view: positive class "not ok"
            "not_ok_positive": _prf(tn, fn, fp),
            "flagged_not_ok_by_error_type": {
                t: {"n": len(v), "rate": sum(v) / len(v)} for t, v in sorted(flagged.items())
            },
            "per_subject": {k: _acc(v) for k, v in sorted(per_subject.items())},
        }

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        if "prediction" not in record:
            raise DataError(f"{where}: missing 'prediction'")
        subject = str(record.get("subject") or "unknown")
        row = make_row(record, subject, 0, where)
        item = self._item(row, str(record["id"]) if record.get("id") is not None else where)
        pred = record["prediction"]
        if isinstance(pred, bool) or pred is None:
            raise DataError(f"{where}: 'prediction' must be text or an option index, got {pred!r}")
        if isinstance(pred, int):
            if not 0 <= pred < len(row.choices):
                raise DataError(f"{where}: prediction index {pred} out of range for {len(row.choices)} choices")
            pred = LETTERS[pred]
        return item, str(pred)
