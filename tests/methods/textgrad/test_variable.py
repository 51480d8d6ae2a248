"""The graph: invariants, bad input, backward call counts, base vs chain, concurrency == serial, DOT."""

from __future__ import annotations

import shutil

import anyio
import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.errors import ConfigError
from llmlab.methods import textgrad as tg
from llmlab.methods.textgrad.prompts import BACKWARD_SYSTEM_PROMPT
from tests.methods.textgrad.helpers import kinds, scripted, system_of, user_of


def test_role_description_is_required() -> None:
    with pytest.raises(ConfigError, match="role_description"):
        tg.Variable("x")
    with pytest.raises(ConfigError, match="role_description"):
        tg.Variable("x", role_description="  ")


def test_requires_grad_invariant_checked_in_constructor() -> None:
    a = tg.Variable("a", role_description="a", requires_grad=True)
    with pytest.raises(ConfigError, match="cannot have predecessors that require grad"):
        tg.Variable("b", predecessors=[a], requires_grad=False, role_description="b")
    frozen = tg.Variable("a", role_description="a", requires_grad=False)
    assert tg.Variable("b", predecessors=[frozen], requires_grad=False, role_description="b").predecessors == [frozen]


def test_value_must_be_text() -> None:
    with pytest.raises(ConfigError, match="must be text"):
        tg.Variable(b"\x89PNG", role_description="image")  # type: ignore[arg-type]
    assert tg.Variable(3, role_description="n").value == "3"


def test_cycle_is_one_clear_error() -> None:
    a = tg.Variable("a", role_description="first")
    b = tg.Variable("b", predecessors=[a], role_description="second")
    a.predecessors.append(b)  # only by mutation can a graph get a cycle
    with pytest.raises(ConfigError, match="cycle"):
        b.topological_order()
    model, _ = scripted()
    with pytest.raises(ConfigError, match="cycle"):
        b.backward(model)


def test_backward_with_nothing_to_update() -> None:
    model, backend = scripted()
    q = tg.Variable("q", role_description="question", requires_grad=False)
    loss = tg.Variable("l", predecessors=[q], role_description="loss")
    with pytest.raises(ConfigError, match="nothing to update"):
        loss.backward(model)
    assert backend.call_count == 0


def test_backward_without_engine_says_how() -> None:
    x = tg.Variable("x", role_description="answer")
    loss = tg.Variable("l", predecessors=[x], role_description="loss")
    with pytest.raises(ConfigError, match="backward_engine"):
        loss.backward()


def _two_input_graph(model: Model) -> tuple[tg.Variable, tg.Variable, tg.Variable, tg.Variable]:
    sp = tg.Variable("Be helpful.", role_description="system prompt", requires_grad=True)
    q = tg.Variable("What is 2+2?", role_description="question", requires_grad=True)
    response = tg.LLMCall(model, sp)(q)
    loss = tg.TextLoss("Evaluate the answer.", engine=model)(response)
    return sp, q, response, loss


def test_one_backward_call_per_llmcall_and_grad_input() -> None:
    model, backend = scripted()
    sp, q, response, loss = _two_input_graph(model)
    assert kinds(backend) == ["forward", "forward"]
    loss.backward(model)
    # loss -> response (1 call), response -> system prompt and question (2 calls); the eval prompt is frozen
    assert kinds(backend)[2:] == ["backward"] * 3
    assert [len(v.gradients) for v in (sp, q, response, loss)] == [1, 1, 1, 0]


def test_base_prompt_for_loss_and_chain_prompt_downstream() -> None:
    model, backend = scripted()
    sp, q, response, loss = _two_input_graph(model)
    loss.backward(model)
    back = [r for r in backend.requests if system_of(r) == BACKWARD_SYSTEM_PROMPT]
    base = [user_of(r) for r in back if "evaluation of the variable by a language model" in user_of(r)]
    chain = [user_of(r) for r in back if "was then used as" in user_of(r)]
    assert len(base) == 1 and len(chain) == 2
    assert f"<VARIABLE> {response.value} </VARIABLE>" in base[0]
    # the chain prompt passes on exactly the feedback the response got
    assert all(response.get_gradient_text() in c for c in chain)
    assert all("<OBJECTIVE_FUNCTION>" in c and "<LM_OUTPUT>" in c and "<ROLE>" in c for c in base + chain)
    # the feedback's context is the conversation, used later by the optimizer
    ctx = sp.gradients_context[sp.gradients[0]]
    assert ctx is not None and "<LM_SYSTEM_PROMPT> Be helpful. </LM_SYSTEM_PROMPT>" in ctx["context"]


def test_short_value_is_first_and_last_ten_words() -> None:
    v = tg.Variable(" ".join(str(i) for i in range(30)), role_description="long")
    assert v.get_short_value() == "0 1 2 3 4 5 6 7 8 9 (...) 20 21 22 23 24 25 26 27 28 29"


def test_sum_gives_each_input_the_feedback_once() -> None:
    """Regression: the official idempotent backward adds two identical feedback Variables per input."""
    model, backend = scripted()
    a = tg.Variable("first answer", role_description="answer one")
    b = tg.Variable("second answer", role_description="answer two")
    total = tg.sum([a, b])
    assert total.value == "first answer\nsecond answer"
    loss = tg.TextLoss("Evaluate both.", engine=model)(total)
    loss.backward(model)
    assert len(a.gradients) == 1 and len(b.gradients) == 1
    assert total.get_gradient_text() in a.gradients[0].value
    assert kinds(backend).count("backward") == 1  # sum costs no LLM call


