"""Self-Consistency: sample several reasoning paths, then take the majority final answer.

Paper: "Self-Consistency Improves Chain of Thought Reasoning in Language Models", Wang et al., 2022,
arXiv 2203.11171. Implements §2: sample k candidate outputs ``(r_i, a_i)`` from the model with temperature
sampling, parse each final answer ``a_i``, and return ``argmax_a Σ_i 1(a_i = a)`` (the "unweighted sum",
i.e. majority vote, the variant the paper uses for its results).

Each sample comes from a *sampler*: any registered method (``direct`` by default, one chat call). Each
sample carries its own ``sample_index`` (0..k-1) in ``Query.metadata``, so the samples are distinct
requests; they share no cache entry and local backends seed them apart. A query that is itself sample
``b`` of an outer sampler gets indices ``b*k .. b*k+k-1``, so nested samples stay distinct. The k samples
run concurrently (:func:`llmlab.core.concurrency.gather`), so wall time is about one sample's latency.

Deliberate deviations:

- Default ``k = 5``, chosen for cost. The paper samples 40 paths and reports means over 10 runs.
- Default ``temperature = 0.7`` (the paper's setting for PaLM-540B and GPT-3). Top-k truncation
  (k = 40, used for UL2/LaMDA/PaLM) is not applied, because OpenAI-compatible servers do not all
  support it.
- Tie-breaking is unspecified in the paper. Here the tied answer seen first (lowest sample index) wins.
  Samples with no parsable answer (``None``) never win unless every sample is ``None``.
- Without a task extractor (``Query.extract``), the answer is the last number in the text, else its
  last non-empty line. The paper parses task-specific answer formats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import Field

from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Extractor, Query, Roles, Solution
from llmlab.core.errors import ConfigError
from llmlab.grading.math_answers import canonical_number, last_number
from llmlab.methods.base import Method


class SelfConsistencyConfig(LabConfig):
    """Options of self-consistency.

    Args:
        k: Number of sampled reasoning paths.
        temperature: Sampling temperature, given to the sampler unless ``sampler_params`` sets one.
        max_tokens: Completion budget per sample, given to the sampler the same way.
        sampler: Name of the registered method that produces one sample (``direct``: one call).
        sampler_params: Config of the sampler (its ``Config`` keys).
        concurrency: Most samples in flight at once (``None``: all k; the Model's own limit still holds).
    """

    k: int = Field(default=5, ge=1)
    temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int | None = Field(default=1024, ge=1)
    sampler: str = "direct"
    sampler_params: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1)


def fallback_extract(text: str) -> str | None:
    r"""The answer of a text when the task gives no extractor: its last number, else its last line.

    Idempotent: applied to its own output it returns that output.

    Example:
        >>> fallback_extract("3 + 4 = 7.0 apples"), fallback_extract("Paris is the capital.\nParis")
        ('7', 'Paris')
    """
    value = last_number(text)
    if value is not None:
        return canonical_number(value)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def majority_vote(answers: Sequence[str | None]) -> tuple[str | None, dict[str, int]]:
    """The most frequent answer and the vote counts (in order of first appearance).

    A tie goes to the answer seen first. ``None`` (no parsable answer) never wins unless all are ``None``.

    Example:
        >>> majority_vote(["a", None, "b", "b", "a"])
        ('a', {'a': 2, 'b': 2})
    """
    votes = dict(Counter(a for a in answers if a is not None))  # a Counter keeps first-seen order
    if not votes:
        return None, {}
    winner = max(votes, key=lambda a: votes[a])  # max keeps the first of equal keys
    return winner, votes


class SelfConsistency(Method):
    """Sample k answers with a sampler method and return the majority answer.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> from llmlab.core.concurrency import run_sync
        >>> sc = SelfConsistency({"k": 3})
        >>> sol = run_sync(sc.solve(Query.from_text("2+2?"), Roles(Model(MockBackend(["4", "5", "4"])))))
        >>> sol.answer, sol.trace["votes"]
        ('4', {'4': 2, '5': 1})
    """

    name = "self_consistency"
    Config = SelfConsistencyConfig

    def __init__(self, config: SelfConsistencyConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.sampler = self._build_sampler()

    @property
    def cfg(self) -> SelfConsistencyConfig:
        assert isinstance(self.config, SelfConsistencyConfig)
        return self.config

    def _build_sampler(self) -> Method:
        from llmlab.core.registry import METHODS

        cfg = self.cfg
        cls = METHODS.get(cfg.sampler)
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise ConfigError(f"sampler '{cfg.sampler}' is not a method class")
        params = dict(cfg.sampler_params)
        fields = cls.Config.model_fields
        # Our sampling settings reach the sampler unless its own params say otherwise.
        for key, value in (("temperature", cfg.temperature), ("max_tokens", cfg.max_tokens)):
            if key in fields and key not in params:
                params[key] = value
        try:
            return cls(build_config(cls.Config, params))
        except ConfigError as exc:
            raise ConfigError(f"sampler_params for '{cfg.sampler}': {exc}") from None

    @staticmethod
    def _answer_of(solution: Solution, extract: Extractor) -> str | None:
        # The sampler's answer first (it may have extracted it), then the full text. The extractors are
        # idempotent, so re-extracting an already-extracted answer is harmless and canonicalises it.
        for candidate in (solution.answer, solution.text):
            if candidate is not None:
                answer = extract(candidate)
                if answer is not None:
                    return answer
        return None

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Draw k samples concurrently, extract their answers, and return the majority answer.

        Args:
            query: The question; ``query.extract`` (when set) turns a sample's text into an answer.
            roles: ``default`` is the model sampled.

        Returns:
            The winning answer; ``text`` is the first sample that gave it. The trace holds ``samples``,
            ``answers``, ``votes``, ``unparsed``, ``agreement`` (winner's votes / k) and ``calls``.
        """
        cfg = self.cfg
        extract: Extractor = query.extract if query.extract is not None else fallback_extract

        # Sample indices 0..k-1; when this query is itself sample `base` of an outer sampler (nested
        # self-consistency), base*k + i keeps every innermost sample distinct.
        base = int(query.metadata.get("sample_index", 0))

        def sample(i: int) -> Callable[[], Awaitable[Solution]]:
            meta = {**query.metadata, "sample_index": base * cfg.k + i}
            q = Query(query.messages, extract=query.extract, metadata=meta)
            return lambda: self.sampler.solve(q, roles)

        solutions: list[Solution] = await gather([sample(i) for i in range(cfg.k)], limit=cfg.concurrency)
        answers = [self._answer_of(s, extract) for s in solutions]
        winner, votes = majority_vote(answers)
        chosen = answers.index(winner) if winner is not None else 0
        calls = sum(int(s.trace.get("calls", 1)) for s in solutions)
        return Solution(
            text=solutions[chosen].text,
            answer=winner,
            trace={
                "sampler": cfg.sampler,
                "k": cfg.k,
                "samples": [s.text for s in solutions],
                "answers": answers,
                "votes": votes,
                "unparsed": sum(a is None for a in answers),
                "agreement": votes[winner] / cfg.k if winner is not None else 0.0,
                "calls": calls,
                "sample_traces": [s.trace for s in solutions],
            },
        )
