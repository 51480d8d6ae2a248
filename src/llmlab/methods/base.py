"""The method contract: ``async solve(query, roles) -> Solution``.

A :class:`Query` is what a task asks (chat messages, plus an optional answer extractor the task knows
best); :class:`Roles` names the Models a method uses (``default`` always; MoA adds ``proposers`` and
``aggregator``, a judge-based method a ``judge``). A :class:`Solution` carries the final text, the
extracted answer and a trace that tests and reports can inspect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.config import LabConfig, build_config
from llmlab.core.errors import ConfigError

Extractor = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Query:
    """A question for a method.

    Args:
        messages: The conversation to answer (last one a user turn).
        extract: Maps a model's text to a canonical answer (for voting and scoring); ``None`` if absent.
        metadata: Task-specific extras (item id, choices, ...). Never the ground truth: oracles are
            passed separately so no selection policy can peek.
    """

    messages: tuple[Message, ...]
    extract: Extractor | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_text(text: str, *, system: str | None = None, extract: Extractor | None = None) -> Query:
        msgs = (Message("system", system),) if system is not None else ()
        return Query((*msgs, Message("user", text)), extract=extract)

    @property
    def text(self) -> str:
        return self.messages[-1].content


@dataclass
class Solution:
    """A method's answer: the final text, the extracted answer, and a trace of how it got there."""

    text: str
    answer: str | None = None
    trace: dict[str, Any] = field(default_factory=dict)


class Roles:
    """Named Models. ``roles["judge"]`` falls back to ``default`` when a role was not given.

    Example:
        >>> r = Roles(Model("mock:echo"))
        >>> r["aggregator"] is r.default
        True
    """

    def __init__(self, default: Model, **named: Model | list[Model]) -> None:
        self.default = default
        self.named = named

    def __getitem__(self, role: str) -> Model:
        value = self.named.get(role, self.default)
        if isinstance(value, list):
            raise ConfigError(f"role '{role}' holds several models; use roles.many('{role}')")
        return value

    def many(self, role: str) -> list[Model]:
        value = self.named.get(role, [self.default])
        return value if isinstance(value, list) else [value]

    def all_models(self) -> list[Model]:
        out = [self.default]
        for v in self.named.values():
            out.extend(v if isinstance(v, list) else [v])
        return out


class Method(ABC):
    """Base for every inference-time method. Subclasses define ``Config`` and ``solve``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[LabConfig]] = LabConfig

    def __init__(self, config: LabConfig | Mapping[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, LabConfig) else build_config(self.Config, config)

    @abstractmethod
    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Answer ``query`` using the Models in ``roles``."""


class DirectConfig(LabConfig):
    """Sampling for a single direct call."""

    temperature: float | None = 0.0
    max_tokens: int | None = 1024


class Direct(Method):
    """The baseline: one call, the model's text is the answer."""

    name = "direct"
    Config = DirectConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        cfg = self.config
        assert isinstance(cfg, DirectConfig)
        resp = await roles.default.generate(
            GenerateRequest(
                messages=query.messages,
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
                sample_index=query.metadata.get("sample_index", 0),
            )
        )
        answer = query.extract(resp.text) if query.extract else resp.text
        return Solution(text=resp.text, answer=answer, trace={"calls": 1})
