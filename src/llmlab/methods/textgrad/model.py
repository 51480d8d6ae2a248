"""``BlackboxLLM``: an LLM as a module whose only parameter is its system prompt."""

from __future__ import annotations

from llmlab.methods.textgrad.engine import EngineLike, resolve_engine, run_blocking
from llmlab.methods.textgrad.functions import LLMCall
from llmlab.methods.textgrad.loss import Module
from llmlab.methods.textgrad.prompts import TextGradPrompts
from llmlab.methods.textgrad.variable import Variable


class BlackboxLLM(Module):
    """``model(x)`` calls the LLM with the system prompt; ``model.parameters()`` is ``[system_prompt]``.

    Args:
        engine: The model (Model, spec string or Engine); default: the context's backward engine.
        system_prompt: A Variable (optimise it with ``requires_grad=True``) or a str (a fixed prompt).
        prompts: Backward prompt templates.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> sp = Variable("Be brief.", role_description="system prompt")
        >>> llm = BlackboxLLM(Model(MockBackend(["4"])), system_prompt=sp)
        >>> llm(Variable("2+2?", role_description="question", requires_grad=False)).value, llm.parameters() == [sp]
        ('4', True)
    """

    def __init__(self, engine: EngineLike | None = None, system_prompt: Variable | str | None = None,
                 prompts: TextGradPrompts | None = None) -> None:
        self.engine = resolve_engine(engine, "BlackboxLLM")
        if isinstance(system_prompt, str):
            system_prompt = Variable(system_prompt, requires_grad=False,
                                     role_description="system prompt for the language model")
        self.system_prompt = system_prompt
        self.llm_call = LLMCall(self.engine, system_prompt, prompts)

    def parameters(self) -> list[Variable]:
        return [self.system_prompt] if self.system_prompt is not None else []

    async def acall(self, x: Variable) -> Variable:
        return await self.llm_call.aforward(x)

    def forward(self, x: Variable) -> Variable:
        return run_blocking(self.acall(x))

    def __call__(self, x: Variable) -> Variable:
        return self.forward(x)
