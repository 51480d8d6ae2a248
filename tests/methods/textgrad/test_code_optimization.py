"""Protocol 3: LeetCode-Hard code optimization with the tests run in the sandbox (real execution)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.textgrad.code_optimization import (
    CodeOptimizationConfig,
    extract_code,
    load_problems,
    optimize_leetcode,
    optimize_problem,
    run_tests,
)
from tests.methods.textgrad.helpers import kinds, system_of, user_of

PROBLEM = {"task_id": "add", "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
           "test": "assert add(1, 2) == 3\nassert add(2, 2) == 4"}
BUGGY = "```python\nfrom typing import List\ndef add(a: int, b: int) -> int:\n    return a - b\n```"
FIXED = "```python\nfrom typing import List\ndef add(a: int, b: int) -> int:\n    return a + b\n```"


def code_reply(request: GenerateRequest, _i: int = 0) -> str:
    system = system_of(request) or ""
    if "IMPROVED_VARIABLE" in system:
        return f"<IMPROVED_VARIABLE>{FIXED}</IMPROVED_VARIABLE>"
    if "evaluator" in system:
        return "The code did not pass this test because it subtracts."
    if "feedback (gradient) engine" in system:
        return "Use addition instead of subtraction."
    return BUGGY


def test_run_tests_reports_outputs_errors_and_timeouts() -> None:
    rep = run_sync(run_tests(BUGGY, ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]))
    assert rep.state == [False, True]
    assert "assert add(1, 2) == 3 # ERROR: this test fails: the output was -1, the expected value is 3" in rep.text
    assert "**Tests the code passed:**\n\nassert add(0, 0) == 0" in rep.text
    loop = "def add(a, b):\n    while True:\n        pass\n"
    rep = run_sync(run_tests(loop, ["assert add(1, 2) == 3"], per_test_timeout=0.5))
    assert rep.state == [False] and "ran out of time" in rep.text
    rep = run_sync(run_tests("def add(a, b) return", ["assert add(1, 2) == 3"]))
    assert rep.state == [False] and rep.compile_error is not None and "SyntaxError" in rep.text


def test_optimize_problem_fixes_the_code_then_stops() -> None:
    backend = MockBackend(code_reply)
    res = run_sync(optimize_problem(PROBLEM, CodeOptimizationConfig(), Roles(Model(backend))))
    assert res.states == [[False, False], [True, True]]
    assert not res.zero_shot_pass and res.final_pass
    assert kinds(backend) == ["forward", "forward", "backward", "optimizer"]  # code, loss, feedback, update
    loss = user_of(backend.requests[1])
    assert "the output was -1, the expected value is 3" in loss and 'def add(a: int, b: int) -> int:' in loss
    update = user_of(backend.requests[3])
    assert "Constraint 1: Do not add asserts to the code\nConstraint 2: Code must contain imports" in update


def test_five_rounds_when_tests_keep_failing() -> None:
    def never(request: GenerateRequest, i: int) -> str:
        if "IMPROVED_VARIABLE" in (system_of(request) or ""):
            return f"<IMPROVED_VARIABLE>{BUGGY}</IMPROVED_VARIABLE>"
        return BUGGY

    backend = MockBackend(never)
    res = run_sync(optimize_problem(PROBLEM, CodeOptimizationConfig(), Roles(Model(backend))))
    assert len(res.states) == 6 and not res.final_pass
    assert kinds(backend).count("optimizer") == 5


def test_leetcode_data_and_cli(tmp_path: Path, shared_data: Path) -> None:
    problems = load_problems()
    assert len(problems) == 39 and all(p["test"].startswith("assert") for p in problems)
    data = tmp_path / "data" / "leetcode-hard"
    data.mkdir(parents=True)
    (data / "leetcode_with_tests.jsonl").write_text(json.dumps(PROBLEM) + "\n")
    from llmlab.cli import main

    out = tmp_path / "code.jsonl"
    rc = main(["textgrad", "optimize-code", "--data-dir", str(tmp_path / "data"), "--out", str(out), "-m",
               "mock:py=tests.methods.textgrad.test_code_optimization:code_reply"])
    assert rc == 0
    row = json.loads(out.read_text())
    assert row["task_id"] == "add" and row["final_pass"] and not row["zero_shot_pass"]
    with pytest.raises(ConfigError, match="no role 'judge'"):
        run_sync(optimize_leetcode(CodeOptimizationConfig(data_dir=str(tmp_path / "data")),
                                   Roles(Model("mock:echo"), judge=Model("mock:echo")), out))


def test_extract_code() -> None:
    assert extract_code("```python\na = 1\n```\n```python\nb = 2\n```") == "a = 1\n"
    assert extract_code("plain = 1") == "plain = 1"
