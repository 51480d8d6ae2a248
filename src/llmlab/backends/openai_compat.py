"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI, ``llmlab serve``) as a backend.

Spec: ``openai:<model>@<base_url>[,<base_url>...][?stream=1]``. Several base URLs serving the same model
form one pool: each call goes to the endpoint with the fewest calls in flight (ties broken round-robin),
which is how a run scales past one machine. Without ``@`` the URL comes from ``OPENAI_BASE_URL`` (else
api.openai.com). A URL without a scheme gets ``http://``; one without a path gets ``/v1``.
``openai-sdk:<same>`` is the same backend sending through the official ``openai.AsyncOpenAI`` client.

The API key is read from ``LLMLAB_API_KEY``, then ``OPENAI_API_KEY``, else ``"EMPTY"`` (local servers
ignore it).

Transport: by default calls go through :class:`~llmlab.backends.transport.AiohttpTransport` (one
keep-alive aiohttp session per base URL; the JSON body is built here and the reply parsed here), which
costs ~10x less client CPU per call than the SDK + httpx path. ``openai-sdk:`` (or ``transport="sdk"``)
keeps the SDK, with its own retries off. Both map failures onto :mod:`llmlab.core.errors`, so the retry
layer of :class:`~llmlab.backends.model.Model` tells transient failures (429 with ``Retry-After``, 5xx,
timeouts, connection errors) from permanent ones (other 4xx). ``?stream=1`` asks for server-sent events
(``stream_options.include_usage``) and assembles text, tool calls, logprobs and usage from the chunks.

The contract in full: messages with content parts (text and ``image_url``), tool definitions,
``tool_choice``, tool calls in responses (per choice, also with ``n > 1``), tool-result messages and
``response_format`` (json_schema / json_object) are passed through as the OpenAI API defines them.

Deliberate choices:
- ``sample_index``: the server gets ``seed + sample_index`` (a missing seed counting as 0) whenever a
  request has a seed or ``sample_index > 0``, so repeated samples of one prompt differ yet stay
  reproducible, also behind servers that seed their sampler by default (``llmlab serve`` with ``hf:``).
  With neither, no seed is sent and the server samples as it likes.
- ``max_tokens`` (not ``max_completion_tokens``) is sent, since every OpenAI-compatible server accepts it.
- Raw ``prompt`` requests use the legacy ``/v1/completions`` endpoint; its ``logprobs`` field is the
  number of top alternatives (``top_logprobs``), 0 meaning the sampled token's logprob only.
