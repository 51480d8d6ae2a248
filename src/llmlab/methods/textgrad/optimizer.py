"""Textual Gradient Descent (paper §2, "TGD"): one optimizer call per parameter per step.

The update prompt has the official parts in order: role, the variable span, ``<CONTEXT>`` with each
feedback and the conversation it came from, the instruction, then the optional blocks (past feedback for
``gradient_memory``, past iterations for momentum, ``<CONSTRAINTS>``, ``<EXAMPLES>``), then the suffix asking
for the new value between the tags. The parameters of one step are updated at once.

Deviations from textgrad 0.1.8, each on purpose:

- A reply without both tags is retried up to ``max_tag_retries`` times (each retry is a distinct request,
  ``sample_index`` = attempt, so it is not a cache hit); after that the variable keeps its value and the
  failure is recorded in :attr:`TGD.failures`. The official step raises ``IndexError`` and loses the run.
  A start tag without an end tag counts as a failure (the official split keeps the truncated rest).
- ``gradient_memory`` really reaches the prompt: the official ``construct_tgd_prompt`` accepts
  ``do_gradient_memory`` and the memory text but renders neither, so the option does nothing there.
- :class:`TGDMomentum` returns its prompt (official #96/#157: ``_update_prompt`` returns ``None``) and a
  window of 0 is plain TGD (the official ``__init__`` tries to ``return`` a TGD and raises TypeError).
- The suffix names the configured tags (the official one always says ``<IMPROVED_VARIABLE>``).
- Feedback in ``<CONTEXT>`` comes in a fixed order (the official ``gradients`` is a ``set``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmlab.core.concurrency import gather
from llmlab.core.errors import ConfigError
from llmlab.methods.textgrad.engine import Engine, EngineLike, resolve_engine, run_blocking
from llmlab.methods.textgrad.loss import between_tags
from llmlab.methods.textgrad.prompts import DEFAULT_PROMPTS, TextGradPrompts
from llmlab.methods.textgrad.variable import Variable


def gradient_and_context_text(variable: Variable, prompts: TextGradPrompts = DEFAULT_PROMPTS) -> str:
    """Each feedback of ``variable``, wrapped with its conversation when it has one, one after another."""
    parts = []
    for g in variable.gradients:
        ctx = variable.gradients_context.get(g)
        if ctx is None:
            parts.append(g.value)
        else:
            parts.append(prompts.gradient.format(feedback=g.value, **ctx))
    return "\n".join(parts)


@dataclass
class TagFailure:
    """A step whose optimizer reply had no tags after every retry; the variable kept its value."""

    role_description: str
    replies: list[str]


class Optimizer(ABC):
    """Base: ``zero_grad()`` clears the parameters' feedback; ``step()`` / ``await astep()`` update them."""

    def __init__(self, parameters: Sequence[Variable]) -> None:
        params = list(parameters)
        if not params:
            raise ConfigError("an optimizer needs at least one parameter Variable")
        for p in params:
            if not isinstance(p, Variable):
                raise ConfigError(f"optimizer parameters must be Variables, got {type(p).__name__}")
        self.parameters = params

    def zero_grad(self) -> None:
        """Clear the feedback of every parameter (the contexts stay, as in the official code)."""
        for p in self.parameters:
            p.gradients = []

    @abstractmethod
    async def astep(self) -> None:
        """Update every parameter from its feedback."""

    def step(self) -> None:
        """Synchronous :meth:`astep`."""
        run_blocking(self.astep())


