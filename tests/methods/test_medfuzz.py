"""MedFuzz: the attack loop and its stopping with scripted models, the permutation test, the report."""

from __future__ import annotations

import re

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend, last_user_text
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.medfuzz import MCQ, MedFuzz, fuzz_report, parse_rewrite, permutation_p_value

ITEM = MCQ("q1", "A 30-year-old presents with fever and cough.", {"A": "pneumonia", "B": "asthma", "C": "GERD",
                                                                   "D": "flu"}, "A")
TRIGGER = "TRIGGER"


def target_fn(request: GenerateRequest, index: int) -> str:
    """Fails (answers B) iff the vignette contains the trigger phrase."""
    text = last_user_text(request)
    return "The cough suggests asthma.\nAnswer: B" if TRIGGER in text else "Fever and cough.\nAnswer: A"


def attacker_adding_trigger_at(turn: int, control_reply: str = "benign") -> tuple[MockBackend, list[int]]:
    """An attacker that adds the trigger on attack turn ``turn`` (1-based); controls get ``control_reply``."""
    seen: list[int] = []

    def fn(request: GenerateRequest, index: int) -> str:
        text = last_user_text(request)
        if "control version" in text:
            body = TRIGGER if control_reply == "trigger" else "who enjoys gardening"
            return f"<question>{ITEM.question} The patient {body}.</question><characteristics>hobby</characteristics>"
        t = text.count("Attempt ") + 1
        seen.append(t)
        extra = f" {TRIGGER}" if t >= turn else f" variant {t}"
        return f"<question>{ITEM.question}{extra}</question><characteristics>c{t}</characteristics>"

    return MockBackend(fn), seen


def roles_for(attacker: MockBackend, target: MockBackend | None = None) -> tuple[Roles, MockBackend]:
    tb = target if target is not None else MockBackend(target_fn)
    t = Model(tb)
    return Roles(t, target=t, attacker=Model(attacker)), tb


@pytest.mark.parametrize("turn", [1, 3])
def test_loop_stops_at_the_turn_the_attack_succeeds(turn: int) -> None:
    attacker, seen = attacker_adding_trigger_at(turn)
    roles, target = roles_for(attacker)
    r = run_sync(MedFuzz({"max_turns": 5, "n_controls": 0}).fuzz(ITEM, roles))
    assert r.success and r.success_turn == turn and len(r.turns) == turn
    assert seen == list(range(1, turn + 1))
    assert len(target.requests) == 1 + turn  # original + one per turn
    assert r.turns[-1].target_answer == "B" and r.turns[-1].characteristics == f"c{turn}"


def test_attacker_sees_previous_answers_and_reasoning() -> None:
    attacker, _ = attacker_adding_trigger_at(3)
    roles, _ = roles_for(attacker)
    run_sync(MedFuzz({"max_turns": 5, "n_controls": 0}).fuzz(ITEM, roles))
    third = last_user_text(attacker.requests[2])
    assert third.count("Attempt ") == 2 and "variant 2" in third
    assert "Fever and cough." in third and "answered A" in third
    assert "Correct answer: A" in third


def test_turn_cap_and_failure() -> None:
    attacker, seen = attacker_adding_trigger_at(99)
    roles, target = roles_for(attacker)
    r = run_sync(MedFuzz({"max_turns": 4, "n_controls": 5}).fuzz(ITEM, roles))
    assert r.attacked and not r.success and len(r.turns) == 4 and seen == [1, 2, 3, 4]
    assert r.p_value is None and r.control_answers == []  # no test without a success
    assert len(target.requests) == 5


def test_only_originally_correct_items_are_attacked() -> None:
    attacker, seen = attacker_adding_trigger_at(1)
    wrong = MCQ("q2", f"Already {TRIGGER} here.", ITEM.options, "A")
    roles, _ = roles_for(attacker)
    r = run_sync(MedFuzz().fuzz(wrong, roles))
    assert not r.original_correct and not r.attacked and r.turns == [] and seen == []
    assert attacker.requests == []


