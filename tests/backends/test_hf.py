from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from llmlab.backends.base import GenerateRequest, make_backend
from llmlab.backends.model import Model, recording
from llmlab.core.concurrency import gather
from llmlab.core.errors import (
    ConfigError,
    ContextWindowExceededError,
    MissingExtraError,
    UnsupportedFeatureError,
)
from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture

pytest.importorskip("torch")
pytest.importorskip("transformers")

USER = [{"role": "user", "content": "What is two plus two?"}]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Any:  # noqa: F811
    from llmlab.backends.hf import HFBackend

    return HFBackend.from_spec(f"{tiny_model_dir}?device=cpu&dtype=float32")


def reference_greedy(backend: Any, prompt_ids: list[int], steps: int) -> tuple[list[int], list[Any]]:
    """The obvious path: a full forward (no KV cache) per step, argmax, log_softmax of the raw logits."""
    import torch

    ids = list(prompt_ids)
    out_ids, out_logp = [], []
    with torch.inference_mode():
        for _ in range(steps):
            logits = backend.hf_model(input_ids=torch.tensor([ids])).logits[0, -1].float()  # (V,)
            logp = torch.log_softmax(logits, dim=-1)
            tok = int(torch.argmax(logp))
            out_ids.append(tok)
            out_logp.append(logp)
            if tok in backend._eos_ids:
                break
            ids.append(tok)
    return out_ids, out_logp


def gen(backend: Any, **kw: Any) -> Any:
    req = GenerateRequest(**kw) if "prompt" in kw else GenerateRequest.chat(USER, **kw)
    return anyio.run(backend.generate, req)


def test_capabilities(backend: Any) -> None:
    caps = backend.capabilities
    assert caps.chat and caps.raw_completion and caps.native_n and caps.logprobs and caps.tokenize
    assert caps.embeddings
    assert caps.context_length == 256


