r"""MATH (MATH-500): competition mathematics, scored on the final answer with MATH answer equivalence.

Papers: "Measuring Mathematical Problem Solving With the MATH Dataset", Hendrycks et al., 2021, arXiv
2103.03874; the 500-problem test subset is the held-out split of "Let's Verify Step by Step" (Lightman et
al., 2023, PRM800K). Data: ``math-500/test500.jsonl`` (rows ``{problem, level, solution, subject,
unique_id, answer}``), found by :func:`llmlab.core.data.find_data`.

Scoring: the prediction's final answer is its last ``\boxed{}``, else its last "the answer is ..."
statement (:func:`llmlab.grading.math_answers.extract_math_final`); it is compared with the reference by
:func:`llmlab.grading.math_answers.math_equal` (hendrycks' ``is_equiv`` normalisation first, then our
PRM800K-grader-style normalisation: units, ``\text{}``, degrees, intervals, sets, ``\pm``, and sympy for
simple expressions).

Deliberate deviations:

- hendrycks' scorer accepts only ``\boxed{}`` answers; we also take a stated "the answer is" answer, as
  the issue asks (a model that states its answer without a box is not scored wrong for the form).
- ``math_equal`` is more lenient than ``is_equiv`` alone (e.g. ``\sqrt{12}`` equals ``2\sqrt{3}``), as
  PRM800K's grader is; ``details["strict"]`` keeps the plain hendrycks verdict for comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.core.jsonl import read_jsonl
from llmlab.grading.math_answers import (
    canonical_math_final,
    extract_math_answer,
    extract_math_final,
    is_equiv,
    math_equal,
)
from llmlab.tasks.base import Task, TaskConfig

INSTRUCTION = (
    "Solve the following math problem. Reason step by step, separating steps with a blank line, and put "
    "your final answer in \\boxed{}."
)
PROMPT_TEMPLATE = "{instruction}\n\nProblem: {problem}"


class MATHConfig(TaskConfig):
    """Options of the MATH task.

    Args:
        data_dir: A folder holding ``math-500/test500.jsonl`` (default: the usual search order).
        split: Only ``test`` (MATH-500).
        subject: Keep only this subject (e.g. ``Algebra``); ``None``: all.
        level: Keep only this level (1-5); ``None``: all.
        system: An optional system message.
    """

    subject: str | None = None
    level: int | None = None
    system: str | None = None


def load_math500(path: Any) -> list[dict[str, Any]]:
    """Read and check a MATH-500 JSON-lines file.

    Raises:
        DataError: A line lacks ``problem`` or ``answer`` (the message names ``file:line``).
    """
    rows = []
    for where, record in read_jsonl(path, what="MATH-500 file"):
        for key in ("problem", "answer"):
            if not isinstance(record.get(key), str):
                raise DataError(f"{where}: '{key}' missing or not a string; each line needs 'problem' and 'answer'")
        rows.append(record)
    return rows


def reference_answer(value: Any) -> str:
    r"""The reference answer of a predictions-file ``reference``: a solution's ``\boxed{}`` or the value."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"'reference' must be a non-empty answer or solution string, got {value!r}")
    boxed = extract_math_answer(value)
    return boxed if boxed is not None else value.strip()


class MATH(Task):
    r"""MATH-500 with MATH answer equivalence.

    Example:
        >>> task = MATH()
        >>> task.score(Item("t", "1/2 + 1/4?", "\\frac{3}{4}"), "So it is $\\boxed{3/4}$.").correct
        True
    """

    name = "math"
    Config = MATHConfig

    @property
    def cfg(self) -> MATHConfig:
        assert isinstance(self.config, MATHConfig)
        return self.config

    def items(self) -> Iterable[Item]:
        if self.cfg.split != "test":
            raise DataError(f"math: only the 'test' split (MATH-500) is available, not '{self.cfg.split}'")
        for row in load_math500(self.data_path("math-500", "test500.jsonl")):
            if self.cfg.subject is not None and row.get("subject") != self.cfg.subject:
                continue
            if self.cfg.level is not None and row.get("level") != f"Level {self.cfg.level}":
                continue
            yield Item(
                id=str(row.get("unique_id", len(row))),
                input=row["problem"],
                target=row["answer"],
                metadata={k: row.get(k) for k in ("subject", "level", "solution")},
            )

    def prompt(self, item: Item) -> Query:
        msgs: list[Message] = []
        if self.cfg.system is not None:
            msgs.append(Message("system", self.cfg.system))
        msgs.append(Message("user", PROMPT_TEMPLATE.format(instruction=INSTRUCTION, problem=item.input)))
        # The extractor gives voting keys (equal numbers share one), so self-consistency and weighted votes
        # count equivalent answers together.
        return Query(tuple(msgs), extract=canonical_math_final, metadata={"item_id": item.id})

    def score(self, item: Item, answer: str | None) -> Score:
        r"""Score free text (or an extracted answer) against the reference answer.

        An answer without ``\boxed{}`` or an "answer is" statement is taken as already extracted.
        """
        extracted = extract_math_final(answer)
        if extracted is None and answer is not None and "\n" not in answer.strip() and len(answer) < 200:
            extracted = answer.strip() or None
        correct = extracted is not None and math_equal(extracted, item.target)
        strict = extracted is not None and is_equiv(extracted, item.target)
        return Score(float(correct), correct, extracted, details={"reference": item.target, "strict": strict})

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Accuracy, the hendrycks-strict accuracy, and how many answers had none to extract."""
        report = super().aggregate(scores)
        report["strict_accuracy"] = sum(bool(s.details.get("strict")) for s in scores) / len(scores) if scores else None
        report["no_answer"] = sum(s.extracted is None for s in scores)
        return report

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``(item, prediction)`` from a line with ``reference`` and ``prediction`` (``problem``/``id`` optional).

        Raises:
            DataError: A key is missing or a value has the wrong type (the message names ``where``).
        """
        missing = [k for k in ("reference", "prediction") if k not in record]
        if missing:
            raise DataError(f"{where}: missing {', '.join(map(repr, missing))}; each line needs 'reference' and "
                            "'prediction'")
        prediction = record["prediction"]
        if isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
            prediction = str(prediction)
        if not isinstance(prediction, str):
            raise DataError(f"{where}: 'prediction' must be a string, got {type(prediction).__name__}")
        try:
            target = reference_answer(record["reference"])
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        question = record.get("problem", record.get("question", ""))
        item_id = str(record["id"]) if record.get("id") is not None else where
        return Item(item_id, question, target, metadata={"reference": record["reference"]}), prediction
