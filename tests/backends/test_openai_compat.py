"""OpenAIBackend over real HTTP on 127.0.0.1 (``llmlab serve`` app in a thread), inside the Model stack."""

from __future__ import annotations

import email.utils
import socket
from collections.abc import Iterator

import anyio
import pytest

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    Message,
    TokenLogprob,
    Tool,
    Usage,
    content_images,
    image_part,
    make_backend,
    request_hash,
    text_part,
)
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model, RetryPolicy, recording
from llmlab.backends.openai_compat import (
    OpenAIBackend,
    OpenAISDKBackend,
    normalize_base_url,
    parse_retry_after,
)
from llmlab.core.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    ContextWindowExceededError,
    RateLimitError,
)
from tests.helpers.servers import ServerURL, serve_thread, server_stats

USER = [{"role": "user", "content": "hello there"}]


class TopLogprobBackend(Backend):
    """Returns fixed logprobs with top alternatives, to check the full mapping."""

    name = "toplp"
    model = "toplp"
    capabilities = Capabilities(chat=True, raw_completion=True, native_n=True, logprobs=True)

    @classmethod
    def from_spec(cls, spec: str) -> TopLogprobBackend:
        return cls()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        lps = [TokenLogprob("Hi", -0.5, {"Hi": -0.5, "Yo": -1.25}), TokenLogprob("!", -0.125, {"!": -0.125})]
        return GenerateResponse(texts=["Hi!"] * request.n, finish_reasons=["length"] * request.n,
                                usage=Usage(7, 2), logprobs=[lps] * request.n, model="toplp")


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[ServerURL, MockBackend]]:
    backend = MockBackend(None, model="echo")
    with serve_thread(backend) as url:
        yield url, backend


def client(url: ServerURL, **kw: object) -> OpenAIBackend:
    return OpenAIBackend(url.model, [url], **kw)  # type: ignore[arg-type]


# -- spec parsing and helpers --------------------------------------------------------------------------

def test_from_spec_pool_and_normalisation() -> None:
    b = OpenAIBackend.from_spec("org/model-7b@http://10.0.0.1:8000/v1,10.0.0.2:8000")
    assert b.model == "org/model-7b"
    assert [e.url for e in b.endpoints] == ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]
    # An '@' inside the model name is kept when the URL has a scheme.
    assert OpenAIBackend.from_spec("claude@2024@https://h.example/v1").model == "claude@2024"
    assert normalize_base_url("http://h:1/custom/") == "http://h:1/custom/"


