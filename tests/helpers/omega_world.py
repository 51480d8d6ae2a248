r"""A scripted policy for OmegaPRM tests: correctness of every prefix is known by construction.

The question's reference solution has ``M`` good steps, the last one ending in ``\boxed{42}``. From a
prefix of ``t`` good steps, completion ``j`` (of the k drawn together) is correct when ``j`` is in
``correct``; otherwise it continues with good steps up to its first error at absolute step
``first_error[j]`` (at least ``t + 1``), then one more bad step ending in ``\boxed{17}``. A prefix holding a
bad step only has wrong completions (MC = 0); a finished correct prefix only has correct ones.

The same pure function ``rollout(prefix_steps, j)`` drives our OmegaPRM (through a mock backend) and
openr's (through a stub language model) in ``tests/parity/test_omegaprm_openr.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

QUESTION = "What is six times seven?"
ANSWER = "42"
HEADER = "Continue the solution"


@dataclass
class World:
    """The policy's parameters (see the module docstring)."""

    M: int = 6
    correct: frozenset[int] = frozenset({0})
    first_error: dict[int, int] = field(default_factory=lambda: {1: 3, 2: 5, 3: 1})

    def good(self, i: int) -> str:
        if i == self.M:
            return f"Step {i}: so the answer is \\boxed{{{ANSWER}}}."
        return f"Step {i}: we work out part {i} of the product."

    def rollout(self, steps: Sequence[str], j: int) -> str:
        """Completion ``j`` of a prefix (``steps`` after the question)."""
        if any("oops" in s for s in steps):
            return f"Step x: still confused {j}.\n\nThe answer is \\boxed{{17}}."
        t = len(steps)
        if t >= self.M:
            return f"The answer is \\boxed{{{ANSWER}}}."
        if j in self.correct:
            return "\n\n".join(self.good(i) for i in range(t + 1, self.M + 1))
        e = max(t + 1, self.first_error.get(j % 1000, self.M))
        parts = [self.good(i) for i in range(t + 1, e)]
        parts.append(f"Step {e}: oops {j}, a slip here.")
        parts.append(f"Step {e + 1}: hence the answer is \\boxed{{17}}.")
        return "\n\n".join(parts)


def prefix_steps_of(user_text: str) -> list[str]:
    """The steps after the question in a completer prompt built by OmegaPRM's default template."""
    tail = user_text.split(QUESTION, 1)[1]
    return [p.strip() for p in tail.split("\n\n") if p.strip()]


def mock_script(world: World):  # type: ignore[no-untyped-def]
    """A MockBackend callable: the mock numbers the j-th of n samples ``index * 1000 + j``."""
    from llmlab.backends.mock import last_user_text

    def reply(request, index):  # type: ignore[no-untyped-def]
        j = index % 1000 if request.n > 1 else request.sample_index
        return world.rollout(prefix_steps_of(last_user_text(request)), j)

    return reply


def default_reply(request, index):  # type: ignore[no-untyped-def]
    """The default world as a module-level callable, for ``mock:py=tests.helpers.omega_world:default_reply``."""
    return mock_script(World())(request, index)
