"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI, ``llmlab serve``) as a backend.

Spec: ``openai:<model>@<base_url>[,<base_url>...]``. Several base URLs serving the same model form one
pool: each call goes to the endpoint with the fewest calls in flight (ties broken round-robin), which is
how a run scales past one machine. Without ``@`` the URL comes from ``OPENAI_BASE_URL`` (else the SDK's
default, api.openai.com). A URL without a scheme gets ``http://``; one without a path gets ``/v1``.

The API key is read from ``LLMLAB_API_KEY``, then ``OPENAI_API_KEY``, else ``"EMPTY"`` (local servers
ignore it).

Calls go through the official ``openai.AsyncOpenAI`` client (one per base URL, built once) with its own
retries off: retry, backoff and ``Retry-After`` handling live in the :class:`~llmlab.backends.model.Model`
stack. SDK errors are mapped onto :mod:`llmlab.core.errors` so the retry layer can tell transient failures
(429, 5xx, timeouts, connection errors) from permanent ones (other 4xx).

Deliberate choices:
- ``sample_index``: the server gets ``seed + sample_index`` (a missing seed counting as 0) whenever a
  request has a seed or ``sample_index > 0``, so repeated samples of one prompt differ yet stay
  reproducible, also behind servers that seed their sampler by default (``llmlab serve`` with ``hf:``).
  With neither, no seed is sent and the server samples as it likes.
- ``max_tokens`` (not ``max_completion_tokens``) is sent, since every OpenAI-compatible server accepts it.
- Raw ``prompt`` requests use the legacy ``/v1/completions`` endpoint; its ``logprobs`` field is the
  number of top alternatives (``top_logprobs``), 0 meaning the sampled token's logprob only.
"""

from __future__ import annotations

import dataclasses
import email.utils
import itertools
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    TokenLogprob,
    Usage,
)
from llmlab.core.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    RateLimitError,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_URL_SPLIT = re.compile(r"@(?=[a-zA-Z][a-zA-Z0-9+.-]*://)")


def normalize_base_url(url: str) -> str:
    """Add ``http://`` to a URL without a scheme and ``/v1`` to one without a path.

    Example:
        >>> normalize_base_url("localhost:8000")
        'http://localhost:8000/v1'
    """
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + "/v1"
    return url


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP date).

    Args:
        headers: Response headers (case-insensitive mapping, or a dict with lower-case keys).
        now: The current time (for HTTP dates); ``time.time()`` if ``None``.

    Returns:
        Seconds (never negative), or ``None`` when the server did not say or said something unreadable.

    Example:
        >>> parse_retry_after({"retry-after": "2"})
        2.0
    """
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


@dataclass(slots=True)
class Endpoint:
    """One base URL of a pool with its client and the counts the balancer (and tests) look at."""

    url: str
    client: Any
    in_flight: int = 0
    total: int = 0
    errors: int = 0


# Keys under which OpenAI-compatible servers list a model's context window in GET /models.
CONTEXT_KEYS = ("max_model_len", "context_length", "context_window")


