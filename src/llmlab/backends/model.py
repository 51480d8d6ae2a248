"""The Model: a backend wrapped, outside-in, by ledger → limiter → retry → cache.

- **Ledger**: server-reported tokens per call, cost from a user price table, a budget with
  ``on_budget="warn"|"stop"``.
- **Limiter**: at most ``concurrency`` calls in flight (an anyio Semaphore on its fast path).
- **Retry**: 429, 5xx, timeouts and connection errors; exponential backoff with full jitter, and a
  server's ``Retry-After`` is honoured (never waited less than).
- **Cache**: opt-in, complete keys (:mod:`llmlab.backends.cache`); tools, tool choice and
  ``response_format`` are fields of the request, so they are part of the key.
- **Structured output**: a request with ``response_format`` (``json_schema`` or ``json_object``) sent to a
  backend whose ``capabilities.structured_output`` is False has each reply checked (JSON, then the schema
  with ``jsonschema``); a reply that fails is asked again, up to ``schema_retries`` times, with the
  reply and the validation error appended to the conversation, then :class:`ParseError` is raised. A
  reply wrapped in a Markdown code fence that holds valid JSON is accepted and unwrapped. A backend that
  enforces the schema itself is trusted (no check, no extra call).

Every call is also reported to the current :class:`CallRecorder` (a context variable), which is how the
run store attributes calls, tokens, cost and cache hits to the item that made them, even when items run
concurrently.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    Message,
    make_backend,
    request_hash,
)
from llmlab.backends.cache import ResponseCache
from llmlab.core.errors import BackendError, BudgetExceededError, ConfigError, MissingExtraError, ParseError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CallRecord:
    """One call as the ledger saw it, with the request sent and the response received.

    ``request``/``response`` are the objects themselves (no copy, no serialisation on the hot path); the
    run store turns them into JSON-able transcripts (:mod:`llmlab.core.transcripts`) only when it keeps
    transcripts. A call that failed after its retries has ``response=None`` and ``error`` set.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_s: float
    cached: bool
    retries: int
    request: GenerateRequest | None = None
    response: GenerateResponse | None = None
    error: str | None = None


@dataclass
class CallRecorder:
    """Collects the calls made inside one ``with recording()`` block (one eval item)."""

    calls: list[CallRecord] = field(default_factory=list)

    @property
    def n_calls(self) -> int:
        return len(self.calls)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.calls)

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.calls)

    @property
    def cache_hits(self) -> int:
        return sum(c.cached for c in self.calls)

    @property
    def retries(self) -> int:
        return sum(c.retries for c in self.calls)


_RECORDERS: contextvars.ContextVar[tuple[CallRecorder, ...]] = contextvars.ContextVar(
    "llmlab_recorders", default=()
)


@contextmanager
def recording() -> Iterator[CallRecorder]:
    """Record every Model call made in this context (nested recorders all see the call)."""
    rec = CallRecorder()
    token = _RECORDERS.set((*_RECORDERS.get(), rec))
    try:
        yield rec
    finally:
        _RECORDERS.reset(token)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_per_m: float
    output_per_m: float


