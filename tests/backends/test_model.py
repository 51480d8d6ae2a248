import random

import anyio
import pytest

from llmlab.backends.base import Backend, Capabilities, GenerateRequest, GenerateResponse, Usage, request_hash
from llmlab.backends.cache import ResponseCache
from llmlab.backends.mock import FailurePlan, MockBackend
from llmlab.backends.model import Ledger, Model, Price, RetryPolicy, recording
from llmlab.core.errors import BackendError, BudgetExceededError, ConfigError, RateLimitError

pytestmark = pytest.mark.anyio


def chat(text="q", **kw):
    return GenerateRequest.chat([{"role": "user", "content": text}], **kw)


class Flaky(Backend):
    """Fails with the given errors, then answers."""

    name = "flaky"

    def __init__(self, errors):
        self.model = "flaky"
        self.errors = list(errors)
        self.calls = 0
        self.capabilities = Capabilities()

    @classmethod
    def from_spec(cls, spec):
        return cls([])

    async def generate(self, request):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return GenerateResponse(["ok"], ["stop"], Usage(3, 1), model=self.model)


async def test_retry_recovers_from_transient_errors_and_honours_retry_after(monkeypatch):
    waits = []

    async def fake_sleep(s):
        waits.append(s)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    b = Flaky([BackendError("500", status=500, retryable=True), RateLimitError("429", retry_after=7.5)])
    m = Model(b, retry=RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.02))
    with recording() as rec:
        assert (await m.generate(chat())).text == "ok"
    assert b.calls == 3
    assert waits[1] >= 7.5  # Retry-After is a floor on the backoff
    assert waits[0] <= 0.01
    assert rec.calls[0].retries == 2


async def test_non_retryable_and_exhausted_errors_propagate(monkeypatch):
    async def fake_sleep(s):
        return None

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    b = Flaky([BackendError("400 bad", status=400)])
    with pytest.raises(BackendError, match="400"):
        await Model(b).generate(chat())
    assert b.calls == 1
    b2 = Flaky([BackendError("x", retryable=True)] * 5)
    with pytest.raises(BackendError):
        await Model(b2, retry=RetryPolicy(max_retries=2)).generate(chat())
    assert b2.calls == 3


def test_backoff_is_exponential_with_jitter_and_capped():
    p = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(1)
    delays = [[p.delay(a, None, rng) for _ in range(200)] for a in range(6)]
    assert all(0 <= d <= min(8.0, 2**a) for a, ds in enumerate(delays) for d in ds)
    assert max(delays[3]) > 4.0  # grows with the attempt
    assert max(delays[5]) <= 8.0


async def test_limiter_bounds_in_flight_calls():
    in_flight = peak = 0

    async def reply(req, i):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.01)
        in_flight -= 1
        return "x"

    m = Model(MockBackend(reply), concurrency=3)
    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(m.generate, chat())
    assert peak == 3


async def test_ledger_costs_and_budget_stop():
    ledger = Ledger(prices={"mock": Price(1_000_000.0, 2_000_000.0)}, budget_usd=10.0, on_budget="stop")
    m = Model(MockBackend(["a b"]), ledger=ledger)
    with recording() as rec:
        await m.generate(chat("one two three"))
    # 3 prompt tokens at $1/token + 2 completion tokens at $2/token
    assert ledger.cost_usd == pytest.approx(7.0) and rec.cost == pytest.approx(7.0)
    await m.generate(chat("one two three"))  # 14 > 10 only after this call
    with pytest.raises(BudgetExceededError, match="budget"):
        await m.generate(chat("x"))


async def test_ledger_warn_does_not_stop():
    ledger = Ledger(prices={"mock": Price(1e6, 1e6)}, budget_usd=0.5, on_budget="warn")
    m = Model(MockBackend(["a"]), ledger=ledger)
    for _ in range(3):
        await m.generate(chat())
    assert ledger.calls == 3


