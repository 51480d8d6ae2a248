"""PRM-weighted self-consistency (§4 of OmegaPRM, arXiv 2406.06592), with majority vote and best-of-N alongside.

Part of :mod:`llmlab.methods.prm`; see there for the deviations.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import GenerateRequest
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Extractor, Query, Roles, Solution
from llmlab.core.errors import ConfigError
from llmlab.grading.math_answers import canonical_math_final, canonical_number, last_number
from llmlab.methods.base import Method
from llmlab.methods.prm.data import _split
from llmlab.methods.prm.models import LLMPRM, PRM, FunctionPRM, HFPRMHead

# -- PRM-weighted self-consistency ---------------------------------------------------------------------

Reduce = Literal["min", "last", "product"]
Vote = Literal["weighted", "majority", "best_of_n"]


def reduce_steps(scores: Sequence[float], how: Reduce) -> float:
    """A solution's score from its step scores (an empty solution scores 0).

    Example:
        >>> reduce_steps([0.9, 0.5, 0.8], "min"), reduce_steps([0.9, 0.5, 0.8], "last")
        (0.5, 0.8)
    """
    if not scores:
        return 0.0
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    return math.prod(scores)


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float]) -> tuple[str | None, dict[str, float]]:
    """The answer with the largest total weight (first seen wins ties; ``None`` answers never vote).

    Example:
        >>> weighted_vote(["a", "b", "b"], [0.9, 0.3, 0.4])
        ('a', {'a': 0.9, 'b': 0.7})
    """
    totals: dict[str, float] = {}
    for a, w in zip(answers, weights, strict=True):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + w
    if not totals:
        return None, {}
    return max(totals, key=lambda a: totals[a]), totals


def default_extract(text: str) -> str | None:
    r"""A final answer for voting: the MATH voting key (:func:`canonical_math_final`), else the last number."""
    found = canonical_math_final(text)
    if found is not None:
        return found
    value = last_number(text)
    return canonical_number(value) if value is not None else None


class PRMWeightedSCConfig(LabConfig):
    """Options of PRM-weighted self-consistency.

    Args:
        n: Solutions sampled.
        temperature: Sampling temperature.
        max_tokens: Completion budget per solution.
        reduce: Step scores → solution score: ``min``, ``last`` or ``product``.
        vote: The returned answer: ``weighted`` (PRM-weighted vote), ``majority`` (plain SC) or
            ``best_of_n`` (the answer of the highest-scoring solution). All three are in the trace.
        prm: ``llm`` (the ``prm`` role graded by :class:`LLMPRM`), ``head:<file>`` (a saved
            :class:`HFPRMHead`), or ``py:<module:attr>`` (a PRM object or a callable for :class:`FunctionPRM`).
        concurrency: Most samples or PRM calls in flight (``None``: all).
    """

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int | None = Field(default=1024, ge=1)
    reduce: Reduce = "min"
    vote: Vote = "weighted"
    prm: str = "llm"
    concurrency: int | None = Field(default=None, ge=1)


class PRMWeightedSC(Method):
    r"""Sample N solutions, score them with a PRM, and vote with the PRM scores as weights.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.core.concurrency import run_sync
        >>> m = PRMWeightedSC({"n": 3}, prm=FunctionPRM(lambda q, s: [0.1 if "bad" in x else 0.9 for x in s]))
        >>> replies = ["bad\n\n\\boxed{1}", "bad\n\n\\boxed{1}", "good\n\n\\boxed{2}"]
        >>> run_sync(m.solve(Query.from_text("q"), Roles(Model(MockBackend(replies))))).answer
        '2'
    """

    name = "prm_weighted_sc"
    Config = PRMWeightedSCConfig

    def __init__(
        self, config: PRMWeightedSCConfig | Mapping[str, Any] | None = None, *, prm: PRM | None = None
    ) -> None:
        super().__init__(config)
        self._prm = prm

    @property
    def cfg(self) -> PRMWeightedSCConfig:
        assert isinstance(self.config, PRMWeightedSCConfig)
        return self.config

    def _resolve_prm(self, roles: Roles) -> PRM:
        if self._prm is not None:
            return self._prm
        spec = self.cfg.prm
        if spec == "llm":
            return LLMPRM(roles["prm"])
        if spec.startswith("head:"):
            return HFPRMHead.load_head(spec[5:])
        if spec.startswith("py:"):
            import importlib

            mod, _, attr = spec[3:].partition(":")
            try:
                obj = getattr(importlib.import_module(mod), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"prm '{spec}': cannot load ({exc})") from None
            return obj if hasattr(obj, "score_steps") else FunctionPRM(obj)
        raise ConfigError(f"prm '{spec}' not understood: use llm, head:<file> or py:<module:attr>")

    async def _sample(self, query: Query, model: Model) -> list[str]:
        cfg = self.cfg
        base = GenerateRequest(messages=query.messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                               sample_index=int(query.metadata.get("sample_index", 0)) * cfg.n)
        if model.capabilities.native_n:
            return list((await model.generate(base.with_(n=cfg.n))).texts)

        def one(i: int) -> Callable[[], Awaitable[str]]:
            async def run() -> str:
                return (await model.generate(base.with_(sample_index=base.sample_index + i))).text

            return run

        return await gather([one(i) for i in range(cfg.n)], limit=cfg.concurrency)

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Sample, score every step, reduce, and vote.

        Returns:
            The chosen answer; the trace holds ``samples``, ``answers``, ``step_scores``,
            ``solution_scores``, ``weighted`` (answer → summed score), ``majority`` (answer → count) and
            the answers each vote picks (``weighted_answer``, ``majority_answer``, ``best_of_n_answer``).
        """
        roles.check_known({"prm"}, self.name)
        cfg = self.cfg
        prm = self._resolve_prm(roles)
        extract: Extractor = query.extract if query.extract is not None else default_extract
        texts = await self._sample(query, roles.default)
        answers = [extract(t) for t in texts]
        question = query.text

        def grade(t: str) -> Callable[[], Awaitable[list[float]]]:
            async def run() -> list[float]:
                return await prm.score_steps(question, _split(t))

            return run

        step_scores = await gather([grade(t) for t in texts], limit=cfg.concurrency)
        sol_scores = [reduce_steps(s, cfg.reduce) for s in step_scores]
        w_answer, w_votes = weighted_vote(answers, sol_scores)
        m_answer, m_votes = weighted_vote(answers, [1.0] * len(answers))
        ranked = [i for i in range(len(texts)) if answers[i] is not None]
        best = max(ranked, key=lambda i: sol_scores[i]) if ranked else None
        b_answer = answers[best] if best is not None else None
        chosen = {"weighted": w_answer, "majority": m_answer, "best_of_n": b_answer}[cfg.vote]
        text = next((t for t, a in zip(texts, answers, strict=True) if a == chosen and a is not None), texts[0])
        if cfg.vote == "best_of_n" and best is not None:
            text = texts[best]
        trace = {
            "samples": texts, "answers": answers, "step_scores": step_scores, "solution_scores": sol_scores,
            "weighted": w_votes, "majority": {k: int(v) for k, v in m_votes.items()},
            "weighted_answer": w_answer, "majority_answer": m_answer, "best_of_n_answer": b_answer,
            "unrated_steps": getattr(prm, "unrated", 0),
        }
        return Solution(text=text, answer=chosen, trace=trace)
