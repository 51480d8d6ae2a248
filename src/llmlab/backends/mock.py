r"""A scripted backend for tests and demos — never a measure of model quality.

Scripts (programmatic or from a spec string):

- a list of replies, used in order and cycled (``MockBackend(["a", "b"])``);
- a callable ``(request, call_index) -> str`` (sync or async);
- regex rules ``[(pattern, reply), ...]`` tried in order against the last user message (or the raw
  prompt), with a ``default`` reply; ``reply`` may use ``\\1``-style groups.

Spec strings: ``mock:echo`` (repeat the last user message), ``mock:text=<reply>``,
``mock:<file.yaml|file.json>`` (keys ``replies``, ``rules``, ``default``, and the options below),
``mock:py=<module:attr>`` (a callable). Options follow ``?`` as ``k=v&k=v``: ``latency`` (seconds per
call), ``fail_500``, ``fail_429``, ``timeout_rate``, ``malformed`` (probabilities per call),
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
    Usage,
)
from llmlab.core.errors import BackendError, BackendTimeoutError, ConfigError, RateLimitError

ReplyFn = Callable[[GenerateRequest, int], "str | Awaitable[str]"]
MALFORMED = "\x00<<malformed output>>\x00"


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

    def decide(self, index: int) -> str | None:
        r = random.Random(self.seed * 1_000_003 + index).random()
        for kind, p in (("500", self.fail_500), ("429", self.fail_429), ("timeout", self.timeout_rate),
                        ("malformed", self.malformed)):
            if r < p:
                return kind
            r -= p
        return None


def last_user_text(request: GenerateRequest) -> str:
    """The last user message's content, or the raw prompt."""
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    for m in reversed(request.messages):
        if m.role == "user":
            return m.text
    return request.messages[-1].text if request.messages else ""


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
        script: Sequence[str] | ReplyFn | None = None,
        *,
        rules: Sequence[tuple[str, str]] = (),
        default: str | None = None,
        latency: float = 0.0,
        failures: FailurePlan | None = None,
        model: str = "mock",
        context_length: int | None = None,
    ) -> None:
        self.model = model
        self.script = list(script) if isinstance(script, (list, tuple)) else script
        self.rules = [(re.compile(p, re.S), r) for p, r in rules]
        self.default = default
        self.latency = latency
        self.failures = failures if failures is not None else FailurePlan()
        self.capabilities = Capabilities(
            chat=True, raw_completion=True, native_n=True, logprobs=True, tokenize=True,
            context_length=context_length,
        )
        self.requests: list[GenerateRequest] = []
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
            rules = [(r["pattern"], r["reply"]) for r in data.get("rules", [])]
            return cls(data.get("replies"), rules=rules, default=data.get("default"), model=f"mock-{path.stem}",
                       **common)
        raise ConfigError(
            f"mock spec '{spec}' not understood: use mock:echo, mock:text=<reply>, mock:<file.yaml>, mock:py=<mod:fn>"
        )

    # -- generation --------------------------------------------------------------------------------

    @property
    def call_count(self) -> int:
        return self._count

    async def _reply(self, request: GenerateRequest, index: int) -> str:
        if callable(self.script):
            out = self.script(request, index)
            return await out if inspect.isawaitable(out) else out
        if self.script:
            return self.script[index % len(self.script)]
        text = last_user_text(request)
        for pattern, reply in self.rules:
            m = pattern.search(text)
            if m:
                return m.expand(reply)
        return self.default if self.default is not None else text

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        with self._lock:
            index = self._count
            self._count += 1
            self.requests.append(request)
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
        for j in range(request.n):
            text = await self._reply(request, index if request.n == 1 else index * 1000 + j)
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
            finish_reasons=["stop"] * request.n,
            usage=Usage(prompt_tokens, completion),
            logprobs=logprobs,
            model=self.model,
        )

    def count_tokens(self, request: GenerateRequest) -> int:
        """Whitespace tokens of the message contents (or the raw prompt): predictable for tests."""
        if request.prompt is not None:
            return max(1, len(request.prompt.split()))
        assert request.messages is not None
        return max(1, sum(len(m.text.split()) for m in request.messages))
