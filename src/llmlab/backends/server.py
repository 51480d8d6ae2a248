"""``llmlab serve``: an OpenAI-compatible HTTP server in front of any backend (mock, hf, openai pool).

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions`` (both with
``stream: true`` server-sent events in the OpenAI chunk format, ``stream_options.include_usage`` honoured,
``data: [DONE]`` at the end), ``GET /health``, ``GET /llmlab/stats`` (backend calls so far, by endpoint,
most in flight at once, and the wall-clock times of the first request and the last answer — tests count
server calls with it and ``bench/peers.py`` times each client's request phase with it) and
``POST /llmlab/stats/reset``. Every non-streaming answer carries ``usage``.

Chat requests take the OpenAI contract in full: content parts (text and ``image_url``), ``tools``,
``tool_choice``, assistant messages with ``tool_calls``, ``tool`` result messages and ``response_format``
(``json_schema`` / ``json_object``); all reach the served backend as a :class:`GenerateRequest`. A choice
with tool calls is answered with ``message.tool_calls`` and ``finish_reason: "tool_calls"`` (streamed:
one delta carrying the calls). ``GET /v1/models`` lists the backend's capabilities under ``"llmlab"``, so
a client can tell whether the server enforces a JSON schema (an hf or mock backend does not; the client's
Model then validates and retries, see :mod:`llmlab.backends.model`).

The backend runs inside a :class:`~llmlab.backends.model.Model` with retries OFF, so failures reach the
client as HTTP errors with an OpenAI-style JSON body (``{"error": {"message", "type", "code"}}``):
a backend error with a status → that status; rate limit → 429 with ``Retry-After`` (whole seconds, per
RFC 9110) and ``retry-after-ms`` (exact, read first by the openai SDK and by llmlab); timeout → 504;
unreachable upstream → 502; unsupported feature, context window exceeded, bad config, malformed body
→ 400; an unknown model name → 404 (as vLLM does, so ``llmlab doctor`` can check model presence).

Deliberate choices:
- The backend is not streaming: a streamed answer is generated whole, then sent as chunks (one per
  word-ish piece; one chunk when logprobs were asked, so token logprobs stay aligned with the text).
- ``echo`` and several prompts in one ``/v1/completions`` call are rejected with 400 (not needed by any
  llmlab method).
- The served Model does not validate ``response_format`` itself (``validate_schema=False``): the schema
  is the backend's to enforce, or the client's to check, so a failure is seen (and retried) where the
  conversation lives.
- Bodies are parsed and answers encoded with orjson when it is installed (the `fast` extra); uvicorn uses
  httptools and uvloop when installed (the `web` extra lists them): at concurrency 128 the h11/asyncio
  server spent more CPU per call than the client.
- A request's ``seed`` is passed through as is; the client folds ``sample_index`` into it.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import click

from llmlab.backends.base import Backend, GenerateRequest, GenerateResponse, Message, Tool
from llmlab.backends.model import Model, RetryPolicy
from llmlab.backends.transport import dumps, loads
from llmlab.core.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    BudgetExceededError,
    ConfigError,
    ContextWindowExceededError,
    LabError,
    MissingExtraError,
    RateLimitError,
    UnsupportedFeatureError,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 256
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_PIECES = re.compile(r"\s*\S+|\s+")


class BadRequest(Exception):
    """A malformed request body (→ HTTP 400 with this message)."""


class ServerStats:
    """Backend calls seen by one app: total, by endpoint, failures, peak in flight, first/last times."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.errors = 0
        self.by_endpoint: dict[str, int] = {"chat.completions": 0, "completions": 0}
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_request: float | None = None  # time.time() of the first request since the reset
        self.last_response: float | None = None  # time.time() of the last answer sent

    def start(self, endpoint: str) -> None:
        self.requests += 1
        self.by_endpoint[endpoint] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.first_request is None:
            self.first_request = time.time()

    def end(self, failed: bool) -> None:
        self.in_flight -= 1
        self.errors += failed
        self.last_response = time.time()

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "by_endpoint": dict(self.by_endpoint),
                "max_in_flight": self.max_in_flight, "first_request": self.first_request,
                "last_response": self.last_response}


# -- request parsing -------------------------------------------------------------------------------------

