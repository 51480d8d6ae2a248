"""``llmlab serve`` over real HTTP on 127.0.0.1: the openai SDK directly, raw httpx, and the CLI process."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from llmlab.backends.base import Backend, Capabilities, GenerateRequest, GenerateResponse, Usage
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.backends.openai_compat import OpenAIBackend
from llmlab.backends.server import create_app, stream_chunks
from llmlab.cli import main
from llmlab.core.errors import BackendConnectionError, ContextWindowExceededError
from tests.helpers.servers import ServerURL, serve_subprocess, serve_thread, server_stats

USER = [{"role": "user", "content": "the quick brown fox"}]


class ChatOnlyBackend(Backend):
    """No raw completion; raises a context-window error for prompts containing 'huge'."""

    name = "chatonly"
    model = "chatonly"
    capabilities = Capabilities(chat=True)

    @classmethod
    def from_spec(cls, spec: str) -> ChatOnlyBackend:
        return cls()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        assert request.messages is not None
        if "huge" in request.messages[-1].content:
            raise ContextWindowExceededError(5000, 100, 4096)
        return GenerateResponse(texts=["ok"], finish_reasons=["stop"], usage=Usage(1, 1))


@pytest.fixture(scope="module")
def echo() -> Iterator[ServerURL]:
    with serve_thread("mock:echo", name="served-echo") as url:
        yield url


@pytest.fixture
def sdk(echo: ServerURL) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=echo, api_key="EMPTY", max_retries=0)
    yield c
    c.close()


def test_models_lists_served_name(echo: ServerURL) -> None:
    data = httpx.get(f"{echo}/models").json()
    assert [m["id"] for m in data["data"]] == ["served-echo"]
    assert httpx.get(f"{echo.root}/health").json()["status"] == "ok"


def test_chat_and_completion_through_sdk(sdk: openai.OpenAI) -> None:
    chat = sdk.chat.completions.create(model="served-echo", messages=USER, n=2)  # type: ignore[arg-type]
    assert [c.message.content for c in chat.choices] == ["the quick brown fox"] * 2
    assert [c.index for c in chat.choices] == [0, 1]
    assert chat.model == "served-echo" and chat.object == "chat.completion"
    assert chat.usage is not None and chat.usage.completion_tokens == 8
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + 8
    comp = sdk.completions.create(model="served-echo", prompt="a raw prompt", max_tokens=2)
    assert comp.choices[0].text == "a raw"
    assert comp.usage is not None and comp.usage.completion_tokens == 2


def test_backend_model_name_is_also_accepted(sdk: openai.OpenAI) -> None:
    out = sdk.chat.completions.create(model="mock-echo", messages=USER)  # type: ignore[arg-type]
    assert out.choices[0].message.content == "the quick brown fox"


def test_logprobs_through_sdk(sdk: openai.OpenAI) -> None:
    chat = sdk.chat.completions.create(model="served-echo", messages=USER, logprobs=True,  # type: ignore[arg-type]
                                       top_logprobs=1)
    lp = chat.choices[0].logprobs
    assert lp is not None and lp.content is not None
    assert [t.token for t in lp.content] == ["the", "quick", "brown", "fox"]
    assert lp.content[1].logprob == pytest.approx(-0.2)
    comp = sdk.completions.create(model="served-echo", prompt="x y", logprobs=0)
    assert comp.choices[0].logprobs is not None
    assert comp.choices[0].logprobs.tokens == ["x", "y"]
    assert comp.choices[0].logprobs.text_offset == [0, 1]


def test_streaming_chat_with_usage(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(model="served-echo", messages=USER, stream=True,  # type: ignore[arg-type]
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "the quick brown fox"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4  # streamed in pieces
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_completion_without_usage(sdk: openai.OpenAI) -> None:
    chunks = list(sdk.completions.create(model="served-echo", prompt="one two", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "one two"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_ends_with_done_marker(echo: ServerURL) -> None:
    with httpx.stream("POST", f"{echo}/chat/completions",
                      json={"model": "served-echo", "messages": USER, "stream": True, "n": 2}) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    assert all(ln.startswith("data: ") for ln in lines)
    events = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert sum(c["finish_reason"] == "stop" for e in events for c in e["choices"]) == 2  # one finish per choice


def test_stream_chunks_keep_logprobs_aligned() -> None:
    from llmlab.backends.base import TokenLogprob

    resp = GenerateResponse(texts=["ab cd"], finish_reasons=["length"],
                            logprobs=[[TokenLogprob("ab", -1.0), TokenLogprob(" cd", -2.0)]])
    events = list(stream_chunks(resp, "m", chat=True, include_usage=False))
    # role chunk, one content chunk carrying all logprobs, finish chunk, [DONE]
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert len(events) == 4 and chunks[1]["choices"][0]["logprobs"]["content"][1]["logprob"] == -2.0
    assert chunks[2]["choices"][0]["finish_reason"] == "length"


# -- errors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "needle"), [
    (b"{not json", "not valid JSON"),
    (b'{"model": "served-echo"}', "'messages' must be a non-empty list"),
    (b'{"messages": [{"role": "robot", "content": "x"}]}', "messages[0].role"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "'temperature' must be a number"),
    (b'{"messages": [{"role": "user", "content": "x"}], "n": 0}', "'n' must be >= 1"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stop": [1]}', "'stop' must be"),
])
def test_malformed_body_is_400_with_clear_message(echo: ServerURL, body: bytes, needle: str) -> None:
    before = server_stats(echo)["requests"]
    r = httpx.post(f"{echo}/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert needle in r.json()["error"]["message"]
    assert server_stats(echo)["requests"] == before  # rejected before reaching the backend


def test_unknown_model_is_404(echo: ServerURL) -> None:
    r = httpx.post(f"{echo}/chat/completions", json={"model": "gpt-9", "messages": USER})
    assert r.status_code == 404 and "served-echo" in r.json()["error"]["message"]


@pytest.mark.parametrize(("spec", "status"), [
    ("mock:echo?fail_500=1", 500),
    ("mock:echo?timeout_rate=1", 504),
])
def test_backend_failures_become_http_statuses(spec: str, status: int) -> None:
    with serve_thread(spec) as url:
        r = httpx.post(f"{url}/chat/completions", json={"messages": USER})
        stats = server_stats(url)
    assert r.status_code == status
    assert r.json()["error"]["code"] == status and "mock: injected" in r.json()["error"]["message"]
    assert {k: stats[k] for k in ("requests", "errors", "by_endpoint", "max_in_flight")} == {
        "requests": 1, "errors": 1, "by_endpoint": {"chat.completions": 1, "completions": 0}, "max_in_flight": 1}
    assert stats["first_request"] <= stats["last_response"]


def test_rate_limit_is_429_with_retry_after_headers() -> None:
    with serve_thread("mock:echo?fail_429=1&retry_after=2.5") as url:
        r = httpx.post(f"{url}/completions", json={"prompt": "x"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3" and r.headers["retry-after-ms"] == "2500"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_unsupported_feature_and_context_window_are_400() -> None:
    with serve_thread(ChatOnlyBackend()) as url:
        raw = httpx.post(f"{url}/completions", json={"prompt": "x"})
        big = httpx.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "huge"}]})
        ok = httpx.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert raw.status_code == 400 and "raw completion" in raw.json()["error"]["message"]
    assert big.status_code == 400 and "context window is 4096" in big.json()["error"]["message"]
    assert ok.status_code == 200


def test_stats_count_backend_calls_by_endpoint() -> None:
    with serve_thread("mock:echo") as url:
        c = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
        for _ in range(3):
            c.chat.completions.create(model=url.model, messages=USER)  # type: ignore[arg-type]
        for _ in range(2):
            c.completions.create(model=url.model, prompt="p", stream=True).close()
        c.close()
        stats = server_stats(url)
        reset = httpx.post(f"{url.root}/llmlab/stats/reset").json()
    assert {k: stats[k] for k in ("requests", "errors", "by_endpoint")} == {
        "requests": 5, "errors": 0, "by_endpoint": {"chat.completions": 3, "completions": 2}}
    assert stats["max_in_flight"] == 1 and stats["first_request"] < stats["last_response"]
    assert reset["requests"] == 0 and reset["first_request"] is None


def test_create_app_uses_a_given_model_as_is() -> None:
    model = Model("mock:text=fixed", concurrency=3)
    app = create_app(model, served_name="x")
    assert app.state.llmlab_model is model


# -- the CLI process ---------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_cli_server_subprocess_and_sigkill() -> None:
    with serve_subprocess("mock:echo?latency=0.01", name="proc-model") as url:
        assert url.model == "proc-model" and url.proc is not None
        model = Model(f"openai:proc-model@{url}")
        assert await model.complete("over a real socket") == "over a real socket"
        assert server_stats(url)["requests"] == 1
        url.proc.send_signal(signal.SIGKILL)
        url.proc.wait(timeout=10)
        with pytest.raises(BackendConnectionError):
            await OpenAIBackend("proc-model", [url]).generate(GenerateRequest.chat(USER))
        await model.aclose()


def test_cli_serve_port_in_use_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code = main(["serve", "--model", "mock:echo", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: cannot listen on 127.0.0.1") and "--port" in err
    assert "Traceback" not in err


def test_cli_serve_bad_spec_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--model", "nosuch:x", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Unknown backend 'nosuch'" in err


# -- in front of a tiny local transformers model -----------------------------------------------------------

HAVE_HF = (importlib.util.find_spec("llmlab.backends.hf") is not None
           and (Path(__file__).resolve().parents[1] / "helpers" / "tiny_hf.py").exists()
           and importlib.util.find_spec("transformers") is not None)
if HAVE_HF:
    from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture shared with hf tests


@pytest.mark.skipif(not HAVE_HF, reason="hf backend or tiny_hf helper not available")
@pytest.mark.anyio
async def test_serves_a_tiny_hf_model(request: pytest.FixtureRequest) -> None:
    model_dir = request.getfixturevalue("tiny_model_dir")
    with serve_thread(f"hf:{model_dir}", name="tiny") as url:
        backend = OpenAIBackend("tiny", [url])
        chat = await backend.generate(GenerateRequest.chat(USER, max_tokens=6, temperature=0.0,
                                                           logprobs=True, top_logprobs=2))
        raw = await backend.generate(GenerateRequest(prompt="The quick", max_tokens=4, temperature=1.0,
                                                     n=2, seed=1))
        again = await backend.generate(GenerateRequest(prompt="The quick", max_tokens=4, temperature=1.0,
                                                       n=2, seed=1))
        await backend.aclose()
    assert chat.usage.prompt_tokens > 0 and 0 < chat.usage.completion_tokens <= 6
    assert chat.logprobs is not None and len(chat.logprobs[0]) == chat.usage.completion_tokens
    assert all(t.logprob <= 0 and len(t.top) <= 2 for t in chat.logprobs[0])
    assert len(raw.texts) == 2 and raw.finish_reasons[0] in ("stop", "length")
    assert raw.texts == again.texts  # seeded sampling is reproducible across the HTTP hop


# -- tools, images, response_format --------------------------------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "find a fact",
                                            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]


def _tool_mock() -> MockBackend:
    call = {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]}
    return MockBackend(rules=[("^result:", "done"), ("look", call)], default="plain", model="tooly")


def test_tool_calls_over_http_with_finish_reason_and_tool_messages() -> None:
    backend = _tool_mock()
    with serve_thread(backend) as url:
        r = httpx.post(f"{url}/chat/completions", json={
            "model": url.model, "messages": [{"role": "user", "content": "look it up"}], "tools": TOOLS,
            "tool_choice": "auto"}).json()
        choice = r["choices"][0]
        assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
        call = choice["message"]["tool_calls"][0]
        assert call["type"] == "function" and call["function"] == {"name": "lookup", "arguments": '{"q": "x"}'}
        seen = backend.requests[-1]
        assert [t.name for t in seen.tools] == ["lookup"] and seen.tool_choice == "auto"
        assert seen.tools[0].parameters["properties"] == {"q": {"type": "string"}}
        follow = httpx.post(f"{url}/chat/completions", json={"model": url.model, "tools": TOOLS, "messages": [
            {"role": "user", "content": "look it up"}, choice["message"],
            {"role": "tool", "tool_call_id": call["id"], "content": "result: 42"}]}).json()
        assert follow["choices"][0]["message"]["content"] == "done"
        assert follow["choices"][0]["finish_reason"] == "stop"
        msgs = backend.requests[-1].messages
        assert msgs[1].tool_calls[0].id == call["id"] and msgs[2].role == "tool" and msgs[2].tool_call_id == call["id"]


def test_streamed_tool_calls_reach_the_openai_sdk() -> None:
    with serve_thread(_tool_mock()) as url:
        sdk = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
        chunks = list(sdk.chat.completions.create(model=url.model, stream=True, tools=TOOLS,  # type: ignore[arg-type]
                                                  messages=[{"role": "user", "content": "look"}]))
        sdk.close()
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) == 1 and deltas[0].function.name == "lookup" and deltas[0].function.arguments == '{"q": "x"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_image_parts_and_response_format_reach_the_backend() -> None:
    backend = MockBackend(["{}"], model="vis")
    fmt = {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}}
    with serve_thread(backend) as url:
        r = httpx.post(f"{url}/chat/completions", json={"model": url.model, "response_format": fmt, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]})
        models = httpx.get(f"{url}/models").json()["data"][0]
    assert r.status_code == 200 and backend.image_counts == [1]
    assert backend.requests[-1].response_format == fmt
    assert models["llmlab"]["structured_output"] is False and models["llmlab"]["images"] is True


@pytest.mark.parametrize(("extra", "needle"), [
    ({"tools": [{"type": "function"}]}, "tools[0]"),
    ({"tool_choice": 3}, "'tool_choice'"),
    ({"response_format": {"type": "yaml"}}, "'response_format'"),
    ({"response_format": {"type": "json_schema"}}, "needs a 'json_schema'"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "needs 'tool_call_id'"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "text or image_url"),
])
def test_malformed_tool_and_format_fields_are_400(extra: dict[str, object], needle: str) -> None:
    with serve_thread("mock:echo") as url:
        r = httpx.post(f"{url}/chat/completions", json={"messages": USER, **extra})
    assert r.status_code == 400 and needle in r.json()["error"]["message"]


def test_images_to_a_backend_without_vision_are_400() -> None:
    with serve_thread(ChatOnlyBackend()) as url:
        r = httpx.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]})
    assert r.status_code == 400 and "does not take image inputs" in r.json()["error"]["message"]
