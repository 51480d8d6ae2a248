from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.cache import ResponseCache
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model, recording
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Item, Query, Roles, Solution
from llmlab.core.errors import ConfigError, UnknownNameError
from llmlab.core.registry import METHODS
from llmlab.grading.math_answers import extract_gsm8k_answer
from llmlab.methods.base import Method
from llmlab.methods.self_consistency import SelfConsistency, fallback_extract, majority_vote
from llmlab.tasks.gsm8k import GSM8K

pytestmark = pytest.mark.anyio


def by_sample(replies: Sequence[str]) -> MockBackend:
    """A mock whose reply depends on the request's sample index (not on call order)."""
    return MockBackend(lambda req, i: replies[req.sample_index])


def gsm_query(text: str = "What is 2 + 2?") -> Query:
    return Query.from_text(text, extract=extract_gsm8k_answer)


async def test_registered() -> None:
    assert METHODS.get("self_consistency") is SelfConsistency


async def test_k_calls_with_distinct_sample_indices() -> None:
    backend = MockBackend(["#### 4"])
    sc = SelfConsistency({"k": 5, "temperature": 0.9, "max_tokens": 77})
    sol = await sc.solve(gsm_query(), Roles(Model(backend)))
    assert len(backend.requests) == 5
    assert sorted(r.sample_index for r in backend.requests) == [0, 1, 2, 3, 4]
    assert {r.temperature for r in backend.requests} == {0.9}
    assert {r.max_tokens for r in backend.requests} == {77}
    assert sol.answer == "4" and sol.trace["calls"] == 5 and sol.trace["k"] == 5


async def test_defaults_follow_config() -> None:
    backend = MockBackend(["#### 1"])
    await SelfConsistency().solve(gsm_query(), Roles(Model(backend)))
    assert len(backend.requests) == 5 and {r.temperature for r in backend.requests} == {0.7}


async def test_majority_vote_and_trace() -> None:
    replies = ["#### 4", "So it is 5.\n#### 5", "#### 4.0", "The answer is 5", "Four.\n#### 4"]
    sol = await SelfConsistency({"k": 5}).solve(gsm_query(), Roles(Model(by_sample(replies))))
    assert sol.answer == "4"
    assert sol.text == "#### 4"  # the first sample that gave the winning answer
    tr = sol.trace
    assert tr["samples"] == replies
    assert tr["answers"] == ["4", "5", "4", "5", "4"]  # canonical: "4.0" votes with "4"
    assert tr["votes"] == {"4": 3, "5": 2}
    assert tr["agreement"] == pytest.approx(0.6)
    assert tr["unparsed"] == 0
    assert tr["sampler"] == "direct" and len(tr["sample_traces"]) == 5


async def test_tie_goes_to_the_answer_seen_first() -> None:
    replies = ["#### 5", "#### 4", "#### 4", "#### 5"]
    sol = await SelfConsistency({"k": 4}).solve(gsm_query(), Roles(Model(by_sample(replies))))
    assert sol.answer == "5" and sol.trace["votes"] == {"5": 2, "4": 2}
    replies = ["#### 4", "#### 5", "#### 5", "#### 4"]
    sol = await SelfConsistency({"k": 4}).solve(gsm_query(), Roles(Model(by_sample(replies))))
    assert sol.answer == "4"


async def test_unparsable_samples_never_win() -> None:
    replies = ["no idea", "I give up", "???", "#### 7"]
    sol = await SelfConsistency({"k": 4}).solve(gsm_query(), Roles(Model(by_sample(replies))))
    assert sol.answer == "7" and sol.text == "#### 7"
    assert sol.trace["answers"] == [None, None, None, "7"]
    assert sol.trace["unparsed"] == 3 and sol.trace["agreement"] == pytest.approx(0.25)


async def test_all_unparsable_gives_none() -> None:
    replies = ["no idea", "I give up", "???"]
    sol = await SelfConsistency({"k": 3}).solve(gsm_query(), Roles(Model(by_sample(replies))))
    assert sol.answer is None and sol.text == "no idea"
    assert sol.trace["votes"] == {} and sol.trace["agreement"] == 0.0 and sol.trace["unparsed"] == 3


def test_majority_vote_unit() -> None:
    assert majority_vote(["a", None, "b", "b", "a"]) == ("a", {"a": 2, "b": 2})
    assert majority_vote([None, "b", None, None]) == ("b", {"b": 1})
    assert majority_vote([None, None]) == (None, {})
    assert majority_vote(["x", "y", "y"]) == ("y", {"x": 1, "y": 2})


def test_fallback_extract() -> None:
    assert fallback_extract("3 + 4 = 7.0 apples") == "7"
    assert fallback_extract("The capital is\nParis\n\n") == "Paris"
    assert fallback_extract("   \n") is None
    for text in ("It costs $1,234.50", "The capital is\nParis"):
        once = fallback_extract(text)
        assert once is not None and fallback_extract(once) == once  # idempotent


async def test_without_task_extractor_uses_fallback() -> None:
    replies = ["It is 12 apples", "12.0", "Maybe 13"]
    sol = await SelfConsistency({"k": 3}).solve(Query.from_text("how many?"), Roles(Model(by_sample(replies))))
    assert sol.answer == "12" and sol.trace["votes"] == {"12": 2, "13": 1}
    replies = ["Paris", "I think\nRome", "The capital is\nParis"]
    sol = await SelfConsistency({"k": 3}).solve(Query.from_text("capital?"), Roles(Model(by_sample(replies))))
    assert sol.answer == "Paris" and sol.trace["votes"] == {"Paris": 2, "Rome": 1}


