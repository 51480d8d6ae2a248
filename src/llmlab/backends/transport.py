"""A light HTTP transport for OpenAI-compatible servers: aiohttp, JSON built and parsed by us.

Why not the openai SDK: through ``AsyncOpenAI`` + httpx one call cost ~3-5 ms of client CPU on the 2-core
development VM (request models, response validation, httpx/anyio connection pool), which capped an eval's
request phase at high concurrency well below lm-evaluation-harness's plain aiohttp client. This module
sends the JSON body the backend built, reads the reply as bytes and parses it with orjson when it is
installed (stdlib ``json`` otherwise): ~0.4 ms of client CPU per call (``bench/peers.py``).

What it keeps from the SDK path: keep-alive connection reuse, a per-call timeout, ``Authorization``,
server-sent-event streaming (:meth:`AiohttpTransport.stream`), and every failure mapped to
:mod:`llmlab.core.errors` so the retry layer of :class:`~llmlab.backends.model.Model` still tells
429/5xx/timeouts/connection errors (retried, ``Retry-After`` honoured) from other 4xx (not retried).

Deliberate choices:
- No connection cap in the connector (aiohttp's default is 100): the Model's limiter bounds calls in
  flight, and a second, smaller cap silently throttled concurrency 128 to 100.
- A session belongs to one event loop. ``run_sync`` may start a new loop per CLI step, so a session made
  on a loop that is gone is dropped and a new one is made on the running loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from llmlab.core.errors import BackendConnectionError, BackendTimeoutError, MissingExtraError

try:  # orjson is optional (the `fast` extra); the stdlib is the fallback
    import orjson

    def dumps(obj: Any) -> bytes:
        """JSON bytes of ``obj`` (orjson)."""
        return orjson.dumps(obj)

    loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - exercised only without orjson
    def dumps(obj: Any) -> bytes:
        """JSON bytes of ``obj`` (stdlib json, compact)."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    loads = json.loads


class HTTPReply:
    """A finished HTTP exchange: status, headers (case-insensitive) and the raw body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is not JSON)."""
        try:
            return loads(self.body)
        except ValueError:
            return None


