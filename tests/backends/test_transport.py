"""The light HTTP/1.1 transport against a hand-written asyncio server (framing, keep-alive, failures)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from llmlab.backends.openai_compat import assemble_stream
from llmlab.backends.transport import AiohttpTransport, FastHTTPTransport, _Conn, make_transport
from llmlab.core.errors import BackendConnectionError, BackendTimeoutError

pytestmark = pytest.mark.anyio

Handler = Callable[[int, bytes], bytes | None]  # (request number, request bytes) -> raw response (None: hang)


async def start(handler: Handler, close_after: bool = False) -> tuple[asyncio.Server, str, list[int]]:
    """A server that answers each request with ``handler``'s bytes; ``close_after`` closes after each one."""
    counter = [0]
    conns: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                body = await reader.readexactly(length)
                counter[0] += 1
                out = handler(counter[0], head + body)
                if out is None:
                    await asyncio.sleep(10)
                    return
                if out == b"":  # close without answering
                    writer.close()
                    return
                writer.write(out)
                await writer.drain()
                if close_after:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1", conns


def ok(body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def test_content_length_keep_alive_and_request_head() -> None:
    seen: list[bytes] = []

    def handler(n: int, raw: bytes) -> bytes:
        seen.append(raw)
        return ok(json.dumps({"n": n}).encode())

    server, url, conns = await start(handler)
    t = FastHTTPTransport(url, "sk-1", 5)
    replies = [await t.request("POST", "/chat/completions", {"x": i}) for i in range(3)]
    await t.aclose()
    server.close()
    assert [r.json() for r in replies] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert len(conns) == 1  # one keep-alive connection for three calls
    head = seen[0].decode()
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert "Authorization: Bearer sk-1\r\n" in head and head.endswith('{"x":0}')


async def test_chunked_body_and_split_packets() -> None:
    payload = b'{"choices": [], "long": "' + b"a" * 5000 + b'"}'
    chunks = b"".join(f"{len(payload[i:i + 700]):x}\r\n".encode() + payload[i:i + 700] + b"\r\n"
                      for i in range(0, len(payload), 700))
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    conn = _Conn()
    conn.waiter = asyncio.get_running_loop().create_future()
    for i in range(0, len(raw), 333):  # arrives in pieces
        conn.data_received(raw[i:i + 333])
    reply = await conn.waiter
    assert reply.status == 200 and reply.body == payload and not conn.buf


async def test_error_status_headers_and_connection_close() -> None:
    def handler(n: int, raw: bytes) -> bytes:
        body = b'{"error": {"message": "slow down"}}'
        return (f"HTTP/1.1 429 Too Many Requests\r\nRetry-After-Ms: 250\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    server, url, conns = await start(handler, close_after=True)
    t = FastHTTPTransport(url, "k", 5)
    r1 = await t.request("POST", "/chat/completions", {})
    r2 = await t.request("POST", "/chat/completions", {})
    await t.aclose()
    server.close()
    assert r1.status == 429 and r1.headers["retry-after-ms"] == "250" and r1.json()["error"]["message"] == "slow down"
    assert r2.status == 429 and len(conns) == 2  # "Connection: close" is honoured: a new connection


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_new_one() -> None:
    # Request 2 meets a server that closes the kept-alive connection instead of answering (its idle
    # timeout raced our write): it is sent again on a new connection. A fresh connection failing the
    # same way is not retried.
    server, url, conns = await start(lambda n, raw: b"" if n in (2, 4, 5) else ok(b"{}"))
    t = FastHTTPTransport(url, "k", 5)
    await t.request("POST", "/x", {})
    r = await t.request("POST", "/x", {})
    assert r.status == 200 and len(conns) == 2
    t._drop_idle()
    with pytest.raises(BackendConnectionError, match="closed the connection"):
        await t.request("POST", "/x", {})  # request 4 on a fresh connection: no second try
    await t.aclose()
    server.close()


async def test_timeout_and_unreachable() -> None:
    server, url, _ = await start(lambda n, raw: None)
    t = FastHTTPTransport(url, "k", 0.2)
    with pytest.raises(BackendTimeoutError):
        await t.request("POST", "/x", {})
    await t.aclose()
    server.close()
    await server.wait_closed()
    dead = FastHTTPTransport(url, "k", 2)
    with pytest.raises(BackendConnectionError):
        await dead.request("POST", "/x", {})
    await dead.aclose()


async def test_warm_opens_the_connections_up_front_and_calls_reuse_them() -> None:
    server, url, conns = await start(lambda n, raw: ok(json.dumps({"n": n}).encode()))
    t = FastHTTPTransport(url, "k", 5)
    await t.warm(8)
    await asyncio.sleep(0.05)  # let the server accept them
    assert len(conns) == 8
    await t.warm(8)  # already warm: nothing more is opened
    replies = await asyncio.gather(*(t.request("POST", "/x", {}) for _ in range(8)))
    assert sorted(r.json()["n"] for r in replies) == list(range(1, 9))
    assert len(conns) == 8  # eight calls at once went over the eight warm connections
    await t.aclose()
    server.close()
    await server.wait_closed()
    dead = FastHTTPTransport(url, "k", 2)
    await dead.warm(4)  # best effort: an unreachable server is left for the calls to report
    assert dead._idle == []
    with pytest.raises(BackendConnectionError):
        await dead.request("POST", "/x", {})
    await dead.aclose()


async def test_garbage_from_the_server_is_a_connection_error() -> None:
    server, url, _ = await start(lambda n, raw: b"SSH-2.0-OpenSSH\r\n\r\n")
    t = FastHTTPTransport(url, "k", 2)
    with pytest.raises(BackendConnectionError, match="not an HTTP response"):
        await t.request("POST", "/x", {})
    await t.aclose()
    server.close()


def test_make_transport_picks_by_scheme() -> None:
    assert type(make_transport("http://h:1/v1", "k", 1)) is FastHTTPTransport
    assert type(make_transport("https://h/v1", "k", 1)) is AiohttpTransport
    assert type(make_transport("http://h:1/v1", "k", 1, "aiohttp")) is AiohttpTransport


async def test_assemble_stream_merges_tool_call_deltas_and_choices() -> None:
    events = [
        {"model": "m", "choices": [{"index": 1, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "add",
                                                                                              "arguments": ""}}]}}]},
        {"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}}]},
        {"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [{"index": 1, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    ]

    async def gen() -> AsyncIterator[dict[str, object]]:
        for e in events:
            yield e

    out = await assemble_stream(gen(), chat=True)
    c0, c1 = out["choices"]
    assert c0["message"]["content"] == "Hello" and c0["finish_reason"] == "stop"
    assert c1["message"]["tool_calls"] == [{"id": "c1", "type": "function",
                                            "function": {"name": "add", "arguments": '{"a": 1}'}}]
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 4} and out["model"] == "m"
