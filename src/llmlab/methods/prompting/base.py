"""Composable prompting strategies: the registry, the context they run in, and spec-string composition.

A technique is one of three kinds:

- ``transform``: rewrites the messages, makes no call (role, RE2, zero-shot CoT inducers, few-shot, ...);
- ``solver``: produces an answer from the messages with one or more calls (direct, least-to-most,
  program-of-thought, ...); a pipeline has exactly one (``direct`` unless a spec names another);
- ``wrapper``: runs the inner pipeline one or more times and combines or criticises the results
  (self-consistency, self-refine, chain-of-verification, ...). Wrappers apply in the order written, each
  around everything before it.

Spec strings: ``"few_shot(k=5)+zero_shot_cot+self_consistency(n=5)"``; parameters are ``key=value`` with
YAML values, separated by commas outside brackets and quotes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml
from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.core.concurrency import gather
from llmlab.core.config import MAX_COUNT, LabConfig
from llmlab.core.contracts import Extractor, Query, Roles, Solution
from llmlab.core.errors import ConfigError
from llmlab.methods.base import Method

Kind = Literal["transform", "solver", "wrapper"]


@dataclass
class Result:
    """What a solver or wrapper returns: the final text, its answer, and a trace."""

    text: str
    answer: str | None
    trace: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    """What a technique sees: the roles, the original question, the extractor and a shared call log."""

    roles: Roles
    question: str
    extract: Extractor | None
    metadata: Mapping[str, Any]
    temperature: float | None
    sample_temperature: float
    max_tokens: int | None
    sample_index: int = 0
    sampling: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)

    def answer_of(self, text: str) -> str | None:
        return self.extract(text) if self.extract is not None else text.strip()

    def sample(self, i: int, n: int) -> Ctx:
        """The context of sample ``i`` of ``n`` (distinct sample indices, nested samplers stay distinct)."""
        return replace(self, sample_index=self.sample_index * n + i, sampling=True)

    async def call(self, messages: Sequence[Message], *, tag: str, sampled: bool = False,
                   role: str = "default") -> str:
        """One model call; ``sampled`` calls use the sampling temperature and this context's sample index."""
        model = self.roles.default if role == "default" else self.roles[role]
        req = GenerateRequest(
            messages=tuple(messages),
            temperature=self.sample_temperature if sampled or self.sampling else self.temperature,
            max_tokens=self.max_tokens,
            sample_index=self.sample_index,
        )
        entry = {"tag": tag, "sample": self.sample_index, "prompt": messages[-1].text}
        self.log.append(entry)
        text = (await model.generate(req)).text
        entry["reply"] = text
        return text


Transform = Callable[[list[Message], Ctx], list[Message]]
Solver = Callable[[list[Message], Ctx], Awaitable[Result]]
Inner = Callable[[Ctx], Awaitable[Result]]
Wrapper = Callable[[Inner, Ctx], Awaitable[Result]]


@dataclass(frozen=True)
class Technique:
    """A registered technique: name, family and paper, its kind, and a factory taking its parameters."""

    name: str
    family: str
    kind: Kind
    paper: str
    arxiv: str
    factory: Callable[..., Any]
    summary: str = ""


TECHNIQUES: dict[str, Technique] = {}


def technique(name: str, family: str, kind: Kind, paper: str, arxiv: str, summary: str = "") -> Callable[..., Any]:
    """Register ``factory(**params) -> transform | solver | wrapper`` under ``name``."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in TECHNIQUES:
            raise ConfigError(f"technique '{name}' registered twice")
        TECHNIQUES[name] = Technique(name, family, kind, paper, arxiv, factory, summary)
        return factory

    return deco


def last_user(messages: list[Message], fn: Callable[[str], str]) -> list[Message]:
    """The messages with the last user message's text mapped by ``fn`` (a pure transform helper)."""
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if out[i].role == "user":
            out[i] = Message("user", fn(out[i].text))
            return out
    raise ConfigError("a prompting transform needs a user message")


# -- spec strings ----------------------------------------------------------------------------------------