def test_chat_template_applied_and_counted_exactly(backend: Any) -> None:
    tok = backend.tokenizer
    text = tok.apply_chat_template(USER, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|assistant|>\n")
    expected = len(tok(text, add_special_tokens=False)["input_ids"])
    req = GenerateRequest.chat(USER, max_tokens=3)
    assert backend.count_tokens(req) == expected
    assert expected > len(backend.tokenize(USER[0]["content"]))  # the template added tokens
    resp = anyio.run(backend.generate, req)
    assert resp.usage.prompt_tokens == expected


def test_raw_completion_is_greedy_reference(backend: Any) -> None:
    prompt = "The quick brown fox"
    resp = gen(backend, prompt=prompt, max_tokens=12)
    ids = backend.prompt_ids(GenerateRequest(prompt=prompt))
    assert ids == backend.tokenize(prompt)  # no BOS in the tiny tokenizer
    assert backend.count_tokens(GenerateRequest(prompt=prompt)) == len(ids) == resp.usage.prompt_tokens
    ref_ids, _ = reference_greedy(backend, ids, 12)
    body = [t for t in ref_ids if t not in backend._eos_ids]
    assert resp.text == backend.tokenizer.decode(body, skip_special_tokens=True)
    assert resp.usage.completion_tokens == len(ref_ids)


def test_greedy_is_deterministic(backend: Any) -> None:
    a = gen(backend, max_tokens=16, temperature=0.0)
    b = gen(backend, max_tokens=16)  # None is greedy too
    c = gen(backend, max_tokens=16, temperature=0.0, sample_index=5, seed=9)
    assert a.text == b.text == c.text


def test_seeded_sampling_reproducible_and_distinct_per_sample_index(backend: Any) -> None:
    s0 = gen(backend, max_tokens=20, temperature=1.0, sample_index=0)
    s0_again = gen(backend, max_tokens=20, temperature=1.0, sample_index=0)
    s1 = gen(backend, max_tokens=20, temperature=1.0, sample_index=1)
    s2 = gen(backend, max_tokens=20, temperature=1.0, sample_index=2)
    greedy = gen(backend, max_tokens=20, temperature=0.0)
    assert s0.text == s0_again.text
    assert len({s0.text, s1.text, s2.text}) == 3
    assert s0.text != greedy.text
    # The seed is seed + sample_index.
    shifted = gen(backend, max_tokens=20, temperature=1.0, seed=1, sample_index=0)
    assert shifted.text == s1.text


def test_top_p_tiny_is_greedy(backend: Any) -> None:
    nucleus = gen(backend, max_tokens=12, temperature=1.0, top_p=1e-6, sample_index=3)
    greedy = gen(backend, max_tokens=12, temperature=0.0)
    assert nucleus.text == greedy.text


def test_n_samples(backend: Any) -> None:
    resp = gen(backend, max_tokens=10, temperature=1.0, n=3)
    assert len(resp.texts) == len(resp.finish_reasons) == 3
    assert len(set(resp.texts)) == 3
    assert resp.usage.completion_tokens <= 30
    assert resp.usage.completion_tokens >= 3
    greedy = gen(backend, max_tokens=10, n=2)
    assert greedy.texts[0] == greedy.texts[1]


def test_logprobs_equal_manual_forward(backend: Any) -> None:
    import torch

    req = GenerateRequest.chat(USER, max_tokens=10, logprobs=True, top_logprobs=3)
    resp = anyio.run(backend.generate, req)
    ref_ids, ref_logp = reference_greedy(backend, backend.prompt_ids(req), 10)
    assert resp.logprobs is not None
    got = resp.logprobs[0]
    body = [t for t in ref_ids if t not in backend._eos_ids]
    assert len(got) == len(body)
    for entry, tok, logp in zip(got, body, ref_logp, strict=False):
        assert entry.token == backend.token_str(tok)
        assert entry.logprob == pytest.approx(float(logp[tok]), abs=1e-4)
        vals, ids = torch.topk(logp, 3)
        expected = {backend.token_str(int(i)): float(v) for i, v in zip(ids, vals, strict=True)}
        assert set(entry.top) == set(expected)
        for key, value in expected.items():
            assert entry.top[key] == pytest.approx(value, abs=1e-4)
    no_lp = gen(backend, max_tokens=4)
    assert no_lp.logprobs is None


def test_stop_strings_truncate(backend: Any) -> None:
    full = gen(backend, prompt="Hello world", max_tokens=40)
    text = full.text
    assert full.finish_reasons == ["length"]
    # A printable 2-character window well inside the text, used as the stop string.
    windows = (i for i in range(4, len(text) - 2) if text[i : i + 2].isprintable())
    start = next(i for i in windows if "\ufffd" not in text[i : i + 2])
    stop = text[start : start + 2]
    resp = gen(backend, prompt="Hello world", max_tokens=40, stop=(stop, "\x00never"))
    assert resp.text == text[: text.find(stop)]
    assert resp.finish_reasons == ["stop"]
    assert resp.usage.completion_tokens < full.usage.completion_tokens
    lp = gen(backend, prompt="Hello world", max_tokens=40, stop=(stop,), logprobs=True)
    assert lp.logprobs is not None
    assert "".join(t.token for t in lp.logprobs[0]).startswith(text[: text.find(stop)][:1])
    assert len(lp.logprobs[0]) <= lp.usage.completion_tokens


def test_unsupported_chat_without_template(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend.tokenizer, "chat_template", None)
    with pytest.raises(UnsupportedFeatureError, match="raw `prompt`"):
        gen(backend, max_tokens=2)
    assert gen(backend, prompt="Hello", max_tokens=2).texts  # raw still works


def test_bad_values_and_context_window(backend: Any) -> None:
    with pytest.raises(ContextWindowExceededError, match="256"):
        gen(backend, prompt="Hello", max_tokens=300)
    with pytest.raises(ConfigError, match="temperature"):
        gen(backend, prompt="Hello", temperature=-1.0)


def test_concurrent_requests_serialize_without_blocking_the_loop(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = backend._generate_sync
    state = {"active": 0, "max_active": 0, "calls": 0}
    lock = threading.Lock()
    loop_alive = threading.Event()
    loop_seen: list[bool] = []

    def instrumented(request: GenerateRequest) -> Any:
        with lock:
            state["active"] += 1
            state["calls"] += 1
            state["max_active"] = max(state["max_active"], state["active"])
        loop_alive.clear()
        # The event loop sets this from a ticking task; if generation blocked the loop it never would.
        loop_seen.append(loop_alive.wait(timeout=10))
        try:
            return real(request)
        finally:
            with lock:
                state["active"] -= 1

    monkeypatch.setattr(backend, "_generate_sync", instrumented)

    async def main() -> list[Any]:
        done = False

        async def ticker() -> None:
            while not done:
                loop_alive.set()
                await anyio.sleep(0.001)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            reqs = [GenerateRequest(prompt=f"Hello {i}", max_tokens=4) for i in range(4)]
            out = await gather([lambda r=r: backend.generate(r) for r in reqs])
            done = True
        return out

    results = anyio.run(main)
    assert len(results) == 4 and all(r.texts for r in results)
    assert state["calls"] == 4
    assert state["max_active"] == 1
    assert loop_seen == [True] * 4


def test_embedding_hook_changes_output_and_is_removed(backend: Any) -> None:
    import torch

    base = gen(backend, max_tokens=12)
    layer = backend.embedding_layer
    assert isinstance(layer, torch.nn.Embedding)
    hooks_before = len(layer._forward_hooks)
    seen: list[tuple[int, ...]] = []
    gen_noise = torch.Generator().manual_seed(0)

    def corrupt(input_ids: Any, embeds: Any) -> Any:
        seen.append(tuple(input_ids.shape))
        if input_ids.shape[1] > 1:  # prefill only, as ECO does
            return embeds + 10.0 * torch.randn(embeds.shape, generator=gen_noise)
        return None

    with backend.input_embedding_hook(corrupt):
        assert len(layer._forward_hooks) == hooks_before + 1
        hooked = gen(backend, max_tokens=12)
    assert hooked.text != base.text
    n_prompt = backend.count_tokens(GenerateRequest.chat(USER))
    assert seen[0] == (1, n_prompt)
    assert all(s == (1, 1) for s in seen[1:])
    assert len(layer._forward_hooks) == hooks_before
    assert gen(backend, max_tokens=12).text == base.text


def test_model_stack_integration(tiny_model_dir: Path) -> None:  # noqa: F811
    model = Model(f"hf:{tiny_model_dir}", concurrency=4)
    req = GenerateRequest.chat(USER, max_tokens=5)

    async def main() -> Any:
        with recording() as rec:
            resp = await model.generate(req)
            await model.generate(req.with_(sample_index=1))
        return resp, rec

    resp, rec = anyio.run(main)
    n_prompt = model.count_tokens(req)
    assert resp.usage.prompt_tokens == n_prompt
    assert model.ledger.calls == 2
    assert model.ledger.prompt_tokens == 2 * n_prompt
    assert 2 <= model.ledger.completion_tokens <= 10
    assert rec.n_calls == 2 and rec.prompt_tokens == 2 * n_prompt
    assert model.name == str(tiny_model_dir)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("hf:/definitely/not/here", "neither an existing folder"),
        ("hf:./nope-model", "neither an existing folder"),
        ("hf:not a hub id!", "neither an existing folder"),
        ("hf:", "needs a model"),
    ],
)
def test_bad_spec_is_one_line_config_error(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        make_backend(spec)
    assert "\n" not in str(info.value)


def test_bad_options(tiny_model_dir: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="unknown option"):
        make_backend(f"hf:{tiny_model_dir}?devcie=cpu")
    with pytest.raises(ConfigError, match="dtype"):
        make_backend(f"hf:{tiny_model_dir}?dtype=float8")
    with pytest.raises(ConfigError, match="is a file"):
        make_backend(f"hf:{tiny_model_dir / 'config.json'}")


def test_offline_hub_id_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="offline") as info:
        make_backend("hf:llmlab-tests/no-such-model")
    assert "\n" not in str(info.value)


