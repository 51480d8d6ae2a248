"""Side by side with openr's OmegaPRM (openreasoner/openr ``data/omegaPRM_v2/omegaprm.py``).

Skips unless ``LLMLAB_OMEGAPRM_OFFICIAL`` names a folder holding openr's ``omegaprm.py`` (the
``data/omegaPRM_v2`` folder of a checkout, or the checkout itself). Nothing of openr is committed here:
its module is loaded from that path, with a stub ``llm_utils`` (it would start vLLM) and a stub language
model that returns the same scripted rollouts as our mock backend (``tests/helpers/omega_world.py``).
openr's own substring oracle is kept; the test checks it agrees with ours on every rollout.

What must match (docs/omega_prm.md has the run and the numbers):

- one search per question (before openr's re-selection bug and its different N can interfere): the
  same tree, as a bag of (prefix steps, MC), the same rollout count, the same first-error position;
- searches run to exhaustion: every prefix both trees hold has the same MC; every first error either
  implementation locates (openr's read from its probes) is the rollout's true first wrong step; openr
  selects an already consumed (state, rollout) again (PR #98) while ours never does.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.methods.omega_prm import OmegaPRM, default_verifier
from tests.helpers.omega_world import ANSWER, QUESTION, World, mock_script

ENV = "LLMLAB_OMEGAPRM_OFFICIAL"

WORLDS = {
    "default": World(),
    "late-errors": World(M=9, correct=frozenset({0, 2}), first_error={1: 7, 3: 4, 4: 9, 5: 2}),
    "mostly-right": World(M=5, correct=frozenset({0, 1, 2}), first_error={3: 2}),
    "long": World(M=16, correct=frozenset({1}), first_error={0: 13, 2: 6, 3: 11}),
}


def _openr_module() -> Any:
    root = os.environ.get(ENV)
    if not root:
        pytest.skip(f"set {ENV} to openr's data/omegaPRM_v2 folder (or the openr checkout) to run this parity test")
    path = Path(root)
    path = path / "omegaprm.py" if (path / "omegaprm.py").exists() else path / "data" / "omegaPRM_v2" / "omegaprm.py"
    if not path.exists():
        pytest.skip(f"{ENV}={root}: no omegaprm.py there")
    stub = types.ModuleType("llm_utils")
    stub.LLMService = object  # type: ignore[attr-defined]
    sys.modules.setdefault("llm_utils", stub)
    spec = importlib.util.spec_from_file_location("openr_omegaprm", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps(prefix: str) -> tuple[str, ...]:
    assert prefix.startswith(QUESTION)
    return tuple(p.strip() for p in prefix[len(QUESTION):].split("\n\n") if p.strip())


class StubLM:
    """openr's LanguageModel interface over the scripted world; checks both oracles agree."""

    def __init__(self, openr: Any, world: World) -> None:
        self.openr, self.world, self.calls = openr, world, 0

    def generate_rollout(self, state_prefix: str, num_copies: int) -> list[str]:
        self.calls += 1
        return [self.world.rollout(_steps(state_prefix), j) for j in range(num_copies)]

    def evaluate_correctness(self, response: str, expected_answer: str) -> bool:
        theirs = bool(self.openr.check_correctness(response, expected_answer))
        assert theirs == default_verifier(response, expected_answer), response
        return theirs


def run_openr(world: World, k: int, searches: int, budget: int) -> tuple[Any, list[tuple[Any, str]]]:
    openr = _openr_module()
    omega = openr.OmegaPRM(StubLM(openr, world), c_puct=0.125, alpha=0.5, beta=0.9, L=500, k=k, N=searches,
                           rollout_budget=budget, save_data_tree=False)
    picked: list[tuple[Any, str]] = []
    select = omega.selection_phase
    expand = omega.expansion_phase_binary_search

    def recording_select() -> tuple[Any, str]:
        state, rollout = select()
        if state is not None:
            picked.append((state, rollout))
        return state, rollout

    def recording_expand(state: Any, rollout: str) -> None:
        before = len(omega.T.nodes)
        expand(state, rollout)
        omega.searches_log.append((state, rollout, omega.T.nodes[before:]))

    omega.searches_log = []
    omega.selection_phase = recording_select
    omega.expansion_phase_binary_search = recording_expand
    omega.run(QUESTION, ANSWER)
    return omega, picked


