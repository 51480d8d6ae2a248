"""Mixture-of-Agents: prompt construction, layer wiring, call counts, failure policies, context checks."""

from __future__ import annotations

import re

import anyio
import pytest

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.mock import FailurePlan, MockBackend
from llmlab.backends.model import Model, RetryPolicy
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import BackendError, ConfigError, ContextWindowExceededError
from llmlab.core.registry import METHODS
from llmlab.methods.moa import (
    AGGREGATE_AND_SYNTHESIZE,
    MixtureOfAgents,
    MixtureOfAgentsLite,
    SelfMixtureOfAgents,
    inject_references,
)

REF_LINE = re.compile(r"^\d+\. (.*)$", re.M)


def seen_refs(req: GenerateRequest) -> list[str]:
    """The references a request carries (numbered lines of its system message)."""
    assert req.messages is not None
    first = req.messages[0]
    return REF_LINE.findall(first.content) if first.role == "system" else []


def namer(name: str, **kw: object) -> Model:
    """A model that answers '<name>#<sample>' and records every request."""
    return Model(MockBackend(lambda req, i: f"{name}#{req.sample_index}", model=name, **kw),  # type: ignore[arg-type]
                 retry=RetryPolicy(max_retries=0))


def backend(m: Model) -> MockBackend:
    assert isinstance(m.backend, MockBackend)
    return m.backend


# -- the Aggregate-and-Synthesize injection -----------------------------------------------------------


def test_inject_prepends_system_message_with_references_numbered_from_one() -> None:
    msgs = (Message("user", "Q"),)
    out = inject_references(msgs, ["alpha", "beta"], template="T:")
    assert out == (Message("system", "T:\n1. alpha\n2. beta"), Message("user", "Q"))


def test_inject_merges_into_existing_system_after_blank_line() -> None:
    msgs = (Message("system", "Be brief."), Message("user", "Q"))
    out = inject_references(msgs, ["r"], template="T")
    assert out == (Message("system", "Be brief.\n\nT\n1. r"), Message("user", "Q"))


def test_inject_empty_references_leaves_messages_unchanged() -> None:
    msgs = (Message("system", "S"), Message("user", "Q"))
    assert inject_references(msgs, []) == msgs


def test_inject_multi_turn_touches_only_the_system_block() -> None:
    msgs = (Message("user", "u1"), Message("assistant", "a1"), Message("user", "u2"))
    out = inject_references(msgs, ["x"])
    assert out[1:] == msgs
    assert out[0].content == AGGREGATE_AND_SYNTHESIZE + "\n1. x"


@pytest.mark.anyio
async def test_template_is_overridable_through_config() -> None:
    agg = namer("agg")
    roles = Roles(namer("p"), aggregator=agg)
    await MixtureOfAgents({"layers": 2, "template": "SYNTH"}).solve(Query.from_text("Q"), roles)
    first = backend(agg).requests[0].messages
    assert first is not None and first[0].content.startswith("SYNTH\n1. p#0")


# -- wiring and call counts ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("layers", "n"), [(3, 6), (2, 6), (3, 2), (1, 4)])
async def test_call_count_is_n_times_layers_minus_one_plus_one(layers: int, n: int) -> None:
    proposers = [namer(f"p{i}") for i in range(n)]
    agg = namer("agg")
    sol = await MixtureOfAgents({"layers": layers}).solve(
        Query.from_text("Q"), Roles(namer("d"), proposers=proposers, aggregator=agg)
    )
    made = sum(backend(p).call_count for p in proposers) + backend(agg).call_count
    assert made == sol.trace["calls"] == n * (layers - 1) + 1
    assert backend(agg).call_count == 1


@pytest.mark.anyio
async def test_layer_k_sees_exactly_layer_k_minus_one_outputs() -> None:
    proposers = [namer(f"p{i}") for i in range(3)]
    agg = namer("agg")
    sol = await MixtureOfAgents({"layers": 3}).solve(
        Query.from_text("Q"), Roles(namer("d"), proposers=proposers, aggregator=agg)
    )
    layer1 = [backend(p).requests[0] for p in proposers]
    layer2 = [backend(p).requests[1] for p in proposers]
    assert all(seen_refs(r) == [] for r in layer1)
    # distinct models keep sample index 0 (so, as in the official flow, no seed reaches the server)
    assert all(seen_refs(r) == ["p0#0", "p1#0", "p2#0"] for r in layer2)
    # layer-2 outputs carry the same names; the aggregator sees them, in proposer order
    assert seen_refs(backend(agg).requests[0]) == sol.trace["layers"][1]["references_out"]
    assert sol.trace["layers"][1]["references_in"] == sol.trace["layers"][0]["references_out"]
    assert sol.text == "agg#0"


