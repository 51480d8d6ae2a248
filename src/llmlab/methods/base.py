"""The method contract: ``async solve(query, roles) -> Solution`` (contracts in :mod:`llmlab.core.contracts`).

A :class:`Query` is what a task asks (chat messages, plus an optional answer extractor the task knows
best); :class:`Roles` names the Models a method uses (``default`` always; MoA adds ``proposers`` and
``aggregator``, a judge-based method a ``judge``). A :class:`Solution` carries the final text, the
extracted answer and a trace that tests and reports can inspect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

__all__ = ["Direct", "DirectConfig", "Extractor", "Method", "Oracle", "OracleMethod", "Query", "Roles", "Solution"]

from llmlab.backends.base import GenerateRequest, Message
from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Extractor, Query, Roles, Solution


class Method(ABC):
    """Base for every inference-time method. Subclasses define ``Config`` and ``solve``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[LabConfig]] = LabConfig

    def __init__(self, config: LabConfig | Mapping[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, LabConfig) else build_config(self.Config, config)

    @abstractmethod
    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Answer ``query`` using the Models in ``roles``."""


# An oracle judges an answer against the ground truth (async: a judge-based task scores through a model).
Oracle = Callable[["str | None"], Awaitable[bool]]


class OracleMethod(Method):
    """A method that can also report what an oracle says about its explored answers (e.g. pass@k).

    This is an explicit capability, never duck-typed: the runner passes an oracle only to subclasses of
    this class. What the oracle sees must never reach the selected answer, unless
    :meth:`answer_uses_ground_truth` says so; then the runner reports the run's metrics under
    ``oracle_*`` names and never as ``accuracy``. Oracle-side metrics a method reports go in
    ``Solution.trace["oracle"]`` as a dict of numbers/bools, and are aggregated as ``oracle_<key>``.
    """

    @abstractmethod
    async def solve_with_oracle(self, query: Query, roles: Roles, oracle: Oracle) -> Solution:
        """Answer ``query`` like :meth:`solve`, and fill ``trace["oracle"]`` from ``oracle``'s verdicts."""

    def answer_uses_ground_truth(self) -> bool:
        """True when this configuration lets the oracle change the answer (e.g. an oracle early stop)."""
        return False


class DirectConfig(LabConfig):
    """Sampling for a single direct call.

    ``system_prompt`` replaces the query's system message (or adds one); ``@path`` reads it from a file,
    e.g. a prompt written by ``llmlab textgrad optimize-prompt``.
    """

    temperature: float | None = 0.0
    max_tokens: int | None = 1024
    system_prompt: str | None = None


def with_system_prompt(query: Query, system_prompt: str | None) -> Query:
    """``query`` with its system message replaced by ``system_prompt`` (``@path``: the file's text).

    Raises:
        ConfigError: ``@path`` names a file that cannot be read.
    """
    if system_prompt is None:
        return query
    text = system_prompt
    if system_prompt.startswith("@"):
        from pathlib import Path

        from llmlab.core.errors import ConfigError

        path = Path(system_prompt[1:])
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"system_prompt={system_prompt}: cannot read {path} ({exc.strerror})") from None
    rest = tuple(m for m in query.messages if m.role != "system")
    return Query((Message("system", text), *rest), extract=query.extract, metadata=query.metadata)


class Direct(Method):
    """The baseline: one call, the model's text is the answer."""

    name = "direct"
    Config = DirectConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        cfg = self.config
        assert isinstance(cfg, DirectConfig)
        query = with_system_prompt(query, cfg.system_prompt)
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
