from __future__ import annotations

import math
from dataclasses import replace

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.methods.omega_prm import OmegaPRM, OmegaPRMConfig, q_value, u_value
from llmlab.methods.prm import flat_to_tree, tree_to_examples, tree_to_flat
from tests.helpers.omega_world import ANSWER, QUESTION, World, mock_script


def run(world: World, native_n: bool = True, **cfg: object):  # type: ignore[no-untyped-def]
    backend = MockBackend(mock_script(world))
    if not native_n:
        backend.capabilities = replace(backend.capabilities, native_n=False)
    omega = OmegaPRM(Model(backend), OmegaPRMConfig(**{"k": 4, **cfg}))  # type: ignore[arg-type]
    return run_sync(omega.search(QUESTION, ANSWER)), backend, omega


def test_formulas_by_hand() -> None:
    assert q_value(0.25, 14, 0.5, 0.9, 500) == pytest.approx(0.5**0.75 * 0.9 ** (14 / 500))
    assert q_value(1.0, 0, 0.5, 0.9, 500) == 1.0
    assert u_value(0, 0, 0.125) == 0.0
    assert u_value(2, 2, 0.125) == pytest.approx(0.125 * math.sqrt(2) / 3)


def test_root_estimate_and_pool() -> None:
    res, backend, omega = run(World(), search_limit=0)
    root = res.states[0]
    assert root.mc == 0.25 and root.total_rollouts == 4
    # One n=4 request; the correct rollout became an MC = 1 child; the 3 wrong ones are the pool.
    assert len(backend.requests) == 1 and backend.requests[0].n == 4
    assert [res.states[c].mc for c in root.children] == [1.0]
    assert [r.id for _, r in omega.pool()] == [1, 2, 3]


def test_first_searches_match_hand_trace() -> None:
    res, backend, _ = run(World(), search_limit=3)
    log = res.log
    # Search 1: the shortest wrong rollout (j=3, 2 steps: error at step 1) wins on Q; U is 0 for all.
    assert log[0]["rollout"] == 3 and log[0]["first_error"] == 1 and log[0]["probes"] == 1
    assert len(res.rollouts[3].text.split()) == 14
    assert log[0]["score"] == pytest.approx(0.5**0.75 * 0.9 ** (14 / 500))
    # Search 2: j=1 (4 steps, error at step 3): probes [g1 g2] (MC 0.25) then [g1 g2 oops3] (MC 0).
    assert log[1]["rollout"] == 1 and log[1]["first_error"] == 3 and log[1]["probes"] == 2
    assert log[1]["rollouts"] == 8
    # Root's children: its correct rollout (MC 1), search 1's probe [oops1] (MC 0), probe [g1 g2].
    root_children = [res.states[c] for c in res.states[0].children]
    assert [s.mc for s in root_children] == [1.0, 0.0, 0.25]
    g12 = root_children[2]
    assert [res.states[c].steps[-1].startswith("Step 3: oops") for c in g12.children[:2]] == [False, True]
    assert res.states[g12.children[1]].mc == 0.0
    # Search 3: U now separates states: root has N = 2, the new probe state N = 0.
    good2 = next(s for s in res.states if len(s.steps) == 2 and s.mc == 0.25)
    assert log[2]["state"] == good2.id
    text = res.rollouts[log[2]["rollout"]].text
    assert len(text.split()) == 14 and "oops 1" in text
    assert log[2]["score"] == pytest.approx(0.5**0.75 * 0.9 ** (14 / 500) + 0.125 * math.sqrt(2) / 1)
    assert res.states[0].N == 2 and good2.N == 1
    # k rollouts per probe, one request each.
    assert res.total_rollouts == 4 * len(backend.requests)


def test_search_to_exhaustion_never_reuses_a_rollout() -> None:
    res, _, omega = run(World(), search_limit=1000, rollout_budget=10_000)
    ids = [e["rollout"] for e in res.log]
    assert len(ids) == len(set(ids)) and omega.pool() == []
    # Every located first error is a step that says "oops" (the construction's wrong steps).
    for e in res.log:
        r = res.rollouts[e["rollout"]]
        start = len(res.states[r.state].steps)
        assert e["first_error"] is not None
        assert "oops" in r.steps[e["first_error"] - start - 1]
        assert all("oops" not in s for s in r.steps[: e["first_error"] - start - 1])
    # MC is 0 exactly on prefixes that hold a wrong step.
    for s in res.states:
        assert (s.mc == 0) == any("oops" in x for x in s.steps)
    assert sum(s.N for s in res.states) == res.searches


@pytest.mark.parametrize("error_at", [1, 2, 5, 8, 11, 16])
def test_binary_search_probe_count(error_at: int) -> None:
    # A 17-step wrong rollout (16 before the final bad step): first error at `error_at`.
    world = World(M=20, correct=frozenset({0}), first_error={1: error_at})
    res, _, _ = run(world, k=2, search_limit=1)
    (entry,) = res.log
    n_steps = error_at + 1
    assert entry["first_error"] == error_at
    assert entry["probes"] <= math.ceil(math.log2(n_steps + 1))
    assert entry["rollouts"] == 2 * entry["probes"]


def test_without_native_n_k_requests_with_distinct_sample_indices() -> None:
    res, backend, _ = run(World(), native_n=False, search_limit=0)
    assert len(backend.requests) == 4 and sorted(r.sample_index for r in backend.requests) == [0, 1, 2, 3]
    assert res.states[0].mc == 0.25


def test_budgets_stop_the_search() -> None:
    res, _, _ = run(World(), search_limit=1000, rollout_budget=9)
    # The root uses 4, the first search 4 more (8 < 9), the second pushes past the budget, then it stops.
    assert res.searches == 2 and res.total_rollouts >= 9


def test_filter_skips_easy_questions() -> None:
    res, _, _ = run(World(correct=frozenset({0, 1, 2, 3})), filter_rollouts=4)
    assert res.skipped == "all filter rollouts correct" and res.states == []


def test_outputs_round_trip() -> None:
    res, _, _ = run(World(), search_limit=1000, rollout_budget=10_000)
    flat, tree = res.flat(), res.tree()
    assert all(0.0 <= r["mc_value"] <= 1.0 for r in flat)
    def bag(records):  # type: ignore[no-untyped-def]
        return sorted((r["solution_prefix"], r["mc_value"]) for r in records)

    assert bag(tree_to_flat(QUESTION, flat_to_tree(QUESTION, flat))) == bag(flat)
    assert sorted((r["solution_prefix"], r["mc_value"]) for r in tree_to_flat(QUESTION, tree)) == sorted(
        (r["solution_prefix"], r["mc_value"]) for r in flat
    )
    examples = tree_to_examples(QUESTION, tree, ANSWER)
    assert examples and all(ex.labels[-1] is not None for ex in examples)


def test_bad_config_is_one_line() -> None:
    from llmlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="search_limit"):
        OmegaPRM(Model(MockBackend(["x"])), {"search_limit": 10**9})
    with pytest.raises(ConfigError, match="unknown key 'kk'"):
        OmegaPRM(Model(MockBackend(["x"])), {"kk": 1})