def test_missing_transformers_is_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmlab.backends.hf import HFBackend

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"llmlab\[hf\]"):
        HFBackend("anything")


def test_doctor_reports_hf_capabilities(backend: Any) -> None:
    from llmlab.backends.doctor import diagnose_backend

    checks = {c.name: c for c in anyio.run(diagnose_backend, backend)}
    assert all(c.ok for c in checks.values()), checks
    assert checks["context length"].detail == "256 tokens"
    assert "2 alternatives" in checks["logprobs"].detail


def test_served_over_http_matches_direct(backend: Any) -> None:
    from llmlab.backends.openai_compat import OpenAIBackend
    from tests.helpers.servers import serve_thread

    req = GenerateRequest.chat(USER, max_tokens=8, logprobs=True, top_logprobs=2)
    direct = anyio.run(backend.generate, req)

    async def over_http(url: str) -> Any:
        client = OpenAIBackend("tiny", [url])
        try:
            return await client.generate(req)
        finally:
            await client.aclose()

    with serve_thread(backend, name="tiny") as url:
        remote = anyio.run(over_http, url)
    assert remote.texts == direct.texts
    assert remote.usage.prompt_tokens == direct.usage.prompt_tokens
    assert remote.logprobs is not None and direct.logprobs is not None
    assert [t.logprob for t in remote.logprobs[0]] == pytest.approx([t.logprob for t in direct.logprobs[0]])
    assert [t.token for t in remote.logprobs[0]] == [t.token for t in direct.logprobs[0]]


# -- tools and images ---------------------------------------------------------------------------------------

