r"""A scripted backend for tests and demos — never a measure of model quality.

Scripts (programmatic or from a spec string):

- a list of replies, used in order and cycled (``MockBackend(["a", "b"])``);
- a callable ``(request, call_index) -> reply`` (sync or async);
- regex rules ``[(pattern, reply), ...]`` tried in order against the last user or tool message (or the
  raw prompt), with a ``default`` reply; a text reply may use ``\\1``-style groups.

A reply is a string, or a tool call: a :class:`MockReply` or a mapping
``{"text": ..., "tool_calls": [{"name": ..., "arguments": {...}}]}`` (YAML/JSON scripts write the same
mapping). Tool calls get ids ``call_<call index>_<k>``; a tool-result message answering one is matched
by the rules like a user message, so a whole tool loop can be scripted. In a text reply ``{n_images}``
becomes the number of image parts in the request; the backend accepts images and counts them in
``images_seen`` (all calls) and ``image_counts`` (per call), so image loops (Visual Sketchpad) can be
tested. It does not enforce ``response_format`` (``structured_output`` is False), so the Model's schema
check and repair calls can be tested against it.

Spec strings: ``mock:echo`` (repeat the last user message), ``mock:text=<reply>``, ``mock:images``
(reply ``images: <n>``), ``mock:<file.yaml|file.json>`` (keys ``replies``, ``rules``, ``default``, and
the options below), ``mock:py=<module:attr>`` (a callable). Options follow ``?`` as ``k=v&k=v``:
``latency`` (seconds per call), ``fail_500``, ``fail_429``, ``timeout_rate``, ``malformed`` (probabilities per call),
``retry_after`` (seconds, sent with 429), ``hang`` (seconds an injected timeout hangs first; default 0), ``seed``,
``context_length``.

Failure injection is seeded and decided per call index, so a run is reproducible. Every request is
recorded in ``.requests``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import anyio
import yaml

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    TokenLogprob,
    ToolCall,
    Usage,
    content_images,
)
from llmlab.core.errors import BackendError, BackendTimeoutError, ConfigError, RateLimitError

MALFORMED = "\x00<<malformed output>>\x00"


@dataclass(frozen=True, slots=True)
class MockReply:
    """A scripted reply with tool calls: ``(name, arguments)`` pairs (arguments a dict or JSON text)."""

    text: str = ""
    tool_calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()

    @staticmethod
    def coerce(obj: Any) -> str | MockReply:
        """A string stays a string; a ``{"text", "tool_calls": [{"name", "arguments"}]}`` mapping becomes a MockReply.

        Raises:
            ConfigError: The mapping's tool calls are not ``{name, arguments}`` objects.
        """
        if isinstance(obj, (str, MockReply)):
            return obj
        if isinstance(obj, dict):
            calls = []
            for c in obj.get("tool_calls") or ():
                if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                    raise ConfigError(f"mock reply: a tool call needs a 'name' (and 'arguments'), got {c!r}")
                calls.append((c["name"], c.get("arguments", {})))
            return MockReply(str(obj.get("text", "")), tuple(calls))
        raise ConfigError(f"mock reply must be a string or a {{text, tool_calls}} mapping, got {obj!r}")


Reply = str | MockReply | dict[str, Any]
ReplyFn = Callable[[GenerateRequest, int], "Reply | Awaitable[Reply]"]


@dataclass(frozen=True, slots=True)
class FailurePlan:
    """Per-call failure probabilities (decided from a seeded RNG per call index)."""

    fail_500: float = 0.0
    fail_429: float = 0.0
    timeout_rate: float = 0.0
    malformed: float = 0.0
    retry_after: float = 0.05
    hang: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        probs = {"fail_500": self.fail_500, "fail_429": self.fail_429, "timeout_rate": self.timeout_rate,
                 "malformed": self.malformed}
        for name, p in probs.items():
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"mock option {name} is a probability per call: use 0..1, got {p}")
        if sum(probs.values()) > 1.0:
            raise ConfigError(f"mock failure probabilities add up to {sum(probs.values()):g} > 1; lower them")
        if self.retry_after < 0 or self.hang < 0:
            raise ConfigError("mock options retry_after and hang are seconds: use values >= 0")

    def decide(self, index: int) -> str | None:
        r = random.Random(self.seed * 1_000_003 + index).random()
        for kind, p in (("500", self.fail_500), ("429", self.fail_429), ("timeout", self.timeout_rate),
                        ("malformed", self.malformed)):
            if r < p:
                return kind
            r -= p
        return None


def last_user_text(request: GenerateRequest) -> str:
    """The last user (or tool-result) message's text, or the raw prompt."""
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    for m in reversed(request.messages):
        if m.role in ("user", "tool"):
            return m.text
    return request.messages[-1].text if request.messages else ""


