r"""GSM8K: grade-school math word problems, scored on the final numeric answer.

Paper: "Training Verifiers to Solve Math Word Problems", Cobbe et al., 2021, arXiv 2110.14168.
Data: openai/grade-school-math ``grade_school_math/data/{test,train,test_socratic}.jsonl`` (MIT). Each row
is ``{"question", "answer"}``; the answer is a worked solution with calculator annotations ``<<a*b=c>>``
and a last line ``#### <number>``. The files are found by :func:`llmlab.core.data.find_data`
(``--data-dir`` / ``$LLMLAB_DATA_DIR`` / ``../shared/data`` / the cache / the official GitHub raw file).

Scoring (spec ``evaluation.md`` §10.1): the reference is the number after ``####``; the prediction's final
answer comes from :func:`llmlab.grading.math_answers.extract_gsm8k_answer`, which takes an explicit marker
(``####``, ``\boxed{}``, "the answer is") before it falls back to the last number; the two are compared
numerically.

Deliberate deviations:

- Numeric equality is exact on fractions with a ``1e-6`` relative tolerance. The usual string match
  after comma stripping would count "18.00" as wrong (see :mod:`llmlab.grading.math_answers`).
- The zero-shot prompt asks for a final ``#### <number>`` line, the format of the dataset's own
  solutions. The paper fine-tunes and does not prompt. n-shot exemplars are the first ``n_shot``
  training problems, with the calculator annotations removed, given as user/assistant turns. On the
  train split an item never appears among its own exemplars.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.core.jsonl import read_jsonl
from llmlab.grading.math_answers import (
    NUMBER_RE,
    extract_gsm8k_answer,
    gsm8k_reference,
    numbers_equivalent,
)
from llmlab.tasks.base import Task, TaskConfig

INSTRUCTION = (
    "Solve the following math word problem. Reason step by step. Then give the final answer on the last "
    'line in the form "#### <number>", where <number> is only the number: no units, no words.'
)
PROMPT_TEMPLATE = "{instruction}\n\nQuestion: {question}"

_CALCULATOR_RE = re.compile(r"<<[^<>]*>>")


class GSM8KConfig(TaskConfig):
    """Options of the GSM8K task.

    Args:
        data_dir: A folder holding ``gsm8k/<split>.jsonl`` (default: the usual search order).
        split: ``test`` (1319), ``train`` (7473) or ``test_socratic`` (1319).
        n_shot: Worked training examples put before the question (0 = zero-shot).
        system: An optional system message.
    """

    split: Literal["test", "train", "test_socratic"] = "test"
    n_shot: int = Field(default=0, ge=0, le=64)
    system: str | None = None


def load_gsm8k(path: Path) -> list[dict[str, str]]:
    """Read and check a GSM8K JSON-lines file.

    Args:
        path: The ``.jsonl`` file.

    Returns:
        The rows, each ``{"question", "answer", "reference"}`` (``reference``: the canonical final answer).

    Raises:
        DataError: The file cannot be read, or a line is not JSON, lacks ``question``/``answer``, or its
            answer has no ``#### <number>``. The message names ``file:line``.
    """
    rows: list[dict[str, str]] = []
    for where, record in read_jsonl(path, what="GSM8K file"):
        for key in ("question", "answer"):
            if not isinstance(record.get(key), str):
                what = "missing" if key not in record else "not a string"
                raise DataError(
                    f"{where}: '{key}' is {what}; each line needs 'question' and 'answer' strings"
                )
        reference = gsm8k_reference(record["answer"])
        if reference is None:
            raise DataError(f"{where}: 'answer' has no final '#### <number>' line")
        rows.append({"question": record["question"], "answer": record["answer"], "reference": reference})
    return rows


def parse_reference(value: Any, where: str) -> str:
    """The canonical answer of a predictions-file ``reference``: a dataset solution or a bare number.

    Raises:
        DataError: Neither a solution with ``#### <number>`` nor a single number.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value) if isinstance(value, float) else str(value)
        canonical = extract_gsm8k_answer(text)
        if canonical is not None:
            return canonical
    elif isinstance(value, str):
        if "####" in value:
            canonical = gsm8k_reference(value)
        elif NUMBER_RE.fullmatch(value.strip().rstrip("%").strip()):
            canonical = extract_gsm8k_answer(value)
        else:
            canonical = None
        if canonical is not None:
            return canonical
    raise DataError(
        f"{where}: 'reference' must be the dataset answer text ending in '#### <number>' or a bare number, "
        f"got {value!r}"
    )


