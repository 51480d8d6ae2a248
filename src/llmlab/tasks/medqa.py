"""MedQA (USMLE, US English), the multiple-choice benchmark that MedFuzz (arXiv 2406.06573) attacks.

Paper: "What Disease does this Patient Have? A Large-scale Open Domain Question Answering Dataset from
Medical Exams", Jin et al., 2021 (arXiv 2009.13081). Data: the US test split (1,273 questions) as
repackaged by MedAgentsBench (``xk-huang/medagents-benchmark``: ``data/medqa/test.jsonl`` with 4 options
A-D, ``data/medqa_5options/test.jsonl`` with MedQA's original 5 options A-E), found by
:func:`llmlab.core.data.find_data` (dataset ``medqa``).

Each row is ``{question, options{A..}, answer, answer_idx, meta_info}``; an item's target is the letter
``answer_idx`` and its metadata keeps the options and the USMLE step. The prompt asks for step-by-step
reasoning then a last line ``Answer: <letter>``; scoring parses the letter with
:func:`llmlab.grading.choices.extract_letter` (an unparsable reply is wrong, never a guess).

Deliberate deviations: none from the data; the prompt wording is ours (MedFuzz's paper gives no target
prompt).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.core.jsonl import read_jsonl
from llmlab.grading.choices import extract_letter
from llmlab.tasks.base import Task, TaskConfig

INSTRUCTION = (
    "Answer the following medical multiple-choice question. Think step by step, then give your final "
    'answer on the last line in the form "Answer: <letter>".'
)
PROMPT_TEMPLATE = "{instruction}\n\n{question}\n\n{options}"

VARIANTS = {"4_options": "medqa", "5_options": "medqa_5options"}


class MedQAConfig(TaskConfig):
    """Options of the MedQA task.

    Args:
        data_dir: A folder holding ``medqa/<variant folder>/test.jsonl`` (default: the usual search order).
        split: Only ``test`` is available locally.
        variant: ``4_options`` (A-D, the MedFuzz setting) or ``5_options`` (A-E).
        step: Keep only ``step1`` or ``step2&3`` questions (``None``: all).
        system: An optional system message.
    """

    split: Literal["test"] = "test"
    variant: Literal["4_options", "5_options"] = "4_options"
    step: Literal["step1", "step2&3"] | None = None
    system: str | None = None


def load_medqa(path: Path) -> list[dict[str, Any]]:
    """Read and check a MedQA JSON-lines file.

    Returns:
        Rows ``{question, options, answer_idx, meta_info}``.

    Raises:
        DataError: A line lacks a field, or ``answer_idx`` is not one of its option letters (names ``file:line``).
    """
    rows: list[dict[str, Any]] = []
    for where, rec in read_jsonl(path, what="MedQA file"):
        q, opts, ans = rec.get("question"), rec.get("options"), rec.get("answer_idx")
        if not isinstance(q, str) or not isinstance(opts, dict) or not opts:
            raise DataError(f"{where}: each line needs a 'question' string and an 'options' object")
        if ans not in opts:
            raise DataError(f"{where}: 'answer_idx' {ans!r} is not one of the options {sorted(opts)}")
        rows.append({"question": q, "options": {str(k): str(v) for k, v in opts.items()}, "answer_idx": ans,
                     "meta_info": rec.get("meta_info")})
    return rows


def format_options(options: Mapping[str, str]) -> str:
    r"""``A. text`` lines in letter order.

    Example:
        >>> format_options({"B": "two", "A": "one"})
        'A. one\nB. two'
    """
    return "\n".join(f"{k}. {options[k]}" for k in sorted(options))


class MedQA(Task):
    r"""MedQA US test, multiple choice, scored on the parsed option letter.

    Example:
        >>> task = MedQA()
        >>> item = Item("medqa-0", "Q?", "B", {"options": {"A": "x", "B": "y", "C": "z", "D": "w"}})
        >>> task.score(item, "Because of y.\nAnswer: B").correct
        True
    """

    name = "medqa"
    Config = MedQAConfig

    @property
    def cfg(self) -> MedQAConfig:
        assert isinstance(self.config, MedQAConfig)
        return self.config

    def items(self) -> Iterable[Item]:
        rows = load_medqa(self.data_path("medqa", VARIANTS[self.cfg.variant], f"{self.cfg.split}.jsonl"))
        for i, row in enumerate(rows):
            if self.cfg.step is not None and row["meta_info"] != self.cfg.step:
                continue
            yield Item(f"medqa-{i}", row["question"], row["answer_idx"],
                       {"options": row["options"], "step": row["meta_info"]})

    def prompt(self, item: Item) -> Query:
        options = item.metadata["options"]
        text = PROMPT_TEMPLATE.format(instruction=INSTRUCTION, question=item.input, options=format_options(options))
        letters = "".join(sorted(options))
        msgs = (Message("system", self.cfg.system),) if self.cfg.system is not None else ()
        return Query((*msgs, Message("user", text)), extract=lambda t: extract_letter(t, letters),
                     metadata={"id": item.id, "options": dict(options)})

    def score(self, item: Item, answer: str | None) -> Score:
        letters = "".join(sorted(item.metadata["options"]))
        extracted = answer if answer is not None and answer in letters else extract_letter(answer, letters)
        ok = extracted == item.target
        return Score(float(ok), correct=ok, extracted=extracted)

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``{id?, question, options, answer_idx|reference, prediction}`` → item and prediction."""
        opts, ref = record.get("options"), record.get("answer_idx", record.get("reference"))
        pred = record.get("prediction")
        if not isinstance(opts, dict) or ref not in opts or not isinstance(pred, str):
            raise DataError(f"{where}: a MedQA prediction line needs 'options', 'answer_idx' (one of the option "
                            "letters) and a 'prediction' string")
        return Item(str(record.get("id", where)), str(record.get("question", "")), ref, {"options": opts}), pred

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        out["unparsed"] = sum(1 for s in scores if s.extracted is None)
        return out
