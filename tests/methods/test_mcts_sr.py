"""MCTSr: formulas on hand-computed trees, reward parsing, call counts, contexts, oracle vs selection."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ParseError
from llmlab.core.registry import METHODS
from llmlab.methods.mcts_sr import (
    CRITIQUE_PROMPT,
    DUMMY_ANSWERS,
    REFINE_PROMPT,
    SELF_EVALUATE_PROMPT,
    MCTSr,
    Tree,
    normalize_score,
    parse_score,
    q_value,
    uct,
)


def aoracle(fn):
    async def oracle(a):
        return fn(a)

    return oracle


REWARD_MARK = SELF_EVALUATE_PROMPT.splitlines()[-1]
CRITIQUE_MARK = CRITIQUE_PROMPT.splitlines()[1][:40]
REFINE_MARK = REFINE_PROMPT.splitlines()[1][:30]


class Scripted:
    """Weak answer 'A0'; critique 'C[<answer>#k]'; rewrite 'R' + critique; score from ``score(answer, j)``.

    Replies depend on the request's content, never on call order, so concurrency cannot change them.
    """

    def __init__(self, score: Callable[[str, int], str | float]) -> None:
        self.score = score
        self.rewards: dict[str, int] = {}
        self.crits: dict[str, int] = {}
        self.backend = MockBackend(self.reply)
        self.model = Model(self.backend)

    def reply(self, req: GenerateRequest, index: int) -> str:
        assert req.messages is not None
        last = req.messages[-1].content
        if REWARD_MARK in last:
            ans = last.split("Answer:", 1)[1].split("\n", 1)[0]
            j = self.rewards.get(ans, 0)
            self.rewards[ans] = j + 1
            s = self.score(ans, j)
            return s if isinstance(s, str) else f"[Analyst] ok [Score] {s}"
        if CRITIQUE_MARK in last:
            ans = req.messages[-2].content
            k = self.crits.get(ans, 0)
            self.crits[ans] = k + 1
            return f"C[{ans}#{k}]"
        if REFINE_MARK in last:
            return "R" + req.messages[-2].content
        return "A0"

    def requests_with(self, mark: str) -> list[GenerateRequest]:
        return [r for r in self.backend.requests if r.messages is not None and mark in r.messages[-1].content]


def by_length(ans: str, j: int) -> float:
    """Longer (more refined) answers score higher; a second sample of a node scores 10 less."""
    return min(90, 10 * len(ans)) - 10 * j


Q = Query.from_text("What is 6*7?")


# -- formulas -----------------------------------------------------------------------------------------


def test_q_is_half_min_plus_mean() -> None:
    assert q_value([-20, 40]) == pytest.approx(-5.0)  # (-20 + 10) / 2
    assert q_value([30]) == 30


def test_uct_matches_hand_computed_value_and_roots_have_no_exploration() -> None:
    assert uct(-5.0, 3, 2) == pytest.approx(-5.0 + 1.4 * math.sqrt(math.log(4) / (2 + 1e-5)))
    assert uct(12.5, 0, 4) == 12.5


def test_official_backprop_on_a_scripted_tree() -> None:
    t = Tree()
    r0 = t.add("a0", None, "p")
    r1 = t.add("dummy", None, "p", dummy=True)
    r0.rewards += [40, 60]
    r1.rewards += [-50]
    t.update()
    assert t.uct == {0: pytest.approx(45.0), 1: pytest.approx(-50.0)}  # roots: Q only
    c1 = t.add("c1", r0, "p")
    c2 = t.add("c2", r0, "p")
    c1.rewards += [70]
    c2.rewards += [10, 30]
    t.update()
    explore = 1.4 * math.sqrt(math.log(2 + 1))  # N(r0) = 2
    assert t.uct[c1.id] == pytest.approx(70 + explore / math.sqrt(1 + 1e-5))
    assert t.uct[c2.id] == pytest.approx(15 + explore / math.sqrt(2 + 1e-5))
    assert t.uct[r0.id] == pytest.approx((45 + 70) / 2)  # Q' = (Q + max child Q) / 2, root: no exploration


def test_official_backprop_mixes_one_level_and_full_mode_recomputes_all() -> None:
    t = Tree()
    r = t.add("r", None, "p")
    r.rewards += [0]
    t.update()
    c = t.add("c", r, "p")
    c.rewards += [40]
    t.update()
    g = t.add("g", c, "p")
    g.rewards += [80]
    c.rewards += [20]  # c was selected: one more sample, Q(c) = (20 + 30) / 2 = 25
    t.update()
    # official: r is the parent of no leaf, so it keeps the value from the previous update
    assert t.uct[r.id] == pytest.approx((0 + 40) / 2)
    t.update(mode="full")
    assert t.uct[r.id] == pytest.approx((0 + 25) / 2)


def test_expansion_eligibility() -> None:
    t = Tree()
    root = t.add("r", None, "p")
    root.rewards += [50]
    kids = [t.add(f"k{i}", root, "p") for i in range(3)]
    for k in kids:
        k.rewards += [10]
    assert root in t.expandable()  # 3 children, best child worse than the node: still eligible
    kids[2].rewards[0] = 60
    assert root not in t.expandable()  # a better child makes it fully expanded
    assert all(k in t.expandable() for k in kids)


def test_selection_is_global_max_uct_first_wins_ties() -> None:
    t = Tree()
    a, b = t.add("a", None, "p"), t.add("b", None, "p")
    a.rewards += [10]
    b.rewards += [10]
    t.update()
    assert t.select() is a
    b.rewards[0] = 11
    t.update()
    assert t.select() is b


# -- reward parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("Score: 87.5", 87.5),
        ("[Analyst] fine [Score] -30", -30.0),
        ("[Score] 80 out of 100", 50.0),  # two numbers: the last one (100), suppressed to 50
        ("[Score] 120", 50.0),  # clipped to 100, then suppressed
        ("[Score] -300", -100.0),
        ("[Score] 95", 50.0),
        ("[Score] 94", 94.0),
        ("Score 70 ... revised Score: 20", 20.0),  # after the last "Score"
    ],
)
def test_score_parse_edge_cases(text: str, score: float) -> None:
    assert normalize_score(parse_score(text)) == score


def test_score_without_number_raises() -> None:
    with pytest.raises(ParseError, match="no score number"):
        parse_score("[Analyst] bad [Score] none given")


def test_clip_and_suppression_are_configurable() -> None:
    assert normalize_score(-300, clip=False) == -300
    assert normalize_score(120, suppress_at=None) == 100
    assert normalize_score(97, suppress_at=99) == 97


@pytest.mark.anyio
async def test_parse_failures_are_retried_a_bounded_number_of_times() -> None:
    s = Scripted(lambda a, j: "[Score] unreadable")
    with pytest.raises(ParseError, match="after 3 tries"):
        await MCTSr({"parse_retries": 2, "dummy_root": False}).solve(Q, Roles(s.model))
    assert s.backend.call_count == 1 + 3


@pytest.mark.anyio
async def test_a_retried_parse_still_yields_one_reward() -> None:
    s = Scripted(lambda a, j: "no number" if j == 0 else 30)
    sol = await MCTSr({"rollouts": 0, "dummy_root": False}).solve(Q, Roles(s.model))
    assert sol.trace["nodes"][0]["rewards"] == [30.0] and sol.trace["parse_failures"] == 1


# -- the search ---------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("k", [0, 1, 4])
async def test_call_count_is_three_plus_four_per_rollout(k: int) -> None:
    s = Scripted(by_length)
    sol = await MCTSr({"rollouts": k}).solve(Q, Roles(s.model))
    assert s.backend.call_count == sol.trace["calls"] == 3 + 4 * k
    assert len(sol.trace["nodes"]) == 2 + k


@pytest.mark.anyio
async def test_reward_samples_are_one_plus_times_selected() -> None:
    s = Scripted(lambda a, j: 40 if a == "A0" else 10)  # A0 stays best: selected again and again
    sol = await MCTSr({"rollouts": 5}).solve(Q, Roles(s.model))
    selected = [it["selected"] for it in sol.trace["iterations"]]
    for node in sol.trace["nodes"]:
        assert len(node["rewards"]) == 1 + selected.count(node["id"])
    assert selected.count(0) >= 3


@pytest.mark.anyio
async def test_dummy_root_is_one_of_the_fixed_strings_and_never_selected() -> None:
    s = Scripted(lambda a, j: 80 if a in DUMMY_ANSWERS else -40)
    sol = await MCTSr({"rollouts": 1}).solve(Q, Roles(s.model))
    dummy = sol.trace["nodes"][1]
    assert dummy["dummy"] and dummy["text"] in DUMMY_ANSWERS
    assert sol.trace["iterations"][0]["selected"] == 1  # the search may expand it ...
    assert sol.text not in DUMMY_ANSWERS  # ... but it is never the answer


@pytest.mark.anyio
async def test_refine_sees_the_answer_unless_official_truncation() -> None:
    full, official = Scripted(by_length), Scripted(by_length)
    await MCTSr({"rollouts": 1, "dummy_root": False}).solve(Q, Roles(full.model))
    await MCTSr({"rollouts": 1, "dummy_root": False, "refine_context": "official"}).solve(Q, Roles(official.model))
    (ref_full,) = full.requests_with(REFINE_MARK)
    (ref_off,) = official.requests_with(REFINE_MARK)
    assert ref_full.messages is not None and ref_off.messages is not None
    assert [m.role for m in ref_off.messages] == ["user", "assistant", "user"]
    assert all(m.content != "A0" for m in ref_off.messages)
    assert [m.role for m in ref_full.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert ref_full.messages[1].content == "A0" and ref_full.messages[3].content == "C[A0#0]"
    # the critique call sees the answer in both modes
    for s in (full, official):
        (crit,) = s.requests_with(CRITIQUE_MARK)
        assert crit.messages is not None and crit.messages[-2].content == "A0"


@pytest.mark.anyio
async def test_every_call_uses_temperature_095_and_distinct_sample_indices() -> None:
    s = Scripted(by_length)
    await MCTSr({"rollouts": 3}).solve(Q, Roles(s.model))
    assert {r.temperature for r in s.backend.requests} == {0.95}
    assert len({r.sample_index for r in s.backend.requests}) == len(s.backend.requests)


@pytest.mark.anyio
async def test_same_scripted_scorer_gives_the_same_tree() -> None:
    runs = []
    for _ in range(2):
        s = Scripted(lambda a, j: (len(a) * 37 + j * 11) % 190 - 90)
        sol = await MCTSr({"rollouts": 6}).solve(Q, Roles(s.model))
        runs.append([(n["text"], n["parent"], n["rewards"]) for n in sol.trace["nodes"]])
    assert runs[0] == runs[1]


@pytest.mark.anyio
async def test_selection_policies() -> None:
    def score(a: str, j: int) -> float:
        return {"A0": 60, "RC[A0#0]": 20}.get(a, 0)

    base = {"rollouts": 2, "dummy_root": False}
    best = await MCTSr(base).solve(Q, Roles(Scripted(score).model))
    last = await MCTSr({**base, "selection": "last"}).solve(Q, Roles(Scripted(score).model))
    assert best.text == "A0"
    assert last.text == last.trace["nodes"][-1]["text"] != "A0"
    q = Query.from_text("What is 6*7?", extract=lambda t: "x" if t.startswith("R") else "y")
    vote = await MCTSr({**base, "selection": "majority"}).solve(q, Roles(Scripted(score).model))
    assert vote.answer == "x" and vote.text == "RC[A0#0]"  # 2 votes for "x"; best Q among them


# -- oracle vs selection ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_solve_never_reports_pass_at_k() -> None:
    sol = await MCTSr({"rollouts": 1}).solve(Q, Roles(Scripted(by_length).model))
    assert sol.trace["pass_at_k"] is None


@pytest.mark.anyio
async def test_oracle_reports_pass_at_k_apart_from_the_selected_answer() -> None:
    # the correct answer (the first rewrite) scores badly, so selection does not pick it
    def score(a: str, j: int) -> float:
        return -60 if a == "RC[A0#0]" else 40

    truth = "RC[A0#0]"
    s = Scripted(score)
    sol = await MCTSr({"rollouts": 3}).solve_with_oracle(Q, Roles(s.model), aoracle(lambda a: a == truth))
    pk = sol.trace["pass_at_k"]
    assert pk["correct"] is True and pk["k"] == 4 and pk["first_correct"] == 2
    assert pk["calls_at_first_correct"] == 3 + 4 and pk["early_stop"] is False
    assert sol.answer != truth  # accuracy would count this item wrong
    assert s.backend.call_count == 3 + 4 * 3  # the oracle did not change the search


@pytest.mark.anyio
async def test_oracle_early_stop_is_opt_in_and_stops_at_the_first_correct_answer() -> None:
    truth = "RC[A0#0]"
    s = Scripted(lambda a, j: 40 if a == "A0" else -40)
    sol = await MCTSr({"rollouts": 5, "oracle_early_stop": True}).solve_with_oracle(
        Q, Roles(s.model), aoracle(lambda a: a == truth)
    )
    assert sol.trace["stopped"] == "oracle" and s.backend.call_count == 3 + 4
    s0 = Scripted(by_length)
    sol0 = await MCTSr({"rollouts": 5, "oracle_early_stop": True}).solve_with_oracle(
        Q, Roles(s0.model), aoracle(lambda a: a == "A0")
    )
    assert sol0.trace["stopped"] == "oracle" and s0.backend.call_count == 3  # the weak answer was right


@pytest.mark.anyio
async def test_oracle_receives_the_extracted_answer() -> None:
    seen: list[str | None] = []
    q = Query.from_text("What is 6*7?", extract=lambda t: t[:2])
    await MCTSr({"rollouts": 1}).solve_with_oracle(
        q, Roles(Scripted(by_length).model), aoracle(lambda a: seen.append(a) or False)
    )
    assert seen == ["A0", "RC"]


def test_registry_name() -> None:
    assert METHODS.get("mcts_sr") is MCTSr


def test_eval_reports_selection_as_accuracy_and_oracle_as_pass_at_k(shared_data: Path, tmp_path: Path) -> None:
    from llmlab.runner import EvalSpec, run_eval

    # The weak answer (18, right for GSM8K test item 0) is scored low; every rewrite says 7 and scores high.
    script = tmp_path / "mcts.yaml"
    script.write_text(
        "rules:\n"
        "  - {pattern: 'Answer:#### 18', reply: '[Analyst] poor [Score] -50'}\n"
        "  - {pattern: '\\[Analyst\\]', reply: '[Analyst] fine [Score] 60'}\n"
        "  - {pattern: 'Refine your answer', reply: '#### 7'}\n"
        "default: '#### 18'\n"
    )
    summary = run_eval(EvalSpec(
        task="gsm8k", method="mcts_sr", model_spec=f"mock:{script}", params=["rollouts=2"], limit=1,
        data_dir=str(shared_data), runs_dir=str(tmp_path / "runs"), run_id="r",
    ))
    assert summary.n_scored == 1
    assert summary.aggregate["accuracy"] == 0.0  # the selected (max-Q) answer is 7
    assert summary.aggregate["oracle_pass_at_k"] == 1.0  # an explored answer (the weak one) was right
    assert "pass_at_k" not in summary.aggregate

    # with the official early stop the answer depends on the ground truth: nothing is called accuracy
    stopped = run_eval(EvalSpec(
        task="gsm8k", method="mcts_sr", model_spec=f"mock:{script}", params=["rollouts=2", "oracle_early_stop=true"],
        limit=1, data_dir=str(shared_data), runs_dir=str(tmp_path / "runs"), run_id="r-stop",
    ))
    assert "accuracy" not in stopped.aggregate and "score" not in stopped.aggregate
    assert stopped.aggregate["oracle_accuracy"] == 1.0 and stopped.aggregate["oracle_pass_at_k"] == 1.0


@pytest.mark.anyio
async def test_self_consistency_can_sample_mcts_sr_with_distinct_sample_indices() -> None:
    from llmlab.methods.self_consistency import SelfConsistency

    s = Scripted(by_length)
    sc = SelfConsistency({"k": 2, "sampler": "mcts_sr", "sampler_params": {"rollouts": 1}})
    await sc.solve(Q, Roles(s.model))
    idx = [r.sample_index for r in s.backend.requests]
    assert len(idx) == 2 * 7 and len(set(idx)) == len(idx)