@dataclass
class Ledger:
    """Usage and cost across all calls of one Model (and its copies)."""

    prices: Mapping[str, Price] = field(default_factory=dict)
    budget_usd: float | None = None
    on_budget: Literal["warn", "stop"] = "warn"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    cache_hits: int = 0
    _warned: bool = False

    def check(self) -> None:
        if self.budget_usd is None or self.cost_usd < self.budget_usd:
            return
        msg = f"budget of ${self.budget_usd:.4f} spent (${self.cost_usd:.4f} so far)"
        if self.on_budget == "stop":
            raise BudgetExceededError(msg + "; raise the budget or set on_budget=warn")
        if not self._warned:
            log.warning(msg)
            self._warned = True

    def cost_of(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input_per_m + completion_tokens * price.output_per_m) / 1e6

    def add(self, model: str, response: GenerateResponse) -> float:
        self.calls += 1
        if response.cached:
            self.cache_hits += 1
            return 0.0
        u = response.usage
        cost = self.cost_of(model, u.prompt_tokens, u.completion_tokens)
        self.prompt_tokens += u.prompt_tokens
        self.completion_tokens += u.completion_tokens
        self.cost_usd += cost
        return cost


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` is a floor on the wait."""

    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.max_delay, self.base_delay * 2**attempt) * rng.random()
        return max(backoff, retry_after) if retry_after is not None else backoff


class Model:
    """What every method talks to: a backend behind ledger → limiter → retry → cache.

    Args:
        backend: The backend (or a spec string such as ``"mock:echo"``).
        concurrency: Most calls in flight at once.
        retry: Retry policy; ``RetryPolicy(max_retries=0)`` disables retries.
        cache: A :class:`ResponseCache` (opt-in; ``None`` means no caching).
        ledger: Shared usage/cost ledger (one is made if not given).
        defaults: Sampling defaults applied where a request leaves a field ``None``.
        schema_retries: Repair calls per choice when a reply does not satisfy ``response_format`` and the
            backend does not enforce it.
        validate_schema: Check ``response_format`` replies at all (``llmlab serve`` turns it off: the
            client checks).

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> m = Model("mock:echo")
        >>> run_sync(m.complete("hi"))
        'hi'
    """

    def __init__(
        self,
        backend: Backend | str,
        *,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        cache: ResponseCache | None = None,
        ledger: Ledger | None = None,
        defaults: Mapping[str, Any] | None = None,
        schema_retries: int = 2,
        validate_schema: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if schema_retries < 0:
            raise ConfigError(f"schema_retries must be >= 0, got {schema_retries}")
        self.schema_retries = schema_retries
        self.validate_schema = validate_schema
        self.backend = make_backend(backend) if isinstance(backend, str) else backend
        self.retry = retry if retry is not None else RetryPolicy()
        self.cache = cache
        self.ledger = ledger if ledger is not None else Ledger()
        self.defaults = dict(defaults or {})
        self.concurrency = concurrency
        # a semaphore that does not yield when a slot is free (CapacityLimiter yields on every acquire: ~0.1 ms)
        self._limiter = anyio.Semaphore(concurrency, fast_acquire=True)
        self._rng = random.Random(0)
        self._identity = self.backend.cache_identity()
        self._prepared = False

    @property
    def name(self) -> str:
        return self.backend.model

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    def count_tokens(self, request: GenerateRequest) -> int:
        return self.backend.count_tokens(request)

    # -- the stack, outside-in ---------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Run ``request`` through ledger → limiter → retry → cache → backend (→ schema check).

        Raises:
            ParseError: ``response_format`` was not met after ``schema_retries`` repair calls (only when the
                backend does not enforce schemas).
        """
        if self.defaults:
            fill = {k: v for k, v in self.defaults.items() if getattr(request, k) is None}
            if fill:
                request = request.with_(**fill)
        response = await self._generate(request)
        if (request.response_format is not None and self.validate_schema
                and not self.backend.capabilities.structured_output and request.messages is not None):
            response = await self._structured(request, response)
        return response

    async def _structured(self, request: GenerateRequest, response: GenerateResponse) -> GenerateResponse:
        """Check every choice against ``response_format``; repair the failing ones, one call each."""
        assert request.response_format is not None and request.messages is not None
        check = schema_checker(request.response_format)
        for i, text in enumerate(response.texts):
            if response.tool_calls and response.tool_calls[i]:
                continue  # a tool call is an answer in its own right, not a JSON reply
            messages = request.messages
            attempt = 0
            while True:
                fixed, problem = check(text)
                if problem is None:
                    response.texts[i] = fixed
                    break
                if attempt >= self.schema_retries:
                    raise ParseError(
                        f"{self.name}: the reply does not match the requested response_format after "
                        f"{attempt} repair call(s): {problem}"
                    )
                attempt += 1
                ask = Message("user", SCHEMA_REPAIR.format(problem=problem))
                messages = (*messages, Message("assistant", text), ask)
                log.debug("schema repair %d of choice %d: %s", attempt, i, problem)
                repair = await self._generate(request.with_(messages=messages, n=1))
                text = repair.text
        return response

    async def _generate(self, request: GenerateRequest) -> GenerateResponse:
        self.backend.check(request)
        self.ledger.check()
        start = time.perf_counter()
        attempts = [0]
        try:
            async with self._limiter:
                response, retries = await self._with_retry(request, attempts)
        except Exception as exc:  # re-raised below; recorded so the failed call is in the item's transcript
            recorders = _RECORDERS.get()
            if recorders:
                failed = CallRecord(self.name, 0, 0, 0.0, time.perf_counter() - start, False,
                                    attempts[0], request, None, f"{type(exc).__name__}: {exc}")
                for r in recorders:
                    r.calls.append(failed)
            raise
        response.latency_s = time.perf_counter() - start
        cost = self.ledger.add(self.name, response)
        recorders = _RECORDERS.get()
        if recorders:
            rec = CallRecord(
                self.name,
                0 if response.cached else response.usage.prompt_tokens,
                0 if response.cached else response.usage.completion_tokens,
                cost,
                response.latency_s,
                response.cached,
                retries,
                request,
                response,
            )
            for r in recorders:
                r.calls.append(rec)
        return response

    async def _with_retry(self, request: GenerateRequest, attempts: list[int]) -> tuple[GenerateResponse, int]:
        attempt = 0
        while True:
            attempts[0] = attempt
            try:
                return await self._cached(request), attempt
            except BackendError as exc:
                if not exc.retryable or attempt >= self.retry.max_retries:
                    raise
                wait = self.retry.delay(attempt, exc.retry_after, self._rng)
                log.debug("retry %d after %.2fs: %s", attempt + 1, wait, exc)
                attempt += 1
                await anyio.sleep(wait)

    async def _cached(self, request: GenerateRequest) -> GenerateResponse:
        if self.cache is None:
            return await self.backend.generate(request)
        key = request_hash(self._identity, request)
        hit = self.cache.get(key)
        if hit is not None:
            hit.cached = True
            return hit
        response = await self.backend.generate(request)
        self.cache.put(key, self._identity, response)
        return response

    # -- conveniences ------------------------------------------------------------------------------

    async def chat(self, messages: list[Message | dict[str, Any]] | tuple[Message, ...], **params: Any) -> str:
        """One chat call; returns the first text."""
        return (await self.generate(GenerateRequest.chat(messages, **params))).text

    async def complete(self, user: str, *, system: str | None = None, **params: Any) -> str:
        """One user turn (with an optional system message); returns the text."""
        msgs: list[Message | dict[str, Any]] = []
        if system is not None:
            msgs.append(Message("system", system))
        msgs.append(Message("user", user))
        return await self.chat(msgs, **params)

    async def prepare(self) -> None:
        """Let the backend learn its capabilities (once; later calls do nothing)."""
        if not self._prepared:
            await self.backend.prepare()
            await self.backend.warm(self.concurrency)
            self._prepared = True

    async def aclose(self) -> None:
        await self.backend.aclose()

    def __repr__(self) -> str:
        return f"Model({self._identity}, concurrency={self.concurrency})"


SCHEMA_REPAIR = (
    "Your reply does not match the required JSON format: {problem}\n"
    "Reply again with only the JSON, no other text."
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.S)


def schema_checker(response_format: Mapping[str, Any]) -> Any:
    """A function ``text -> (json_text, problem | None)`` for an OpenAI ``response_format``.

    ``json_object`` asks for a JSON object; ``json_schema`` for a value valid under
    ``response_format["json_schema"]["schema"]`` (JSON Schema, checked with ``jsonschema``). A reply in a
    Markdown code fence is unwrapped first.

    Raises:
        ConfigError: The format is not json_object/json_schema, or the schema itself is invalid.
        MissingExtraError: jsonschema is not installed (a json_schema format needs it).

    Example:
        >>> check = schema_checker({"type": "json_object"})
        >>> check('{"a": 1}')
        ('{"a": 1}', None)
        >>> check("no")[1]
        'not JSON (Expecting value at position 0)'
    """
    kind = response_format.get("type")
    validator: Any = None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise ConfigError("response_format json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}")
        try:
            import jsonschema
        except ImportError:
            raise MissingExtraError("jsonschema", "all", "checking replies against a JSON schema") from None
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"response_format: the JSON schema is invalid ({exc.message})") from None
        validator = cls(schema)
    elif kind != "json_object":
        raise ConfigError(f"response_format type must be json_object or json_schema, got {kind!r}")

    def check(text: str) -> tuple[str, str | None]:
        m = _FENCE.match(text)
        body = m.group(1) if m else text
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            return text, f"not JSON ({exc.msg} at position {exc.pos})"
        if validator is None:
            if not isinstance(value, dict):
                return text, f"expected a JSON object, got {type(value).__name__}"
            return body.strip(), None
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path)
            return text, f"{e.message}" + (f" (at {where})" if where else "")
        return body.strip(), None

    return check


def get_model(spec: str | Backend | Model, **options: Any) -> Model:
    """Build a :class:`Model` from a spec string (options go to :class:`Model`)."""
    if isinstance(spec, Model):
        return spec
    return Model(spec, **options)