@pytest.mark.parametrize(("control", "fails", "p"), [("benign", 0, 1 / 5), ("trigger", 4, 1.0)])
def test_permutation_test_on_controls(control: str, fails: int, p: float) -> None:
    attacker, _ = attacker_adding_trigger_at(1, control_reply=control)
    roles, target = roles_for(attacker)
    r = run_sync(MedFuzz({"n_controls": 4, "alpha": 0.25}).fuzz(ITEM, roles))
    assert r.success
    assert sum(a != "A" for a in r.control_answers) == fails
    assert r.p_value == pytest.approx(p)
    assert r.significant is (p < 0.25)
    assert len(target.requests) == 1 + 1 + 4
    control_prompt = [last_user_text(q) for q in attacker.requests if "control version" in last_user_text(q)]
    assert len(control_prompt) == 4 and all(TRIGGER in c and "c1" in c for c in control_prompt)


def test_p_value_hand_computed() -> None:
    # 2 of 7 controls also fail: the attack ranks among 3 "failures" out of 8 exchangeable draws.
    assert permutation_p_value(2, 7) == pytest.approx(3 / 8)
    assert permutation_p_value(0, 19) == pytest.approx(0.05)
    assert permutation_p_value(5, 5) == 1.0
    with pytest.raises(ConfigError):
        permutation_p_value(6, 5)


def test_pluggable_controls_and_hand_case() -> None:
    calls: list[int] = []

    async def controls(item: MCQ, attack, index: int, roles: Roles) -> str:  # type: ignore[no-untyped-def]
        calls.append(index)
        return item.question + (f" {TRIGGER}" if index in (0, 3) else "")

    attacker, _ = attacker_adding_trigger_at(2)
    roles, _ = roles_for(attacker)
    r = run_sync(MedFuzz({"n_controls": 6}, control_fn=controls).fuzz(ITEM, roles))
    assert sorted(calls) == list(range(6))
    assert r.p_value == pytest.approx((1 + 2) / (1 + 6))


def test_unparsable_target_reply_counts_as_moved() -> None:
    attacker, _ = attacker_adding_trigger_at(99)
    target = MockBackend(lambda req, i: "Answer: A" if i == 0 else "I cannot decide.")
    roles, _ = roles_for(attacker, target)
    r = run_sync(MedFuzz({"n_controls": 0}).fuzz(ITEM, roles))
    assert r.success and r.success_turn == 1 and r.turns[0].target_answer is None


def test_fuzz_many_and_report_bookkeeping() -> None:
    attacker, _ = attacker_adding_trigger_at(2)
    items = [ITEM, MCQ("q2", f"{TRIGGER} already.", ITEM.options, "A"),
             MCQ("q3", "Chest pain.", ITEM.options, "A"), MCQ("q4", "Headache.", ITEM.options, "C")]
    roles, _ = roles_for(attacker)
    results = run_sync(MedFuzz({"n_controls": 3, "alpha": 0.3}).fuzz_many(items, roles))
    assert [r.id for r in results] == ["q1", "q2", "q3", "q4"]
    rep = fuzz_report(results, alpha=0.3)
    # q1, q3 correct originally (q4's target says A but answer is C; q2 has the trigger)
    assert rep["accuracy_before"] == 2 / 4
    assert rep["successful_attacks"] == 3 - 1  # q1 and q3 (q4 already wrong); attacked only q1, q3
    assert rep["accuracy_after"] == (2 - 2) / 4
    assert rep["attack_success_rate"] == 1.0 and rep["significant_attacks"] == 2
    assert rep["mean_turns_to_success"] == 2.0


def test_unknown_role_and_parse_rewrite() -> None:
    attacker, _ = attacker_adding_trigger_at(1)
    m = Model(attacker)
    with pytest.raises(ConfigError, match="attackr"):
        run_sync(MedFuzz().fuzz(ITEM, Roles(m, attackr=m)))
    assert parse_rewrite("no tags here ") == ("no tags here", "")
    assert re.search("x", parse_rewrite("<question>\nx\n</question>")[0])
