r"""TextGrad losses: LLM evaluations as graph nodes (paper §2, "textual loss").

- :class:`TextLoss`: the evaluation instruction is the system prompt, the variable the user content.
- :class:`MultiFieldEvaluation`: ``"{instruction}\n**role 1**: {v1}\n..."``; like the official one, it sets
  each input's role description to the given one.
- :class:`MultiFieldTokenParsedEvaluation`: the same, with the verdict parsed between tags.
- :class:`MultiChoiceTestTime`: the test-time loss of solution optimization.

A missing tag in :meth:`MultiFieldTokenParsedEvaluation.parse_output` raises :class:`ParseError` (one line;
the official code raises ``IndexError``).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmlab.core.errors import ParseError
from llmlab.methods.textgrad.engine import EngineLike, resolve_engine, run_blocking
from llmlab.methods.textgrad.functions import FormattedLLMCall, LLMCall
from llmlab.methods.textgrad.prompts import (
    MULTI_CHOICE_TEST_TIME_FORMAT,
    MULTI_CHOICE_TEST_TIME_SYSTEM_PROMPT,
    MULTI_FIELD_SYSTEM_PROMPT,
    TextGradPrompts,
)
from llmlab.methods.textgrad.variable import Variable


class Module:
    """A callable with ``parameters()`` (PyTorch-like): ``module(x)`` sync, ``await module.acall(x)`` async."""

    def parameters(self) -> list[Variable]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.reset_gradients()

    def named_parameters(self) -> list[tuple[str, Variable]]:
        return [(p.role_description, p) for p in self.parameters()]


class TextLoss(Module):
    """Evaluate a Variable with an instruction given as the system prompt.

    Args:
        eval_system_prompt: The evaluation instruction (a str becomes a requires_grad=False Variable).
        engine: The evaluating engine; default: the context's backward engine.
        prompts: Backward prompt templates.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> loss = TextLoss("Is this a good joke?", engine=Model(MockBackend(["Not funny."])))
        >>> loss(Variable("A joke.", role_description="joke")).value
        'Not funny.'
    """

    def __init__(self, eval_system_prompt: Variable | str, engine: EngineLike | None = None,
                 prompts: TextGradPrompts | None = None) -> None:
        if isinstance(eval_system_prompt, str):
            eval_system_prompt = Variable(eval_system_prompt, requires_grad=False,
                                          role_description="system prompt for the evaluation")
        self.eval_system_prompt = eval_system_prompt
        self.engine = resolve_engine(engine, "TextLoss")
        self.llm_call = LLMCall(self.engine, eval_system_prompt, prompts)
        self.llm_call.kind = "loss"

    async def acall(self, instance: Variable) -> Variable:
        return await self.llm_call.aforward(instance)

    def __call__(self, instance: Variable) -> Variable:
        return run_blocking(self.acall(instance))


class MultiFieldEvaluation(Module):
    """Compare several variables with one LLM call: instruction, then ``**role**: value`` per input."""

    def __init__(self, evaluation_instruction: Variable, role_descriptions: Sequence[str],
                 engine: EngineLike | None = None, system_prompt: Variable | None = None,
                 prompts: TextGradPrompts | None = None) -> None:
        self.evaluation_instruction = evaluation_instruction
        self.role_descriptions = list(role_descriptions)
        self.engine = resolve_engine(engine, type(self).__name__)
        self.system_prompt = system_prompt if system_prompt is not None else Variable(
            MULTI_FIELD_SYSTEM_PROMPT, requires_grad=False, role_description="system prompt for the evaluation")
        self.keys = [f"f{i}" for i in range(len(self.role_descriptions))]
        pairs = zip(self.role_descriptions, self.keys, strict=True)
        lines = ["{instruction}"] + [f"**{r}**: {{{k}}}" for r, k in pairs]
        self.format_string = "\n".join(lines)
        self.formatted_llm_call = FormattedLLMCall(self.engine, self.format_string, ["instruction", *self.keys],
                                                   self.system_prompt, prompts)
        self.formatted_llm_call.kind = "loss"

    async def acall(self, inputs: Sequence[Variable]) -> Variable:
        for role, var in zip(self.role_descriptions, inputs, strict=True):
            var.set_role_description(role)
        call_inputs = {"instruction": self.evaluation_instruction, **dict(zip(self.keys, inputs, strict=True))}
        return await self.formatted_llm_call.aforward(call_inputs, "evaluation of the a prediction")

    def __call__(self, inputs: Sequence[Variable]) -> Variable:
        return run_blocking(self.acall(inputs))


class MultiFieldTokenParsedEvaluation(MultiFieldEvaluation):
    """:class:`MultiFieldEvaluation` whose verdict is read between ``parse_tags``."""

    def __init__(self, evaluation_instruction: Variable, role_descriptions: Sequence[str],
                 engine: EngineLike | None = None, system_prompt: Variable | None = None,
                 parse_tags: Sequence[str] = ("<ACCURACY>", "</ACCURACY>"),
                 prompts: TextGradPrompts | None = None) -> None:
        super().__init__(evaluation_instruction, role_descriptions, engine, system_prompt, prompts)
        self.parse_tags = tuple(parse_tags)

    def parse_output(self, response: Variable) -> str:
        """The text between the tags.

        Raises:
            ParseError: A tag is missing.
        """
        got = between_tags(response.value, self.parse_tags[0], self.parse_tags[1])
        if got is None:
            raise ParseError(f"evaluation reply has no {self.parse_tags[0]}...{self.parse_tags[1]}: "
                             f"{response.value[:120]!r}")
        return got


def between_tags(text: str, start: str, end: str) -> str | None:
    """The stripped text between the first ``start`` and the next ``end``; ``None`` when either is missing.

    Example:
        >>> between_tags("x <A> 1 </A>", "<A>", "</A>"), between_tags("no tags", "<A>", "</A>")
        ('1', None)
    """
    i = text.find(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    if j < 0:
        return None
    return text[i + len(start):j].strip()


class MultiChoiceTestTime(Module):
    """The test-time loss of solution optimization: criticise a multiple-choice answer, do not solve it."""

    def __init__(self, evaluation_instruction: str, engine: EngineLike | None = None,
                 system_prompt: Variable | None = None, prompts: TextGradPrompts | None = None) -> None:
        self.engine = resolve_engine(engine, "MultiChoiceTestTime")
        self.tt_system_prompt = system_prompt if system_prompt is not None else Variable(
            MULTI_CHOICE_TEST_TIME_SYSTEM_PROMPT, requires_grad=False,
            role_description="system prompt for the test-time evaluation")
        self.format_string = MULTI_CHOICE_TEST_TIME_FORMAT.format(instruction=evaluation_instruction)
        self.formatted_llm_call = FormattedLLMCall(self.engine, self.format_string, ["prediction", "question"],
                                                   self.tt_system_prompt, prompts)
        self.formatted_llm_call.kind = "loss"

    async def acall(self, question: str, prediction: Variable) -> Variable:
        q = Variable(question, requires_grad=False, role_description="the multiple choice question")
        return await self.formatted_llm_call.aforward(
            {"prediction": prediction, "question": q}, f"evaluation of the {prediction.role_description}")

    def __call__(self, question: str, prediction: Variable) -> Variable:
        return run_blocking(self.acall(question, prediction))
