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
    TokenLogprob,
    Usage,
)
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model, RetryPolicy, recording
from llmlab.backends.openai_compat import OpenAIBackend, normalize_base_url, parse_retry_after
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
