"""Visual Sketchpad with scripted planners: parsing, caps, failures fed back, images in the next turn, traces.

Most tests use a fake notebook (no sandbox); the ``real`` ones run the planner's code in the sandbox.
Mock replies are scripted: nothing here measures a model.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from typing import Any

import anyio
import pytest

from llmlab.backends.base import GenerateRequest, content_images
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ConfigError, UnsupportedFeatureError
from llmlab.methods.sketchpad import Sketchpad, SketchpadBaseline, extract_answer, parse_action
from llmlab.methods.sketchpad.kernel import Execution
from tests.helpers.runs import png
from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture

CODE = "THOUGHT 0: draw it.\nACTION 0:\n```python\nprint('drawn')\n```"


class FakeKernel:
    """Records cells; returns scripted executions (default: success with one image)."""

    def __init__(self, images: list[bytes], results: list[Execution] | None = None) -> None:
        self.images = images
        self.cells: list[str] = []
        self.results = list(results or [])

    async def execute(self, code: str) -> Execution:
        self.cells.append(code)
        if self.results:
            return self.results.pop(0)
        return Execution(0, [{"type": "text", "text": "before\n"}, {"type": "image", "png": png()},
                             {"type": "text", "text": "after\n"}])


def _solve(replies: list[str], *, kernels: list[FakeKernel] | None = None, query: Query | None = None,
           results: list[Execution] | None = None, **cfg: Any) -> tuple[Any, MockBackend, list[FakeKernel]]:
    made: list[FakeKernel] = kernels if kernels is not None else []

    def factory(images: list[bytes]) -> FakeKernel:
        k = FakeKernel(images, results)
        made.append(k)
        return k

    backend = MockBackend(replies)
    method = Sketchpad(cfg, kernel_factory=factory)
    sol = run_sync(method.solve(query if query is not None else Query.from_text("What is the max flow?"),
                                Roles(Model(backend))))
    return sol, backend, made


def _last_user_text(req: GenerateRequest) -> str:
    assert req.messages is not None
    return req.messages[-1].text


# -- parsing -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "ok", "error_code", "terminate"), [
    (CODE, True, "", False),
    ("THOUGHT: no code here", False, "no_code_block", False),
    ("```python\nx = 1\n", False, "unclosed_code_block", False),
    ("```python\n   \n```", False, "empty_code", False),
    ("```python\ndef f(:\n```", False, "syntax_error", False),
    ("```python\nprint('TERMINATE')\n```", True, "", False),
    ("ANSWER: 7. TERMINATE", False, "no_code_block", True),
    ("```python\nx = (\n``` ANSWER: 3 TERMINATE", False, "syntax_error", True),
])
def test_parse_action(reply: str, ok: bool, error_code: str, terminate: bool) -> None:
    a = parse_action(reply)
    assert (a.ok, a.error_code, a.terminate) == (ok, error_code, terminate)


def test_parser_keeps_backslashes_and_takes_the_first_block() -> None:
    a = parse_action('```python\nprint("a\\nb")\n```\n```python\nprint(2)\n```')
    assert a.ok and a.code == '\nprint("a\\nb")\n'  # the official parser would drop the backslash


@pytest.mark.parametrize(("prose", "answer"), [
    ("THOUGHT 1: ok.\nANSWER: convex. TERMINATE", "convex"),
    ("ANSWER: a ANSWER: yes, there is a path. TERMINATE", "yes, there is a path"),
    ("answer: 12", "12"),
    ("no answer here TERMINATE", None),
])
def test_extract_answer(prose: str, answer: str | None) -> None:
    assert extract_answer(prose) == answer


# -- the loop ----------------------------------------------------------------------------------------------

def test_code_runs_and_the_image_comes_back_in_the_next_turn() -> None:
    sol, backend, kernels = _solve([CODE, "THOUGHT 1: seen it. ANSWER: 5. TERMINATE"])
    assert sol.answer == "5" and sol.trace["stop"] == "terminate" and sol.trace["finished"]
    assert backend.image_counts == [0, 1]
    second = backend.requests[1].messages
    assert second is not None and [m.role for m in second] == ["system", "user", "assistant", "user"]
    obs = second[-1].content
    assert not isinstance(obs, str)
    kinds = [p["type"] for p in obs]
    assert kinds == ["text", "image_url", "text"]  # the image sits where the code displayed it
    assert obs[0]["text"].startswith("OBSERVATION: Execution success.") and obs[0]["text"].endswith("before\n")
    url = content_images(obs)[0]
    assert base64.b64decode(url.split(",", 1)[1]) == png()
    assert kernels[0].cells == ["\nprint('drawn')\n"]


def test_malformed_action_gets_parsing_feedback_and_counts_as_failure() -> None:
    sol, backend, _ = _solve(["THOUGHT: hmm", "```python\nx = (\n```", "ANSWER: 3 TERMINATE"])
    fb1, fb2 = _last_user_text(backend.requests[1]), _last_user_text(backend.requests[2])
    assert fb1.startswith("OBSERVATION: Parsing error. Error code: no_code_block")
    assert fb2.startswith("OBSERVATION: Parsing error. Error code: syntax_error") and "SyntaxError" in fb2
    assert [t["event"] for t in sol.trace["turns"]] == ["parse_error", "parse_error", "terminate"]
    assert sol.answer == "3"


def test_answer_without_terminate_is_not_a_finish() -> None:
    sol, backend, _ = _solve(["ANSWER: 4", "ANSWER: 5 TERMINATE"])
    assert backend.call_count == 2 and "no_code_block" in _last_user_text(backend.requests[1])
    assert sol.answer == "5"


def test_terminate_inside_code_is_code_not_a_stop() -> None:
    sol, backend, kernels = _solve(["```python\nprint('TERMINATE')\n```", "ANSWER: 1 TERMINATE"])
    assert kernels[0].cells == ["\nprint('TERMINATE')\n"] and backend.call_count == 2
    assert sol.trace["turns"][0]["event"] == "execution_success"


def test_code_with_terminate_in_prose_is_still_executed_like_the_official_loop() -> None:
    sol, backend, kernels = _solve(["```python\nprint(1)\n```\nANSWER: 2 TERMINATE", "ANSWER: 3 TERMINATE"])
    assert len(kernels[0].cells) == 1 and backend.call_count == 2 and sol.answer == "3"


def test_execution_error_is_surfaced_to_the_model() -> None:
    err = Execution(1, [{"type": "text", "text": "Traceback ...\nZeroDivisionError: division by zero\n"}])
    sol, backend, _ = _solve([CODE, "ANSWER: 0 TERMINATE"], results=[err])
    fb = _last_user_text(backend.requests[1])
    assert fb.startswith("OBSERVATION: Execution error. Exit code: 1") and "ZeroDivisionError" in fb
    assert sol.trace["turns"][0]["event"] == "execution_error"
    assert sol.trace["turns"][0]["execution"]["exit_code"] == 1


def test_consecutive_failure_cap_stops_the_dialogue() -> None:
    sol, backend, _ = _solve(["no code"], max_failures=2, max_turns=10)
    assert backend.call_count == 3  # two failures fed back, the third stops
    assert sol.trace["stop"] == "max_failures" and not sol.trace["finished"] and sol.answer is None


def test_a_success_resets_the_failure_count() -> None:
    replies = ["bad", "bad", CODE, "bad", "bad", "bad"]
    sol, backend, _ = _solve(replies, max_failures=2, max_turns=10)
    events = [t["event"] for t in sol.trace["turns"]]
    assert events == ["parse_error", "parse_error", "execution_success", "parse_error", "parse_error", "parse_error"]
    assert sol.trace["stop"] == "max_failures" and backend.call_count == 6


def test_turn_cap_and_the_fallback_answer() -> None:
    sol, backend, _ = _solve(["THOUGHT: ANSWER: 9 maybe\n" + CODE], max_turns=3)
    assert backend.call_count == 3 and sol.trace["stop"] == "max_turns" and not sol.trace["finished"]
    assert sol.answer == "9 maybe"
    sol, _, _ = _solve(["THOUGHT: ANSWER: 9 maybe\n" + CODE], max_turns=3, fallback_answer=False)
    assert sol.answer is None


def test_trace_is_complete() -> None:
    sol, backend, _ = _solve(["bad", CODE, "ANSWER: 5 TERMINATE"])
    turns = sol.trace["turns"]
    assert len(turns) == sol.trace["planner_calls"] == backend.call_count == 3
    assert all({"turn", "reply", "code", "parsed", "event"} <= set(t) for t in turns)
    assert "feedback" in turns[0] and "feedback" in turns[1] and "feedback" not in turns[2]
    assert turns[1]["execution"]["images"] == 1 and "<image>" in turns[1]["feedback"]
    assert sol.trace["images_returned"] == 1


def test_extractor_of_the_task_maps_the_answer() -> None:
    q = Query.from_text("parity?", extract=lambda t: "odd" if "odd" in t else None)
    sol, _, _ = _solve(["ANSWER: it is odd TERMINATE"], query=q)
    assert sol.answer == "odd" and sol.trace["answer_text"] == "it is odd"


def test_request_images_reach_the_planner_and_the_notebook() -> None:
    from llmlab.backends.base import Message, image_part, text_part

    q = Query((Message("user", (text_part("Find x in "), image_part(png(20, 10)), text_part(" please."))),),
              metadata={"sketchpad_prompt": "geo"})
    sol, backend, kernels = _solve(["ANSWER: A TERMINATE"], query=q)
    assert kernels[0].images == [png(20, 10)]
    first = backend.requests[0].messages
    assert first is not None
    content = first[1].content
    assert not isinstance(content, str) and [p["type"] for p in content] == ["text", "image_url", "text"]
    assert "find_perpendicular_intersection" in content[0]["text"] and "image_1" in content[0]["text"]
    assert content[0]["text"].endswith("# USER REQUEST #: Find x in ") and "# RESULT #:" in content[2]["text"]


def test_planner_without_image_support_is_refused_in_one_line() -> None:
    from llmlab.backends.base import Message, image_part, text_part

    backend = MockBackend(["ANSWER: A TERMINATE"])
    backend.capabilities = dataclasses.replace(backend.capabilities, images=False)
    q = Query((Message("user", (text_part("Find x"), image_part(png()))),))
    with pytest.raises(UnsupportedFeatureError) as info:
        run_sync(Sketchpad(kernel_factory=lambda im: FakeKernel(im)).solve(q, Roles(Model(backend))))
    assert "\n" not in str(info.value)


def test_unknown_role_and_bad_prompts_file(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="no role 'planer'"):
        run_sync(Sketchpad().solve(Query.from_text("x"), Roles(Model("mock:echo"), planer=Model("mock:echo"))))
    bad = tmp_path / "p.yaml"
    bad.write_text("NOPE: x\n")
    with pytest.raises(ConfigError, match="unknown prompt"):
        Sketchpad({"prompts_file": str(bad)})
    good = tmp_path / "q.yaml"
    good.write_text("SYSTEM_MESSAGE: Official words.\n")
    _, backend, _ = _solve(["ANSWER: 1 TERMINATE"], prompts_file=str(good))
    assert backend.requests[0].messages is not None and backend.requests[0].messages[0].text == "Official words."


def test_items_run_concurrently() -> None:
    in_flight, peak = 0, 0

    async def script(req: GenerateRequest, i: int) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.02)
        in_flight -= 1
        return CODE if len(req.messages or ()) == 2 else "ANSWER: 1 TERMINATE"

    model = Model(MockBackend(script))
    method = Sketchpad(kernel_factory=lambda im: FakeKernel(im))

    async def main() -> list[Any]:
        from llmlab.core.concurrency import gather

        return await gather([lambda i=i: method.solve(Query.from_text(f"q{i}"), Roles(model)) for i in range(6)])

    sols = run_sync(main())
    assert all(s.answer == "1" for s in sols)
    assert peak >= 2  # several dialogues were waiting on the planner at once


def test_baseline_is_one_call_without_code() -> None:
    backend = MockBackend(["THOUGHT: count edges. ANSWER: 7 TERMINATE"])
    q = Query.from_text("max flow?", extract=lambda t: t.split()[-1])
    sol = run_sync(SketchpadBaseline().solve(q, Roles(Model(backend))))
    assert backend.call_count == 1 and sol.answer == "7"
    msgs = backend.requests[0].messages
    assert msgs is not None and "no code" in msgs[0].text and msgs[1].text.startswith("max flow?")


# -- the real notebook (sandbox) -------------------------------------------------------------------------

def test_real_notebook_draws_keeps_state_and_reports_errors() -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("networkx")
    Image = pytest.importorskip("PIL.Image")
    draw = ("THOUGHT 0: draw.\n```python\nimport networkx as nx\nimport matplotlib.pyplot as plt\n"
            "G = nx.from_numpy_array(__import__('numpy').array([[0, 1], [1, 0]]))\n"
            "nx.draw(G, with_labels=True)\nplt.show()\nprint('nodes', G.number_of_nodes())\n```")
    use_state = "THOUGHT 1: again.\n```python\nprint('edges', G.number_of_edges())\n1 / 0\n```"
    backend = MockBackend([draw, use_state, "ANSWER: 1 TERMINATE"])
    sol = run_sync(Sketchpad({"timeout": 60}).solve(Query.from_text("edges?"), Roles(Model(backend))))
    assert backend.image_counts == [0, 1, 1]
    obs = backend.requests[1].messages[-1].content  # type: ignore[index]
    url = content_images(obs)[0]
    assert url.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size[0] > 100 and img.size[1] > 100
    assert "nodes 2" in _last_user_text(backend.requests[1])
    err = _last_user_text(backend.requests[2])
    assert err.startswith("OBSERVATION: Execution error. Exit code: 1")
    assert "edges 1" in err and "ZeroDivisionError" in err
    assert sol.answer == "1"


def test_real_notebook_timeout_is_an_execution_error() -> None:
    backend = MockBackend(["```python\nwhile True:\n    pass\n```", "ANSWER: 0 TERMINATE"])
    sol = run_sync(Sketchpad({"timeout": 1}).solve(Query.from_text("x"), Roles(Model(backend))))
    fb = _last_user_text(backend.requests[1])
    assert fb.startswith("OBSERVATION: Execution error.") and "timed out" in fb
    assert sol.trace["turns"][0]["execution"]["timed_out"]


def test_real_notebook_unknown_tool_is_surfaced_as_an_execution_error() -> None:
    # a vision expert of the official toolset (not available here): the NameError goes back to the model
    backend = MockBackend(["```python\nboxes = detection(image_1, ['dog'])\n```", "ANSWER: no TERMINATE"])
    from llmlab.backends.base import Message, image_part, text_part

    q = Query((Message("user", (text_part("Is there a dog?"), image_part(png()))),))
    sol = run_sync(Sketchpad().solve(q, Roles(Model(backend))))
    fb = _last_user_text(backend.requests[1])
    assert fb.startswith("OBSERVATION: Execution error.") and "NameError" in fb and "detection" in fb
    assert sol.trace["turns"][0]["event"] == "execution_error" and sol.answer == "no"


def test_hf_planner_refuses_the_geometry_diagram_in_one_line(tiny_model_dir: Any) -> None:  # noqa: F811
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from llmlab.backends.base import Message, image_part, text_part

    model = Model(f"hf:{tiny_model_dir}?device=cpu&dtype=float32")
    q = Query((Message("user", (text_part("Find x in "), image_part(png()))),), metadata={"sketchpad_prompt": "geo"})
    with pytest.raises(UnsupportedFeatureError) as info:
        run_sync(Sketchpad(kernel_factory=lambda im: FakeKernel(im)).solve(q, Roles(model)))
    assert "does not take image inputs" in str(info.value) and "\n" not in str(info.value)