async def test_sampler_params_override_our_temperature() -> None:
    backend = MockBackend(["#### 1"])
    sc = SelfConsistency({"k": 2, "sampler_params": {"temperature": 0.3}})
    await sc.solve(gsm_query(), Roles(Model(backend)))
    assert {r.temperature for r in backend.requests} == {0.3}


class DraftThenFinalConfig(LabConfig):
    style: str = "plain"


class DraftThenFinal(Method):
    """A two-call sampler with its own config (and no temperature field): draft, then a final answer."""

    name = "draft_then_final"
    Config = DraftThenFinalConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        assert isinstance(self.config, DraftThenFinalConfig)
        i = query.metadata["sample_index"]
        draft = await roles.default.complete(f"[{self.config.style}] draft: {query.text}", sample_index=i)
        final = await roles.default.complete(f"final: {draft}", sample_index=i)
        # This sampler puts its answer in `answer` with a different format than the text.
        return Solution(text=f"{draft}\n{final}", answer=final, trace={"calls": 2})


@pytest.fixture
def draft_then_final(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    monkeypatch.setattr(METHODS, "_loaded", dict(METHODS._loaded))
    METHODS.register("draft_then_final", DraftThenFinal)
    return "draft_then_final"


async def test_sampler_can_be_another_method(draft_then_final: str) -> None:
    def script(req: GenerateRequest, i: int) -> str:
        text = req.messages[-1].content if req.messages else ""
        if text.startswith("[terse] draft:"):
            return f"draft {req.sample_index}"
        return "The answer is 9" if req.sample_index != 1 else "The answer is 8"

    backend = MockBackend(script)
    sc = SelfConsistency({"k": 3, "sampler": draft_then_final, "sampler_params": {"style": "terse"}})
    sol = await sc.solve(gsm_query(), Roles(Model(backend)))
    assert len(backend.requests) == 6 and sol.trace["calls"] == 6
    assert sorted(r.sample_index for r in backend.requests) == [0, 0, 1, 1, 2, 2]
    assert sol.answer == "9" and sol.trace["votes"] == {"9": 2, "8": 1}
    assert sol.trace["sampler"] == "draft_then_final"


async def test_sampler_can_be_self_consistency() -> None:
    backend = MockBackend(["#### 3"])
    sc = SelfConsistency({"k": 2, "sampler": "self_consistency", "sampler_params": {"k": 3}})
    sol = await sc.solve(gsm_query(), Roles(Model(backend)))
    assert len(backend.requests) == 6 and sol.answer == "3" and sol.trace["calls"] == 6
    # Nested samples stay distinct: outer i, inner j -> i*3 + j.
    assert sorted(r.sample_index for r in backend.requests) == [0, 1, 2, 3, 4, 5]


async def test_bad_sampler_config_is_a_config_error() -> None:
    with pytest.raises(UnknownNameError, match="Unknown method 'nope'"):
        SelfConsistency({"sampler": "nope"})
    with pytest.raises(ConfigError, match=r"sampler_params for 'direct'.*unknown key 'colour'"):
        SelfConsistency({"sampler_params": {"colour": "red"}})
    with pytest.raises(ConfigError, match="'k'"):
        SelfConsistency({"k": 0})


class InFlight:
    """A mock reply function that records how many calls are in flight at once."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.now = 0
        self.peak = 0

    async def __call__(self, request: GenerateRequest, index: int) -> str:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await anyio.sleep(self.delay)
        self.now -= 1
        return f"#### {request.sample_index}"


async def test_samples_run_concurrently() -> None:
    probe = InFlight()
    sol = await SelfConsistency({"k": 6}).solve(gsm_query(), Roles(Model(MockBackend(probe))))
    assert probe.peak == 6  # all k in flight at once: wall time ~ one latency
    assert sol.trace["answers"] == ["0", "1", "2", "3", "4", "5"]  # results stay in sample order


async def test_concurrency_bound_is_respected() -> None:
    probe = InFlight()
    await SelfConsistency({"k": 6, "concurrency": 2}).solve(gsm_query(), Roles(Model(MockBackend(probe))))
    assert probe.peak == 2
    probe = InFlight()
    await SelfConsistency({"k": 6}).solve(gsm_query(), Roles(Model(MockBackend(probe), concurrency=3)))
    assert probe.peak == 3  # the Model's own limiter still holds


async def test_samples_never_share_a_cache_entry(tmp_path: Path) -> None:
    backend = MockBackend(lambda req, i: f"#### {i}")
    model = Model(backend, cache=ResponseCache(tmp_path / "cache.sqlite"))
    sol = await SelfConsistency({"k": 4}).solve(gsm_query(), Roles(model))
    assert backend.call_count == 4 and sorted(sol.trace["answers"]) == ["0", "1", "2", "3"]
    # The same k samples again come from the cache, one entry each.
    with recording() as rec:
        again = await SelfConsistency({"k": 4}).solve(gsm_query(), Roles(model))
    assert backend.call_count == 4 and rec.cache_hits == 4
    assert sorted(again.trace["answers"]) == sorted(sol.trace["answers"])


async def test_with_gsm8k_prompt_and_score() -> None:
    task = GSM8K()
    item = Item("t-0", "Tom has 2 apples and buys 3 more. How many?", "5")
    replies = ["2 + 3 = 5 apples.\n#### 5", "#### 6", "He has **5** apples. The answer is 5."]
    with recording() as rec:
        sol = await SelfConsistency({"k": 3}).solve(task.prompt(item), Roles(Model(by_sample(replies))))
    assert rec.n_calls == 3
    score = task.score(item, sol.answer)
    assert sol.answer == "5" and score.correct
    assert task.score(item, sol.text).correct  # the chosen text scores the same as its answer