def count_images(request: GenerateRequest) -> int:
    """Image parts in a request's messages."""
    if request.messages is None:
        return 0
    return sum(len(content_images(m.content)) for m in request.messages)


class MockBackend(Backend):
    """Scripted replies with optional latency and failure injection.

    Args:
        script: Replies (list, cycled), a callable ``(request, index) -> str``, or ``None`` with ``rules``.
        rules: ``(regex, reply)`` pairs tried in order on the last user message.
        default: Reply when no rule matches (``None``: echo the input).
        latency: Seconds to sleep per call.
        failures: A :class:`FailurePlan`.
        model: Name reported in responses.
        context_length: Reported in capabilities (for context-window checks).

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> b = MockBackend(["4"])
        >>> run_sync(b.generate(GenerateRequest.chat([{"role": "user", "content": "2+2?"}]))).text
        '4'
    """

    name: ClassVar[str] = "mock"

    def __init__(
        self,
        script: Sequence[Reply] | ReplyFn | None = None,
        *,
        rules: Sequence[tuple[str, Reply]] = (),
        default: Reply | None = None,
        latency: float = 0.0,
        failures: FailurePlan | None = None,
        model: str = "mock",
        context_length: int | None = None,
    ) -> None:
        self.model = model
        self.script: list[str | MockReply] | ReplyFn | None = (
            script if script is None or callable(script) else [MockReply.coerce(r) for r in script])
        self.rules = [(re.compile(p, re.S), MockReply.coerce(r)) for p, r in rules]
        self.default = MockReply.coerce(default) if default is not None else None
        self.latency = latency
        self.failures = failures if failures is not None else FailurePlan()
        self.capabilities = Capabilities(
            chat=True, raw_completion=True, native_n=True, logprobs=True, tokenize=True,
            context_length=context_length, images=True, tools=True, structured_output=False,
        )
        self.requests: list[GenerateRequest] = []
        self.images_seen = 0
        self.image_counts: list[int] = []
        self._count = 0
        self._lock = threading.Lock()

    # -- construction from a spec ------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: str) -> MockBackend:
        body, _, query = spec.partition("?")
        opts: dict[str, Any] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            opts[k] = v
        plan_keys = {"fail_500", "fail_429", "timeout_rate", "malformed", "retry_after", "hang", "seed"}
        try:
            plan_opts: dict[str, Any] = {
                k: (int(v) if k == "seed" else float(v)) for k, v in opts.items() if k in plan_keys
            }
            plan = FailurePlan(**plan_opts)
            latency = float(opts.pop("latency", 0.0))
            if latency < 0:
                raise ConfigError(f"mock spec '{spec}': latency is seconds per call, use a value >= 0")
            ctx = int(opts["context_length"]) if "context_length" in opts else None
        except ValueError as exc:
            raise ConfigError(f"mock spec '{spec}': bad option value ({exc})") from None
        unknown = set(opts) - plan_keys - {"context_length"}
        if unknown:
            raise ConfigError(
                f"mock spec '{spec}': unknown option(s) {sorted(unknown)}; allowed: latency, context_length, "
                + ", ".join(sorted(plan_keys))
            )
        common: dict[str, Any] = {"latency": latency, "failures": plan, "context_length": ctx}
        if body in ("", "echo"):
            return cls(None, model="mock-echo", **common)
        if body.startswith("text="):
            return cls([body[5:]], model="mock-text", **common)
        if body == "images":
            return cls(["images: {n_images}"], model="mock-images", **common)
        if body.startswith("py="):
            mod, _, attr = body[3:].partition(":")
            try:
                fn = getattr(importlib.import_module(mod), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"mock spec '{spec}': cannot load callable ({exc})") from None
            return cls(fn, model=f"mock-{attr}", **common)
        path = Path(body)
        if path.suffix in (".yaml", ".yml", ".json"):
            if not path.exists():
                raise ConfigError(f"mock script file not found: {path}")
            try:
                data = (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text())
            except (json.JSONDecodeError, yaml.YAMLError) as exc:
                raise ConfigError(f"mock script {path}: not valid {path.suffix[1:]} ({exc})") from None
            if not isinstance(data, dict):
                raise ConfigError(f"mock script {path}: expected a mapping with replies/rules/default")
            try:
                rules = [(r["pattern"], r["reply"]) for r in data.get("rules", [])]
            except (KeyError, TypeError):
                raise ConfigError(f"mock script {path}: each rule needs 'pattern' and 'reply'") from None
            return cls(data.get("replies"), rules=rules, default=data.get("default"), model=f"mock-{path.stem}",
                       **common)
        raise ConfigError(
            f"mock spec '{spec}' not understood: use mock:echo, mock:text=<reply>, mock:<file.yaml>, mock:py=<mod:fn>"
        )

    # -- generation --------------------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        return self._count

    async def _reply(self, request: GenerateRequest, index: int) -> str | MockReply:
        if callable(self.script):
            out = self.script(request, index)
            return MockReply.coerce(await out if inspect.isawaitable(out) else out)
        if self.script:
            return self.script[index % len(self.script)]
        text = last_user_text(request)
        for pattern, reply in self.rules:
            m = pattern.search(text)
            if m:
                return m.expand(reply) if isinstance(reply, str) else reply
        return self.default if self.default is not None else text

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        n_images = count_images(request)
        with self._lock:
            index = self._count
            self._count += 1
            self.requests.append(request)
            self.images_seen += n_images
            self.image_counts.append(n_images)
        if self.latency:
            await anyio.sleep(self.latency)
        failure = self.failures.decide(index)
        if failure == "500":
            raise BackendError("mock: injected HTTP 500", status=500, retryable=True)
        if failure == "429":
            raise RateLimitError("mock: injected HTTP 429", retry_after=self.failures.retry_after)
        if failure == "timeout":
            # Behind `llmlab serve`, hang longer than the client's timeout so the client's real timeout
            # path is exercised; in-process, hang=0 makes it an immediate timeout error.
            if self.failures.hang:
                await anyio.sleep(self.failures.hang)
            raise BackendTimeoutError("mock: injected timeout")
        texts = []
        calls: list[list[ToolCall]] = []
        for j in range(request.n):
            reply = await self._reply(request, index if request.n == 1 else index * 1000 + j)
            if isinstance(reply, MockReply):
                text = reply.text
                calls.append([
                    ToolCall(f"call_{index}_{k}" if request.n == 1 else f"call_{index}_{j}_{k}", name,
                             args if isinstance(args, str) else json.dumps(args))
                    for k, (name, args) in enumerate(reply.tool_calls)
                ])
            else:
                text = reply
                calls.append([])
            if "{n_images}" in text:
                text = text.replace("{n_images}", str(n_images))
            if failure == "malformed":
                text = MALFORMED
            if request.max_tokens is not None and request.max_tokens < len(text.split(" ")):
                text = " ".join(text.split(" ")[: request.max_tokens])
            texts.append(text)
        prompt_tokens = self.count_tokens(request)
        completion = sum(max(1, len(t.split())) for t in texts)
        logprobs = None
        if request.logprobs:
            logprobs = [[TokenLogprob(tok, -0.1 * (k + 1)) for k, tok in enumerate(t.split())] for t in texts]
        return GenerateResponse(
            texts=texts,
            finish_reasons=["tool_calls" if c else "stop" for c in calls],
            usage=Usage(prompt_tokens, completion),
            logprobs=logprobs,
            model=self.model,
            tool_calls=calls if any(calls) else None,
        )

    def count_tokens(self, request: GenerateRequest) -> int:
        """Whitespace tokens of the message contents (or the raw prompt): predictable for tests."""
        if request.prompt is not None:
            return max(1, len(request.prompt.split()))
        assert request.messages is not None
        return max(1, sum(len(m.text.split()) for m in request.messages))
