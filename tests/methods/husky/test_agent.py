"""Husky's loop with scripted models: action parsing, every tool, step caps, failures shown, traces, concurrency."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend, last_user_text
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.husky import prompts as P
from llmlab.methods.husky.agent import (
    Husky,
    cut_output,
    extract_answer,
    extract_code,
    history_text,
    parse_action,
    simplify_output,
)
from llmlab.methods.husky.search import BM25Retriever, Document, NoSearch, Retriever

FAST = {"code_prefix": "", "code_timeout": 20.0}  # no heavy imports in the sandbox for scripted checks


def n_steps(prompt: str) -> int:
    """How many executed steps the prompt's solution history shows."""
    return len(re.findall(r"^Step: ", prompt.split("---")[-1], re.M))


class Script:
    """A scripted role: ``replies[k]`` for the k-th step of the history (the last one repeats); records prompts."""

    def __init__(self, *replies: str) -> None:
        self.replies = replies
        self.prompts: list[str] = []

    def __call__(self, request: GenerateRequest, index: int) -> str:
        text = last_user_text(request)
        self.prompts.append(text)
        k = n_steps(text)
        return self.replies[min(k, len(self.replies) - 1)]

    def model(self) -> Model:
        return Model(MockBackend(self))


@pytest.mark.parametrize(("text", "tool", "step", "fallback"), [
    ("[code] Compute 12 * 34.", "code", "Compute 12 * 34.", None),
    ("  \n[math] Solve x + 1 = 3.", "math", "Solve x + 1 = 3.", None),
    ("[Search] Find the capital of Chile.", "search", "Find the capital of Chile.", None),
    ("[match_info] Find the Seahawks game.", "match_info", "Find the Seahawks game.", None),
    ("[browse] Look it up online.", "commonsense", "Look it up online.", "unknown tool [browse]"),
    ("I think the answer is obvious.", "commonsense", P.FALLBACK_STEP, "unparseable action"),
    ("[finish]", "commonsense", P.FALLBACK_STEP, "unparseable action"),
    ("[finish] The answer is 42.", "finish", "The answer is 42.", None),
])
def test_parse_action(text: str, tool: str, step: str, fallback: str | None) -> None:
    a = parse_action(text)
    assert (a.tool, a.step, a.fallback) == (tool, step, fallback)


def test_answer_history_and_output_helpers() -> None:
    assert extract_answer("The answer is 3.5.") == "3.5"
    assert extract_answer("So x=2. The answer is x = 2") == "x = 2"
    assert extract_answer("Washington") == "Washington"
    assert history_text([]) == "None"
    assert history_text([(" a ", " b ")]) == "Step: a\nOutput: b"
    assert cut_output("It is 4.\nThe answer is \\boxed{4}.") == "It is 4."
    assert cut_output("x.\nCurrent step: y\nStep: z") == "x."
    assert simplify_output("") == "[FAIL]"
    assert simplify_output("12\n") == "12.0"
    assert simplify_output("2/3\n") == "2/3"
    assert extract_code("```python\nx = 1\n```\ntext\n```python\nprint(x)\n```") == "x = 1\nprint(x)"
    assert extract_code("print(2)") == "print(2)"


def docs_retriever() -> BM25Retriever:
    return BM25Retriever([
        Document("Nile", "The Nile is the major river that flows through Cairo."),
        Document("Seine", "The Seine flows through Paris."),
        Document("Thames", "The Thames flows through London."),
    ])