- :meth:`OpenAIBackend.prepare` reads ``GET /models`` once before a run: a model name the server does not
  list stops the run there with one line naming what it serves; the context window is read from the
  entry; ``structured_output`` is assumed enforced by the server (OpenAI, vLLM, llama.cpp do) unless the
  entry says otherwise (``llmlab serve`` lists its backend's capabilities under ``"llmlab"``).
- The base URL is not part of :meth:`cache_identity`: a server that moved serves the same model, so a
  cache (and a run) made against the old address is still valid.
"""

from __future__ import annotations

import dataclasses
import email.utils
import itertools
import json
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    TokenLogprob,
    ToolCall,
    Usage,
)
from llmlab.backends.transport import AiohttpTransport, HTTPReply, make_transport
from llmlab.core.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    RateLimitError,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_URL_SPLIT = re.compile(r"@(?=[a-zA-Z][a-zA-Z0-9+.-]*://)")
TRANSPORTS = ("light", "aiohttp", "sdk")


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



# Most connections opened per backend before a run (`warm`); more are opened on demand.
WARM_MAX = 256


@dataclass(slots=True)
class Endpoint:
    """One base URL of a pool with its clients and the counts the balancer (and tests) look at."""

    url: str
    http: AiohttpTransport
    client: Any = None  # the openai SDK client, only with transport="sdk"
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
        transport: ``"light"`` (default: our HTTP/1.1 client for ``http://``, aiohttp for ``https://`` and
            streams), ``"aiohttp"`` or ``"sdk"`` (the official openai client).
        stream: Ask for server-sent events and assemble the answer from the chunks.

    Raises:
        ConfigError: Empty model name, no base URL, or an unknown transport.

    Example:
        >>> b = OpenAIBackend.from_spec("qwen2.5-0.5b@http://127.0.0.1:8000/v1")
        >>> b.model, [e.url for e in b.endpoints], b.transport
        ('qwen2.5-0.5b', ['http://127.0.0.1:8000/v1'], 'light')
    """

    name: ClassVar[str] = "openai"
    default_transport: ClassVar[str] = "light"

    def __init__(
        self, model: str, base_urls: list[str], api_key: str | None = None, timeout: float = 60.0,
        transport: str | None = None, stream: bool = False,
    ) -> None:
        if not model:
            raise ConfigError("openai backend needs a model name: openai:<model>@<base_url>")
        if not base_urls:
            raise ConfigError(f"openai backend for '{model}' needs at least one base URL")
        transport = self.default_transport if transport is None else transport
        if transport not in TRANSPORTS:
            raise ConfigError(f"openai backend: transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        self.model = model
        self._timeout = timeout
        self.transport = transport
        self.stream = stream
        if api_key is None:
            api_key = os.environ.get("LLMLAB_API_KEY", os.environ.get("OPENAI_API_KEY", "EMPTY"))
        self.capabilities = Capabilities(chat=True, raw_completion=True, native_n=True, logprobs=True,
                                         images=True, tools=True, structured_output=True)
        self._openai: Any = None
        if transport == "sdk":
            try:
                import openai
            except ImportError:  # pragma: no cover - openai is a core dependency
                from llmlab.core.errors import MissingExtraError

                raise MissingExtraError("openai", "all", "the openai-sdk backend") from None
            self._openai = openai
        urls = [normalize_base_url(u) for u in base_urls]
        self.endpoints = [
            Endpoint(u, make_transport(u, api_key, timeout, "aiohttp" if transport == "sdk" else transport),
                     self._openai.AsyncOpenAI(api_key=api_key, base_url=u, max_retries=0, timeout=timeout)
                     if self._openai is not None else None)
            for u in urls
        ]
        self._rr = itertools.count()

    @classmethod
    def from_spec(cls, spec: str) -> OpenAIBackend:
        """Build from ``<model>@<url>[,<url>...][?stream=1&timeout=S]`` (or ``<model>`` with ``OPENAI_BASE_URL``).

        Raises:
            ConfigError: No model name, an empty URL list or an unknown option.
        """
        spec, options = _split_options(spec)
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
        kwargs: dict[str, Any] = {}
        try:
            if "stream" in options:
                kwargs["stream"] = options.pop("stream").lower() in ("1", "true", "yes")
            if "timeout" in options:
                kwargs["timeout"] = float(options.pop("timeout"))
        except ValueError as exc:
            raise ConfigError(f"openai spec '{spec}': bad option value ({exc})") from None
        if "transport" in options:
            kwargs["transport"] = options.pop("transport")
        if options:
            raise ConfigError(f"openai spec '{spec}': unknown option(s) {sorted(options)}; "
                              "allowed: stream, timeout, transport")
        return cls(model, base_urls, **kwargs)

    @property
    def timeout(self) -> float:
        """Seconds per call unless a request sets its own; setting it reaches every endpoint's client."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._timeout = seconds
        for ep in self.endpoints:
            ep.http.timeout = seconds
            if ep.client is not None:
                ep.client = ep.client.with_options(timeout=seconds)

    def cache_identity(self) -> str:
        """``openai:<model>``: the transport and the base URL do not change what the model answers."""
        return f"openai:{self.model}"

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

    # -- request bodies -----------------------------------------------------------------------------

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
        return p

    def request_body(self, request: GenerateRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint path and the JSON body for ``request`` (chat or raw completion).

        Example:
            >>> b = OpenAIBackend("m", ["http://h:1/v1"])
            >>> b.request_body(GenerateRequest.chat([{"role": "user", "content": "hi"}], max_tokens=4))
            ('/chat/completions', {'model': 'm', 'max_tokens': 4, 'messages': [{'role': 'user', 'content': 'hi'}]})
        """
        body = self._params(request)
        if request.messages is None:
            body["prompt"] = request.prompt
            if request.logprobs:
                body["logprobs"] = request.top_logprobs
            return "/completions", body
        body["messages"] = [m.to_openai() for m in request.messages]
        if request.logprobs:
            body["logprobs"] = True
            if request.top_logprobs:
                body["top_logprobs"] = request.top_logprobs
        if request.tools:
            body["tools"] = [t.to_openai() for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
        if request.response_format is not None:
            body["response_format"] = request.response_format
        return "/chat/completions", body

    # -- generation ---------------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Send one request to the least-busy endpoint and map the answer (or the error).

        Raises:
            RateLimitError: HTTP 429 (with the server's Retry-After).
            BackendTimeoutError: No answer within the timeout.
            BackendConnectionError: The server could not be reached.
            BackendError: Any other HTTP error (retryable for 5xx) or an unreadable answer.
        """
        ep = self._pick()
        ep.in_flight += 1
        ep.total += 1
        path, body = self.request_body(request)
        chat = request.messages is not None
        try:
            if ep.client is not None:
                data = await self._sdk_call(ep, chat, body, request.timeout)
            elif self.stream:
                data = await self._stream_call(ep, path, body, chat, request.timeout)
            else:
                reply = await ep.http.request("POST", path, body, request.timeout)
                if reply.status != 200:
                    raise self.status_error(reply, ep.url)
                data = reply.json()
            return self.parse(data, chat, ep.url)
        except BackendConnectionError as exc:
            ep.errors += 1
            raise BackendConnectionError(
                f"{exc}; is the server running? Check with: llmlab doctor --model openai:{self.model}@{ep.url}"
            ) from exc
        except BackendError:
            ep.errors += 1
            raise
        except Exception as exc:
            if self._openai is not None and isinstance(exc, self._openai.OpenAIError):
                ep.errors += 1
                raise self._map_sdk_error(exc, ep.url) from exc
            raise
        finally:
            ep.in_flight -= 1

    async def _stream_call(self, ep: Endpoint, path: str, body: dict[str, Any], chat: bool,
                           timeout: float | None) -> dict[str, Any]:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        events = ep.http.stream(path, body, timeout, on_error=lambda r: self.status_error(r, ep.url))
        return await assemble_stream(events, chat)

    async def _sdk_call(self, ep: Endpoint, chat: bool, body: dict[str, Any], timeout: float | None) -> Any:
        kw: dict[str, Any] = dict(body)
        if timeout is not None:
            kw["timeout"] = timeout
        api = ep.client.chat.completions if chat else ep.client.completions
        if self.stream:
            kw["stream"] = True
            kw["stream_options"] = {"include_usage": True}
            chunks = await api.create(**kw)

            async def dicts() -> AsyncIterator[Any]:
                async for c in chunks:
                    yield c.model_dump()

            return await assemble_stream(dicts(), chat)
        out = await api.create(**kw)
        return out.model_dump()

    def parse(self, data: Any, chat: bool, url: str = "") -> GenerateResponse:
        """A chat or completion JSON object (as a dict) as a :class:`GenerateResponse`.

        Raises:
            BackendError: The object has no ``choices`` (not an OpenAI answer).
        """
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            shown = repr(data)[:200]
            raise BackendError(f"{self.model} at {url}: the answer is not an OpenAI completion object: {shown}",
                               retryable=True)
        choices = data["choices"]
        if len(choices) > 1:
            choices = sorted(choices, key=lambda c: c.get("index", 0))
        model = data.get("model")
        return (parse_chat_choices if chat else parse_completion_choices)(
            choices, _usage(data.get("usage")), model if model else self.model)

    # -- errors -------------------------------------------------------------------------------------

    def status_error(self, reply: HTTPReply, url: str) -> BackendError:
        """The :class:`BackendError` for a non-200 reply (429 → RateLimitError with Retry-After)."""
        return status_error(reply.status, _body_message(reply.json(), reply.body), reply.headers,
                            f"{self.model} at {url}", url)

    def _map_sdk_error(self, exc: Exception, url: str) -> BackendError:
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
            body = exc.body
            message = _body_message(body if isinstance(body, dict) else None, body if isinstance(body, str) else b"")
            if not message:
                message = str(exc.message)
            return status_error(exc.status_code, message, exc.response.headers, where, url)
        return BackendError(f"{where}: {type(exc).__name__}: {exc}")

    # -- before a run -------------------------------------------------------------------------------

    async def list_models(self, ep: Endpoint, timeout: float) -> list[dict[str, Any]] | None:
        """``GET /models`` of one endpoint: its entries, or ``None`` when it does not list them.

        Raises:
            BackendConnectionError: The endpoint cannot be reached.
            BackendTimeoutError: It did not answer in ``timeout`` seconds.
            BackendError: HTTP 401/403 (the key is refused).
        """
        reply = await ep.http.request("GET", "/models", None, timeout)
        if reply.status in (401, 403):
            raise self.status_error(reply, ep.url)
        if reply.status != 200:
            return None
        data = reply.json()
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return None
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]

    async def prepare(self) -> None:
        """Check each endpoint's ``GET /models`` once: the model is served; read its context window.

        Servers that do not serve ``/models`` (or refuse it) are trusted to serve the model. The
        smallest context window of the pool wins. An entry's ``"llmlab": {"structured_output": false}``
        (as ``llmlab serve`` lists a backend that cannot enforce a schema) turns schema validation on.

        Raises:
            ConfigError: An endpoint lists its models and the model is not among them.
            BackendConnectionError: An endpoint cannot be reached (the run would fail on every item).
        """
        windows: list[int] = []
        enforced = True
        for ep in self.endpoints:
            try:
                entries = await self.list_models(ep, min(self.timeout, 30.0))
            except BackendConnectionError as exc:
                raise BackendConnectionError(
                    f"{exc}; is the server running? Check with: llmlab doctor --model openai:{self.model}@{ep.url}"
                ) from None
            except BackendError:
                continue  # a timeout or refused listing: the calls themselves will tell
            if entries is None:
                continue
            entry = served_entry(self.model, entries)
            if entry is None:
                ids = [str(e["id"]) for e in entries]
                shown = ", ".join(ids[:10]) + (f" (and {len(ids) - 10} more)" if len(ids) > 10 else "")
                hint = f"; use openai:{ids[0]}@{ep.url}" if ids else ""
                raise ConfigError(f"model '{self.model}' is not served at {ep.url}; it serves: "
                                  f"{shown if ids else 'nothing'}{hint}")
            for key in CONTEXT_KEYS:
                value = entry.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    windows.append(value)
                    break
            ext = entry.get("llmlab")
            if isinstance(ext, dict) and ext.get("structured_output") is False:
                enforced = False
        changes: dict[str, Any] = {"structured_output": enforced}
        if windows:
            changes["context_length"] = min(windows)
        self.capabilities = dataclasses.replace(self.capabilities, **changes)

    async def warm(self, connections: int) -> None:
        """Open the run's keep-alive connections up front, shared across the endpoints (best effort)."""
        if self.stream or not self.endpoints:
            return
        per = -(-min(connections, WARM_MAX) // len(self.endpoints))
        for ep in self.endpoints:
            if ep.client is None:
                await ep.http.warm(per)

    async def aclose(self) -> None:
        """Close every endpoint's HTTP clients."""
        for ep in self.endpoints:
            await ep.http.aclose()
            if ep.client is not None:
                await ep.client.close()


class OpenAISDKBackend(OpenAIBackend):
    """:class:`OpenAIBackend` sending through the official ``openai.AsyncOpenAI`` client (``openai-sdk:``).

    Example:
        >>> OpenAISDKBackend.from_spec("m@http://127.0.0.1:8000/v1").transport
        'sdk'
    """

    name: ClassVar[str] = "openai-sdk"
    default_transport: ClassVar[str] = "sdk"


def served_entry(model: str, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``/models`` entry for ``model`` (Ollama's ``name:latest`` also matches ``name``), else ``None``."""
    for e in entries:
        if e["id"] == model:
            return e
    for e in entries:
        if e["id"] == f"{model}:latest":
            return e
    return None


def _split_options(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``...?k=v&k=v`` off a spec when every key is a backend option (a URL's own query stays)."""
    body, sep, query = spec.rpartition("?")
    if not sep:
        return spec, {}
    pairs = parse_qsl(query, keep_blank_values=True)
    if pairs and all(k in ("stream", "timeout", "transport") or k.isidentifier() for k, _ in pairs):
        return body, dict(pairs)
    return spec, {}


def status_error(status: int, message: str, headers: Mapping[str, str] | None, where: str, url: str) -> BackendError:
    """The error for an HTTP status: 429 → RateLimitError, 5xx retryable, 404 names ``/models``."""
    if status == 429:
        return RateLimitError(f"{where}: rate limited (429): {message}", retry_after=parse_retry_after(headers))
    if status >= 500:
        return BackendError(f"{where}: server error {status}: {message}", status=status, retryable=True)
    if status == 404:
        return BackendError(f"{where}: not found (404): {message}; check the model name "
                            f"(GET {url}/models lists what the server serves)", status=404)
    if status in (401, 403):
        return BackendError(f"{where}: {status} {message}; set LLMLAB_API_KEY or OPENAI_API_KEY", status=status)
    return BackendError(f"{where}: request rejected ({status}): {message}", status=status)


def _body_message(body: Any, raw: bytes | str) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]:
            return str(err["message"])
        if isinstance(err, str) and err:
            return err
        msg = body.get("message")
        if isinstance(msg, str) and msg:
            return msg
        detail = body.get("detail")
        if detail is not None:
            return str(detail)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return text.strip()[:300]


def _usage(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    p, c = u.get("prompt_tokens"), u.get("completion_tokens")
    return Usage(p if isinstance(p, int) else 0, c if isinstance(c, int) else 0)


def _tool_calls(raw: Any) -> list[ToolCall]:
    calls = []
    for c in raw if isinstance(raw, list) else ():
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict):
            continue
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = json.dumps(args) if args is not None else "{}"
        calls.append(ToolCall(id=str(c.get("id") or ""), name=str(fn.get("name") or ""), arguments=args))
    return calls


def parse_chat_choices(choices: list[dict[str, Any]], usage: Usage, model: str) -> GenerateResponse:
    """Chat ``choices`` (dicts, sorted by index) as a response: texts, tool calls, logprobs, finish reasons."""
    texts: list[str] = []
    finish: list[str] = []
    calls: list[list[ToolCall]] = []
    logprobs: list[list[TokenLogprob]] = []
    any_lp = False
    for c in choices:
        raw_msg = c.get("message")
        msg: dict[str, Any] = raw_msg if isinstance(raw_msg, dict) else {}
        content = msg.get("content")
        texts.append(content if isinstance(content, str) else "")
        calls.append(_tool_calls(msg.get("tool_calls")))
        fr = c.get("finish_reason")
        finish.append(fr if isinstance(fr, str) else "stop")
        lp = c.get("logprobs")
        seq = lp.get("content") if isinstance(lp, dict) else None
        if isinstance(seq, list):
            any_lp = True
            logprobs.append([
                TokenLogprob(t["token"], float(t["logprob"]),
                             {a["token"]: float(a["logprob"]) for a in t.get("top_logprobs") or ()})
                for t in seq
            ])
        else:
            logprobs.append([])
    return GenerateResponse(texts=texts, finish_reasons=finish, usage=usage,
                            logprobs=logprobs if any_lp else None, model=model,
                            tool_calls=calls if any(calls) else None)


def parse_completion_choices(choices: list[dict[str, Any]], usage: Usage, model: str) -> GenerateResponse:
    """Completion ``choices`` as a response (the legacy logprobs format: tokens, token_logprobs, top_logprobs)."""
    texts, finish, logprobs = [], [], []
    any_lp = False
    for c in choices:
        text = c.get("text")
        texts.append(text if isinstance(text, str) else "")
        fr = c.get("finish_reason")
        finish.append(fr if isinstance(fr, str) else "stop")
        lp = c.get("logprobs")
        seq: list[TokenLogprob] = []
        tokens = lp.get("tokens") if isinstance(lp, dict) else None
        if isinstance(lp, dict) and isinstance(tokens, list):
            any_lp = True
            values = lp.get("token_logprobs") or [0.0] * len(tokens)
            tops = lp.get("top_logprobs") or [None] * len(tokens)
            for tok, val, top in zip(tokens, values, tops, strict=False):
                seq.append(TokenLogprob(tok, float(val) if val is not None else 0.0, dict(top) if top else {}))
        logprobs.append(seq)
    return GenerateResponse(texts=texts, finish_reasons=finish, usage=usage,
                            logprobs=logprobs if any_lp else None, model=model)


async def assemble_stream(events: AsyncIterator[Any], chat: bool) -> dict[str, Any]:
    """Fold OpenAI stream chunks into the non-streaming answer object (text, tool calls, logprobs, usage).

    Tool-call deltas are merged by their ``index`` (id and name arrive first, arguments in pieces).
    """
    out: dict[int, dict[str, Any]] = {}
    usage: Any = None
    model = ""
    async for ev in events:
        if not isinstance(ev, dict):
            continue
        if isinstance(ev.get("usage"), dict):
            usage = ev["usage"]
        if ev.get("model"):
            model = ev["model"]
        for ch in ev.get("choices") or ():
            i = ch.get("index", 0)
            acc = out.setdefault(i, {"index": i, "text": [], "calls": {}, "lp": None, "finish_reason": None})
            if ch.get("finish_reason"):
                acc["finish_reason"] = ch["finish_reason"]
            lp = ch.get("logprobs")
            if chat:
                delta = ch.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    acc["text"].append(delta["content"])
                for tc in delta.get("tool_calls") or ():
                    slot = acc["calls"].setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": []})
                    if tc.get("id"):
                        slot["id"] = tc["id"]
                    fn = tc.get("function") or {}
                    if fn.get("name"):
                        slot["name"] += fn["name"]
                    if isinstance(fn.get("arguments"), str):
                        slot["arguments"].append(fn["arguments"])
                if isinstance(lp, dict) and isinstance(lp.get("content"), list):
                    acc["lp"] = [*(acc["lp"] or []), *lp["content"]]
            else:
                if isinstance(ch.get("text"), str):
                    acc["text"].append(ch["text"])
                if isinstance(lp, dict) and isinstance(lp.get("tokens"), list):
                    prev = acc["lp"] or {"tokens": [], "token_logprobs": [], "top_logprobs": []}
                    for key in ("tokens", "token_logprobs", "top_logprobs"):
                        vals = lp.get(key)
                        prev[key] = [*prev[key], *(vals if isinstance(vals, list) else [None] * len(lp["tokens"]))]
                    acc["lp"] = prev
    choices = []
    for i in sorted(out):
        acc = out[i]
        text = "".join(acc["text"])
        if chat:
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if acc["calls"]:
                msg["tool_calls"] = [
                    {"id": s["id"], "type": "function",
                     "function": {"name": s["name"], "arguments": "".join(s["arguments"])}}
                    for _, s in sorted(acc["calls"].items())
                ]
            choices.append({"index": i, "message": msg, "finish_reason": acc["finish_reason"],
                            "logprobs": {"content": acc["lp"]} if acc["lp"] is not None else None})
        else:
            choices.append({"index": i, "text": text, "finish_reason": acc["finish_reason"], "logprobs": acc["lp"]})
    return {"choices": choices, "usage": usage, "model": model}