def test_from_spec_env_base_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://envhost:9/v1")
    monkeypatch.delenv("LLMLAB_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    b = OpenAIBackend.from_spec("gpt-x")
    assert [e.url for e in b.endpoints] == ["http://envhost:9/v1"]
    assert b.endpoints[0].http.headers["Authorization"] == "Bearer sk-openai"
    monkeypatch.setenv("LLMLAB_API_KEY", "sk-lab")
    assert OpenAIBackend.from_spec("gpt-x").endpoints[0].http.headers["Authorization"] == "Bearer sk-lab"
    monkeypatch.delenv("LLMLAB_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert OpenAIBackend.from_spec("gpt-x").endpoints[0].http.headers["Authorization"] == "Bearer EMPTY"


@pytest.mark.parametrize("spec", ["@http://h:1/v1", "m@", "m@ , "])
def test_from_spec_rejects_incomplete(spec: str) -> None:
    with pytest.raises(ConfigError):
        OpenAIBackend.from_spec(spec)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(20.0)
    assert parse_retry_after({"retry-after": email.utils.formatdate(now - 50, usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_pick_prefers_least_in_flight_then_round_robin() -> None:
    b = OpenAIBackend("m", ["http://a:1/v1", "http://b:1/v1", "http://c:1/v1"])
    b.endpoints[0].in_flight = 2
    b.endpoints[2].in_flight = 1
    assert {b._pick().url for _ in range(6)} == {"http://b:1/v1"}
    b.endpoints[0].in_flight = b.endpoints[2].in_flight = 0
    assert [b._pick().url[7] for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


# -- calls over real HTTP --------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_chat_passes_every_parameter_and_maps_usage(echo: tuple[ServerURL, MockBackend]) -> None:
    url, backend = echo
    model = Model(client(url))
    resp = await model.generate(GenerateRequest.chat(
        USER, max_tokens=5, temperature=0.0, top_p=0.5, seed=10, sample_index=3, stop=("\n", "END")))
    assert resp.texts == ["hello there"]
    assert resp.finish_reasons == ["stop"]
    seen = backend.requests[-1]
    # Usage is what the server reported (the mock counts whitespace tokens of what it received).
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (backend.count_tokens(seen), 2)
    assert seen.messages is not None and seen.messages[0].content == "hello there"
    assert (seen.max_tokens, seen.temperature, seen.top_p, seen.stop) == (5, 0.0, 0.5, ("\n", "END"))
    assert seen.seed == 13  # seed + sample_index, so samples of one prompt differ
    assert model.ledger.prompt_tokens == resp.usage.prompt_tokens > 0
    await model.aclose()


@pytest.mark.anyio
async def test_raw_completion_and_n(echo: tuple[ServerURL, MockBackend]) -> None:
    url, backend = echo
    b = client(url)
    resp = await b.generate(GenerateRequest(prompt="one two three", n=3))
    assert resp.texts == ["one two three"] * 3
    assert backend.requests[-1].prompt == "one two three" and backend.requests[-1].n == 3
    assert resp.usage.completion_tokens == 9
    await b.aclose()


@pytest.mark.anyio
async def test_logprobs_chat_and_completion_with_top_alternatives() -> None:
    with serve_thread(TopLogprobBackend()) as url:
        b = client(url)
        chat = await b.generate(GenerateRequest.chat(USER, logprobs=True, top_logprobs=2, n=2))
        raw = await b.generate(GenerateRequest(prompt="x", logprobs=True, top_logprobs=2))
        await b.aclose()
    for resp in (chat, raw):
        assert resp.logprobs is not None
        assert [t.token for t in resp.logprobs[0]] == ["Hi", "!"]
        assert resp.logprobs[0][0].logprob == -0.5
        assert resp.logprobs[0][0].top == {"Hi": -0.5, "Yo": -1.25}
        assert resp.finish_reasons[0] == "length"
    assert chat.logprobs is not None and len(chat.logprobs) == 2


@pytest.mark.anyio
async def test_without_logprobs_none_are_returned(echo: tuple[ServerURL, MockBackend]) -> None:
    url, _ = echo
    b = client(url)
    assert (await b.generate(GenerateRequest.chat(USER))).logprobs is None
    await b.aclose()


# -- error mapping ----------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_500_is_retryable_with_status() -> None:
    with serve_thread("mock:echo?fail_500=1") as url:
        b = client(url)
        with pytest.raises(BackendError) as info:
            await b.generate(GenerateRequest.chat(USER))
        await b.aclose()
    assert info.value.status == 500 and info.value.retryable
    assert "injected HTTP 500" in str(info.value)
    assert b.pool_stats()[0]["errors"] == 1


@pytest.mark.anyio
async def test_429_carries_retry_after() -> None:
    with serve_thread("mock:echo?fail_429=1&retry_after=0.25") as url:
        b = client(url)
        with pytest.raises(RateLimitError) as info:
            await b.generate(GenerateRequest.chat(USER))
        await b.aclose()
    assert info.value.retry_after == pytest.approx(0.25)
    assert info.value.retryable and info.value.status == 429


@pytest.mark.anyio
async def test_timeout_when_server_hangs_longer_than_client() -> None:
    with serve_thread("mock:echo?timeout_rate=1&hang=1.0") as url:
        b = client(url, timeout=0.3)
        with pytest.raises(BackendTimeoutError):
            await b.generate(GenerateRequest.chat(USER))
        # A request's own timeout overrides the backend's.
        slow = client(url, timeout=30.0)
        with pytest.raises(BackendTimeoutError):
            await slow.generate(GenerateRequest.chat(USER, timeout=0.3))
        await b.aclose()
        await slow.aclose()


@pytest.mark.anyio
async def test_unreachable_port_is_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend("m", [f"http://127.0.0.1:{port}/v1"])
    with pytest.raises(BackendConnectionError) as info:
        await b.generate(GenerateRequest.chat(USER))
    await b.aclose()
    assert f"127.0.0.1:{port}" in str(info.value) and "llmlab doctor" in str(info.value)
    assert info.value.retryable


@pytest.mark.anyio
async def test_wrong_model_name_is_permanent_404_with_hint(echo: tuple[ServerURL, MockBackend]) -> None:
    url, _ = echo
    b = OpenAIBackend("no-such-model", [url])
    with pytest.raises(BackendError) as info:
        await b.generate(GenerateRequest.chat(USER))
    await b.aclose()
    assert info.value.status == 404 and not info.value.retryable
    assert "check the model name" in str(info.value) and "'echo'" in str(info.value)


@pytest.mark.anyio
async def test_4xx_is_not_retryable_and_keeps_server_message(echo: tuple[ServerURL, MockBackend]) -> None:
    url, _ = echo
    b = client(url)
    with pytest.raises(BackendError) as info:
        await b.generate(GenerateRequest.chat(USER, logprobs=True, top_logprobs=-1))
    await b.aclose()
    assert info.value.status == 400 and not info.value.retryable
    assert "'top_logprobs' must be >= 0" in str(info.value)


# -- the Model stack over HTTP ------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_retry_through_model_recovers_and_server_counts_every_attempt() -> None:
    with serve_thread("mock:echo?fail_500=0.25&fail_429=0.15&retry_after=0.01&seed=3") as url:
        model = Model(client(url), retry=RetryPolicy(max_retries=10, base_delay=0.001, max_delay=0.01))
        with recording() as rec:
            texts = [await model.complete(f"q{i}") for i in range(20)]
        await model.aclose()
        stats = server_stats(url)
    assert texts == [f"q{i}" for i in range(20)]
    retries = sum(c.retries for c in rec.calls)
    assert retries > 0
    assert stats["requests"] == 20 + retries
    assert stats["errors"] == retries


@pytest.mark.anyio
async def test_pool_spreads_concurrent_calls_over_two_servers() -> None:
    with serve_thread("mock:echo?latency=0.05", name="pool") as u1, \
            serve_thread("mock:echo?latency=0.05", name="pool") as u2:
        backend = OpenAIBackend("pool", [u1, u2])
        model = Model(backend, concurrency=8)
        results: list[str] = []

        async def one(i: int) -> None:
            results.append(await model.complete(f"x{i}"))

        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(one, i)
        await model.aclose()
        s1, s2 = server_stats(u1)["requests"], server_stats(u2)["requests"]
    assert sorted(results) == sorted(f"x{i}" for i in range(16))
    assert [p["total"] for p in backend.pool_stats()] == [s1, s2]
    assert s1 + s2 == 16
    assert abs(s1 - s2) <= 2  # least-in-flight with 8 in flight: an even split
    assert all(p["in_flight"] == 0 for p in backend.pool_stats())


@pytest.mark.anyio
async def test_sample_index_without_seed_still_gives_distinct_seeds(echo: tuple[ServerURL, MockBackend]) -> None:
    url, backend = echo
    b = client(url)
    seeds = []
    for k in range(3):
        await b.generate(GenerateRequest.chat(USER, sample_index=k))
        seeds.append(backend.requests[-1].seed)
    await b.aclose()
    assert seeds == [None, 1, 2]


@pytest.mark.anyio
async def test_prepare_learns_the_served_context_window_and_moa_refuses_oversized_prompts() -> None:
    from llmlab.core.contracts import Query, Roles
    from llmlab.methods.moa import MixtureOfAgents

    with serve_thread("mock:echo?context_length=60", name="small") as url:
        backend = OpenAIBackend("small", [url])
        assert backend.capabilities.context_length is None
        await backend.prepare()
        assert backend.capabilities.context_length == 60  # from /v1/models, listed as vLLM's max_model_len
        model = Model(backend)
        moa = MixtureOfAgents({"layers": 2, "max_tokens": 10})
        question = " ".join(["word"] * 30)  # fits alone; with two echoed references it does not
        with pytest.raises(ContextWindowExceededError) as exc:
            await moa.solve(Query.from_text(question), Roles(model, proposers=[model, model]))
        assert exc.value.context_length == 60
        # the proposers ran; the oversized aggregator prompt was never sent
        assert server_stats(url)["requests"] == 2
        await backend.aclose()


@pytest.mark.anyio
async def test_prepare_on_an_unreachable_server_fails_fast_with_the_url() -> None:
    backend = OpenAIBackend("m", ["http://127.0.0.1:9/v1"], timeout=2)
    with pytest.raises(BackendConnectionError, match=r"127\.0\.0\.1:9"):
        await backend.prepare()
    await backend.aclose()


# -- the grown contract: images, tools, tool results, response_format, streaming --------------------------

WEATHER = Tool("weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}},
                                                "required": ["city"]})
PNG = b"\x89PNG\r\n\x1a\nfake"


def tool_script(request: GenerateRequest, index: int) -> object:
    """Calls `weather` for a user turn, answers in text once the tool result is in."""
    assert request.messages is not None
    last = request.messages[-1]
    if last.role == "tool":
        return f"It is {last.text} in Paris."
    return {"text": "", "tool_calls": [{"name": "weather", "arguments": {"city": "Paris"}}]}


@pytest.fixture(scope="module")
def tools_server() -> Iterator[tuple[ServerURL, MockBackend]]:
    backend = MockBackend(tool_script, model="tools")
    with serve_thread(backend) as url:
        yield url, backend


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [OpenAIBackend, OpenAISDKBackend])
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_loop_round_trip(tools_server: tuple[ServerURL, MockBackend], kind: type[OpenAIBackend],
                                    stream: bool) -> None:
    url, backend = tools_server
    b = kind(url.model, [url], stream=stream)
    first = await b.generate(GenerateRequest.chat(
        [{"role": "user", "content": "weather in Paris?"}], tools=(WEATHER,), tool_choice="required"))
    seen = backend.requests[-1]
    assert seen.tools == (WEATHER,) and seen.tool_choice == "required"
    assert first.finish_reasons == ["tool_calls"]
    call = first.calls[0]
    assert call.name == "weather" and call.parsed_arguments() == {"city": "Paris"} and call.id
    convo = [Message("user", "weather in Paris?"), first.message(),
             Message("tool", "sunny", tool_call_id=call.id, name="weather")]
    second = await b.generate(GenerateRequest.chat(convo, tools=(WEATHER,)))
    got = backend.requests[-1].messages
    assert got is not None
    assert got[1].tool_calls == (call,)  # the assistant's call reached the server's backend intact
    assert (got[2].role, got[2].tool_call_id, got[2].text) == ("tool", call.id, "sunny")
    assert second.text == "It is sunny in Paris." and second.tool_calls is None
    assert second.finish_reasons == ["stop"]
    await b.aclose()


@pytest.mark.anyio
async def test_tool_calls_per_choice_with_n(tools_server: tuple[ServerURL, MockBackend]) -> None:
    url, _ = tools_server
    b = client(url)
    resp = await b.generate(GenerateRequest.chat([{"role": "user", "content": "w?"}], tools=(WEATHER,), n=3))
    assert resp.tool_calls is not None and len(resp.tool_calls) == 3
    assert all(len(c) == 1 and c[0].name == "weather" for c in resp.tool_calls)
    assert len({c[0].id for c in resp.tool_calls}) == 3  # ids are distinct across choices
    await b.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [OpenAIBackend, OpenAISDKBackend])
async def test_image_parts_and_response_format_pass_through(kind: type[OpenAIBackend]) -> None:
    backend = MockBackend(["{\"n\": 1}"], model="vis")
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}
    with serve_thread(backend) as url:
        b = kind(url.model, [url])
        msg = Message("user", (text_part("how many images?"), image_part(PNG), image_part("https://x/y.png")))
        resp = await b.generate(GenerateRequest(messages=(msg,), response_format=fmt))
        await b.aclose()
    seen = backend.requests[-1]
    assert seen.response_format == fmt
    assert seen.messages is not None and content_images(seen.messages[0].content)[1] == "https://x/y.png"
    assert content_images(seen.messages[0].content)[0].startswith("data:image/png;base64,")
    assert backend.image_counts[-1] == 2 and resp.text == '{"n": 1}'


def test_request_body_carries_the_contract() -> None:
    b = OpenAIBackend("m", ["http://h:1/v1"])
    req = GenerateRequest.chat([Message("user", (text_part("hi"), image_part(PNG)))], tools=(WEATHER,),
                               tool_choice={"type": "function", "function": {"name": "weather"}},
                               response_format={"type": "json_object"}, logprobs=True, top_logprobs=3)
    path, body = b.request_body(req)
    assert path == "/chat/completions"
    assert body["messages"][0]["content"][1]["type"] == "image_url"
    assert body["tools"] == [WEATHER.to_openai()]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["response_format"] == {"type": "json_object"} and body["top_logprobs"] == 3
    path, body = b.request_body(GenerateRequest(prompt="p", logprobs=True, top_logprobs=0))
    assert path == "/completions" and body["logprobs"] == 0 and "tools" not in body


@pytest.mark.anyio
@pytest.mark.parametrize("chat", [True, False])
async def test_streaming_gives_the_same_answer_and_usage(echo: tuple[ServerURL, MockBackend], chat: bool) -> None:
    url, _ = echo
    plain, streamed = client(url), client(url, stream=True)
    req = GenerateRequest.chat(USER, n=2) if chat else GenerateRequest(prompt="one two three", n=2)
    a, b = await plain.generate(req), await streamed.generate(req)
    await plain.aclose()
    await streamed.aclose()
    assert b.texts == a.texts and b.finish_reasons == a.finish_reasons
    assert (b.usage.prompt_tokens, b.usage.completion_tokens) == (a.usage.prompt_tokens, a.usage.completion_tokens)


@pytest.mark.anyio
async def test_streaming_keeps_logprobs() -> None:
    with serve_thread(TopLogprobBackend()) as url:
        b = client(url, stream=True)
        resp = await b.generate(GenerateRequest.chat(USER, logprobs=True, top_logprobs=2))
        await b.aclose()
    assert resp.logprobs is not None and [t.token for t in resp.logprobs[0]] == ["Hi", "!"]
    assert resp.logprobs[0][0].top == {"Hi": -0.5, "Yo": -1.25} and resp.text == "Hi!"


@pytest.mark.anyio
async def test_streaming_errors_map_like_plain_calls() -> None:
    with serve_thread("mock:echo?fail_429=1&retry_after=0.25") as url:
        b = client(url, stream=True)
        with pytest.raises(RateLimitError) as info:
            await b.generate(GenerateRequest.chat(USER))
        await b.aclose()
    assert info.value.retry_after == pytest.approx(0.25)


@pytest.mark.anyio
async def test_sdk_transport_maps_errors_and_answers_like_the_default(echo: tuple[ServerURL, MockBackend]) -> None:
    url, _ = echo
    sdk = make_backend(f"openai-sdk:{url.model}@{url}")
    assert isinstance(sdk, OpenAISDKBackend) and sdk.transport == "sdk"
    assert sdk.cache_identity() == client(url).cache_identity() == f"openai:{url.model}"
    resp = await sdk.generate(GenerateRequest.chat(USER, n=2))
    assert resp.texts == ["hello there"] * 2
    wrong = OpenAISDKBackend("nope", [url])
    with pytest.raises(BackendError) as info:
        await wrong.generate(GenerateRequest.chat(USER))
    assert info.value.status == 404 and not info.value.retryable
    await sdk.aclose()
    await wrong.aclose()


@pytest.mark.anyio
async def test_retries_429_with_retry_after_through_the_default_transport() -> None:
    with serve_thread("mock:echo?fail_429=0.5&retry_after=0.2&seed=1") as url:
        model = Model(client(url), retry=RetryPolicy(max_retries=8, base_delay=0.0, max_delay=0.0))
        with recording() as rec:
            t0 = anyio.current_time()
            texts = [await model.complete(f"q{i}") for i in range(6)]
            waited = anyio.current_time() - t0
        await model.aclose()
    retries = sum(c.retries for c in rec.calls)
    assert texts == [f"q{i}" for i in range(6)] and retries > 0
    assert waited >= 0.2 * retries  # the server's Retry-After is a floor on every wait


def test_spec_options_and_transport() -> None:
    b = OpenAIBackend.from_spec("m@http://h:1/v1?stream=1&timeout=5")
    assert b.stream and b.timeout == 5.0 and [e.url for e in b.endpoints] == ["http://h:1/v1"]
    assert OpenAIBackend.from_spec("m@http://h:1/v1?transport=sdk").endpoints[0].client is not None
    with pytest.raises(ConfigError, match="unknown option"):
        OpenAIBackend.from_spec("m@http://h:1/v1?strem=1")
    with pytest.raises(ConfigError, match="transport"):
        OpenAIBackend("m", ["http://h:1/v1"], transport="curl")
    b.timeout = 7.0  # the runner's --timeout reaches the transport
    assert b.endpoints[0].http.timeout == 7.0


# -- before a run: the served model and the identity ------------------------------------------------------

@pytest.mark.anyio
async def test_prepare_refuses_a_model_the_server_does_not_serve(echo: tuple[ServerURL, MockBackend]) -> None:
    url, _ = echo
    b = OpenAIBackend("gpt-9", [url])
    with pytest.raises(ConfigError) as info:
        await b.prepare()
    msg = str(info.value)
    assert "'gpt-9' is not served" in msg and "it serves: echo" in msg and "\n" not in msg
    assert b.endpoints[0].total == 0  # nothing was sent
    ok = client(url)
    await ok.prepare()  # the served name passes
    await b.aclose()
    await ok.aclose()


@pytest.mark.anyio
async def test_prepare_reads_whether_the_server_enforces_schemas(echo: tuple[ServerURL, MockBackend]) -> None:
    url, _ = echo
    b = client(url)
    assert b.capabilities.structured_output  # assumed, as for vLLM / OpenAI
    await b.prepare()
    assert not b.capabilities.structured_output  # llmlab serve in front of a mock says it does not
    await b.aclose()


def test_identity_leaves_the_url_out() -> None:
    a = OpenAIBackend.from_spec("m@http://old-host:8000/v1")
    b = OpenAIBackend.from_spec("m@http://new-host:9000/v1,http://other:1/v1")
    assert a.cache_identity() == b.cache_identity() == "openai:m"
    req = GenerateRequest.chat(USER)
    assert request_hash(a.cache_identity(), req) == request_hash(b.cache_identity(), req)


def test_cache_key_includes_tools_tool_choice_and_response_format() -> None:
    base = GenerateRequest.chat(USER)
    variants = [base, base.with_(tools=(WEATHER,)), base.with_(tools=(WEATHER,), tool_choice="required"),
                base.with_(response_format={"type": "json_object"}),
                base.with_(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": {}}}),
                GenerateRequest.chat([Message("user", (text_part("hello there"), image_part(PNG)))])]
    keys = {request_hash("openai:m", r) for r in variants}
    assert len(keys) == len(variants)


def test_an_eval_with_a_model_the_server_does_not_serve_stops_before_any_call(
        tmp_path: object, shared_data: object) -> None:
    from llmlab.runner import EvalSpec, run_eval

    with serve_thread("mock:text=#### 18", name="qwen") as url:
        with pytest.raises(ConfigError, match=r"'gpt-9' is not served at .*; it serves: qwen"):
            run_eval(EvalSpec(task="gsm8k", method="direct", model_spec=f"openai:gpt-9@{url}", limit=50,
                              runs_dir=str(tmp_path), data_dir=str(shared_data)))
        assert server_stats(url)["requests"] == 0  # not one failing call per item
