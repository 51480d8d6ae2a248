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

Role = Literal["system", "user", "assistant", "tool"]
# A content part in the OpenAI format: {"type": "text", "text": ...} or
# {"type": "image_url", "image_url": {"url": "data:image/png;base64,..." | "https://..."}}.
ContentPart = dict[str, Any]
Content = str | tuple[ContentPart, ...]


def text_part(text: str) -> ContentPart:
    """A text content part."""
    return {"type": "text", "text": text}


def image_part(image: bytes | str, mime: str = "image/png") -> ContentPart:
    """An image content part from PNG/JPEG bytes (sent inline as a data URL) or a URL/data URL string."""
    if isinstance(image, bytes):
        import base64

        image = f"data:{mime};base64,{base64.b64encode(image).decode()}"
    return {"type": "image_url", "image_url": {"url": image}}


def content_text(content: Content) -> str:
    """The text of a message's content (text parts joined by newlines; images left out)."""
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")


def content_images(content: Content) -> list[str]:
    """The image URLs (data URLs included) of a message's content."""
    if isinstance(content, str):
        return []
    return [str(p["image_url"]["url"]) for p in content if p.get("type") == "image_url"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call a tool: an id (echoed by the tool-result message), a name, JSON arguments."""

    id: str
    name: str
    arguments: str  # the JSON text the model wrote; parse with :meth:`parsed_arguments`

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict.

        Raises:
            ParseError: They are not a JSON object.
        """
        from llmlab.core.errors import ParseError

        try:
            value = json.loads(self.arguments) if self.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ParseError(f"tool call {self.name}: arguments are not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise ParseError(f"tool call {self.name}: arguments must be a JSON object")
        return value


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call: name, description and a JSON-schema of its parameters (OpenAI format)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: text or content parts (text and images), plus tool calls / a tool result.

    An assistant message may carry ``tool_calls``; a ``tool`` message answers one of them and names it
    with ``tool_call_id``.
    """

    role: Role
    content: Content
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """The message's text (image parts left out)."""
        return content_text(self.content)

    @staticmethod
    def coerce(obj: Message | dict[str, Any]) -> Message:
        if isinstance(obj, Message):
            return obj
        try:
            role, content = obj["role"], obj.get("content")
        except (KeyError, TypeError, AttributeError):
            raise ConfigError(f"a message needs 'role' and 'content', got {obj!r}") from None
        if role not in ("system", "user", "assistant", "tool"):
            raise ConfigError(f"message role must be system, user, assistant or tool, got {role!r}")
        if content is None:
            content = ""
        if isinstance(content, list | tuple):
            parts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
                    raise ConfigError(f"a content part must be a text or image_url part, got {part!r}")
                parts.append(dict(part))
            content = tuple(parts)
        elif not isinstance(content, str):
            raise ConfigError(f"message content must be a string or a list of parts, got {type(content).__name__}")
        calls = tuple(
            c if isinstance(c, ToolCall) else ToolCall(
                id=str(c.get("id", "")),
                name=str(c.get("function", c).get("name", "")),
                arguments=c.get("function", c).get("arguments", "{}")
                if isinstance(c.get("function", c).get("arguments", "{}"), str)
                else json.dumps(c.get("function", c).get("arguments")),
            )
            for c in obj.get("tool_calls") or ()
        )
        return Message(role=role, content=content, tool_calls=calls, tool_call_id=obj.get("tool_call_id"),
                       name=obj.get("name"))

    def to_openai(self) -> dict[str, Any]:
        """This message as an OpenAI chat-completions message dict."""
        d: dict[str, Any] = {"role": self.role,
                             "content": self.content if isinstance(self.content, str) else list(self.content)}
        if self.tool_calls:
            d["tool_calls"] = [{"id": c.id, "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments}} for c in self.tool_calls]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        return d


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
    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "none" | "required" | {"type": "function", ...}
    response_format: dict[str, Any] | None = None  # {"type": "json_schema", "json_schema": {...}} | json_object
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
    """The result of one request: ``n`` texts with their finish reasons, usage, optional logprobs.

    ``tool_calls[i]`` are the tool calls of choice ``i`` (``None`` when no choice called a tool).
    """

    texts: list[str]
    finish_reasons: list[str]
    usage: Usage = field(default_factory=Usage)
    logprobs: list[list[TokenLogprob]] | None = None
    model: str = ""
    latency_s: float = 0.0
    cached: bool = False
    tool_calls: list[list[ToolCall]] | None = None

    @property
    def calls(self) -> list[ToolCall]:
        """The tool calls of the first choice (empty when none)."""
        return self.tool_calls[0] if self.tool_calls else []

    def message(self, i: int = 0) -> Message:
        """Choice ``i`` as an assistant message (text and tool calls), to append to a conversation."""
        calls = tuple(self.tool_calls[i]) if self.tool_calls else ()
        return Message("assistant", self.texts[i], tool_calls=calls)

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
        tcs = d.pop("tool_calls", None)
        tool_calls = [[ToolCall(**c) for c in seq] for seq in tcs] if tcs is not None else None
        return GenerateResponse(usage=usage, logprobs=logprobs, tool_calls=tool_calls, **d)


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
    images: bool = False  # image content parts in messages
    tools: bool = False  # tool definitions and tool calls
    structured_output: bool = False  # the backend enforces response_format's JSON schema itself


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
        if request.tools and not caps.tools:
            raise UnsupportedFeatureError(f"backend '{self.name}' does not support tool calls")
        if not caps.images and request.messages is not None and any(
            content_images(m.content) for m in request.messages
        ):
            raise UnsupportedFeatureError(
                f"backend '{self.name}' ({self.model}) does not take image inputs; use a multimodal model "
                "through the openai backend"
            )

    async def prepare(self) -> None:  # noqa: B027 - optional hook, default is nothing to learn
        """Learn what the backend can do before a run (e.g. a server's context window); default: nothing.

        Called once per Model before an eval or a run. Raises BackendConnectionError when a server is
        unreachable, so a run stops at once with one line instead of failing item after item.
        """

    async def warm(self, connections: int) -> None:  # noqa: B027 - optional hook, default is nothing to open
        """Open up to ``connections`` keep-alive connections before a run (best effort; default: nothing).

        Called by :meth:`llmlab.backends.model.Model.prepare` with the Model's concurrency, so the first
        ``concurrency`` calls of a run do not each open a connection while the others wait to be sent.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default is nothing to close
        """Release connections, threads or models."""


def prompt_text(request: GenerateRequest) -> str:
    """The request's text as one string (for token estimates and hashing)."""
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    return "\n".join(f"{m.role}: {content_text(m.content)}" for m in request.messages)


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