def test_every_tool_in_one_question_with_one_model_per_role() -> None:
    action = Script("[code] Compute 12 * 34.", "[search] Find the river through Cairo.", "[math] Halve 408.",
                    "[commonsense] Compare 204 with 100.", "[match_info] Find the Seahawks game score.",
                    "[finish] The answer is the Nile.")
    code = Script("```python\nprint(12 * 34)\n```")
    query = Script('"river through Cairo"')
    math = Script("408 / 2 = 204.\nThe answer is \\boxed{204}.")
    common = Script("204 is larger than 100.\nStep: more")

    def writer_or_reason(request: GenerateRequest, index: int) -> str:
        text = last_user_text(request)
        if text.rstrip().endswith("Rewrite:"):
            assert "Code output: 408.0" in text and "print(12 * 34)" in text
            return "12 * 34 is 408."
        if text.rstrip().endswith("Answer:"):
            assert "Output: Nile: The Nile is the major river" in text
            return "The Nile flows through Cairo."
        return common(request, index)

    roles = Roles(Model("mock:text=unused default"), action=action.model(), code=code.model(),
                  search=query.model(), math=math.model(), commonsense=Model(MockBackend(writer_or_reason)))
    sol = run_sync(Husky(FAST, retriever=docs_retriever()).solve(Query.from_text("Which river?"), roles))
    assert sol.answer == "the Nile" and sol.trace["finished"]
    assert sol.trace["tools"] == ["code", "search", "math", "commonsense", "match_info"]
    outputs = [s["output"] for s in sol.trace["steps"]]
    assert outputs == ["12 * 34 is 408.", "The Nile flows through Cairo.", "408 / 2 = 204.",
                       "204 is larger than 100.", "Nile: The Nile is the major river that flows through Cairo."]
    assert sol.trace["steps"][1]["query"] == "river through Cairo"  # quotes removed
    # the history grows by one Step/Output pair per step, and each action sees all earlier outputs
    assert [n_steps(p) for p in action.prompts] == [0, 1, 2, 3, 4, 5]
    assert "Solution history:\nNone\n" in action.prompts[0]
    for k, prompt in enumerate(action.prompts[1:], 1):
        assert all(f"Output: {o}" in prompt for o in outputs[:k])
    # the experts get the current step; code gets the code prompt
    assert "Current step: Compute 12 * 34.\nCode:\n" in code.prompts[0]
    # call graph: 1 action + 1 expert (+1 writer for code and search; none for match_info)
    roles_per_step = [[c["role"] for c in s["calls"]] for s in sol.trace["steps"]]
    assert roles_per_step == [["action", "code", "writer"], ["action", "search", "writer"], ["action", "math"],
                              ["action", "commonsense"], ["action", "search"]]
    assert len(sol.calls) == 6 + 2 + 2 + 1 + 1 + 1
    indices = [c["call"] for s in sol.trace["steps"] for c in s["calls"]]
    assert indices == list(range(len(sol.calls) - 1))  # every call but the final [finish] action is in a step
    assert all(c.request["messages"] for c in sol.calls)


def test_step_cap_counts_and_cap_answers() -> None:
    action = Script("[commonsense] Think about it.")
    common = Script("Still thinking.", "Thought twice.")
    roles = Roles(Model("mock:text=x"), action=action.model(), commonsense=common.model())
    sol = run_sync(Husky({"max_steps": 2}).solve(Query.from_text("Q?"), roles))
    assert sol.trace["capped"] and not sol.trace["finished"]
    assert len(action.prompts) == 3 and len(common.prompts) == 2  # cap + 1 action calls, cap executions
    assert sol.answer == "Thought twice."  # on_cap=last_output
    empty = run_sync(Husky({"max_steps": 2, "on_cap": "empty"}).solve(Query.from_text("Q?"), roles))
    assert empty.answer == ""
    # with no max_steps the task's official cap in the query metadata counts
    action.prompts.clear()
    q = Query(Query.from_text("Q?").messages, metadata={"max_steps": 3, "question": "Q?"})
    run_sync(Husky().solve(q, roles))
    assert len(action.prompts) == 4


def test_official_cap_rule_and_finish_on_the_last_action_counts() -> None:
    action = Script("[code] Compute it.", "[commonsense] Check.", "[code] Compute again.")
    code = Script("print(7)")
    roles = Roles(Model("mock:text=Checked."), action=action.model(), code=code.model())
    official = run_sync(Husky({**FAST, "max_steps": 2, "on_cap": "official"}).solve(Query.from_text("Q"), roles))
    assert official.trace["tools"] == ["code", "commonsense"]
    assert official.answer == "7.0"  # the last action was [code]: the last code execution output
    late = Script("[commonsense] Check.", "[finish] The answer is 9.")
    roles = Roles(Model("mock:text=Checked."), action=late.model())
    sol = run_sync(Husky({"max_steps": 1, "on_cap": "official"}).solve(Query.from_text("Q"), roles))
    assert sol.answer == "9" and sol.trace["finished"]  # the official cap pass would overwrite it with ""


@pytest.mark.parametrize(("program", "timeout", "why"), [
    ("print(1 / 0)", 20.0, "the code raised ZeroDivisionError: division by zero"),
    ("x = 1", 20.0, "the code printed nothing"),
    ("while True:\n    pass", 1.0, "the code ran past the 1 s limit"),
])
def test_code_failures_are_shown_to_the_action_generator(program: str, timeout: float, why: str) -> None:
    action = Script("[code] Compute it.", "[finish] The answer is unknown.")
    writer = Script("should not be called")
    roles = Roles(Model("mock:text=x"), action=action.model(), code=Model(MockBackend([program])),
                  commonsense=writer.model())
    sol = run_sync(Husky({"code_prefix": "", "code_timeout": timeout}).solve(Query.from_text("Q"), roles))
    step = sol.trace["steps"][0]
    assert step["failed"] and step["output"] == f"This step has failed: {why}."
    assert f"Output: This step has failed: {why}." in action.prompts[1]
    assert writer.prompts == []  # no rewrite of a failed run
    assert [c["role"] for c in step["calls"]] == ["action", "code"]