class GSM8K(Task):
    r"""GSM8K with robust final-answer grading.

    Example:
        >>> task = GSM8K({"split": "test"})
        >>> item = Item("x-0", "2+2?", "4")
        >>> task.score(item, "So 2 + 2 = 4.\n#### 4").correct
        True
    """

    name = "gsm8k"
    Config = GSM8KConfig

    def __init__(self, config: GSM8KConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._rows: dict[str, list[dict[str, str]]] = {}

    @property
    def cfg(self) -> GSM8KConfig:
        assert isinstance(self.config, GSM8KConfig)
        return self.config

    def rows(self, split: str) -> list[dict[str, str]]:
        """The checked rows of ``split`` (read once, then kept)."""
        if split not in self._rows:
            self._rows[split] = load_gsm8k(self.data_path("gsm8k", f"{split}.jsonl"))
        return self._rows[split]

    def items(self) -> Iterable[Item]:
        split = self.cfg.split
        for i, row in enumerate(self.rows(split)):
            yield Item(
                id=f"{split}-{i}",
                input=row["question"],
                target=row["reference"],
                metadata={"solution": row["answer"], "index": i},
            )

    def fewshot_messages(self, item: Item) -> list[Message]:
        """User/assistant turns of the first ``n_shot`` training problems (never the item itself)."""
        if self.cfg.n_shot == 0:
            return []
        out: list[Message] = []
        for j, row in enumerate(self.rows("train")):
            if len(out) == 2 * self.cfg.n_shot:
                break
            if item.id == f"train-{j}":
                continue
            solution = _CALCULATOR_RE.sub("", row["answer"])
            user = PROMPT_TEMPLATE.format(instruction=INSTRUCTION, question=row["question"])
            out.append(Message("user", user))
            out.append(Message("assistant", solution))
        return out

    def prompt(self, item: Item) -> Query:
        messages: list[Message] = []
        if self.cfg.system is not None:
            messages.append(Message("system", self.cfg.system))
        messages.extend(self.fewshot_messages(item))
        messages.append(Message("user", PROMPT_TEMPLATE.format(instruction=INSTRUCTION, question=item.input)))
        return Query(tuple(messages), extract=extract_gsm8k_answer, metadata={"item_id": item.id})

    def score(self, item: Item, answer: str | None) -> Score:
        """Score free text or an extracted answer against the item's reference number.

        Args:
            item: The item (its ``target`` is the canonical reference answer).
            answer: A model's text, or an answer already extracted from it; ``None`` scores 0.

        Returns:
            A 0/1 :class:`Score` whose ``extracted`` is the canonical answer found (or ``None``).
        """
        extracted = extract_gsm8k_answer(answer)
        correct = extracted is not None and numbers_equivalent(extracted, item.target)
        return Score(
            value=float(correct), correct=correct, extracted=extracted, details={"reference": item.target}
        )

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Accuracy, plus how many answers had no number to extract."""
        report = super().aggregate(scores)
        report["no_answer"] = sum(s.extracted is None for s in scores)
        return report

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """Build ``(item, prediction)`` from a line with ``question``, ``reference`` and ``prediction``.

        Raises:
            DataError: A key is missing or a value has the wrong type (the message names ``where``).
        """
        missing = [k for k in ("question", "reference", "prediction") if k not in record]
        if missing:
            raise DataError(
                f"{where}: missing {', '.join(repr(k) for k in missing)}; each line needs 'question', "
                "'reference' and 'prediction'"
            )
        question, prediction = record["question"], record["prediction"]
        if not isinstance(question, str):
            raise DataError(f"{where}: 'question' must be a string, got {type(question).__name__}")
        if isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
            prediction = str(prediction)
        if not isinstance(prediction, str):
            raise DataError(f"{where}: 'prediction' must be a string, got {type(prediction).__name__}")
        target = parse_reference(record["reference"], where)
        item_id = str(record["id"]) if record.get("id") is not None else where
        item = Item(id=item_id, input=question, target=target, metadata={"reference": record["reference"]})
        return item, prediction