TOOL_TEMPLATE = (
    "{% if tools %}<|system|>\nTools:{% for t in tools %} {{ t['function']['name'] }}{% endfor %}<|end|>\n{% endif %}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% if message.get('tool_calls') %}{% for c in message['tool_calls'] %}"
    "<tool_call>{{ c['function']['name'] }} {{ c['function']['arguments']['q'] }}</tool_call>"
    "{% endfor %}{% endif %}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def test_tools_go_through_a_template_that_takes_them(backend: Any) -> None:
    from llmlab.backends.base import Message, Tool, ToolCall

    tool = Tool("lookup", "find", {"type": "object", "properties": {"q": {"type": "string"}}})
    req = GenerateRequest(messages=(
        Message("user", "hi"), Message("assistant", "", tool_calls=(ToolCall("c1", "lookup", '{"q": "cats"}'),)),
        Message("tool", "meow", tool_call_id="c1")), tools=(tool,), max_tokens=2)
    with pytest.raises(UnsupportedFeatureError, match="does not render tools"):
        backend.check(req)
    old = backend.tokenizer.chat_template
    backend.tokenizer.chat_template = TOOL_TEMPLATE
    try:
        assert backend.template_takes_tools
        backend.check(req)
        text = backend.tokenizer.decode(backend.prompt_ids(req))
        assert "Tools: lookup" in text and "<tool_call>lookup cats</tool_call>" in text and "<|tool|>\nmeow" in text
        none = backend.tokenizer.decode(backend.prompt_ids(req.with_(tool_choice="none")))
        assert "Tools:" not in none
        assert len(gen(backend, tools=(tool,), max_tokens=3).texts) == 1  # runs end to end
    finally:
        backend.tokenizer.chat_template = old


def test_images_are_refused_in_one_line(backend: Any) -> None:
    from llmlab.backends.base import Message, image_part, text_part

    req = GenerateRequest(messages=(Message("user", (text_part("see"), image_part(b"\x89PNG"))),))
    with pytest.raises(UnsupportedFeatureError) as info:
        backend.check(req)
    assert "does not take image inputs" in str(info.value) and "\n" not in str(info.value)
    assert not backend.capabilities.images and not backend.capabilities.structured_output


@pytest.mark.parametrize(("text", "rest", "calls"), [
    ('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>', "", [("add", {"a": 1, "b": 2})]),
    ('Let me.<tool_call>{"name": "add", "arguments": {}}</tool_call><tool_call>{"name": "mul", "arguments": '
     '{"x": 3}}</tool_call>', "Let me.", [("add", {}), ("mul", {"x": 3})]),
    ('<tool_call>{"name": "add", "arguments": {"a": 1}}', "", [("add", {"a": 1})]),  # unclosed at max_tokens
    ('{"name": "add", "parameters": {"a": 5}}', "", [("add", {"a": 5})]),  # Llama 3.1
    ('<|python_tag|>{"name": "mul", "parameters": {"x": 1}}', "", [("mul", {"x": 1})]),
    ('[TOOL_CALLS] [{"name": "add", "arguments": {"a": 0}}]', "", [("add", {"a": 0})]),  # Mistral
    ('{"name": "unknown", "arguments": {}}', '{"name": "unknown", "arguments": {}}', []),
    ('<tool_call>not json</tool_call>', "<tool_call>not json</tool_call>", []),
    ("The answer is 4.", "The answer is 4.", []),
])
def test_parse_tool_calls_formats(text: str, rest: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    from llmlab.backends.hf import parse_tool_calls

    got_rest, got = parse_tool_calls(text, {"add", "mul"})
    assert got_rest == rest
    assert [(c.name, c.parsed_arguments()) for c in got] == calls


def test_with_tool_calls_moves_calls_per_choice() -> None:
    from llmlab.backends.base import GenerateResponse, Tool
    from llmlab.backends.hf import with_tool_calls

    req = GenerateRequest.chat(USER, tools=(Tool("add"),), n=2)
    resp = GenerateResponse(texts=['<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>', "4"],
                            finish_reasons=["stop", "stop"])
    out = with_tool_calls(req, resp)
    assert out.texts == ["", "4"] and out.finish_reasons == ["tool_calls", "stop"]
    assert out.tool_calls is not None and out.tool_calls[0][0].name == "add" and out.tool_calls[1] == []
    plain = GenerateResponse(texts=['{"name": "add", "arguments": {}}'], finish_reasons=["stop"])
    assert with_tool_calls(GenerateRequest.chat(USER), plain).tool_calls is None  # no tools asked: text stays
