"""Requests and responses as transcript dicts: images cut out to blobs, defaults left out, logprobs summarised."""

from __future__ import annotations

from pathlib import Path

from llmlab.backends.base import (
    GenerateRequest,
    GenerateResponse,
    Message,
    TokenLogprob,
    Tool,
    ToolCall,
    Usage,
    image_part,
)
from llmlab.backends.model import CallRecord
from llmlab.core.transcripts import MemoryBlobs, call_trace, message_to_dict, request_to_dict, response_to_dict
from tests.helpers.runs import png


def test_inline_images_go_to_blobs_and_urls_stay() -> None:
    blobs = MemoryBlobs()
    msg = Message("user", ({"type": "text", "text": "look"}, image_part(png()), image_part(png()),
                           image_part("https://example.org/cat.png"), image_part("data:image/png;base64,@@bad")))
    d = message_to_dict(msg, blobs)
    ref1, ref2, url, bad = d["content"][1:]
    assert ref1 == ref2 and ref1["type"] == "image_ref" and ref1["bytes"] == len(png())
    assert list(blobs.blobs) == [ref1["sha256"]] and blobs.blobs[ref1["sha256"]] == ("image/png", png())
    assert url == {"type": "image_url", "url": "https://example.org/cat.png"}
    assert bad["type"] == "image_url"  # not valid base64: kept as the text it was, never decoded
    without = message_to_dict(msg, None)["content"][1]
    assert without["type"] == "image_url" and without["url"].startswith("<inline ")  # no megabytes without a sink


def test_request_keeps_what_was_set_and_tools() -> None:
    call = ToolCall("c1", "search", '{"q": "x"}')
    req = GenerateRequest.chat(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
         Message("assistant", "", tool_calls=(call,)), {"role": "tool", "content": "r", "tool_call_id": "c1"}],
        max_tokens=0, temperature=0.7, seed=3, stop=("\n",), tools=(Tool("search", "web"),), tool_choice="auto",
        response_format={"type": "json_object"})
    d = request_to_dict(req)
    assert d["params"] == {"max_tokens": 0, "temperature": 0.7, "seed": 3, "n": 1, "sample_index": 0,
                           "stop": ["\n"], "tool_choice": "auto", "response_format": {"type": "json_object"}}
    assert d["tools"] == [{"name": "search", "description": "web",
                           "parameters": {"type": "object", "properties": {}}}]
    assert d["messages"][2]["tool_calls"] == [{"id": "c1", "name": "search", "arguments": '{"q": "x"}'}]
    assert d["messages"][3] == {"role": "tool", "content": "r", "tool_call_id": "c1"}
    raw = request_to_dict(GenerateRequest(prompt="Once upon", logprobs=True, top_logprobs=2))
    assert raw["prompt"] == "Once upon" and "messages" not in raw
    assert raw["params"]["logprobs"] is True and raw["params"]["top_logprobs"] == 2


def test_response_and_call_trace() -> None:
    resp = GenerateResponse(["a", "b"], ["stop", "length"], Usage(5, 2), model="m",
                            logprobs=[[TokenLogprob("a", -0.1)], [TokenLogprob("b", -0.2), TokenLogprob("c", -1.0)]],
                            tool_calls=[[], [ToolCall("x", "f", "{}")]])
    d = response_to_dict(resp)
    assert d == {"texts": ["a", "b"], "finish_reasons": ["stop", "length"],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 2}, "model": "m",
                 "tool_calls": [[], [{"id": "x", "name": "f", "arguments": "{}"}]], "logprob_tokens": [1, 2]}
    req = GenerateRequest.chat([{"role": "user", "content": "q"}])
    ok = call_trace(CallRecord("m", 5, 2, 0.0, 0.3, True, 1, req, resp))
    assert ok.model == "m" and ok.cached and ok.latency_s == 0.3 and ok.response == d and ok.error is None
    failed = call_trace(CallRecord("m", 0, 0, 0.0, 0.1, False, 2, req, None, "BackendError: 500"))
    assert failed.response is None and failed.error == "BackendError: 500" and failed.request["messages"]


def test_transcripts_through_a_real_openai_compatible_server(tmp_path: Path) -> None:
    """``llmlab serve`` over HTTP, the openai backend as the client: the server's usage and finish reasons
    land in the stored transcript."""
    from llmlab.core.runstore import RunStore
    from llmlab.runner import EvalSpec, run_eval
    from tests.helpers.servers import serve_thread
    from tests.test_runner import Toy  # noqa: F401  (registers the toy task)

    with serve_thread("mock:echo", name="echo") as url:
        s = run_eval(EvalSpec(task="toy", model_spec=f"openai:echo@{url}", runs_dir=str(tmp_path), run_id="h",
                              limit=3, concurrency=2))
    assert s.n_errors == 0
    store = RunStore(tmp_path / "h", readonly=True)
    (call,) = store.calls("toy-2")
    assert call.model == "echo" and call.request["messages"] == [{"role": "user", "content": "double 2"}]
    assert call.response is not None and call.response["texts"] == ["double 2"]
    assert call.response["finish_reasons"] == ["stop"]
    assert call.response["usage"]["prompt_tokens"] > 0 and call.prompt_tokens == call.response["usage"]["prompt_tokens"]
    store.close()
