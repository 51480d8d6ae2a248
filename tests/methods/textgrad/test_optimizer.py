"""TGD: prompt blocks, tag failures, zero_grad, gradient memory, momentum, call counts."""

from __future__ import annotations

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.errors import ConfigError
from llmlab.methods import textgrad as tg
from tests.methods.textgrad.helpers import kinds, scripted, system_of, user_of


def _with_feedback(model: Model) -> tuple[tg.Variable, tg.Variable]:
    answer = tg.Variable("The answer is 5.", role_description="answer to the question")
    loss = tg.TextLoss("Check the arithmetic.", engine=model)(answer)
    loss.backward(model)
    return answer, loss


def test_tgd_prompt_has_the_official_parts_in_order() -> None:
    model, backend = scripted()
    answer, loss = _with_feedback(model)
    opt = tg.TGD([answer], engine=model, constraints=["Be short.", "End with 'Answer: X'."],
                 in_context_examples=["Answer: 4"])
    prompt = opt.update_prompt(answer)
    order = ["<ROLE>answer to the question</ROLE>", "<VARIABLE> The answer is 5. </VARIABLE>", "<CONTEXT>",
             "<CONVERSATION>", "<FEEDBACK>", "</CONTEXT>", "<CONSTRAINTS>Constraint 1: Be short.\nConstraint 2: End",
             "<EXAMPLES>Answer: 4</EXAMPLES>", "<IMPROVED_VARIABLE>{the improved variable}</IMPROVED_VARIABLE>"]
    positions = [prompt.index(s) for s in order]
    assert positions == sorted(positions)
    assert answer.gradients[0].value in prompt
    opt.step()
    assert answer.value.startswith("improved-")
    sys = system_of(backend.requests[-1])
    assert sys is not None and "<IMPROVED_VARIABLE> {improved variable} </IMPROVED_VARIABLE>" in sys


def test_optional_blocks_absent_by_default() -> None:
    model, _ = scripted()
    answer, _ = _with_feedback(model)
    prompt = tg.TGD([answer], engine=model).update_prompt(answer)
    for tag in ("<CONSTRAINTS>", "<EXAMPLES>", "<FEEDBACK-1>", "<PAST_ITERATIONS>"):
        assert tag not in prompt


def test_custom_tags_are_used_and_named_in_the_suffix() -> None:
    model = Model(MockBackend(["<NEW>v2</NEW>"]))
    x = tg.Variable("v1", role_description="text")
    opt = tg.TGD([x], engine=model, new_variable_tags=["<NEW>", "</NEW>"])
    assert "between the <NEW> tags" in opt.update_prompt(x)
    assert "IMPROVED_VARIABLE" not in opt.update_prompt(x) + opt.optimizer_system_prompt
    opt.step()
    assert x.value == "v2"


def test_missing_tags_are_retried_then_the_value_is_kept() -> None:
    backend = MockBackend(["I think it is fine.", "Still no tags", "nope"])
    x = tg.Variable("original", role_description="text")
    opt = tg.TGD([x], engine=Model(backend), max_tag_retries=2)
    opt.step()  # no IndexError
    assert x.value == "original"
    assert backend.call_count == 3
    assert [r.sample_index for r in backend.requests] == [0, 1, 2]  # retries are distinct requests
    assert len(opt.failures) == 1 and opt.failures[0].replies[0] == "I think it is fine."


def test_start_tag_without_end_tag_is_a_failure() -> None:
    backend = MockBackend(["<IMPROVED_VARIABLE>truncated text", "<IMPROVED_VARIABLE>ok</IMPROVED_VARIABLE>"])
    x = tg.Variable("original", role_description="text")
    opt = tg.TGD([x], engine=Model(backend))
    opt.step()
    assert x.value == "ok" and backend.call_count == 2 and not opt.failures


def test_zero_grad_clears_gradients_not_contexts() -> None:
    model, _ = scripted()
    answer, _ = _with_feedback(model)
    opt = tg.TGD([answer], engine=model)
    g = answer.gradients[0]
    opt.zero_grad()
    assert answer.gradients == []
    assert answer.gradients_context[g] is not None  # as the official zero_grad
    answer.reset_gradients()
    assert answer.gradients_context == {}


def test_gradient_memory_reaches_the_prompt() -> None:
    """The official construct_tgd_prompt drops the memory text; here the last k feedbacks are shown."""
    model, _ = scripted()
    answer = tg.Variable("draft", role_description="answer")
    opt = tg.TGD([answer], engine=model, gradient_memory=2)
    seen = []
    for _ in range(3):
        opt.zero_grad()
        tg.TextLoss("Critique.", engine=model)(answer).backward(model)
        seen.append(answer.get_gradient_text())
        prompt = opt.update_prompt(answer)
        opt.step()
    assert "<FEEDBACK-1> " + seen[0] + " </FEEDBACK-1>" in prompt and "<FEEDBACK-2> " + seen[1] in prompt
    assert "<FEEDBACK-3>" not in prompt