@pytest.mark.anyio
async def test_defaults_are_official_temperature_and_max_tokens() -> None:
    p, agg = namer("p"), namer("agg")
    await MixtureOfAgents().solve(Query.from_text("Q"), Roles(namer("d"), proposers=[p], aggregator=agg))
    for req in [*backend(p).requests, *backend(agg).requests]:
        assert (req.temperature, req.max_tokens) == (0.7, 2048)


@pytest.mark.anyio
async def test_aggregator_keeps_the_official_settings_whatever_the_proposers_use() -> None:
    p, agg = namer("p"), namer("agg")
    roles = Roles(namer("d"), proposers=[p, namer("q")], aggregator=agg)
    await MixtureOfAgents({"layers": 3, "temperature": 0.2, "max_tokens": 64}).solve(Query.from_text("Q"), roles)
    assert {(r.temperature, r.max_tokens) for r in backend(p).requests} == {(0.2, 64)}
    assert [(r.temperature, r.max_tokens) for r in backend(agg).requests] == [(0.7, 2048)]
    assert all(r.sample_index == 0 and r.seed is None for r in [*backend(p).requests, *backend(agg).requests])


@pytest.mark.anyio
async def test_multi_turn_conversation_keeps_turns_and_injects_once() -> None:
    p, agg = namer("p"), namer("agg")
    q = Query((Message("system", "S"), Message("user", "u1"), Message("assistant", "a1"), Message("user", "u2")))
    await MixtureOfAgents({"layers": 2}).solve(q, Roles(namer("d"), proposers=[p], aggregator=agg))
    msgs = backend(agg).requests[0].messages
    assert msgs is not None and msgs[1:] == q.messages[1:]
    assert msgs[0].content.startswith("S\n\n") and msgs[0].content.count("Responses from models:") == 1


@pytest.mark.anyio
async def test_per_layer_roles_pick_each_layers_models() -> None:
    a, b, c, agg = namer("a"), namer("b"), namer("c"), namer("agg")
    roles = Roles(namer("d"), proposers=[a, b], second=[c], aggregator=agg)
    moa = MixtureOfAgents({"layers": 3, "layer_roles": ["proposers", "second"]})
    sol = await moa.solve(Query.from_text("Q"), roles)
    assert [backend(m).call_count for m in (a, b, c)] == [1, 1, 1]
    assert seen_refs(backend(c).requests[0]) == ["a#0", "b#0"]
    assert sol.trace["calls"] == 4


def test_layer_roles_length_must_match_layers() -> None:
    with pytest.raises(ConfigError, match="layer_roles"):
        MixtureOfAgents({"layers": 3, "layer_roles": ["proposers"]})


@pytest.mark.anyio
async def test_proposers_of_a_layer_are_in_flight_together() -> None:
    in_flight = peak = 0

    async def slow(req: GenerateRequest, i: int) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.02)
        in_flight -= 1
        return "x"

    proposers = [Model(MockBackend(slow)) for _ in range(6)]
    await MixtureOfAgents({"layers": 2}).solve(Query.from_text("Q"), Roles(namer("d"), proposers=proposers))
    assert peak == 6


@pytest.mark.anyio
async def test_self_moa_draws_distinct_sample_indices_from_one_model() -> None:
    m = namer("solo")
    sol = await SelfMixtureOfAgents().solve(Query.from_text("Q"), Roles(m))
    reqs = backend(m).requests
    assert len(reqs) == 7 and sol.trace["calls"] == 7
    assert sorted(r.sample_index for r in reqs[:6]) == [0, 1, 2, 3, 4, 5]
    assert seen_refs(reqs[6]) == [f"solo#{j}" for j in range(6)]


# -- failures and context windows ---------------------------------------------------------------------


def broken() -> Model:
    return Model(MockBackend(["x"], failures=FailurePlan(fail_500=1.0), model="broken"),
                 retry=RetryPolicy(max_retries=0))


def flaky() -> Model:
    """Fails its first call only."""

    def fn(req: GenerateRequest, i: int) -> str:
        if i == 0:
            raise BackendError("boom", status=400)
        return "recovered"

    return Model(MockBackend(fn, model="flaky"), retry=RetryPolicy(max_retries=0))


@pytest.mark.anyio
async def test_drop_policy_drops_a_failed_proposer() -> None:
    agg = namer("agg")
    roles = Roles(namer("d"), proposers=[namer("ok"), broken()], aggregator=agg)
    sol = await MixtureOfAgents({"layers": 2}).solve(Query.from_text("Q"), roles)
    layer = sol.trace["layers"][0]
    assert layer["dropped"] == 1 and layer["references_out"] == ["ok#0"]
    assert "500" in layer["calls"][1]["error"]
    assert seen_refs(backend(agg).requests[0]) == ["ok#0"]


@pytest.mark.anyio
async def test_all_proposers_dropped_means_plain_aggregation() -> None:
    agg = namer("agg")
    sol = await MixtureOfAgents({"layers": 2}).solve(Query.from_text("Q"), Roles(namer("d"), proposers=[broken()],
                                                                                aggregator=agg))
    assert backend(agg).requests[0].messages == (Message("user", "Q"),)
    assert sol.trace["aggregator"]["references_in"] == []


