"""A scripted, order-independent engine for the TextGrad tests: the reply depends only on the request."""

from __future__ import annotations

import hashlib

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.methods.textgrad.prompts import BACKWARD_SYSTEM_PROMPT, REDUCE_MEAN_SYSTEM_PROMPT


def system_of(request: GenerateRequest) -> str | None:
    assert request.messages is not None
    return request.messages[0].text if request.messages[0].role == "system" else None


def user_of(request: GenerateRequest) -> str:
    assert request.messages is not None
    return request.messages[-1].text


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def reply(request: GenerateRequest, _index: int = 0) -> str:
    """Feedback/forward replies are a hash of the prompt; updates wrap one in the tags."""
    system, user = system_of(request), user_of(request)
    if system == BACKWARD_SYSTEM_PROMPT:
        return f"feedback-{digest(user)}"
    if system == REDUCE_MEAN_SYSTEM_PROMPT:
        return f"reduced-{digest(user)}"
    if system is not None and "IMPROVED_VARIABLE" in system:
        return f"<IMPROVED_VARIABLE>improved-{digest(user)}</IMPROVED_VARIABLE>"
    return f"out-{digest((system or '') + '|' + user)}"


def scripted(latency: float = 0.0) -> tuple[Model, MockBackend]:
    backend = MockBackend(reply, latency=latency)
    return Model(backend, concurrency=64), backend


def kinds(backend: MockBackend) -> list[str]:
    out = []
    for r in backend.requests:
        s = system_of(r)
        if s == BACKWARD_SYSTEM_PROMPT:
            out.append("backward")
        elif s is not None and "IMPROVED_VARIABLE" in s:
            out.append("optimizer")
        elif s == REDUCE_MEAN_SYSTEM_PROMPT:
            out.append("reduce")
        else:
            out.append("forward")
    return out


def reply_mc(request: GenerateRequest, _index: int = 0) -> str:
    """Multiple choice: zero-shot says A, the loss criticises, every update says B."""
    system, user = system_of(request), user_of(request)
    if system == BACKWARD_SYSTEM_PROMPT:
        return "The reasoning skips a step; reconsider option B."
    if system is not None and "IMPROVED_VARIABLE" in system:
        return "<IMPROVED_VARIABLE>Reconsidered.\nAnswer: B</IMPROVED_VARIABLE>"
    if system is not None and "evaluator" in system:
        return "The answer A looks wrong."
    return f"I think it is A.\nAnswer: A ({digest(user)})"
