"""The task contract: ``items()``, ``prompt(item)``, ``score(item, answer)``, ``aggregate(scores)``.

Tasks also score predictions made elsewhere (``llmlab score``): :meth:`Task.item_from_record` turns one
line of a predictions file into an item plus the prediction text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Item, Query, Roles, Score


class TaskConfig(LabConfig):
    """Options every task accepts."""

    data_dir: str | None = None
    split: str = "test"


class Task(ABC):
    """Base for every benchmark. Subclasses define ``Config``, ``items``, ``prompt`` and ``score``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[LabConfig]] = TaskConfig

    def __init__(self, config: LabConfig | Mapping[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, LabConfig) else build_config(self.Config, config)

    @abstractmethod
    def items(self) -> Iterable[Item]:
        """The items, in a stable order."""

    @abstractmethod
    def prompt(self, item: Item) -> Query:
        """The query a method answers for ``item``."""

    @abstractmethod
    def score(self, item: Item, answer: str | None) -> Score:
        """Score a method's answer (the Solution's ``answer``, or its text when no extractor)."""

    async def ascore(self, item: Item, answer: str | None, roles: Roles) -> Score:
        """Score with access to Models (judge-based tasks override this; the default calls :meth:`score`)."""
        return self.score(item, answer)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Mean score and accuracy over the scored items."""
        n = len(scores)
        correct = [s.correct for s in scores if s.correct is not None]
        return {
            "n": n,
            "score": sum(s.value for s in scores) / n if n else 0.0,
            "accuracy": sum(correct) / len(correct) if correct else None,
        }

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """Build ``(item, prediction)`` from one predictions-file line; ``where`` is ``file:line``."""
        from llmlab.core.errors import DataError

        raise DataError(f"{where}: task '{self.name}' does not score prediction files")

    def data_path(self, dataset: str, *parts: str) -> Path:
        """Resolve a data file of ``dataset`` (see :func:`llmlab.core.data.find_data`)."""
        from llmlab.core.data import find_data

        data_dir = getattr(self.config, "data_dir", None)
        return find_data(dataset, *parts, data_dir=data_dir)
