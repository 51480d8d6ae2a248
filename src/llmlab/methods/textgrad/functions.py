r"""TextGrad ops: LLMCall, FormattedLLMCall, Sum (``tg.sum``), Aggregate, StringBasedFunction.

Each forward records a ``grad_fn``; each backward adds feedback to the inputs.

LLMCall backward (paper §2, "backpropagation through an LLM call"): one backward-engine call per input that
requires grad. When the output has no feedback yet (it is the loss) the *base* prompt asks for criticism
given the evaluation; otherwise the *chain* prompt passes the output's feedback on. The calls for the inputs
of one node run at once (``concurrent=True``).

Deviations from textgrad 0.1.8, each on purpose:

- ``Sum`` gives each input the combined feedback **once**. The official ``_backward_idempotent`` adds two
  identical feedback Variables to every input, so the optimizer sees the feedback twice; and when the sum
  itself has no feedback (``tg.sum(losses).backward()``), it adds two empty strings whose joined text is
  ``"\n"``, which is not ``""``, so the next LLM backward takes the *chain* prompt with empty feedback. Here
  a sum without feedback passes nothing on: its inputs are then roots and take the base prompt.
- ``Aggregate`` gives the combined feedback to **every** input (the official loop is mis-indented and only
  the last input receives it), and marks them with its reduce group even when it has no feedback itself.
  Only groups of two or more gradients are reduced (a single one needs no summary) and feedback outside any
  group is kept (the official reduce drops it).
- Roles of a sum are joined in first-seen order (the official code joins a ``set``: the order changes
  between runs).
- ``StringBasedFunction`` accepts an ``async`` function too (a unit-test runner in the sandbox).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from llmlab.core.concurrency import gather
from llmlab.core.errors import ConfigError
from llmlab.methods.textgrad.engine import Engine, EngineLike, resolve_engine, run_blocking
from llmlab.methods.textgrad.prompts import (
    DEFAULT_PROMPTS,
    SYSTEM_PROMPT_DEFAULT_ROLE,
    VARIABLE_OUTPUT_DEFAULT_ROLE,
    TextGradPrompts,
)
from llmlab.methods.textgrad.variable import BackwardContext, ReduceGroup, Variable, feedback_variable


async def _run_all(thunks: Sequence[Callable[[], Awaitable[None]]], concurrent: bool) -> None:
    if concurrent:
        await gather(list(thunks))
    else:
        for t in thunks:
            await t()


def _feedback_call(engine: Engine, system: str, text: str, conversation: str, variable: Variable,
                   response: Variable, key: tuple[int, int]) -> Callable[[], Awaitable[None]]:
    """The thunk of one backward call: ask for feedback on ``variable`` and add it as its gradient."""

    async def run() -> None:
        feedback = await engine.agenerate(text, system, kind="backward")
        g = feedback_variable(feedback, variable, key, response._reduce_meta)
        variable.add_gradient(g, {"context": conversation, "response_desc": response.role_description,
                                  "variable_desc": variable.role_description})
        _extend_meta(variable, response._reduce_meta)

    return run


class Function(ABC):
    """Base of the ops: ``op(...)`` is the synchronous forward, ``await op.aforward(...)`` the async one."""

    @abstractmethod
    async def aforward(self, *args: Any, **kwargs: Any) -> Variable:
        """The op's forward pass."""

    def forward(self, *args: Any, **kwargs: Any) -> Variable:
        return run_blocking(self.aforward(*args, **kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Variable:
        return self.forward(*args, **kwargs)


class LLMCall(Function):
    """One LLM call as a graph node: ``response = engine(input, system_prompt)``.

    Args:
        engine: The engine (a Model, spec string or Engine); default: the context's backward engine.
        system_prompt: An optional system-prompt Variable (a predecessor of the response).
        prompts: The backward prompt templates.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> call = LLMCall(Model(MockBackend(["Paris"])))
        >>> call(Variable("Capital of France?", role_description="question", requires_grad=False)).value
        'Paris'
    """

    kind = "forward"

    def __init__(self, engine: EngineLike | None = None, system_prompt: Variable | None = None,
                 prompts: TextGradPrompts | None = None) -> None:
        self.engine = resolve_engine(engine, "LLMCall")
        self.system_prompt = system_prompt
        self.prompts = prompts if prompts is not None else DEFAULT_PROMPTS
        if system_prompt is not None and not system_prompt.role_description:
            system_prompt.set_role_description(SYSTEM_PROMPT_DEFAULT_ROLE)

    async def _call(self, prompt_text: str, inputs: list[Variable], response_role_description: str) -> Variable:
        system = self.system_prompt.value if self.system_prompt is not None else None
        text = await self.engine.agenerate(prompt_text, system, kind=self.kind)
        preds = ([self.system_prompt] if self.system_prompt is not None else []) + inputs
        response = Variable(text, predecessors=preds, role_description=response_role_description)

        async def grad_fn(engine: Engine, order: int, concurrent: bool) -> None:
            await self.backward(response, prompt_text, system, engine, order, concurrent)

        response.set_grad_fn(BackwardContext("LLMCall.backward", grad_fn))
        return response

    async def aforward(self, input_variable: Variable,
                       response_role_description: str = VARIABLE_OUTPUT_DEFAULT_ROLE) -> Variable:
        """Call the LLM on ``input_variable``; the response's predecessors are [system prompt, input]."""
        return await self._call(input_variable.value, [input_variable], response_role_description)

    async def backward(self, response: Variable, prompt: str, system_prompt: str | None, engine: Engine,
                       order: int, concurrent: bool) -> None:
        """One backward-engine call per predecessor that requires grad (base or chain prompt)."""
        p = self.prompts
        chain = bool(response.gradients)
        targets = [v for v in response.predecessors if v.requires_grad]

        def one(j: int, variable: Variable) -> Callable[[], Awaitable[None]]:
            info = {
                "response_desc": response.role_description,
                "response_value": response.value,
                "response_gradient": response.get_gradient_text(),
                "prompt": prompt,
                "system_prompt": system_prompt,
                "variable_desc": variable.role_description,
                "variable_short": variable.get_short_value(),
            }
            conversation = p.conversation.format(**info)
            if chain:
                text = (p.conversation_start_chain.format(conversation=conversation, **info)
                        + p.objective_chain.format(**info))
            else:
                text = (p.conversation_start_base.format(conversation=conversation, **info)
                        + p.objective_base.format(**info))
            text += p.evaluate_variable.format(**info)

            return _feedback_call(engine, p.backward_system, text, conversation, variable, response, (order, j))

        await _run_all([one(j, v) for j, v in enumerate(targets)], concurrent)


class FormattedLLMCall(LLMCall):
    r"""An LLM call whose prompt is ``format_string`` filled with named input Variables.

    Args:
        engine: The engine.
        format_string: A ``str.format`` template, e.g. ``"{question}\nAnswer: {prediction}"``.
        fields: The field names the forward pass must receive (a mapping, as the official API; values unused).
        system_prompt: An optional system-prompt Variable.
        prompts: The backward prompt templates.
    """

    def __init__(self, engine: EngineLike | None, format_string: str, fields: Mapping[str, Any] | Sequence[str],
                 system_prompt: Variable | None = None, prompts: TextGradPrompts | None = None) -> None:
        super().__init__(engine, system_prompt, prompts)
        self.format_string = format_string
        self.fields = list(fields)

    async def aforward(self, inputs: Mapping[str, Variable],  # type: ignore[override]
                       response_role_description: str = VARIABLE_OUTPUT_DEFAULT_ROLE) -> Variable:
        """Fill the template with the inputs' values and call the LLM (inputs become predecessors)."""
        if set(inputs) != set(self.fields):
            raise ConfigError(f"FormattedLLMCall expects fields {sorted(self.fields)}, got {sorted(inputs)}")
        text = self.format_string.format(**{k: v.value for k, v in inputs.items()})
        return await self._call(text, list(inputs.values()), response_role_description)


def _extend_meta(variable: Variable, meta: list[ReduceGroup]) -> None:
    for m in meta:
        if all(m is not x for x in variable._reduce_meta):
            variable._reduce_meta.append(m)


def _roles(variables: Sequence[Variable]) -> str:
    seen: list[str] = []
    for v in variables:
        if v.role_description not in seen:
            seen.append(v.role_description)
    return ", ".join(seen)


class Sum(Function):
    """Concatenate variables (one per line); backward gives each input the combined feedback once."""

    def __init__(self, prompts: TextGradPrompts | None = None) -> None:
        self.prompts = prompts if prompts is not None else DEFAULT_PROMPTS

    def forward(self, variables: Sequence[Variable]) -> Variable:
        """No LLM call: the sum is built synchronously."""
        if not variables:
            raise ConfigError("tg.sum needs at least one Variable")
        total = Variable("\n".join(v.value for v in variables), predecessors=variables,
                         requires_grad=any(v.requires_grad for v in variables),
                         role_description=f"a combination of the following: {_roles(variables)}")

        async def grad_fn(engine: Engine, order: int, concurrent: bool) -> None:
            self.backward(total, order)

        total.set_grad_fn(BackwardContext("Sum.backward", grad_fn))
        return total

    async def aforward(self, variables: Sequence[Variable]) -> Variable:
        return self.forward(variables)

    def backward(self, summation: Variable, order: int) -> None:
        if not summation.gradients:
            for v in summation.predecessors:
                _extend_meta(v, summation._reduce_meta)
            return
        feedback = summation.get_gradient_text()
        for j, v in enumerate(x for x in summation.predecessors if x.requires_grad):
            text = self.prompts.sum_feedback.format(variable_desc=v.role_description, feedback=feedback)
            v.add_gradient(feedback_variable(text, v, (order, j), summation._reduce_meta), None)
            _extend_meta(v, summation._reduce_meta)


def sum(variables: Sequence[Variable]) -> Variable:
    """``tg.sum(losses)``: the concatenation of ``variables`` (see :class:`Sum`)."""
    return Sum().forward(variables)


class Aggregate(Function):
    """Like :class:`Sum`, but feedback that meets again downstream is summarised by one reduce call.

    Example: aggregating a batch's losses gives the shared system prompt one summarised gradient instead
    of B separate ones.
    """

    def __init__(self, prompts: TextGradPrompts | None = None) -> None:
        self.prompts = prompts if prompts is not None else DEFAULT_PROMPTS

    def forward(self, variables: Sequence[Variable]) -> Variable:
        if not variables:
            raise ConfigError("Aggregate needs at least one Variable")
        p = self.prompts

        async def reduce(gradients: list[Variable], engine: Engine) -> Variable:
            text = "\n".join(p.reduce_item.format(feedback=g.value) for g in gradients)
            reduced = await engine.agenerate(text, p.reduce_system, kind="reduce")
            return Variable(reduced, requires_grad=False, role_description=_roles(gradients))

        group = ReduceGroup(f"aggregate-{id(variables)}", reduce)
        agg = Variable("\n".join(v.value for v in variables), predecessors=variables,
                       requires_grad=any(v.requires_grad for v in variables),
                       role_description=f"a combination of the following variables: {_roles(variables)}.")
        agg._reduce_meta = [group]

        async def grad_fn(engine: Engine, order: int, concurrent: bool) -> None:
            feedback = agg.get_gradient_text()
            for j, v in enumerate(x for x in agg.predecessors if x.requires_grad):
                if feedback:
                    text = p.sum_feedback.format(variable_desc=v.role_description, feedback=feedback)
                    v.add_gradient(feedback_variable(text, v, (order, j), agg._reduce_meta), None)
                _extend_meta(v, agg._reduce_meta)

        agg.set_grad_fn(BackwardContext("Aggregate.backward", grad_fn))
        return agg

    async def aforward(self, variables: Sequence[Variable]) -> Variable:
        return self.forward(variables)


class StringBasedFunction(Function):
    """A Python function as a node (exact match, a unit-test runner); its backward asks the engine why.

    Args:
        fn: Called as ``fn(**inputs)`` with the input Variables; returns text (or a number); may be async.
        function_purpose: What the function does (plays the role description's part in the prompts).
        prompts: The backward prompt templates.

    Example:
        >>> eq = StringBasedFunction(lambda prediction, answer: int(prediction.value == answer.value), "exact match")
        >>> a = Variable("4", role_description="answer", requires_grad=False)
        >>> eq(inputs={"prediction": Variable("4", role_description="prediction"), "answer": a}).value
        '1'
    """

    def __init__(self, fn: Callable[..., Any], function_purpose: str, prompts: TextGradPrompts | None = None) -> None:
        self.fn = fn
        self.function_purpose = function_purpose
        self.prompts = prompts if prompts is not None else DEFAULT_PROMPTS

    async def aforward(self, inputs: Mapping[str, Variable],
                       response_role_description: str | None = None) -> Variable:
        """Run the function; its output Variable has the inputs as predecessors."""
        out = self.fn(**inputs)
        if inspect.isawaitable(out):
            out = await out
        role = (response_role_description if response_role_description is not None
                else f"output of the string-based function with purpose: {self.function_purpose}")
        response = Variable(out if isinstance(out, (str, int, float)) and not isinstance(out, bool) else str(out),
                            predecessors=list(inputs.values()), role_description=role)
        saved = dict(inputs)

        async def grad_fn(engine: Engine, order: int, concurrent: bool) -> None:
            await self.backward(response, saved, engine, order, concurrent)

        response.set_grad_fn(BackwardContext("StringBasedFunction.backward", grad_fn))
        return response

    async def backward(self, response: Variable, inputs: Mapping[str, Variable], engine: Engine, order: int,
                       concurrent: bool) -> None:
        p = self.prompts
        chain = bool(response.get_gradient_text().strip())
        inputs_string = "\n\n".join(
            p.string_fn_input.format(name=k.replace("_", " ").capitalize(), role=v.role_description,
                                     value=v.get_short_value())
            for k, v in inputs.items()
        )
        targets = [v for v in response.predecessors if v.requires_grad]

        def one(j: int, variable: Variable) -> Callable[[], Awaitable[None]]:
            info = {
                "response_desc": response.role_description,
                "response_value": response.value,
                "response_gradient": response.get_gradient_text(),
                "function_purpose": self.function_purpose,
                "inputs_string": inputs_string,
                "variable_desc": variable.role_description,
                "variable_short": variable.get_short_value(),
            }
            conversation = p.string_fn_conversation.format(**info)
            if chain:
                text = (p.string_fn_start_chain.format(conversation=conversation, **info)
                        + p.string_fn_objective_chain.format(**info))
            else:
                text = (p.string_fn_start_base.format(conversation=conversation, **info)
                        + p.objective_base.format(**info))
            text += p.evaluate_variable.format(**info)

            return _feedback_call(engine, p.backward_system, text, conversation, variable, response, (order, j))

        await _run_all([one(j, v) for j, v in enumerate(targets)], concurrent)
