"""Protocol 1: test-time solution optimization (call counts, constraint, vote, roles, the eval CLI)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.textgrad.method import TextGrad, vote
from tests.methods.textgrad.helpers import kinds, reply_mc, system_of, user_of


def _query() -> Query:
    from llmlab.tasks.mmlu_redux.scoring import extract_choice

    q = Query.from_text("Which is prime?\nA. 4\nB. 5\nC. 6", extract=lambda t: extract_choice(t, 3))
    return Query(q.messages, extract=q.extract, metadata={"choices": ["4", "5", "6"]})


def test_three_calls_per_iteration_and_majority_vote() -> None:
    backend = MockBackend(reply_mc)
    sol = run_sync(TextGrad({"iterations": 3}).solve(_query(), Roles(Model(backend))))
    assert kinds(backend) == ["forward"] + ["forward", "backward", "optimizer"] * 3  # the loss is an LLM call
    assert sol.trace["answers"] == ["A", "B", "B", "B"] and sol.answer == "B"
    assert sol.trace["votes"] == {"A": 1, "B": 3}
    assert sol.trace["calls"] == 10 and sol.trace["call_kinds"] == {"loss": 3, "backward": 3, "optimizer": 3}
    update = next(r for r in backend.requests if "IMPROVED_VARIABLE" in (system_of(r) or ""))
    assert "<CONSTRAINTS>Constraint 1: The last line of your response should be of the following format: " \
           "'Answer: $LETTER' (without quotes) where LETTER is one of ABC.</CONSTRAINTS>" in user_of(update)
    loss = backend.requests[1]
    assert "Question: Which is prime?" in user_of(loss) and "Answer by the language model: I think it is A." in \
        user_of(loss)


def test_roles_route_calls_and_unknown_role_is_one_line() -> None:
    default, back, opt = MockBackend(reply_mc), MockBackend(reply_mc), MockBackend(reply_mc)
    roles = Roles(Model(default), backward=Model(back), optimizer=Model(opt))
    run_sync(TextGrad({"iterations": 2}).solve(_query(), roles))
    assert kinds(default) == ["forward"]
    assert kinds(back) == ["forward", "backward"] * 2  # loss and feedback
    assert kinds(opt) == ["optimizer"] * 2
    with pytest.raises(ConfigError, match="textgrad has no role 'judge'; its roles: backward, optimizer"):
        run_sync(TextGrad().solve(_query(), Roles(Model(default), judge=Model(back))))


def test_tag_failures_keep_the_answer_and_are_traced() -> None:
    def no_tags(request: object, i: int) -> str:
        return "Answer: C"

    method = TextGrad({"iterations": 1, "max_tag_retries": 1})
    sol = run_sync(method.solve(_query(), Roles(Model(MockBackend(no_tags)))))
    assert sol.trace["iterates"] == ["Answer: C", "Answer: C"] and sol.answer == "C"
    assert sol.trace["tag_failures"] == [["Answer: C", "Answer: C"]]


def test_vote_never_picks_no_answer() -> None:
    assert vote([None, None, "C"]) == ("C", {"C": 1})
    assert vote([None]) == (None, {})
    assert vote(["A", "B"])[0] == "A"


def test_eval_cli_on_mmlu_redux(tmp_path: Path, shared_data: Path) -> None:
    from llmlab.cli import main

    rc = main(["eval", "mmlu_redux", "--method", "textgrad", "-p", "iterations=3", "-m",
               "mock:py=tests.methods.textgrad.helpers:reply_mc", "--limit", "2", "--runs-dir", str(tmp_path),
               "--run-id", "r", "--no-progress", "-t", "subjects=[virology]"])
    assert rc == 0
    db = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    rows = db.execute("SELECT answer, calls FROM items").fetchall()
    assert rows == [("B", 10), ("B", 10)]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["method_params"]["iterations"] == 3
