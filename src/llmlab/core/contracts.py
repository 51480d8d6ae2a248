"""The shared contracts: :class:`Item`, :class:`Score`, :class:`Query`, :class:`Roles`, :class:`Solution`.

Tasks and methods both import these from core and never import each other (inspect_ai keeps ``Sample``,
``TaskState`` and ``Score`` in modules that solvers and scorers both import). A :class:`Solution` carries a
typed trace: :attr:`Solution.calls` lists every model call the solution made, each with its request and
response (filled by the runner from the Model stack's recorder), and :attr:`Solution.trace` keeps the
method's own structure (a tree, layers, intermediate texts).

Example:
    >>> q = Query.from_text("2+2?", extract=lambda t: t.strip())
    >>> q.text
    '2+2?'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlab.core.errors import ConfigError

if TYPE_CHECKING:
    from llmlab.backends.base import Message
    from llmlab.backends.model import Model

Extractor = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Item:
    """One benchmark item: a stable id, the input, the reference, and extras."""

    id: str
    input: Any
    target: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Score:
    """One item's score. ``value`` in [0, 1] for accuracy-like metrics; ``extracted`` is what was compared.

    ``cluster`` names the group of items that share a question (e.g. the rephrasings of one question),
    so that aggregate standard errors are clustered; ``None`` means the item is its own cluster.
    """

    value: float
    correct: bool | None = None
    extracted: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    cluster: str | None = None


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
        from llmlab.backends.base import Message

        msgs = (Message("system", system),) if system is not None else ()
        return Query((*msgs, Message("user", text)), extract=extract)

    @property
    def text(self) -> str:
        """The last message's text (its text parts joined when it has images)."""
        from llmlab.backends.base import content_text

        return content_text(self.messages[-1].content)


@dataclass
class CallTrace:
    """One model call a solution made: which role, the request and the response (JSON-able dicts)."""

    model: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    latency_s: float = 0.0
    cached: bool = False
    error: str | None = None


@dataclass
class Solution:
    """A method's answer: the final text, the extracted answer, the calls made, and the method's trace."""

    text: str
    answer: str | None = None
    trace: dict[str, Any] = field(default_factory=dict)
    calls: list[CallTrace] = field(default_factory=list)


class Roles:
    """Named Models. ``roles["judge"]`` falls back to ``default`` when a role was not given.

    ``require`` lets a method refuse unknown role names up front (a typo in ``--role`` is one line, not a
    silent fallback to the default model).

    Example:
        >>> from llmlab.backends.model import Model
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

    def check_known(self, known: set[str] | frozenset[str], who: str) -> None:
        """Raise ConfigError naming any role outside ``known`` (``who`` is the method or task name)."""
        unknown = sorted(set(self.named) - set(known))
        if unknown:
            avail = ", ".join(sorted(known)) if known else "none besides the default --model"
            raise ConfigError(f"{who} has no role {', '.join(map(repr, unknown))}; its roles: {avail}")