def openr_first_error(state: Any, new_nodes: list[Any]) -> int | None:
    """The first error openr's binary search located, read from its probes.

    Every probe is the selected prefix plus a prefix of the rollout, so its length pins a position: the
    error is one past the longest probe with MC > 0 (or the selected state), when a probe of exactly that
    length has MC = 0. Correct-rollout children (never estimated) are not probes.
    """
    probes = [n for n in new_nodes if n.total_rollouts > 0]
    positive = [len(_steps(state.solution_prefix))] + [len(_steps(n.solution_prefix)) for n in probes if n.MC > 0]
    zero = {len(_steps(n.solution_prefix)) for n in probes if n.MC == 0}
    fe = max(positive) + 1
    return fe if fe in zero else None


def run_ours(world: World, k: int, searches: int, budget: int) -> Any:
    omega = OmegaPRM(Model(MockBackend(mock_script(world))),
                     {"k": k, "search_limit": searches, "rollout_budget": budget})
    return run_sync(omega.search(QUESTION, ANSWER))


def true_first_error(prefix_len: int, rollout: str) -> int:
    steps = [p.strip() for p in rollout.split("\n\n") if p.strip()]
    return prefix_len + next(i for i, s in enumerate(steps) if "oops" in s) + 1


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_one_search_identical(name: str) -> None:
    world, k = WORLDS[name], 4
    theirs, picked = run_openr(world, k, searches=1, budget=10_000)
    ours = run_ours(world, k, searches=1, budget=10_000)
    bag_theirs = Counter((_steps(n.solution_prefix), n.MC) for n in theirs.T.nodes)
    bag_ours = Counter((s.steps, s.mc) for s in ours.states)
    assert bag_theirs == bag_ours
    assert theirs.total_rollouts == ours.total_rollouts
    if picked:
        (state, rollout), (entry,) = picked[0], ours.log
        assert rollout == ours.rollouts[entry["rollout"]].text
        truth = true_first_error(len(_steps(state.solution_prefix)), rollout)
        assert entry["first_error"] == truth
        (_, _, new_nodes), = theirs.searches_log
        assert openr_first_error(state, new_nodes) == truth


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_to_exhaustion_same_mc_and_true_first_errors(name: str) -> None:
    world, k, budget = WORLDS[name], 4, 400
    theirs, picked = run_openr(world, k, searches=60, budget=budget)
    ours = run_ours(world, k, searches=60, budget=budget)
    mc_theirs = {_steps(n.solution_prefix): n.MC for n in theirs.T.nodes}
    mc_ours = {s.steps: s.mc for s in ours.states}
    common = set(mc_theirs) & set(mc_ours)
    assert common and all(mc_theirs[p] == mc_ours[p] for p in common)
    for e in ours.log:
        r = ours.rollouts[e["rollout"]]
        assert e["first_error"] == true_first_error(len(ours.states[r.state].steps), r.text)
    # openr's binary search also finds the true first error, every time (repeats included).
    assert theirs.searches_log
    for state, rollout, new_nodes in theirs.searches_log:
        assert openr_first_error(state, new_nodes) == true_first_error(len(_steps(state.solution_prefix)), rollout)
    ids = [e["rollout"] for e in ours.log]
    assert len(ids) == len(set(ids))
    keys = [(id(s), r) for s, r in picked]
    repeats = len(keys) - len(set(keys))
    print(f"{name}: openr searches={len(picked)} repeats={repeats} rollouts={theirs.total_rollouts} "
          f"nodes={len(theirs.T.nodes)} | ours searches={ours.searches} rollouts={ours.total_rollouts} "
          f"nodes={len(ours.states)} common prefixes={len(common)}")
    if len(picked) > len(set(keys)) or len(picked) >= 2:
        assert repeats > 0, "openr no longer re-selects consumed rollouts (PR #98 merged?): update docs"
