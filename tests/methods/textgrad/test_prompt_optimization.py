"""Protocol 2: prompt optimization — schedule, call counts per step, validation-revert, CLI, eval reuse."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Item, Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.textgrad.prompt_optimization import (
    PromptOptimizationConfig,
    PromptOptimizer,
    Split,
    load_splits,
)
from llmlab.methods.textgrad.prompts import BACKWARD_SYSTEM_PROMPT
from tests.methods.textgrad.helpers import kinds, system_of, user_of


def _split(loss: str = "string") -> Split:
    items = [Item(f"i{i}", f"How many? {i}", str(i)) for i in range(30)]
    return Split(items[:15], items[15:20], items[20:30], lambda it: str(it.input),
                 lambda it, a: a.strip().endswith(f"Answer: {it.target}"), "Count things.", loss)  # type: ignore[arg-type]


@functools.cache
def _bbh_targets() -> dict[str, str]:
    path = Path(os.environ.get("LLMLAB_DATA_DIR", "")) / "bbh" / "bbh" / "object_counting.json"
    if not path.is_file():
        return {}
    return {e["input"]: e["target"] for e in json.loads(path.read_text())["examples"]}


def counting_reply(request: GenerateRequest, _i: int = 0) -> str:
    """Right answers only once the prompt says 'carefully'; updates add it at version 2."""
    system, user = system_of(request), user_of(request)
    if system == BACKWARD_SYSTEM_PROMPT:
        return "Count more carefully."
    if system is not None and "IMPROVED_VARIABLE" in system:
        m = re.search(r"<VARIABLE> (.*?) </VARIABLE>", user, re.S)
        old = m.group(1) if m else ""
        return f"<IMPROVED_VARIABLE>{old} carefully</IMPROVED_VARIABLE>"
    if system is not None and "evaluation system" in system:
        return "<ACCURACY> 0 </ACCURACY>"
    n = _bbh_targets().get(user, user.rsplit(" ", 1)[-1])
    return f"Answer: {n}" if system is not None and "carefully" in system else "Answer: 999"


def test_one_step_call_counts_string_loss() -> None:
    backend = MockBackend(counting_reply)
    cfg = PromptOptimizationConfig(validation_revert=False, test_every_step=False)
    po = PromptOptimizer(cfg, Roles(Model(backend)), _split())
    run_sync(po.step(po.splits.train[:3]))
    # 3 forward, the string loss costs nothing, 2 feedback calls per item (loss->answer, answer->prompt), 1 update
    assert kinds(backend) == ["forward"] * 3 + ["backward"] * 6 + ["optimizer"]
    assert po.system_prompt.value == "Count things. carefully"


def test_one_step_call_counts_llm_loss_and_roles() -> None:
    task, opt = MockBackend(counting_reply), MockBackend(counting_reply)
    cfg = PromptOptimizationConfig(loss="llm", validation_revert=False, test_every_step=False)
    po = PromptOptimizer(cfg, Roles(Model(task), optimizer=Model(opt)), _split())
    run_sync(po.step(po.splits.train[:3]))
    assert kinds(task) == ["forward"] * 3
    assert kinds(opt) == ["forward"] * 3 + ["backward"] * 6 + ["optimizer"]  # judge, feedback, update
    with pytest.raises(ConfigError, match="no role 'judge'"):
        PromptOptimizer(cfg, Roles(Model(task), judge=Model(opt)), _split())


def test_full_schedule_is_twelve_updates_with_learning_curve() -> None:
    backend = MockBackend(counting_reply)
    po = PromptOptimizer(PromptOptimizationConfig(), Roles(Model(backend)), _split())
    res = run_sync(po.run())
    # 15 training items = 5 batches of 3; the official loop stops each epoch after 4: 3 x 4 = 12 updates
    assert res.calls["optimizer"] == 12 and len(res.prompts) == 13 and len(res.test_acc) == 13
    assert res.test_acc[0] == 0.0 and res.test_acc[1:] == [1.0] * 12
    assert res.calls["forward"] == 12 * 3 and res.calls["backward"] == 12 * 6
    assert res.calls["eval"] == 13 * (5 + 10)  # validation and test after every step
    assert res.reverted == [False] * 13

def test_validation_revert_restores_the_previous_prompt() -> None:
    def worse(request: GenerateRequest, i: int) -> str:
        system = system_of(request)
        if system is not None and "IMPROVED_VARIABLE" in system:
            return "<IMPROVED_VARIABLE>a worse prompt</IMPROVED_VARIABLE>"
        if system == BACKWARD_SYSTEM_PROMPT:
            return "Change everything."
        return "Answer: 9" if system == "Count things." else "Answer: 0"

    items = [Item(f"i{i}", f"q{i}", "9") for i in range(12)]
    split = Split(items[:6], items[6:9], items[9:], lambda it: str(it.input),
                  lambda it, a: a.endswith("Answer: 9"), "Count things.", "string")
    po = PromptOptimizer(PromptOptimizationConfig(epochs=1, steps_per_epoch=2), Roles(Model(MockBackend(worse))), split)
    res = run_sync(po.run())
    assert res.reverted == [False, True, True]
    assert res.prompt == "Count things." and res.val_acc == [1.0, 1.0, 1.0]


def test_bbh_splits_are_official(shared_data: Path) -> None:
    sp = load_splits("bbh_object_counting")
    assert (len(sp.train), len(sp.val), len(sp.test)) == (50, 100, 100)
    assert sp.train[0].id == "object_counting-0" and sp.val[0].id == "object_counting-50"
    assert sp.test[-1].id == "object_counting-249" and sp.loss == "string"
    assert load_splits("bbh_word_sorting").loss == "llm"
    with pytest.raises(ConfigError, match="supports tasks"):
        load_splits("mmlu_redux")


def test_gsm8k_splits_are_official(shared_data: Path) -> None:
    sp = load_splits("gsm8k")
    assert (len(sp.train), len(sp.val), len(sp.test)) == (7373, 100, 300)
    assert sp.val[0].id == "train-0" and sp.train[0].id == "train-100" and sp.test[-1].id == "test-299"
    assert sp.question(sp.test[0]).startswith("Question: ")


def test_cli_writes_prompt_and_curve_usable_by_eval(tmp_path: Path, shared_data: Path) -> None:
    from llmlab.cli import main

    out = tmp_path / "po"
    spec = "mock:py=tests.methods.textgrad.test_prompt_optimization:counting_reply"
    rc = main(["textgrad", "optimize-prompt", "--task", "bbh_object_counting", "--out", str(out), "-m", spec,
               "-p", "epochs=1", "-p", "steps_per_epoch=1", "-p", "limit_val=5", "-p", "limit_test=5"])
    assert rc == 0
    prompt = (out / "prompt.txt").read_text().strip()
    assert prompt.endswith("carefully")
    results = json.loads((out / "results.json").read_text())
    assert results["test_acc"] == [0.0, 1.0] and results["calls"]["optimizer"] == 1
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    rc = main(["eval", "bbh_object_counting", "-m", spec, "-p", f"system_prompt=@{out / 'prompt.txt'}",
               "--limit", "3", "--runs-dir", str(tmp_path / "runs"), "--run-id", "e", "--no-progress"])
    assert rc == 0
    import sqlite3

    rows = sqlite3.connect(tmp_path / "runs" / "e" / "run.sqlite").execute("SELECT correct FROM items").fetchall()
    assert rows == [(1,), (1,), (1,)]  # the mock answers right only under the optimised prompt