@pytest.mark.anyio
async def test_retry_policy_reissues_a_failed_proposer() -> None:
    f = flaky()
    sol = await MixtureOfAgents({"layers": 2, "on_failure": "retry", "failure_retries": 1}).solve(
        Query.from_text("Q"), Roles(namer("d"), proposers=[f])
    )
    call = sol.trace["layers"][0]["calls"][0]
    assert call["attempts"] == 2 and call["text"] == "recovered" and call["error"] is None


@pytest.mark.anyio
async def test_drop_policy_does_not_retry() -> None:
    f = flaky()
    sol = await MixtureOfAgents({"layers": 2}).solve(Query.from_text("Q"), Roles(namer("d"), proposers=[f]))
    assert backend(f).call_count == 1 and sol.trace["layers"][0]["dropped"] == 1


@pytest.mark.anyio
async def test_fail_policy_raises() -> None:
    with pytest.raises(BackendError):
        await MixtureOfAgents({"layers": 2, "on_failure": "fail"}).solve(
            Query.from_text("Q"), Roles(namer("d"), proposers=[namer("ok"), broken()])
        )


@pytest.mark.anyio
async def test_oversized_aggregator_prompt_raises_with_sizes_and_is_not_sent() -> None:
    agg = namer("agg", context_length=40)
    long = Model(MockBackend(["word " * 50]))
    with pytest.raises(ContextWindowExceededError) as err:
        await MixtureOfAgents({"layers": 2, "aggregator_max_tokens": 10}).solve(
            Query.from_text("Q"), Roles(namer("d"), proposers=[long], aggregator=agg)
        )
    assert err.value.context_length == 40 and err.value.max_new_tokens == 10 and err.value.prompt_tokens > 50
    assert backend(agg).call_count == 0


@pytest.mark.anyio
async def test_oversized_proposer_prompt_is_dropped_not_sent() -> None:
    small = namer("small", context_length=60)
    long = Model(MockBackend(["word " * 80]))
    roles = Roles(namer("d"), first=[long], second=[small, namer("big")], aggregator=namer("agg"))
    sol = await MixtureOfAgents({"layers": 3, "max_tokens": 5, "layer_roles": ["first", "second"]}).solve(
        Query.from_text("Q"), roles
    )
    assert backend(small).call_count == 0
    assert sol.trace["layers"][1]["references_out"] == ["big#0"]


@pytest.mark.anyio
async def test_trace_has_per_call_usage_and_latency_and_extracted_answer() -> None:
    q = Query.from_text("Q", extract=lambda t: t.split("#")[0])
    roles = Roles(namer("d"), proposers=[namer("p")], aggregator=namer("agg"))
    sol = await MixtureOfAgents({"layers": 2}).solve(q, roles)
    call = sol.trace["layers"][0]["calls"][0]
    assert call["usage"]["prompt_tokens"] >= 1 and call["latency_s"] >= 0
    assert sol.trace["aggregator"]["usage"]["completion_tokens"] >= 1
    assert sol.answer == "agg"


def test_registry_names_and_presets() -> None:
    assert METHODS.get("moa") is MixtureOfAgents
    assert METHODS.get("moa_lite") is MixtureOfAgentsLite
    assert METHODS.get("self_moa") is SelfMixtureOfAgents
    assert MixtureOfAgents().config.layers == 3  # type: ignore[attr-defined]
    assert MixtureOfAgentsLite().config.layers == 2  # type: ignore[attr-defined]
    assert SelfMixtureOfAgents().config.samples_per_model == 6  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_self_consistency_can_sample_moa_with_distinct_requests() -> None:
    from llmlab.methods.self_consistency import SelfConsistency

    m = namer("solo")
    sc = SelfConsistency({"k": 3, "sampler": "moa_lite"})
    sol = await sc.solve(Query.from_text("Q", extract=lambda t: t.split("#")[0]), Roles(m))
    reqs = backend(m).requests
    assert len(reqs) == 3 * 2 and sol.answer == "solo"
    # every (messages, sample_index) pair is distinct, so a cache could never merge two samples
    assert len({(r.messages, r.sample_index) for r in reqs}) == 6


@pytest.mark.anyio
async def test_reaggregation_from_traced_references_rebuilds_the_aggregator_input() -> None:
    agg = namer("agg")
    q = Query((Message("system", "S"), Message("user", "Q")))
    roles = Roles(namer("d"), proposers=[namer("a"), namer("b")], aggregator=agg)
    sol = await MixtureOfAgents({"layers": 3}).solve(q, roles)
    rebuilt = inject_references(q.messages, sol.trace["aggregator"]["references_in"])
    assert backend(agg).requests[0].messages == rebuilt