def _opt_int(body: dict[str, Any], key: str, lo: int | None = None) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRequest(f"'{key}' must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise BadRequest(f"'{key}' must be >= {lo}, got {v}")
    return v


def _opt_float(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadRequest(f"'{key}' must be a number, got {v!r}")
    return float(v)


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    max_tokens = _opt_int(body, "max_tokens", 0)
    if max_tokens is None:
        max_tokens = _opt_int(body, "max_completion_tokens", 0)
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise BadRequest(f"'stop' must be a string or a list of strings, got {stop!r}")
    n = _opt_int(body, "n", 1)
    return {
        "max_tokens": max_tokens,
        "temperature": _opt_float(body, "temperature"),
        "top_p": _opt_float(body, "top_p"),
        "seed": _opt_int(body, "seed"),
        "n": n if n is not None else 1,
        "stop": stops,
    }


def _message(m: Any, i: int) -> Message:
    if not isinstance(m, dict):
        raise BadRequest(f"messages[{i}] must be an object with 'role' and 'content'")
    role = _ROLES.get(m.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise BadRequest(f"messages[{i}].role must be system, user, assistant or tool; got {m.get('role')!r}")
    content = m.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise BadRequest(f"messages[{i}].content must be a string or a list of text/image_url parts")
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
                raise BadRequest(f"messages[{i}].content: parts must be text or image_url, got {part!r}")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise BadRequest(f"messages[{i}].content: a text part needs a string 'text'")
            url = part.get("image_url")
            if part["type"] == "image_url" and not (isinstance(url, dict) and isinstance(url.get("url"), str)):
                raise BadRequest(f"messages[{i}].content: an image_url part needs image_url.url")
    calls = m.get("tool_calls")
    if calls is not None and (not isinstance(calls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls)):
        raise BadRequest(f"messages[{i}].tool_calls must be a list of {{id, type, function}} objects")
    if role == "tool" and not isinstance(m.get("tool_call_id"), str):
        raise BadRequest(f"messages[{i}]: a tool message needs 'tool_call_id'")
    try:
        return Message.coerce({**m, "role": role})
    except ConfigError as exc:
        raise BadRequest(f"messages[{i}]: {exc}") from None


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest("'tools' must be a list of {type: function, function: {name, ...}} objects")
        parsed = []
        for j, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise BadRequest(f"tools[{j}] must be {{type: function, function: {{name, description, parameters}}}}")
            params = fn.get("parameters")
            parsed.append(Tool(fn["name"], str(fn.get("description") or ""),
                               params if isinstance(params, dict) else {"type": "object", "properties": {}}))
        out["tools"] = tuple(parsed)
    choice = body.get("tool_choice")
    if choice is not None:
        if not (choice in ("auto", "none", "required") or isinstance(choice, dict)):
            raise BadRequest(f"'tool_choice' must be auto, none, required or a function object, got {choice!r}")
        out["tool_choice"] = choice
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise BadRequest(f"'response_format' must be {{type: text | json_object | json_schema}}, got {fmt!r}")
        if kind == "json_schema" and not isinstance(fmt.get("json_schema"), dict):
            raise BadRequest("'response_format' of type json_schema needs a 'json_schema' object")
        if kind != "text":
            out["response_format"] = fmt
    return out


def parse_chat_body(body: Any) -> GenerateRequest:
    """Turn a ``/v1/chat/completions`` JSON body into a :class:`GenerateRequest`.

    Raises:
        BadRequest: The body is not a valid chat request (the message says which field and why).
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects")
    messages = tuple(_message(m, i) for i, m in enumerate(msgs))
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise BadRequest(f"'logprobs' must be true or false, got {logprobs!r}")
    top = _opt_int(body, "top_logprobs", 0)
    return GenerateRequest(messages=messages, logprobs=bool(logprobs), top_logprobs=top if top else 0,
                           **_sampling(body), **_tools(body))


def parse_completion_body(body: Any) -> GenerateRequest:
    """Turn a ``/v1/completions`` JSON body into a raw-prompt :class:`GenerateRequest`.

    Raises:
        BadRequest: The body is not a valid completion request.
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string (one prompt per call)")
    if body.get("echo"):
        raise BadRequest("'echo' is not supported by llmlab serve")
    lp = _opt_int(body, "logprobs", 0)
    return GenerateRequest(prompt=prompt, logprobs=lp is not None, top_logprobs=lp if lp is not None else 0,
                           **_sampling(body))


# -- response building -----------------------------------------------------------------------------------

def _usage(resp: GenerateResponse) -> dict[str, int]:
    u = resp.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def _chat_logprobs(resp: GenerateResponse, i: int) -> dict[str, Any] | None:
    if resp.logprobs is None:
        return None
    return {"content": [
        {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
         "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())} for k, v in t.top.items()]}
        for t in resp.logprobs[i]
    ]}


def _completion_logprobs(resp: GenerateResponse, i: int) -> dict[str, Any] | None:
    if resp.logprobs is None:
        return None
    seq = resp.logprobs[i]
    offsets, pos = [], 0
    for t in seq:
        offsets.append(pos)
        pos += len(t.token)
    return {"tokens": [t.token for t in seq], "token_logprobs": [t.logprob for t in seq],
            "top_logprobs": [dict(t.top) for t in seq], "text_offset": offsets}


def _calls_json(resp: GenerateResponse, i: int) -> list[dict[str, Any]]:
    if not resp.tool_calls or not resp.tool_calls[i]:
        return []
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in resp.tool_calls[i]]


def _finish(resp: GenerateResponse, i: int) -> str:
    return "tool_calls" if resp.tool_calls and resp.tool_calls[i] else resp.finish_reasons[i]


def chat_response(resp: GenerateResponse, name: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for ``resp`` (tool calls → ``finish_reason: "tool_calls"``)."""
    choices = []
    for i, t in enumerate(resp.texts):
        calls = _calls_json(resp, i)
        msg: dict[str, Any] = {"role": "assistant", "content": t if t or not calls else None}
        if calls:
            msg["tool_calls"] = calls
        choices.append({"index": i, "message": msg, "logprobs": _chat_logprobs(resp, i),
                        "finish_reason": _finish(resp, i)})
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": name, "choices": choices, "usage": _usage(resp),
    }


def completion_response(resp: GenerateResponse, name: str) -> dict[str, Any]:
    """An OpenAI ``text_completion`` object for ``resp``."""
    return {
        "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
        "model": name,
        "choices": [{"index": i, "text": t, "logprobs": _completion_logprobs(resp, i),
                     "finish_reason": resp.finish_reasons[i]} for i, t in enumerate(resp.texts)],
        "usage": _usage(resp),
    }


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {dumps(obj).decode()}\n\n"


def stream_chunks(resp: GenerateResponse, name: str, chat: bool, include_usage: bool) -> Iterator[str]:
    """Server-sent events for ``resp`` in the OpenAI chunk format, ending with ``data: [DONE]``."""
    created = int(time.time())
    base: dict[str, Any] = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
                            "object": "chat.completion.chunk" if chat else "text_completion",
                            "created": created, "model": name}
    if include_usage:
        base["usage"] = None

    def chunk(i: int, piece: str | None, finish: str | None, logprobs: Any = None, role: bool = False,
              calls: list[dict[str, Any]] | None = None) -> str:
        if chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if piece is not None:
                delta["content"] = piece
            if calls:
                delta["tool_calls"] = [{"index": k, **c} for k, c in enumerate(calls)]
            choice = {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        else:
            choice = {"index": i, "text": piece if piece is not None else "", "logprobs": logprobs,
                      "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    for i, text in enumerate(resp.texts):
        if chat:
            yield chunk(i, None, None, role=True)
        if resp.logprobs is not None:
            lp = _chat_logprobs(resp, i) if chat else _completion_logprobs(resp, i)
            yield chunk(i, text, None, lp)
        else:
            for piece in _PIECES.findall(text):
                yield chunk(i, piece, None)
        calls = _calls_json(resp, i) if chat else []
        if calls:
            yield chunk(i, None, None, calls=calls)
        yield chunk(i, None, _finish(resp, i) if chat else resp.finish_reasons[i])
    if include_usage:
        yield _sse({**base, "choices": [], "usage": _usage(resp)})
    yield "data: [DONE]\n\n"


def error_status(exc: BaseException) -> int:
    """The HTTP status a backend failure becomes."""
    if isinstance(exc, RateLimitError):
        return 429
    if isinstance(exc, BackendTimeoutError):
        return 504
    if isinstance(exc, BackendConnectionError):
        return 502
    if isinstance(exc, BackendError):
        if exc.status is not None and 400 <= exc.status <= 599:
            return exc.status
        return 503 if exc.retryable else 500
    if isinstance(exc, (BadRequest, UnsupportedFeatureError, ContextWindowExceededError, ConfigError)):
        return 400
    if isinstance(exc, BudgetExceededError):
        return 402
    return 500


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = "invalid_request_error" if 400 <= status < 500 and status != 429 else (
        "rate_limit_error" if status == 429 else "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def retry_after_headers(retry_after: float | None) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1 when positive) and the exact ``retry-after-ms``."""
    if retry_after is None:
        return {}
    return {"Retry-After": str(math.ceil(retry_after)), "retry-after-ms": str(round(retry_after * 1000))}


# -- the app ---------------------------------------------------------------------------------------------

def _require(package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingExtraError(package, "web", "llmlab serve") from None


def create_app(model: Model | Backend, served_name: str | None = None) -> FastAPI:
    """Build the OpenAI-compatible FastAPI app in front of ``model``.

    Args:
        model: A :class:`Model` (used as is) or a :class:`Backend` (wrapped in a Model with retries off
            and concurrency 64, so failures reach the client).
        served_name: The model name clients use and ``/v1/models`` lists (default: the backend's).

    Returns:
        The FastAPI application (run it with uvicorn).

    Raises:
        MissingExtraError: fastapi is not installed.

    Example:
        >>> app = create_app(Model("mock:echo"), served_name="echo")
        >>> sorted(r.path for r in app.routes if r.path.startswith("/v1"))
        ['/v1/chat/completions', '/v1/completions', '/v1/models']
    """
    fastapi = _require("fastapi")
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse

    m = model if isinstance(model, Model) else Model(
        model, retry=RetryPolicy(max_retries=0), concurrency=DEFAULT_CONCURRENCY, validate_schema=False)
    name = served_name if served_name is not None else m.name
    accepted = {name, m.name}
    stats = ServerStats()
    app: FastAPI = fastapi.FastAPI(title="llmlab serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.llmlab_model = m
    app.state.llmlab_stats = stats

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(_error_body(status, message), status_code=status, headers=headers)

    async def handle(request: Request, endpoint: str) -> Response:
        chat = endpoint == "chat.completions"
        try:
            body = loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"the request body is not valid JSON ({exc})")
        try:
            req = parse_chat_body(body) if chat else parse_completion_body(body)
            asked = body.get("model")
            if asked is not None and asked not in accepted:
                return error(404, f"The model '{asked}' does not exist; this server serves '{name}'")
            stream = body.get("stream") is True
            opts = body.get("stream_options")
            include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        except (BadRequest, ConfigError) as exc:
            return error(400, str(exc))
        stats.start(endpoint)
        try:
            resp = await m.generate(req)
        except Exception as exc:
            stats.end(True)
            status = error_status(exc)
            if not isinstance(exc, LabError):
                log.exception("llmlab serve: unexpected error")
                return error(500, f"internal error: {type(exc).__name__}: {exc}")
            headers = retry_after_headers(exc.retry_after) if isinstance(exc, RateLimitError) else None
            return error(status, str(exc), headers)
        stats.end(False)
        if stream:
            async def events() -> AsyncIterator[str]:
                for ev in stream_chunks(resp, name, chat, include_usage):
                    yield ev

            return StreamingResponse(events(), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        payload = chat_response(resp, name) if chat else completion_response(resp, name)
        return Response(dumps(payload), media_type="application/json")

    async def chat_completions(request: Request) -> Response:
        return await handle(request, "chat.completions")

    async def completions(request: Request) -> Response:
        return await handle(request, "completions")

    entry: dict[str, Any] = {"id": name, "object": "model", "created": 0, "owned_by": "llmlab"}
    caps = m.capabilities
    if caps.context_length is not None:
        entry["max_model_len"] = caps.context_length  # as vLLM lists it
    # What the served backend can do; structured_output false tells a client to validate schemas itself.
    entry["llmlab"] = {"structured_output": caps.structured_output, "tools": caps.tools, "images": caps.images,
                       "logprobs": caps.logprobs, "raw_completion": caps.raw_completion}

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [entry]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": name})

    async def get_stats(request: Request) -> Response:
        return JSONResponse(stats.as_dict())

    async def reset_stats(request: Request) -> Response:
        stats.reset()
        return JSONResponse(stats.as_dict())

    # Plain Starlette routes: the handlers parse bodies themselves (clear 400s, no per-call validation cost).
    app.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_route("/v1/completions", completions, methods=["POST"])
    app.add_route("/v1/models", models, methods=["GET"])
    app.add_route("/health", health, methods=["GET"])
    app.add_route("/llmlab/stats", get_stats, methods=["GET"])
    app.add_route("/llmlab/stats/reset", reset_stats, methods=["POST"])
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0`` picks a free one).

    Raises:
        ConfigError: The address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP;
    # without it small responses wait ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The ``http://host:port/v1`` base URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


@click.command("serve")
@click.option("--model", "-m", "model_spec", required=True,
              help="Backend to serve: hf:<id or path> | mock:<script> | openai:<model>@<url>[,<url>...]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--name", default=None, help="Model name clients use (default: the backend's model name).")
@click.option("--concurrency", type=click.IntRange(1, 100_000), default=DEFAULT_CONCURRENCY, show_default=True,
              help="Most backend calls in flight at once.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="warning", show_default=True)
def serve_command(model_spec: str, host: str, port: int, name: str | None, concurrency: int,
                  log_level: str) -> None:
    """Serve any backend as an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions)."""
    uvicorn = _require("uvicorn")
    model = Model(model_spec, retry=RetryPolicy(max_retries=0), concurrency=concurrency, validate_schema=False)
    app = create_app(model, name)
    sock = bind_socket(host, port)
    served = name if name is not None else model.name
    click.echo(f"llmlab serve: {model_spec} as '{served}' at {url_of(sock)}  (Ctrl-C to stop)")
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
