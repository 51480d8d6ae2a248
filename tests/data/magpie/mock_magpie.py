"""A scripted Magpie model for tests (``mock:py=tests.data.magpie.mock_magpie:script``): never model quality.

Raw prompts (the instruction stage) get a distinct question per sample with an end-of-turn token and
junk after it, as a server that does not stop at special tokens would send; chat requests get an answer
naming the question. ``CALLS`` counts the calls made in this process.
"""

from __future__ import annotations

from llmlab.backends.base import GenerateRequest

CALLS: list[str] = []


def script(request: GenerateRequest, index: int) -> str:
    if request.prompt is not None:
        CALLS.append("raw")
        follow = " (follow-up)" if "<|eot_id|><|start_header_id|>assistant" in request.prompt else ""
        return f"How do I solve problem {request.sample_index}.{index}{follow}?<|eot_id|>assistant junk"
    assert request.messages is not None
    CALLS.append("chat")
    return f"Here is how: {request.messages[-1].text}"