def test_sum_of_losses_without_feedback_gives_base_prompts() -> None:
    """tg.sum(losses).backward(): each loss is a root, so each response gets the *base* prompt once."""
    model, backend = scripted()
    sp = tg.Variable("prompt", role_description="system prompt")
    llm = tg.BlackboxLLM(model, sp)
    responses = [llm(tg.Variable(f"q{i}", role_description="question", requires_grad=False)) for i in range(3)]
    losses = [tg.TextLoss("Grade it.", engine=model)(r) for r in responses]
    tg.sum(losses).backward(model)
    users = [user_of(r) for r in backend.requests if system_of(r) == BACKWARD_SYSTEM_PROMPT]
    assert sum("evaluation of the variable by a language model" in u for u in users) == 3
    assert sum("was then used as" in u for u in users) == 3
    assert all(len(r.gradients) == 1 for r in responses)
    assert len(sp.gradients) == 3


def test_aggregate_reduces_with_one_call_and_reaches_every_input() -> None:
    model, backend = scripted()
    sp = tg.Variable("prompt", role_description="system prompt")
    llm = tg.BlackboxLLM(model, sp)
    responses = [llm(tg.Variable(f"q{i}", role_description="question", requires_grad=False)) for i in range(3)]
    losses = [tg.TextLoss("Grade it.", engine=model)(r) for r in responses]
    tg.Aggregate()(losses).backward(model)
    assert kinds(backend).count("reduce") == 1
    assert len(sp.gradients) == 1 and sp.gradients[0].value.startswith("reduced-")
    assert all(len(r.gradients) == 1 for r in responses)  # every input, not only the last (official bug)


def _batch_graph(model: Model, n: int = 6) -> tuple[tg.Variable, list[tg.Variable]]:
    sp = tg.Variable("You answer questions.", role_description="system prompt")
    q_sp = tg.Variable("Think first.", role_description="reasoning prompt")
    llm = tg.BlackboxLLM(model, sp)
    nodes: list[tg.Variable] = [sp, q_sp]
    losses = []
    for i in range(n):
        x = tg.Variable(f"question {i}", role_description="question", requires_grad=False)
        plan = tg.LLMCall(model, q_sp)(x)
        r = llm(plan)
        loss = tg.TextLoss("Is it right?", engine=model)(r)
        nodes += [plan, r, loss]
        losses.append(loss)
    total = tg.sum(losses)
    return total, nodes


def _snapshot(nodes: list[tg.Variable]) -> list[list[tuple[str, str | None]]]:
    return [[(g.value, (v.gradients_context.get(g) or {}).get("context")) for g in v.gradients] for v in nodes]


def test_concurrent_backward_equals_serial_backward() -> None:
    model, _ = scripted(latency=0.002)
    total_c, nodes_c = _batch_graph(model)
    total_s, nodes_s = _batch_graph(model)
    total_c.backward(model, concurrent=True)
    total_s.backward(model, concurrent=False)
    assert _snapshot(nodes_c) == _snapshot(nodes_s)
    assert len(nodes_c[0].gradients) == 6 and len(nodes_c[1].gradients) == 6


def test_backward_runs_siblings_and_batch_items_at_once() -> None:
    in_flight = {"now": 0, "max": 0}

    async def slow(request: GenerateRequest, index: int) -> str:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await anyio.sleep(0.01)
        in_flight["now"] -= 1
        return f"r{index}"

    model = Model(MockBackend(slow), concurrency=64)
    sp = tg.Variable("prompt", role_description="system prompt")
    llm = tg.BlackboxLLM(model, sp)
    losses = [tg.TextLoss("Grade.", engine=model)(llm(tg.Variable(f"q{i}", role_description="q", requires_grad=False)))
              for i in range(8)]
    in_flight["max"] = 0
    tg.sum(losses).backward(model)
    assert in_flight["max"] == 8  # the 8 loss->response calls ran together, then the 8 response->prompt calls

    in_flight["max"] = 0
    losses = [tg.TextLoss("Grade.", engine=model)(llm(tg.Variable(f"q{i}", role_description="q", requires_grad=False)))
              for i in range(8)]
    tg.sum(losses).backward(model, concurrent=False)
    assert in_flight["max"] == 1


def test_graph_dot_and_files(tmp_path: object) -> None:
    from pathlib import Path

    model, _ = scripted()
    sp, q, response, loss = _two_input_graph(model)
    loss.backward(model)
    out = Path(str(tmp_path)) / "g"
    dot = loss.graph(out, print_gradients=True)
    assert dot.startswith("digraph textgrad {")
    assert dot.count("->") == 4  # sp->response, q->response, eval prompt->loss, response->loss
    assert dot.count("label=<") == 5
    assert "feedback" in dot and "system prompt" in dot
    assert (out.with_suffix(".dot")).read_text() == dot
    if shutil.which("dot"):
        assert out.with_suffix(".png").stat().st_size > 0


def test_sync_api_inside_a_running_loop() -> None:
    """Notebook case: the sync calls work even when an event loop is already running."""
    model, _ = scripted()

    async def main() -> str:
        x = tg.Variable("hi", role_description="question", requires_grad=False)
        return tg.BlackboxLLM(model)(x).value

    assert anyio.run(main).startswith("out-")


def test_a_failed_backward_call_raises_itself() -> None:
    """A backend error inside the concurrent pass surfaces as that error (the runner records it per item)."""
    from llmlab.backends.mock import FailurePlan
    from llmlab.backends.model import RetryPolicy
    from llmlab.core.errors import BackendError

    model = Model(MockBackend(["x"], failures=FailurePlan(fail_500=1.0)), retry=RetryPolicy(max_retries=0))
    losses = [tg.TextLoss("Grade.", engine="mock:echo")(tg.Variable(f"v{i}", role_description="answer"))
              for i in range(3)]
    with pytest.raises(BackendError, match="injected HTTP 500"):
        tg.sum(losses).backward(model)