class TGD(Optimizer):
    """Textual gradient descent (``tg.TGD`` / ``tg.TextualGradientDescent``).

    Args:
        parameters: The Variables to improve.
        verbose: Print each new value.
        engine: The optimizer engine; default: the context's backward engine.
        constraints: Natural-language constraints, rendered as "Constraint i: ...".
        new_variable_tags: Start and end tag of the new value.
        optimizer_system_prompt: A system-prompt template with ``{new_variable_start_tag}`` /
            ``{new_variable_end_tag}`` (default: the prompts bundle's).
        in_context_examples: Examples rendered in ``<EXAMPLES>``.
        gradient_memory: Show the last k steps' feedback.
        prompts: The prompt templates.
        max_tag_retries: Extra calls when a reply lacks the tags.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> x = Variable("draft", role_description="answer")
        >>> opt = TGD([x], engine=Model(MockBackend(["<IMPROVED_VARIABLE>better</IMPROVED_VARIABLE>"])))
        >>> opt.step(); x.value
        'better'
    """

    def __init__(
        self,
        parameters: Sequence[Variable],
        verbose: int = 0,
        engine: EngineLike | None = None,
        constraints: Sequence[str] | None = None,
        new_variable_tags: Sequence[str] | None = None,
        optimizer_system_prompt: str | None = None,
        in_context_examples: Sequence[str] | None = None,
        gradient_memory: int = 0,
        prompts: TextGradPrompts | None = None,
        max_tag_retries: int = 2,
    ) -> None:
        super().__init__(parameters)
        if gradient_memory < 0 or max_tag_retries < 0:
            raise ConfigError("gradient_memory and max_tag_retries must be >= 0")
        self.prompts = prompts if prompts is not None else DEFAULT_PROMPTS
        default_tags = ["<IMPROVED_VARIABLE>", "</IMPROVED_VARIABLE>"]
        tags = list(new_variable_tags) if new_variable_tags is not None else default_tags
        if len(tags) != 2 or not all(tags):
            raise ConfigError(f"new_variable_tags must be [start, end], got {tags}")
        self.new_variable_tags = tags
        self.engine: Engine = resolve_engine(engine, type(self).__name__)
        self.verbose = verbose
        self.constraints = list(constraints) if constraints is not None else []
        template = optimizer_system_prompt if optimizer_system_prompt is not None else self.prompts.optimizer_system
        self.optimizer_system_prompt = template.format(new_variable_start_tag=tags[0], new_variable_end_tag=tags[1])
        self.in_context_examples = list(in_context_examples) if in_context_examples is not None else []
        self.gradient_memory = gradient_memory
        self.max_tag_retries = max_tag_retries
        self._memory: dict[int, list[str]] = {}
        self.failures: list[TagFailure] = []
        self.steps = 0

    @property
    def constraint_text(self) -> str:
        return "\n".join(f"Constraint {i + 1}: {c}" for i, c in enumerate(self.constraints))

    def gradient_memory_text(self, variable: Variable) -> str:
        if self.gradient_memory == 0:
            return ""
        past = self._memory.get(id(variable), [])[-self.gradient_memory:]
        return "\n".join(self.prompts.gradient_memory_item.format(i=i + 1, feedback=f) for i, f in enumerate(past))

    def _extra_blocks(self, variable: Variable, info: dict[str, Any]) -> str:
        return ""

    def update_prompt(self, variable: Variable) -> str:
        """The user prompt of ``variable``'s update call."""
        p = self.prompts
        info: dict[str, Any] = {
            "variable_desc": variable.role_description,
            "variable_value": variable.value,
            "variable_grad": gradient_and_context_text(variable, p),
            "variable_short": variable.get_short_value(),
            "constraint_text": self.constraint_text,
            "new_variable_start_tag": self.new_variable_tags[0],
            "new_variable_end_tag": self.new_variable_tags[1],
            "in_context_examples": "\n".join(self.in_context_examples),
            "gradient_memory": self.gradient_memory_text(variable),
        }
        prompt = p.tgd_prefix.format(**info)
        if info["gradient_memory"]:
            prompt += p.gradient_memory.format(**info)
        prompt += self._extra_blocks(variable, info)
        if self.constraints:
            prompt += p.constraints.format(**info)
        if self.in_context_examples:
            prompt += p.in_context_examples.format(**info)
        prompt += p.tgd_suffix.format(**info)
        return prompt

    def parse(self, reply: str) -> str | None:
        """The new value between the tags, or ``None`` when a tag is missing."""
        return between_tags(reply, self.new_variable_tags[0], self.new_variable_tags[1])

    async def _update(self, variable: Variable) -> None:
        prompt = self.update_prompt(variable)
        replies: list[str] = []
        new_value: str | None = None
        for attempt in range(self.max_tag_retries + 1):
            reply = await self.engine.agenerate(prompt, self.optimizer_system_prompt, kind="optimizer",
                                                sample_index=attempt if attempt else None)
            replies.append(reply)
            new_value = self.parse(reply)
            if new_value is not None:
                break
        if new_value is None:
            self.failures.append(TagFailure(variable.role_description, replies))
        else:
            self._before_update(variable)
            variable.set_value(new_value)
            if self.verbose:
                print(f"--- TGD: {variable.role_description} ---\n{variable.value}")
        if self.gradient_memory:
            self._memory.setdefault(id(variable), []).append(variable.get_gradient_text())

    def _before_update(self, variable: Variable) -> None:
        return None

    async def astep(self) -> None:
        """Update every parameter (concurrently), one optimizer call each (plus tag retries)."""
        thunks: list[Callable[[], Awaitable[None]]] = [lambda v=v: self._update(v) for v in self.parameters]  # type: ignore[misc]
        await gather(thunks)
        self.steps += 1


TextualGradientDescent = TGD


class TGDMomentum(TGD):
    """TGD that shows the last ``momentum_window`` values of the variable in ``<PAST_ITERATIONS>``.

    The official ``TextualGradientDescentwithMomentum`` builds this prompt but never returns it (#96, #157);
    this one uses it. ``momentum_window=0`` is plain TGD.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> x = Variable("v0", role_description="answer")
        >>> opt = TGDMomentum([x], engine=Model(MockBackend(["<IMPROVED_VARIABLE>v1</IMPROVED_VARIABLE>"])))
        >>> opt.step(); "<PAST_ITERATIONS>" in opt.update_prompt(x)
        True
    """

    def __init__(self, parameters: Sequence[Variable], momentum_window: int = 3, **kwargs: Any) -> None:
        super().__init__(parameters, **kwargs)
        if momentum_window < 0:
            raise ConfigError(f"momentum_window must be >= 0, got {momentum_window}")
        self.momentum_window = momentum_window
        self._past: dict[int, list[str]] = {}

    def _before_update(self, variable: Variable) -> None:
        if self.momentum_window == 0:
            return
        past = self._past.setdefault(id(variable), [])
        past.append(variable.value)
        del past[: max(0, len(past) - self.momentum_window)]

    def _extra_blocks(self, variable: Variable, info: dict[str, Any]) -> str:
        past = self._past.get(id(variable), [])
        if not past:
            return ""
        values = "".join(self.prompts.momentum_item.format(variable_desc=variable.role_description, i=i + 1, value=v)
                         for i, v in enumerate(past))
        return self.prompts.momentum.format(past_values=values, **info)


TextualGradientDescentwithMomentum = TGDMomentum
