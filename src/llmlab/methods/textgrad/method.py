"""Protocol 1, solution optimization at test time (paper §3.2; official ``evaluation/solution_optimization.py``).

For one multiple-choice question: a zero-shot answer from the ``default`` model, then ``iterations`` times
(test-time loss → backward → TGD step) on the answer, with the constraint that its last line is
``Answer: $LETTER``; the final answer is the majority vote over the zero-shot answer and the iterates. That
is 3 calls per iteration (loss, feedback, update), as the paper counts.

Roles: ``default`` answers zero-shot; ``backward`` evaluates (the test-time loss) and gives feedback;
``optimizer`` rewrites the answer. Each falls back to ``default`` (the paper uses gpt-4o for all).

Deviations, each on purpose:

- The zero-shot call sends the task's own messages (e.g. MMLU-Redux's prompt); the official script wraps
  the question in simple-evals' template with a "You are ChatGPT..." system prompt.
- The vote uses the task's extractor and never lets "no answer" win unless no iterate has one; the official
  ``multimode`` counts ``None`` as a candidate. Ties go to the earliest answer (as ``multimode()[0]``).
- The letters in the constraint follow the question's number of choices (official: always ABCD).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import Field

from llmlab.backends.base import GenerateRequest
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Query, Roles, Solution
from llmlab.methods.base import Method
from llmlab.methods.textgrad.engine import Engine, call_log
from llmlab.methods.textgrad.loss import MultiChoiceTestTime
from llmlab.methods.textgrad.optimizer import TGD
from llmlab.methods.textgrad.prompts import MULTI_CHOICE_EVAL_INSTRUCTION, TextGradPrompts
from llmlab.methods.textgrad.variable import Variable

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ANSWER_CONSTRAINT = (
    "The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) "
    "where LETTER is one of {letters}."
)
SOLUTION_ROLE = "creative and precise solution and the prediction for the multiple choice question"


class TextGradConfig(LabConfig):
    """Options of test-time solution optimization.

    Args:
        iterations: Loss → backward → step rounds (paper: 3).
        temperature: Sampling temperature of every call (official engines: 0).
        max_tokens: Completion budget per call.
        evaluation_instruction: The test-time loss instruction.
        constraint: The TGD constraint; ``{letters}`` becomes the question's option letters.
        role_description: Role of the answer Variable.
        gradient_memory: TGD's feedback memory (0 = off, as the paper).
        max_tag_retries: Extra optimizer calls when a reply lacks the tags.
        prompts_file: YAML/JSON replacing prompt templates (e.g. the official wording).
    """

    iterations: int = Field(default=3, ge=0)
    temperature: float = Field(default=0.0, ge=0.0)
    max_tokens: int | None = Field(default=2000, ge=1)
    evaluation_instruction: str = MULTI_CHOICE_EVAL_INSTRUCTION
    constraint: str = ANSWER_CONSTRAINT
    role_description: str = SOLUTION_ROLE
    gradient_memory: int = Field(default=0, ge=0)
    max_tag_retries: int = Field(default=2, ge=0)
    prompts_file: str | None = None


def vote(answers: list[str | None]) -> tuple[str | None, dict[str, int]]:
    """Majority answer (earliest of the tied ones); ``None`` wins only when nothing was parsed.

    Example:
        >>> vote(["A", None, "B", "B"])
        ('B', {'A': 1, 'B': 2})
    """
    counts = dict(Counter(a for a in answers if a is not None))
    if not counts:
        return None, {}
    return max(counts, key=lambda a: counts[a]), counts


class TextGrad(Method):
    """Test-time solution optimization with textual gradients, then a majority vote.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.backends.model import Model
        >>> from llmlab.core.concurrency import run_sync
        >>> m = Model(MockBackend(rules=[("IMPROVED_VARIABLE", "<IMPROVED_VARIABLE>Answer: B</IMPROVED_VARIABLE>")],
        ...                       default="Answer: A"))
        >>> sol = run_sync(TextGrad({"iterations": 2}).solve(Query.from_text("Q? A. x B. y"), Roles(m)))
        >>> sol.trace["answers"], sol.answer
        (['A', 'B', 'B'], 'B')
    """

    name = "textgrad"
    Config = TextGradConfig
    ROLES = frozenset({"backward", "optimizer"})

    @property
    def cfg(self) -> TextGradConfig:
        assert isinstance(self.config, TextGradConfig)
        return self.config

    def _prompts(self) -> TextGradPrompts | None:
        return TextGradPrompts.from_file(self.cfg.prompts_file) if self.cfg.prompts_file is not None else None

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Zero-shot answer, ``iterations`` TGD steps on it, majority vote over all versions."""
        roles.check_known(self.ROLES, "textgrad")
        cfg = self.cfg
        prompts = self._prompts()
        extract = query.extract if query.extract is not None else _answer_letter
        n_choices = len(query.metadata.get("choices", ())) or 4
        letters = LETTERS[:n_choices]

        def engine(model: Any) -> Engine:
            return Engine(model, temperature=cfg.temperature, max_tokens=cfg.max_tokens)

        backward, optimizer_engine = engine(roles["backward"]), engine(roles["optimizer"])
        with call_log() as log:
            zero = await roles.default.generate(GenerateRequest(
                messages=query.messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                sample_index=int(query.metadata.get("sample_index", 0))))
            solution = Variable(zero.text, requires_grad=True, role_description=cfg.role_description)
            loss_fn = MultiChoiceTestTime(cfg.evaluation_instruction, engine=backward, prompts=prompts)
            optimizer = TGD([solution], engine=optimizer_engine, prompts=prompts,
                            constraints=[cfg.constraint.format(letters=letters)],
                            gradient_memory=cfg.gradient_memory, max_tag_retries=cfg.max_tag_retries)
            texts = [solution.value]
            losses: list[str] = []
            feedback: list[str] = []
            for _ in range(cfg.iterations):
                optimizer.zero_grad()
                loss = await loss_fn.acall(query.text, solution)
                await loss.abackward(backward)
                losses.append(loss.value)
                feedback.append(solution.get_gradient_text())
                await optimizer.astep()
                texts.append(solution.value)
        answers = [extract(t) for t in texts]
        winner, votes = vote(answers)
        chosen = answers.index(winner) if winner is not None else len(texts) - 1
        return Solution(
            text=texts[chosen],
            answer=winner,
            trace={
                "iterates": texts,
                "answers": answers,
                "votes": votes,
                "losses": losses,
                "feedback": feedback,
                "tag_failures": [f.replies for f in optimizer.failures],
                "calls": 1 + len(log.entries),
                "call_kinds": dict(Counter(log.kinds())),
            },
        )


def _answer_letter(text: str) -> str | None:
    import re

    m = re.findall(r"(?i)Answer\s*:\s*\$?\(?([A-Z])\b", text)
    return m[-1].upper() if m else None