def _split_top(s: str, sep: str) -> list[str]:
    parts, depth, quote, cur = [], 0, "", ""
    for ch in s:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """``"a(k=1)+b"`` → ``[("a", {"k": 1}), ("b", {})]``; names are checked against the registry.

    Example:
        >>> parse_spec("few_shot(k=5, select=knn)+self_consistency(n=3)")
        [('few_shot', {'k': 5, 'select': 'knn'}), ('self_consistency', {'n': 3})]
    """
    _load_all()
    out = []
    for part in _split_top(spec, "+"):
        name, _, rest = part.partition("(")
        name = name.strip()
        if name not in TECHNIQUES:
            raise ConfigError(f"unknown prompting technique '{name}'. Available: {', '.join(sorted(TECHNIQUES))}")
        params: dict[str, Any] = {}
        if rest:
            if not rest.endswith(")"):
                raise ConfigError(f"technique '{part}': missing ')'")
            for kv in _split_top(rest[:-1], ","):
                key, eq, value = kv.partition("=")
                if not eq:
                    raise ConfigError(f"technique '{name}': parameter '{kv}' is not key=value")
                try:
                    params[key.strip()] = yaml.safe_load(value.strip())
                except yaml.YAMLError:
                    raise ConfigError(f"technique '{name}': cannot parse the value of '{key.strip()}' "
                                      f"({value.strip()!r}); quote strings with ':', '?' or ','") from None
        out.append((name, params))
    if not out:
        raise ConfigError("empty prompting technique spec")
    return out


@dataclass
class Pipeline:
    """Transforms, one solver and wrappers built from a spec."""

    transforms: list[Transform]
    solver: Solver
    wrappers: list[Wrapper]
    names: list[str]

    async def run(self, messages: list[Message], ctx: Ctx) -> Result:
        async def base(c: Ctx) -> Result:
            msgs = list(messages)
            for t in self.transforms:
                msgs = t(msgs, c)
            return await self.solver(msgs, c)

        inner: Inner = base
        for w in self.wrappers:
            inner = _bind(w, inner)
        return await inner(ctx)


def _bind(w: Wrapper, inner: Inner) -> Inner:
    async def run(c: Ctx) -> Result:
        return await w(inner, c)

    return run


def build(spec: str) -> Pipeline:
    """The pipeline of a spec string (see the module docstring)."""
    transforms: list[Transform] = []
    solver: Solver | None = None
    wrappers: list[Wrapper] = []
    names = []
    for name, params in parse_spec(spec):
        tech = TECHNIQUES[name]
        for key, value in params.items():  # the same cap as every config's counts (llmlab.core.config)
            if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_COUNT:
                raise ConfigError(f"technique '{name}': {key} must be between 0 and {MAX_COUNT}, got {value}")
        try:
            made = tech.factory(**params)
        except TypeError as exc:
            raise ConfigError(f"technique '{name}': {exc}") from None
        names.append(name)
        if tech.kind == "transform":
            if wrappers:
                raise ConfigError(f"transform '{name}' comes after a wrapper; write transforms first")
            transforms.append(made)
        elif tech.kind == "solver":
            if solver is not None:
                raise ConfigError(f"'{name}': a spec has at most one solver technique")
            solver = made
        else:
            wrappers.append(made)
    if solver is None:
        solver = TECHNIQUES["direct"].factory()
    return Pipeline(transforms, solver, wrappers, names)


def _load_all() -> None:
    import llmlab.methods.prompting.techniques  # noqa: F401 - registers the techniques


async def run_many(fns: Sequence[Callable[[], Awaitable[Any]]], limit: int | None = None) -> list[Any]:
    """Concurrent calls (``llmlab.core.concurrency.gather``)."""
    return await gather(fns, limit=limit)


class PromptingConfig(LabConfig):
    """Options of the ``prompting`` method.

    Args:
        technique: The spec string, e.g. ``"few_shot(k=5)+zero_shot_cot+self_consistency(n=5)"``.
        temperature: Temperature of single (greedy) calls.
        sample_temperature: Temperature of sampled calls (self-consistency and other ensembles).
        max_tokens: Completion budget per call.
    """

    technique: str = "zero_shot_cot"
    temperature: float | None = Field(default=0.0, ge=0.0)
    sample_temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int | None = Field(default=1024, ge=1)


class Prompting(Method):
    r"""The Prompt Report's techniques as one method: ``-p technique="zero_shot_cot+self_consistency(n=5)"``.

    Example:
        >>> from llmlab.backends.model import Model
        >>> from llmlab.core.concurrency import run_sync
        >>> sol = run_sync(Prompting({"technique": "re2"}).solve(Query.from_text("2+2?"), Roles(Model("mock:echo"))))
        >>> sol.text
        '2+2?\nRead the question again: 2+2?'
    """

    name = "prompting"
    Config = PromptingConfig

    def __init__(self, config: PromptingConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        assert isinstance(self.config, PromptingConfig)
        self.pipeline = build(self.config.technique)

    async def solve(self, query: Query, roles: Roles) -> Solution:
        cfg = self.config
        assert isinstance(cfg, PromptingConfig)
        ctx = Ctx(roles, query.text, query.extract, query.metadata, cfg.temperature, cfg.sample_temperature,
                  cfg.max_tokens, int(query.metadata.get("sample_index", 0)))
        res = await self.pipeline.run(list(query.messages), ctx)
        return Solution(text=res.text, answer=res.answer,
                        trace={"technique": self.pipeline.names, "calls": ctx.log, **res.trace})
