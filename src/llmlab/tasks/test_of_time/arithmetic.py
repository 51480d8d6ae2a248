"""ToT-Arithmetic (paper §3.2; spec ``evaluation.md`` §7.3): the 1850-question test split in 7 categories."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmlab.core.contracts import Item
from llmlab.tasks.test_of_time.answers import parse_label
from llmlab.tasks.test_of_time.base import _require, _ToTBase

ARITHMETIC_CATEGORIES = ("add_subtract", "compare", "multi_op", "schedule", "trick", "duration", "timezone")


class ToTArithmetic(_ToTBase):
    """ToT-Arithmetic: 1850 questions in 7 categories, exact match on every label key.

    Example:
        >>> task = ToTArithmetic()
        >>> item = task.item_from_record({"question": "q", "question_type": "trick",
        ...     "label": "{'answer': 'unanswerable'}", "prediction": '{"answer": "Unanswerable"}'}, "x:1")[0]
        >>> task.score(item, '{"answer": "Unanswerable"}').correct
        True
    """

    name = "tot_arithmetic"
    dataset = "tot-arithmetic"
    filename = "test.json"

    def _make_item(self, row: Mapping[str, Any], where: str, index: int) -> Item:
        _require(row, self.required, where)
        label = parse_label(row["label"], where)
        category = str(row["question_type"])
        return Item(
            id=f"{category}/{index}",
            input=str(row["question"]),
            target=label,
            metadata={"category": category, "keys": tuple(label)},
        )