class AiohttpTransport:
    """One base URL's keep-alive HTTP client.

    Args:
        base_url: ``http(s)://host:port/v1``.
        api_key: Sent as ``Authorization: Bearer <key>``.
        timeout: Default seconds per call (a call may pass its own).

    Raises:
        MissingExtraError: aiohttp is not installed.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        try:
            import aiohttp
        except ImportError:  # pragma: no cover - aiohttp is a core dependency
            raise MissingExtraError("aiohttp", "all", "the openai backend's default transport") from None
        self._aiohttp = aiohttp
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[float, Any] = {}

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            if self._session is not None:
                _drop(self._session)  # made on a loop that is gone: close its sockets without awaiting
            connector = self._aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300)
            self._session = self._aiohttp.ClientSession(
                connector=connector, headers=self.headers, skip_auto_headers=("User-Agent",),
                json_serialize=json.dumps)
            self._loop = loop
        return self._session

    def _timeout(self, seconds: float | None) -> Any:
        s = self.timeout if seconds is None else seconds
        t = self._timeouts.get(s)
        if t is None:
            t = self._timeouts[s] = self._aiohttp.ClientTimeout(total=s)
        return t

    def _connection_error(self, exc: BaseException) -> BackendConnectionError:
        return BackendConnectionError(f"cannot reach {self.base_url} ({type(exc).__name__}: {exc})")

    def _timeout_error(self, seconds: float | None) -> BackendTimeoutError:
        s = self.timeout if seconds is None else seconds
        return BackendTimeoutError(f"{self.base_url}: no answer in {s:g}s; raise --timeout if the model is slow")

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                      timeout: float | None = None) -> HTTPReply:
        """Send one request and read the whole reply.

        Raises:
            BackendTimeoutError: No full answer within the timeout.
            BackendConnectionError: The server could not be reached or dropped the connection.
        """
        session = self._client()
        data = dumps(body) if body is not None else None
        try:
            async with session.request(method, self.base_url + path, data=data,
                                       timeout=self._timeout(timeout)) as resp:
                raw = await resp.read()
                return HTTPReply(resp.status, resp.headers, raw)
        except TimeoutError:
            raise self._timeout_error(timeout) from None
        except self._aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc

    async def stream(self, path: str, body: dict[str, Any], timeout: float | None = None,
                     on_error: Callable[[HTTPReply], BaseException] | None = None) -> AsyncIterator[Any]:
        """POST ``body`` and yield each server-sent event's JSON (``data: [DONE]`` ends it).

        A reply that is not 200 is read whole and raised through ``on_error`` (the backend's mapping).

        Raises:
            BackendTimeoutError: The stream did not finish within the timeout.
            BackendConnectionError: The server could not be reached or dropped the stream.
        """
        session = self._client()
        try:
            async with session.post(self.base_url + path, data=dumps(body), timeout=self._timeout(timeout),
                                    headers={"Accept": "text/event-stream"}) as resp:
                if resp.status != 200:
                    reply = HTTPReply(resp.status, resp.headers, await resp.read())
                    if on_error is not None:
                        raise on_error(reply)
                    raise self._connection_error(RuntimeError(f"HTTP {resp.status}"))
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return
                    if payload:
                        yield loads(payload)
        except TimeoutError:
            raise self._timeout_error(timeout) from None
        except self._aiohttp.ClientError as exc:
            raise self._connection_error(exc) from exc

    async def warm(self, n: int, timeout: float = 5.0) -> None:
        """Open idle connections before a run: aiohttp opens its own on demand, so nothing here."""

    async def aclose(self) -> None:
        """Close the session (if it belongs to the running loop; otherwise just drop it)."""
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        try:
            same = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same = False
        if same:
            await session.close()
        else:
            _drop(session)


def _drop(session: Any) -> None:
    """Close a session's sockets synchronously (its loop is gone, so it cannot be awaited)."""
    connector = session.connector
    if connector is not None and not connector.closed:
        connector._close()


# -- a minimal HTTP/1.1 client for plain-http servers ------------------------------------------------------

class _Conn(asyncio.Protocol):
    """One keep-alive connection: writes a request, collects one response (Content-Length or chunked)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[HTTPReply] | None = None
        self.closed = False
        self.keep = True
        self.got_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.got_bytes = True
        w = self.waiter
        if w is not None and not w.done():
            try:
                reply = self._parse(False)
            except ValueError as exc:
                w.set_exception(exc)
                return
            if reply is not None:
                w.set_result(reply)

    def eof_received(self) -> bool:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            try:
                reply = self._parse(True)
            except ValueError as exc:
                w.set_exception(exc)
                return False
            if reply is not None:
                w.set_result(reply)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionResetError("the server closed the connection before answering"))

    def _parse(self, eof: bool) -> HTTPReply | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        start = end + 4
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.keep = False
        length = headers.get("content-length")
        if length is not None:
            n = int(length)
            if len(buf) - start < n:
                return None
            body = bytes(buf[start:start + n])
            del buf[:start + n]
            return HTTPReply(status, headers, body)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = bytearray()
            pos = start
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if size == 0:
                    tail = buf.find(b"\r\n\r\n", eol)  # trailers end with an empty line
                    if tail < 0:
                        if buf[eol:eol + 4] != b"\r\n\r\n":
                            return None
                        tail = eol
                    del buf[:tail + 4]
                    return HTTPReply(status, headers, bytes(out))
                if len(buf) < eol + 2 + size + 2:
                    return None
                out += buf[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
        if status in (204, 304) or 100 <= status < 200:
            del buf[:start]
            return HTTPReply(status, headers, b"")
        if not eof:  # the body runs until the server closes
            return None
        self.keep = False
        body = bytes(buf[start:])
        buf.clear()
        return HTTPReply(status, headers, body)


class FastHTTPTransport(AiohttpTransport):
    """Plain ``http://`` calls on a small HTTP/1.1 client of our own; streams and ``https`` use aiohttp.

    An asyncio protocol per keep-alive connection, the request head written from a prepared template,
    the response parsed here (Content-Length or chunked): ~0.1 ms of client CPU per call where aiohttp
    takes ~0.35 ms (``bench/peers.py``). A call that fails on a reused connection before any byte of
    the answer arrived (the server closed an idle keep-alive connection) is sent again once on a new one.

    Args:
        base_url: ``http://host:port/v1``.
        api_key: Sent as ``Authorization: Bearer <key>``.
        timeout: Default seconds per call.
    """

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        super().__init__(base_url, api_key, timeout)
        from urllib.parse import urlsplit

        u = urlsplit(self.base_url)
        if u.scheme != "http" or u.hostname is None:
            raise ValueError(f"FastHTTPTransport takes http:// URLs, got {base_url!r}")
        self.host = u.hostname
        self.port = u.port if u.port is not None else 80
        self.path = u.path.rstrip("/")
        host_header = u.netloc.rpartition("@")[2]
        self._head = (f"Host: {host_header}\r\nAuthorization: Bearer {api_key}\r\n"
                      "Content-Type: application/json\r\nAccept: application/json\r\n").encode("latin-1")
        self._idle: list[_Conn] = []
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Conn:
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        return conn

    def _drop_idle(self) -> None:
        for c in self._idle:
            if c.transport is not None:
                c.transport.abort()
        self._idle.clear()

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                      timeout: float | None = None) -> HTTPReply:
        """Send one request and read the whole reply (see :meth:`AiohttpTransport.request`)."""
        loop = asyncio.get_running_loop()
        if self._pool_loop is not loop:
            self._drop_idle()
            self._pool_loop = loop
        data = dumps(body) if body is not None else b""
        head = (f"{method} {self.path}{path} HTTP/1.1\r\nContent-Length: {len(data)}\r\n").encode("latin-1")
        raw = b"".join((head, self._head, b"\r\n", data))
        seconds = self.timeout if timeout is None else timeout
        for attempt in (0, 1):
            conn: _Conn | None = None
            reused = False
            while self._idle:
                c = self._idle.pop()
                if not c.closed and c.transport is not None and not c.transport.is_closing():
                    conn, reused = c, True
                    break
            try:
                async with asyncio.timeout(seconds):
                    if conn is None:
                        conn = await self._connect(loop)
                    conn.waiter = loop.create_future()
                    conn.got_bytes = False
                    assert conn.transport is not None
                    conn.transport.write(raw)
                    reply = await conn.waiter
            except TimeoutError:
                if conn is not None and conn.transport is not None:
                    conn.transport.abort()
                raise self._timeout_error(timeout) from None
            except (OSError, ValueError) as exc:
                stale = reused and conn is not None and not conn.got_bytes
                if conn is not None and conn.transport is not None:
                    conn.transport.abort()
                if stale and attempt == 0:
                    continue  # an idle keep-alive connection the server had closed: once more, fresh
                raise self._connection_error(exc) from exc
            conn.waiter = None
            if conn.keep and not conn.closed and not conn.buf:
                self._idle.append(conn)
            elif conn.transport is not None:
                conn.transport.close()
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def warm(self, n: int, timeout: float = 5.0) -> None:
        """Open up to ``n`` idle keep-alive connections at once (best effort: failures are left to the calls).

        A run at concurrency 128 otherwise opens its 128 connections one worker at a time while the first
        wave is being sent, which spreads that wave (and every later one) over tens of milliseconds.
        """
        loop = asyncio.get_running_loop()
        if self._pool_loop is not loop:
            self._drop_idle()
            self._pool_loop = loop
        need = n - len(self._idle)
        if need <= 0:
            return
        try:
            async with asyncio.timeout(timeout):
                made = await asyncio.gather(*(self._connect(loop) for _ in range(need)), return_exceptions=True)
        except TimeoutError:
            return
        self._idle.extend(c for c in made if isinstance(c, _Conn))

    async def aclose(self) -> None:
        """Close idle connections and the aiohttp session used for streams."""
        for c in self._idle:
            if c.transport is not None:
                c.transport.close()
        self._idle.clear()
        await super().aclose()


def make_transport(base_url: str, api_key: str, timeout: float, kind: str = "light") -> AiohttpTransport:
    """``light``: our HTTP/1.1 client for ``http://`` (aiohttp for ``https://`` and streams); ``aiohttp``: aiohttp."""
    if kind == "light" and base_url.startswith("http://"):
        return FastHTTPTransport(base_url, api_key, timeout)
    return AiohttpTransport(base_url, api_key, timeout)
