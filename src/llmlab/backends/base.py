"""The backend contract: ``async generate(GenerateRequest) -> GenerateResponse`` plus capabilities.

A backend only talks to a model. Retry, caching, concurrency limits and usage accounting are wrappers
around it (:mod:`llmlab.backends.model`), never inside it (inspect_ai ``ModelAPI`` vs ``Model``).

Spec strings pick a backend: ``openai:<model>@<base_url>[,<base_url>...]``, ``hf:<id or path>``,
``mock:<script>``. The part before the first ``:`` is looked up in the backend registry.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from llmlab.core.errors import ConfigError, UnsupportedFeatureError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    @staticmethod
    def coerce(obj: Message | dict[str, Any]) -> Message:
        if isinstance(obj, Message):
            return obj
        try:
            return Message(role=obj["role"], content=obj["content"])
        except (KeyError, TypeError):
            raise ConfigError(f"a message needs 'role' and 'content', got {obj!r}") from None


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """One generation request: chat ``messages`` or a raw ``prompt`` (exactly one), plus sampling.

    ``sample_index`` tells apart repeated identical requests that must give different samples
    (self-consistency, MoA multi-sample): it is part of the cache key and seeds local sampling.
    ``None`` sampling values mean "the backend's default"; ``0`` and ``0.0`` are real values.
    """

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    n: int = 1
    sample_index: int = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    timeout: float | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ConfigError("a request needs exactly one of 'messages' (chat) or 'prompt' (raw completion)")
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")

    @staticmethod
    def chat(messages: list[Message | dict[str, Any]] | tuple[Message, ...], **params: Any) -> GenerateRequest:
        """Build a chat request from messages (dicts or :class:`Message`)."""
        return GenerateRequest(messages=tuple(Message.coerce(m) for m in messages), **params)

    def key_payload(self) -> dict[str, Any]:
        """Everything that can change the output; ``timeout`` cannot and is left out."""
        d = asdict(self)
        d.pop("timeout")
        return d

    def with_(self, **changes: Any) -> GenerateRequest:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(changes)
        return GenerateRequest(**d)


@dataclass(slots=True)
class Usage:
    """Token usage as reported by the server (or counted locally by hf/mock)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class TokenLogprob:
    """One generated token with its log-probability and optional top alternatives."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class GenerateResponse:
    """The result of one request: ``n`` texts with their finish reasons, usage, optional logprobs."""

    texts: list[str]
    finish_reasons: list[str]
    usage: Usage = field(default_factory=Usage)
    logprobs: list[list[TokenLogprob]] | None = None
    model: str = ""
    latency_s: float = 0.0
    cached: bool = False

    @property
    def text(self) -> str:
        return self.texts[0]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(raw: str) -> GenerateResponse:
        d = json.loads(raw)
        usage = Usage(**d.pop("usage"))
        lps = d.pop("logprobs")
        logprobs = [[TokenLogprob(**t) for t in seq] for seq in lps] if lps is not None else None
        return GenerateResponse(usage=usage, logprobs=logprobs, **d)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do. Methods check these and raise UnsupportedFeatureError early."""

    chat: bool = True
    raw_completion: bool = False
    native_n: bool = False
    logprobs: bool = False
    tokenize: bool = False
    embeddings: bool = False
    context_length: int | None = None


class Backend(ABC):
    """A model behind one async call. Subclasses set ``name`` and build themselves from a spec."""

    name: ClassVar[str] = ""
    model: str = ""
    capabilities: Capabilities = Capabilities()

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: str) -> Backend:
        """Build from the part of the spec string after ``<name>:``."""

    @abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Run one request. Transient failures raise retryable :class:`BackendError` subclasses."""

    def count_tokens(self, request: GenerateRequest) -> int:
        """Prompt tokens of ``request``; a ~4 characters/token estimate unless the backend can tokenize."""
        return max(1, len(prompt_text(request)) // 4)

    def cache_identity(self) -> str:
        """What distinguishes this backend's outputs for the cache key: kind and model."""
        return f"{self.name}:{self.model}"

    def check(self, request: GenerateRequest) -> None:
        """Raise UnsupportedFeatureError for what this backend cannot do."""
        caps = self.capabilities
        if request.prompt is not None and not caps.raw_completion:
            raise UnsupportedFeatureError(f"backend '{self.name}' does not support raw completion")
        if request.logprobs and not caps.logprobs:
            raise UnsupportedFeatureError(f"backend '{self.name}' does not return logprobs")

    async def prepare(self) -> None:  # noqa: B027 - optional hook, default is nothing to learn
        """Learn what the backend can do before a run (e.g. a server's context window); default: nothing.

        Called once per Model before an eval or a run. Raises BackendConnectionError when a server is
        unreachable, so a run stops at once with one line instead of failing item after item.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default is nothing to close
        """Release connections, threads or models."""


def prompt_text(request: GenerateRequest) -> str:
    """The request's text as one string (for token estimates and hashing)."""
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages)


def request_hash(identity: str, request: GenerateRequest) -> str:
    """A complete cache key: backend + model + messages/prompt + every sampling parameter + sample index."""
    payload = json.dumps({"id": identity, **request.key_payload()}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def make_backend(spec: str) -> Backend:
    """Build a backend from ``kind:rest``.

    Raises:
        ConfigError: The spec has no ``kind:`` prefix or names an unknown backend.
    """
    from llmlab.core.registry import BACKENDS

    kind, sep, rest = spec.partition(":")
    if not sep or not kind:
        raise ConfigError(
            f"model spec '{spec}' needs a backend prefix: openai:<model>@<url>, hf:<id or path>, mock:<script>"
        )
    cls = BACKENDS.get(kind)
    backend: Backend = cls.from_spec(rest)
    return backend