async def test_cache_hits_are_counted_and_free(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = MockBackend(lambda r, i: f"sample {i}")
    m = Model(backend, cache=cache, ledger=Ledger(prices={"mock": Price(1e6, 1e6)}))
    with recording() as rec:
        a = await m.generate(chat(temperature=0.7, sample_index=0))
        b = await m.generate(chat(temperature=0.7, sample_index=0))
    assert a.text == b.text and b.cached and backend.call_count == 1
    assert rec.cache_hits == 1 and rec.calls[1].cost == 0.0


@pytest.mark.parametrize(
    "change",
    [{"sample_index": 1}, {"temperature": 0.8}, {"top_p": 0.9}, {"seed": 3}, {"n": 2}, {"max_tokens": 5},
     {"stop": ("x",)}, {"logprobs": True}],
)
async def test_cache_never_shares_entries_across_sampling_params(tmp_path, change):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = MockBackend(lambda r, i: f"sample {i}")
    m = Model(backend, cache=cache)
    base = chat(temperature=0.7, sample_index=0)
    await m.generate(base)
    await m.generate(base.with_(**change))
    assert backend.call_count == 2
    assert request_hash("mock:m", base) != request_hash("mock:m", base.with_(**change))


def test_cache_key_includes_backend_and_model():
    r = chat()
    assert request_hash("mock:a", r) != request_hash("mock:b", r)
    assert request_hash("openai:a", r) != request_hash("hf:a", r)
    assert request_hash("mock:a", r) == request_hash("mock:a", r.with_(timeout=5.0))


async def test_defaults_fill_only_unset_fields():
    backend = MockBackend(["x"])
    m = Model(backend, defaults={"temperature": 0.7, "max_tokens": 9})
    await m.generate(chat(temperature=0.0))
    assert backend.requests[0].temperature == 0.0 and backend.requests[0].max_tokens == 9


def test_bad_concurrency():
    with pytest.raises(ConfigError):
        Model("mock:echo", concurrency=0)


async def test_recording_attributes_calls_to_concurrent_items():
    m = Model(MockBackend(latency=0.01))
    counts = {}

    async def item(k, calls):
        with recording() as rec:
            for _ in range(calls):
                await m.generate(chat(str(k)))
        counts[k] = rec.n_calls

    async with anyio.create_task_group() as tg:
        for k, calls in enumerate([1, 3, 2]):
            tg.start_soon(item, k, calls)
    assert counts == {0: 1, 1: 3, 2: 2}


async def test_injected_failures_are_seeded_and_mixed():
    plan = FailurePlan(fail_500=0.1, fail_429=0.05, timeout_rate=0.05, seed=3)
    kinds = [plan.decide(i) for i in range(4000)]
    assert kinds == [plan.decide(i) for i in range(4000)]
    assert 0.08 < kinds.count("500") / 4000 < 0.12
    assert 0.035 < kinds.count("429") / 4000 < 0.065
    assert 0.035 < kinds.count("timeout") / 4000 < 0.065


# -- structured output ------------------------------------------------------------------------------------

PERSON = {"type": "json_schema", "json_schema": {"name": "person", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"], "additionalProperties": False}}}


async def test_schema_reply_is_checked_and_repaired_with_the_error():
    mock = MockBackend(['{"name": "Ada"}', "sure! here", '```json\n{"name": "Ada", "age": 36}\n```'])
    model = Model(mock)
    with recording() as rec:
        resp = await model.generate(chat("who?", response_format=PERSON))
    assert resp.text == '{"name": "Ada", "age": 36}'  # the fenced JSON is accepted and unwrapped
    assert rec.n_calls == 3 and len(mock.requests) == 3
    repair = mock.requests[1].messages
    assert repair[-2].role == "assistant" and repair[-2].content == '{"name": "Ada"}'
    assert "'age' is a required property" in repair[-1].content
    assert "not JSON" in mock.requests[2].messages[-1].content
    assert all(r.response_format == PERSON for r in mock.requests)


async def test_schema_gives_up_with_parse_error_after_bounded_retries():
    from llmlab.core.errors import ParseError

    mock = MockBackend(['{"name": 1, "age": 2}'])
    model = Model(mock, schema_retries=2)
    with pytest.raises(ParseError, match=r"after 2 repair call\(s\): 1 is not of type 'string' \(at name\)"):
        await model.generate(chat("who?", response_format=PERSON))
    assert len(mock.requests) == 3


async def test_json_object_format_and_n_choices_repaired_one_by_one():
    replies = iter(['{"a": 1}', "[1]", "nope", '{"b": 2}', '{"c": 3}'])
    mock = MockBackend(lambda req, i: next(replies))
    resp = await Model(mock).generate(chat("x", response_format={"type": "json_object"}, n=3))
    # choice 0 fine; choice 1 ("[1]") repaired once -> '{"b": 2}' ... order follows the mock's replies
    assert resp.texts[0] == '{"a": 1}' and all(t.startswith("{") for t in resp.texts)
    assert [r.n for r in mock.requests] == [3, 1, 1]


class Enforcing(MockBackend):
    def __init__(self, replies):
        super().__init__(replies)
        import dataclasses

        self.capabilities = dataclasses.replace(self.capabilities, structured_output=True)


async def test_a_backend_that_enforces_the_schema_is_trusted():
    mock = Enforcing(["not json at all"])
    resp = await Model(mock).generate(chat("x", response_format=PERSON))
    assert resp.text == "not json at all" and len(mock.requests) == 1


async def test_schema_validation_off_and_bad_schema_is_a_config_error():
    mock = MockBackend(["no"])
    assert (await Model(mock, validate_schema=False).generate(chat("x", response_format=PERSON))).text == "no"
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    with pytest.raises(ConfigError, match="schema is invalid"):
        await Model(mock).generate(chat("x", response_format=bad))
    with pytest.raises(ConfigError):
        Model(mock, schema_retries=-1)


async def test_cache_keys_differ_by_tools_and_response_format(tmp_path):
    from llmlab.backends.base import Tool

    cache = ResponseCache(tmp_path / "c.sqlite")
    mock = MockBackend(['{"a": 1}'])
    model = Model(mock, cache=cache)
    await model.generate(chat("x"))
    await model.generate(chat("x", response_format={"type": "json_object"}))
    await model.generate(chat("x", tools=(Tool("f"),)))
    await model.generate(chat("x", tools=(Tool("f"),), tool_choice="required"))
    assert len(mock.requests) == 4  # none of them hit another's cache entry
    again = await model.generate(chat("x", tools=(Tool("f"),), tool_choice="required"))
    assert again.cached and len(mock.requests) == 4


def test_prepare_warms_as_many_connections_as_the_concurrency_once() -> None:
    class Warmable(MockBackend):
        warmed: list[int] = []

        async def warm(self, connections: int) -> None:
            self.warmed.append(connections)

    backend = Warmable()
    m = Model(backend, concurrency=24)

    async def go() -> None:
        await m.prepare()
        await m.prepare()  # prepared once

    anyio.run(go)
    assert backend.warmed == [24]