def test_failed_search_and_empty_expert_reply_are_shown() -> None:
    action = Script("[search] Find the founder of Citibank.", "[math] Add them.", "[finish] The answer is 1.")
    roles = Roles(Model("mock:text=Citibank founder"), action=action.model(), math=Model("mock:text=  "))
    sol = run_sync(Husky(retriever=NoSearch("no index")).solve(Query.from_text("Q"), roles))
    s0, s1 = sol.trace["steps"]
    assert s0["failed"] and s0["output"] == 'This step has failed: the search found nothing for "Citibank founder" ' \
                                            "(no index)."
    assert s1["failed"] and s1["output"] == "This step has failed: the math expert returned nothing."
    assert "the search found nothing" in action.prompts[1]


def test_malformed_and_unknown_actions_fall_back_to_commonsense() -> None:
    action = Script("what now?", "[browse] Look up the mayor.", "[finish] The answer is Bob.")
    common = Script("Reasoned.")
    roles = Roles(Model("mock:text=x"), action=action.model(), commonsense=common.model())
    sol = run_sync(Husky().solve(Query.from_text("Q"), roles))
    s0, s1 = sol.trace["steps"]
    assert (s0["tool"], s0["step"], s0["fallback"]) == ("commonsense", P.FALLBACK_STEP, "unparseable action")
    assert (s1["tool"], s1["step"], s1["fallback"]) == ("commonsense", "Look up the mayor.", "unknown tool [browse]")
    assert f"Current step: {P.FALLBACK_STEP}" in common.prompts[0]
    assert sol.answer == "Bob"


def test_official_code_prefix_is_importable_in_the_sandbox() -> None:
    action = Script("[code] Add the fractions.", "[finish] The answer is 1/2.")
    roles = Roles(Model("mock:text=The sum is 1/2."), action=action.model(),
                  code=Model("mock:text=print(simplify(sympy.Rational(1, 3) + sympy.Rational(1, 6)), comb(5, 2), "
                             "gcd(12, 18))"))
    sol = run_sync(Husky({"code_timeout": 60.0}).solve(Query.from_text("Q"), roles))
    step = sol.trace["steps"][0]
    assert not step["failed"], step["exec"]
    assert step["result"] == "1/2 10 6"


def test_roles_unknown_name_refused_and_missing_roles_fall_back_to_default() -> None:
    with pytest.raises(ConfigError, match="husky has no role 'planner'"):
        run_sync(Husky().solve(Query.from_text("Q"), Roles(Model("mock:echo"), planner=Model("mock:echo"))))
    default = MockBackend(["[math] Do it.", "Done.", "[finish] The answer is 3."])
    sol = run_sync(Husky().solve(Query.from_text("Q"), Roles(Model(default))))
    assert sol.answer == "3" and len(default.requests) == 3


class SlowRetriever(Retriever):
    async def search(self, query: str, *, kind: str = "search") -> str | None:
        await anyio.sleep(0.01)
        return f"Result for {query}"


def test_questions_of_a_batch_run_concurrently_and_match_a_sequential_loop() -> None:
    in_flight = {"now": 0, "max": 0}

    async def action(request: GenerateRequest, index: int) -> str:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await anyio.sleep(0.02)
        in_flight["now"] -= 1
        text = last_user_text(request)
        q = re.search(r"Question: (Q\d+)", text).group(1)  # type: ignore[union-attr]
        return f"[search] Find {q}." if n_steps(text) == 0 else f"[finish] The answer is {q}-done."

    roles = Roles(Model("mock:text=Found it."), action=Model(MockBackend(action)))
    queries = [Query.from_text(f"Q{i}") for i in range(6)]
    husky = Husky({"concurrency": 6}, retriever=SlowRetriever())
    batch = run_sync(husky.solve_batch(queries, roles))
    assert in_flight["max"] > 1  # several questions were waiting on the action model at once
    in_flight["max"] = 0
    one_by_one = [run_sync(husky.solve(q, roles)) for q in queries]
    assert in_flight["max"] == 1
    assert [s.answer for s in batch] == [s.answer for s in one_by_one] == [f"Q{i}-done" for i in range(6)]
    assert [s.trace["steps"] for s in batch] == [s.trace["steps"] for s in one_by_one]


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="search=bm25 needs documents"):
        Husky({"search": "bm25"})
    with pytest.raises(ConfigError, match="max_steps"):
        Husky({"max_steps": -1})
    (tmp_path / "d.txt").write_text("The Nile flows through Cairo.")
    h = Husky({"documents": str(tmp_path)})
    assert run_sync(h.retriever.search("Cairo river")) == "d: The Nile flows through Cairo."
