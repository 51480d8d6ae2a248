"""Engines for TextGrad: an llmlab :class:`~llmlab.backends.model.Model` (or a spec string) behind one call.

``Engine.agenerate(prompt, system_prompt=..., kind=...)`` sends one chat request (a system message when a
system prompt is given, then the user prompt) through the Model stack, so limits, retries, the opt-in cache
and the run's call accounting all apply. There is no process-wide engine singleton: the backward engine is
a context variable, set for a block with ``with tg.backward_engine(model):`` (or for the current context
with :func:`set_backward_engine`, which the README-style notebooks use). Every call is also appended to the
current :class:`CallLog` (``with tg.call_log() as log:``), which tests, the parity check and the method's
trace read.

Sampling and the cache (official #107): the official engines cache on ``system_prompt + prompt`` alone, so
two identical prompts at temperature > 0 return one sample. Here each request carries its sampling
parameters, and at temperature > 0 the k-th identical (system, prompt) pair an engine sends carries
``sample_index = k``, so a cached run still draws distinct samples (and replays them in order on resume).

Other deviations, on purpose: a call without a system prompt sends no system message (the official engines
send "You are a helpful, creative, and smart assistant."; ``Engine(default_system_prompt=...)`` restores
it), and an engine passed explicitly is used even when a backward engine is set (the official
``backward(engine)`` raises when both are set).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.errors import ConfigError

T = TypeVar("T")


@dataclass
class CallEntry:
    """One engine call: what kind (forward, loss, backward, reduce, optimizer), the prompts, the reply."""

    kind: str
    system: str | None
    user: str
    reply: str
    model: str


@dataclass
class CallLog:
    """The engine calls made inside a ``with call_log():`` block, in completion order."""

    entries: list[CallEntry] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.entries]

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.entries)


_LOGS: contextvars.ContextVar[tuple[CallLog, ...]] = contextvars.ContextVar("textgrad_call_logs", default=())


@contextmanager
def call_log() -> Iterator[CallLog]:
    """Record every TextGrad engine call made in this context (nested logs all see each call)."""
    log = CallLog()
    token = _LOGS.set((*_LOGS.get(), log))
    try:
        yield log
    finally:
        _LOGS.reset(token)


class Engine:
    """A Model seen as a TextGrad engine: ``text = await engine.agenerate(prompt, system_prompt=...)``.

    Args:
        model: A :class:`Model` or a model spec string (``"mock:echo"``, ``"openai:gpt-4o@http://..."``).
        temperature: Sampling temperature of every call (the official engines use 0).
        max_tokens: Completion budget per call (the official engines use 2000).
        default_system_prompt: Sent when a call has no system prompt (``None``: no system message; the
            official engines send "You are a helpful, creative, and smart assistant.").

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> run_sync(Engine("mock:echo").agenerate("hi"))
        'hi'
    """

    def __init__(
        self,
        model: Model | str,
        *,
        temperature: float = 0.0,
        max_tokens: int | None = 2000,
        default_system_prompt: str | None = None,
    ) -> None:
        self.model = model if isinstance(model, Model) else Model(model)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.default_system_prompt = default_system_prompt
        self._seen: dict[tuple[str | None, str], int] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model.name

    def _sample_index(self, system: str | None, prompt: str) -> int:
        if self.temperature == 0:
            return 0
        with self._lock:
            k = self._seen.get((system, prompt), 0)
            self._seen[(system, prompt)] = k + 1
        return k

    def request(self, prompt: str, system_prompt: str | None = None, *, sample_index: int | None = None
                ) -> GenerateRequest:
        """The request :meth:`agenerate` sends (exposed so tests can check what the cache key holds)."""
        system = system_prompt if system_prompt is not None else self.default_system_prompt
        msgs = (Message("system", system),) if system is not None else ()
        idx = sample_index if sample_index is not None else self._sample_index(system, prompt)
        return GenerateRequest(messages=(*msgs, Message("user", prompt)), temperature=self.temperature,
                               max_tokens=self.max_tokens, sample_index=idx)

    async def agenerate(self, prompt: str, system_prompt: str | None = None, *, kind: str = "forward",
                        sample_index: int | None = None) -> str:
        """Send one call and return its text (recorded in the current :class:`CallLog`)."""
        request = self.request(prompt, system_prompt, sample_index=sample_index)
        text = (await self.model.generate(request)).text
        system = request.messages[0].text if request.messages and request.messages[0].role == "system" else None
        for log in _LOGS.get():
            log.entries.append(CallEntry(kind, system, prompt, text, self.name))
        return text

    def __call__(self, prompt: str, system_prompt: str | None = None) -> str:
        """Synchronous :meth:`agenerate` (for notebooks and scripts)."""
        return run_blocking(self.agenerate(prompt, system_prompt))

    def __repr__(self) -> str:
        return f"Engine({self.model!r}, temperature={self.temperature})"


EngineLike = Engine | Model | str


def as_engine(engine: EngineLike) -> Engine:
    """An :class:`Engine` from an Engine, a Model or a spec string."""
    if isinstance(engine, Engine):
        return engine
    if isinstance(engine, (Model, str)):
        return Engine(engine)
    raise ConfigError(
        f"an engine must be a Model, a model spec string or a textgrad Engine, got {type(engine).__name__}")


get_engine = as_engine  # textgrad's name: ``tg.get_engine("openai:gpt-4o@http://...")``

_BACKWARD: contextvars.ContextVar[Engine | None] = contextvars.ContextVar("textgrad_backward_engine", default=None)


@contextmanager
def backward_engine(engine: EngineLike) -> Iterator[Engine]:
    """Use ``engine`` as the backward (feedback) engine inside the block.

    Example:
        >>> with backward_engine("mock:echo") as e:
        ...     current_backward_engine() is e
        True
    """
    e = as_engine(engine)
    token = _BACKWARD.set(e)
    try:
        yield e
    finally:
        _BACKWARD.reset(token)


def set_backward_engine(engine: EngineLike, override: bool = False) -> Engine:
    """Set the backward engine for the current context (a context variable, not a process global).

    Raises:
        ConfigError: One is already set and ``override`` is False (as the official function).
    """
    if _BACKWARD.get() is not None and not override:
        raise ConfigError("a backward engine is already set; pass override=True to replace it")
    e = as_engine(engine)
    _BACKWARD.set(e)
    return e


def current_backward_engine() -> Engine | None:
    """The backward engine of the current context, if any."""
    return _BACKWARD.get()


def resolve_engine(engine: EngineLike | None, what: str) -> Engine:
    """``engine`` as an Engine, else the context's backward engine.

    Raises:
        ConfigError: Neither is available (``what`` names the caller).
    """
    if engine is not None:
        return as_engine(engine)
    current = _BACKWARD.get()
    if current is None:
        raise ConfigError(
            f"{what} needs an engine: pass engine=... or wrap the code in `with tg.backward_engine(model):`"
        )
    return current


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code, also when an event loop already runs (a notebook).

    With no loop running this is :func:`llmlab.core.concurrency.run_sync`; inside a running loop the
    coroutine runs to completion on a fresh loop in a helper thread (context variables carried over).
    """
    import asyncio

    from llmlab.core.concurrency import run_sync

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_sync(coro)
    result: list[Any] = []
    errors: list[BaseException] = []
    ctx = contextvars.copy_context()

    def fresh_loop() -> T:
        import sniffio

        sniffio.current_async_library_cvar.set(None)  # the copied context says "asyncio is running"
        return run_sync(coro)

    def target() -> None:
        try:
            result.append(ctx.run(fresh_loop))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]