def test_momentum_really_uses_its_window() -> None:
    replies = iter(f"<IMPROVED_VARIABLE>v{i}</IMPROVED_VARIABLE>" for i in range(1, 10))
    model = Model(MockBackend(lambda r, i: next(replies)))
    x = tg.Variable("v0", role_description="answer")
    opt = tg.TGDMomentum([x], engine=model, momentum_window=2)
    assert "<PAST_ITERATIONS>" not in opt.update_prompt(x)
    for _ in range(3):
        opt.step()
    prompt = opt.update_prompt(x)
    assert x.value == "v3"
    assert "<PAST_ITERATIONS>" in prompt and "step 1: v1." in prompt and "step 2: v2." in prompt
    assert "v0." not in prompt  # the window holds 2
    plain = tg.TGDMomentum([tg.Variable("a", role_description="t")], engine=model, momentum_window=0)
    plain.step()
    assert "<PAST_ITERATIONS>" not in plain.update_prompt(plain.parameters[0])


def test_one_call_per_parameter_and_parameters_update_together() -> None:
    model, backend = scripted()
    xs = [tg.Variable(f"v{i}", role_description=f"text {i}") for i in range(3)]
    tg.TGD(xs, engine=model).step()
    assert kinds(backend) == ["optimizer"] * 3
    assert all(x.value.startswith("improved-") for x in xs)


def test_optimizer_bad_input() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        tg.TGD([], engine="mock:echo")
    with pytest.raises(ConfigError, match="needs an engine"):
        tg.TGD([tg.Variable("x", role_description="t")])
    with pytest.raises(ConfigError, match=r"\[start, end\]"):
        tg.TGD([tg.Variable("x", role_description="t")], engine="mock:echo", new_variable_tags=["<A>"])


def test_backward_engine_context_and_readme_flow() -> None:
    """The official README example, with the import swapped and the engine in a context."""
    model, backend = scripted()
    with tg.backward_engine(model):
        llm = tg.BlackboxLLM(model)
        question = tg.Variable("If it takes 1 hour to dry 25 shirts, how long for 30?",
                               role_description="question to the LLM", requires_grad=False)
        answer = llm(question)
        answer.set_role_description("concise and accurate answer to the question")
        optimizer = tg.TGD(parameters=[answer])
        loss = tg.TextLoss("Evaluate the answer critically. Be concise.")(answer)
        loss.backward()
        optimizer.step()
    assert kinds(backend) == ["forward", "forward", "backward", "optimizer"]
    assert answer.value.startswith("improved-")
    assert tg.current_backward_engine() is None


def test_prompts_can_be_replaced_from_a_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "p.yaml"
    path.write_text("tgd_suffix: 'Reply as {new_variable_start_tag}X{new_variable_end_tag}.'\n")
    prompts = tg.TextGradPrompts.from_file(path)
    model, backend = scripted()
    x = tg.Variable("v", role_description="t")
    tg.TGD([x], engine=model, prompts=prompts).step()
    assert user_of(backend.requests[0]).endswith("Reply as <IMPROVED_VARIABLE>X</IMPROVED_VARIABLE>.")
    path.write_text("not_a_prompt: x\n")
    with pytest.raises(ConfigError, match="unknown TextGrad prompt"):
        tg.TextGradPrompts.from_file(path)


def test_cache_key_includes_sampling_parameters(tmp_path: object) -> None:
    """Identical prompts at temperature > 0 get distinct samples even with a cache (official #107)."""
    from pathlib import Path

    from llmlab.backends.base import request_hash
    from llmlab.backends.cache import ResponseCache

    backend = MockBackend(lambda r, i: f"sample {i}")
    model = Model(backend, cache=ResponseCache(Path(str(tmp_path)) / "c.sqlite"))
    hot = tg.Engine(model, temperature=0.7)
    texts = [hot("same prompt", "same system") for _ in range(3)]
    assert len(set(texts)) == 3 and backend.call_count == 3
    cold = tg.Engine(model, temperature=0.0)
    assert cold("same prompt", "same system") == cold("same prompt", "same system")
    assert backend.call_count == 4  # the second cold call was a cache hit
    # a fresh engine replays the same samples in order (resume), from the cache
    again = tg.Engine(model, temperature=0.7)
    assert [again("same prompt", "same system") for _ in range(3)] == texts
    assert backend.call_count == 4
    keys = {request_hash("mock:x", e.request("p", "s", sample_index=0)) for e in (hot, cold)}
    assert len(keys) == 2
    r: GenerateRequest = hot.request("p", "s", sample_index=0)
    assert r.temperature == 0.7 and r.max_tokens == 2000


def test_set_backward_engine_is_per_context() -> None:
    import contextvars

    model, backend = scripted()

    def notebook() -> None:
        tg.set_backward_engine(model)
        with pytest.raises(ConfigError, match="already set"):
            tg.set_backward_engine(model)
        tg.set_backward_engine(model, override=True)
        answer = tg.Variable("draft", role_description="answer")
        tg.TextLoss("Critique.")(answer).backward()
        tg.TGD(parameters=[answer]).step()
        assert answer.value.startswith("improved-")

    contextvars.copy_context().run(notebook)
    assert tg.current_backward_engine() is None  # not a process-wide singleton
    assert kinds(backend) == ["forward", "backward", "optimizer"]