class OpenAIBackend(Backend):
    """A model behind one or more OpenAI-compatible servers.

    Args:
        model: Model name the servers know it by.
        base_urls: One URL, or several serving the same model (a least-in-flight pool).
        api_key: API key; ``None`` reads ``LLMLAB_API_KEY``, then ``OPENAI_API_KEY``, else ``"EMPTY"``.
        timeout: Seconds per call unless a request sets its own ``timeout``.

    Raises:
        ConfigError: Empty model name or no base URL.

    Example:
        >>> b = OpenAIBackend.from_spec("qwen2.5-0.5b@http://127.0.0.1:8000/v1")
        >>> b.model, [e.url for e in b.endpoints]
        ('qwen2.5-0.5b', ['http://127.0.0.1:8000/v1'])
    """

    name: ClassVar[str] = "openai"

    def __init__(
        self, model: str, base_urls: list[str], api_key: str | None = None, timeout: float = 60.0
    ) -> None:
        if not model:
            raise ConfigError("openai backend needs a model name: openai:<model>@<base_url>")
        if not base_urls:
            raise ConfigError(f"openai backend for '{model}' needs at least one base URL")
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is a core dependency
            from llmlab.core.errors import MissingExtraError

            raise MissingExtraError("openai", "all", "the openai backend") from None
        self._openai = openai
        self.model = model
        self.timeout = timeout
        if api_key is None:
            api_key = os.environ.get("LLMLAB_API_KEY", os.environ.get("OPENAI_API_KEY", "EMPTY"))
        self.capabilities = Capabilities(chat=True, raw_completion=True, native_n=True, logprobs=True)
        urls = [normalize_base_url(u) for u in base_urls]
        self.endpoints = [
            Endpoint(u, openai.AsyncOpenAI(api_key=api_key, base_url=u, max_retries=0, timeout=timeout))
            for u in urls
        ]
        self._rr = itertools.count()

    @classmethod
    def from_spec(cls, spec: str) -> OpenAIBackend:
        """Build from ``<model>@<url>[,<url>...]`` (or ``<model>`` with ``OPENAI_BASE_URL``).

        Raises:
            ConfigError: No model name or an empty URL list.
        """
        m = _URL_SPLIT.search(spec)
        if m is not None:
            model, urls = spec[: m.start()], spec[m.end():]
        elif "@" in spec:
            model, _, urls = spec.rpartition("@")
        else:
            model, urls = spec, os.environ.get("OPENAI_BASE_URL", DEFAULT_BASE_URL)
        base_urls = [u for u in (p.strip() for p in urls.split(",")) if u]
        if not model:
            raise ConfigError(f"openai spec '{spec}' has no model name: use openai:<model>@<base_url>")
        if not base_urls:
            raise ConfigError(f"openai spec '{spec}' has no base URL: use openai:<model>@<base_url>")
        return cls(model, base_urls)

    # -- pool ---------------------------------------------------------------------------------------

    def _pick(self) -> Endpoint:
        eps = self.endpoints
        if len(eps) == 1:
            return eps[0]
        start = next(self._rr) % len(eps)
        best = eps[start]
        for k in range(1, len(eps)):
            ep = eps[(start + k) % len(eps)]
            if ep.in_flight < best.in_flight:
                best = ep
        return best

    def pool_stats(self) -> list[dict[str, Any]]:
        """Per base URL: calls in flight now, calls sent in total, calls that failed."""
        return [{"url": e.url, "in_flight": e.in_flight, "total": e.total, "errors": e.errors}
                for e in self.endpoints]

    # -- generation ---------------------------------------------------------------------------------

    def _params(self, request: GenerateRequest) -> dict[str, Any]:
        p: dict[str, Any] = {"model": self.model}
        if request.max_tokens is not None:
            p["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            p["temperature"] = request.temperature
        if request.top_p is not None:
            p["top_p"] = request.top_p
        if request.seed is not None or request.sample_index:
            # Distinct sample indices must give distinct samples even behind a server that seeds its
            # sampler by default (``llmlab serve`` in front of hf does): fold the index into the seed.
            p["seed"] = (request.seed if request.seed is not None else 0) + request.sample_index
        if request.n != 1:
            p["n"] = request.n
        if request.stop:
            p["stop"] = list(request.stop)
        if request.timeout is not None:
            p["timeout"] = request.timeout
        return p

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Send one request to the least-busy endpoint and map the answer (or the error).

        Raises:
            RateLimitError: HTTP 429 (with the server's Retry-After).
            BackendTimeoutError: No answer within the timeout.
            BackendConnectionError: The server could not be reached.
            BackendError: Any other HTTP error (retryable for 5xx).
        """
        ep = self._pick()
        ep.in_flight += 1
        ep.total += 1
        try:
            params = self._params(request)
            if request.messages is not None:
                if request.logprobs:
                    params["logprobs"] = True
                    if request.top_logprobs:
                        params["top_logprobs"] = request.top_logprobs
                out = await ep.client.chat.completions.create(
                    messages=[{"role": m.role, "content": m.content} for m in request.messages], **params
                )
                return self._from_chat(out)
            if request.logprobs:
                params["logprobs"] = request.top_logprobs
            out = await ep.client.completions.create(prompt=request.prompt, **params)
            return self._from_completion(out)
        except self._openai.OpenAIError as exc:
            ep.errors += 1
            raise self._map_error(exc, ep.url) from exc
        finally:
            ep.in_flight -= 1

    def _from_chat(self, out: Any) -> GenerateResponse:
        choices = sorted(out.choices, key=lambda c: c.index) if len(out.choices) > 1 else out.choices
        texts = [c.message.content if c.message.content is not None else "" for c in choices]
        logprobs: list[list[TokenLogprob]] | None = None
        if any(c.logprobs is not None and c.logprobs.content is not None for c in choices):
            logprobs = [
                [TokenLogprob(t.token, t.logprob, {a.token: a.logprob for a in t.top_logprobs or ()})
                 for t in (c.logprobs.content if c.logprobs is not None and c.logprobs.content else ())]
                for c in choices
            ]
        return GenerateResponse(
            texts=texts,
            finish_reasons=[c.finish_reason if c.finish_reason is not None else "stop" for c in choices],
            usage=_usage(out.usage),
            logprobs=logprobs,
            model=out.model if out.model else self.model,
        )

    def _from_completion(self, out: Any) -> GenerateResponse:
        choices = sorted(out.choices, key=lambda c: c.index) if len(out.choices) > 1 else out.choices
        logprobs: list[list[TokenLogprob]] | None = None
        if any(c.logprobs is not None and c.logprobs.tokens is not None for c in choices):
            logprobs = []
            for c in choices:
                lp = c.logprobs
                seq: list[TokenLogprob] = []
                if lp is not None and lp.tokens is not None:
                    values = lp.token_logprobs if lp.token_logprobs is not None else [0.0] * len(lp.tokens)
                    tops = lp.top_logprobs if lp.top_logprobs is not None else [None] * len(lp.tokens)
                    for tok, val, top in zip(lp.tokens, values, tops, strict=False):
                        value = val if val is not None else 0.0
                        seq.append(TokenLogprob(tok, value, dict(top) if top else {}))
                logprobs.append(seq)
        return GenerateResponse(
            texts=[c.text for c in choices],
            finish_reasons=[c.finish_reason if c.finish_reason is not None else "stop" for c in choices],
            usage=_usage(out.usage),
            logprobs=logprobs,
            model=out.model if out.model else self.model,
        )

    def _map_error(self, exc: Exception, url: str) -> BackendError:
        oa = self._openai
        where = f"{self.model} at {url}"
        if isinstance(exc, oa.APITimeoutError):
            return BackendTimeoutError(f"{where}: no answer in time (timeout {self.timeout:g}s unless the "
                                       "request set its own); raise --timeout if the model is slow")
        if isinstance(exc, oa.APIConnectionError):
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            return BackendConnectionError(
                f"cannot reach {url} ({type(cause).__name__}: {cause}); is the server running? "
                f"Check with: llmlab doctor --model openai:{self.model}@{url}"
            )
        if isinstance(exc, oa.APIStatusError):
            status = exc.status_code
            message = _server_message(exc)
            if isinstance(exc, oa.RateLimitError) or status == 429:
                return RateLimitError(f"{where}: rate limited (429): {message}",
                                      retry_after=parse_retry_after(exc.response.headers))
            if status >= 500:
                return BackendError(f"{where}: server error {status}: {message}",
                                    status=status, retryable=True)
            if status == 404:
                return BackendError(
                    f"{where}: not found (404): {message}; check the model name "
                    f"(GET {url}/models lists what the server serves)", status=404)
            if status in (401, 403):
                return BackendError(f"{where}: {status} {message}; set LLMLAB_API_KEY or OPENAI_API_KEY",
                                    status=status)
            return BackendError(f"{where}: request rejected ({status}): {message}", status=status)
        return BackendError(f"{where}: {type(exc).__name__}: {exc}")

    async def prepare(self) -> None:
        """Read the model's context window from ``GET /models`` of each endpoint (vLLM: ``max_model_len``).

        Servers that do not list it (or do not serve ``/models``) leave ``context_length`` unknown, and
        prompts are then not checked locally. The smallest window of the pool wins.

        Raises:
            BackendConnectionError: An endpoint cannot be reached (the run would fail on every item).
        """
        windows: list[int] = []
        for ep in self.endpoints:
            try:
                page = await ep.client.models.list(timeout=min(self.timeout, 30.0))
            except self._openai.APIConnectionError as exc:
                raise self._map_error(exc, ep.url) from exc
            except self._openai.OpenAIError:
                continue  # a server without /models (or that refuses it) can still serve completions
            for entry in page.data:
                if entry.id != self.model:
                    continue
                for key in CONTEXT_KEYS:
                    value = getattr(entry, key, None)
                    if isinstance(value, int) and value > 0:
                        windows.append(value)
                        break
        if windows:
            self.capabilities = dataclasses.replace(self.capabilities, context_length=min(windows))

    async def aclose(self) -> None:
        """Close every endpoint's HTTP client."""
        for ep in self.endpoints:
            await ep.client.close()


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage()
    return Usage(u.prompt_tokens if u.prompt_tokens is not None else 0,
                 u.completion_tokens if u.completion_tokens is not None else 0)


def _server_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        msg = body.get("message")
        if isinstance(msg, str) and msg:
            return msg
        detail = body.get("detail")
        if detail is not None:
            return str(detail)
    if isinstance(body, str) and body:
        return body[:300]
    return str(exc.message)
