import pytest

from llmlab.backends.base import GenerateRequest, make_backend
from llmlab.backends.mock import MALFORMED, MockBackend
from llmlab.core.errors import BackendError, BackendTimeoutError, ConfigError, RateLimitError

pytestmark = pytest.mark.anyio


def chat(text):
    return GenerateRequest.chat([{"role": "system", "content": "s"}, {"role": "user", "content": text}])


async def test_list_script_cycles_and_records():
    b = MockBackend(["a", "b"])
    out = [(await b.generate(chat(str(i)))).text for i in range(3)]
    assert out == ["a", "b", "a"] and len(b.requests) == 3 and b.requests[2].messages[-1].content == "2"


async def test_rules_with_groups_and_default():
    b = MockBackend(rules=[(r"(\d+) \+ (\d+)", r"sum of \1 and \2"), ("hello", "hi")], default="?")
    assert (await b.generate(chat("what is 2 + 3"))).text == "sum of 2 and 3"
    assert (await b.generate(chat("hello there"))).text == "hi"
    assert (await b.generate(chat("nothing"))).text == "?"


async def test_callable_sync_and_async():
    async def areply(req, i):
        return f"async {i}"

    assert (await MockBackend(lambda r, i: f"call {i}").generate(chat("x"))).text == "call 0"
    assert (await MockBackend(areply).generate(chat("x"))).text == "async 0"


async def test_echo_n_and_logprobs_and_raw_prompt():
    b = make_backend("mock:echo")
    r = await b.generate(GenerateRequest(prompt="raw text here", n=3, logprobs=True))
    assert r.texts == ["raw text here"] * 3 and len(r.logprobs) == 3 and r.logprobs[0][0].token == "raw"
    assert r.usage.prompt_tokens == 3


async def test_spec_options_and_failure_injection():
    b = make_backend("mock:text=fine?fail_500=1")
    with pytest.raises(BackendError) as exc:
        await b.generate(chat("x"))
    assert exc.value.status == 500 and exc.value.retryable
    with pytest.raises(RateLimitError) as exc2:
        await make_backend("mock:echo?fail_429=1&retry_after=2.5").generate(chat("x"))
    assert exc2.value.retry_after == 2.5
    with pytest.raises(BackendTimeoutError):
        await make_backend("mock:echo?timeout_rate=1").generate(chat("x"))
    assert (await make_backend("mock:echo?malformed=1").generate(chat("x"))).text == MALFORMED


def test_yaml_script(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("rules:\n  - {pattern: 'capital of (\\w+)', reply: 'Paris, \\1'}\ndefault: dunno\nlatency: 0\n")
    b = make_backend(f"mock:{f}")
    assert b.rules and b.default == "dunno"


@pytest.mark.parametrize(
    "spec, needle",
    [("mock:nonsense", "not understood"), ("mock:echo?bogus=1", "unknown option"),
     ("mock:echo?latency=abc", "bad option value"), ("mock:missing.yaml", "not found"), ("nope", "prefix"),
     ("zzz:abc", "Unknown backend 'zzz'")],
)
def test_bad_specs_are_one_line_config_errors(spec, needle):
    with pytest.raises(ConfigError) as exc:
        make_backend(spec)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


# -- tool calls and images ----------------------------------------------------------------------------------

async def test_scripted_tool_call_then_answer_from_the_tool_result():
    from llmlab.backends.base import Message, Tool

    b = MockBackend(rules=[(r"^temp=(\d+)$", r"It is \1 degrees."),
                           ("weather", {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]})])
    first = await b.generate(GenerateRequest.chat([{"role": "user", "content": "weather?"}], tools=(Tool("weather"),)))
    assert first.finish_reasons == ["tool_calls"] and first.text == ""
    call = first.calls[0]
    assert (call.id, call.name, call.parsed_arguments()) == ("call_0_0", "weather", {"city": "Oslo"})
    convo = [Message("user", "weather?"), first.message(), Message("tool", "temp=4", tool_call_id=call.id)]
    second = await b.generate(GenerateRequest.chat(convo))
    assert second.text == "It is 4 degrees." and second.tool_calls is None


async def test_yaml_script_with_tool_calls(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("rules:\n  - pattern: add\n    reply:\n      text: calling\n      tool_calls:\n"
                 "        - name: add\n          arguments: {a: 1, b: 2}\ndefault: done\n")
    b = make_backend(f"mock:{f}")
    resp = await b.generate(chat("please add"))
    assert resp.text == "calling" and resp.calls[0].parsed_arguments() == {"a": 1, "b": 2}
    assert (await b.generate(chat("x"))).calls == []
    f.write_text("rules:\n  - pattern: add\n    reply: {tool_calls: [{arguments: {}}]}\n")
    with pytest.raises(ConfigError, match="needs a 'name'"):
        make_backend(f"mock:{f}")


async def test_images_are_accepted_and_counted():
    from llmlab.backends.base import Message, image_part, text_part

    b = make_backend("mock:images")
    msg = Message("user", (text_part("look"), image_part(b"\x89PNG"), image_part(b"\x89PNG2")))
    resp = await b.generate(GenerateRequest(messages=(Message("user", "first"), msg)))
    assert resp.text == "images: 2"
    assert (await b.generate(chat("none"))).text == "images: 0"
    assert b.images_seen == 2 and b.image_counts == [2, 0]
    assert b.capabilities.images and b.capabilities.tools and not b.capabilities.structured_output
