"""Transcripts: a model call's request and response as JSON-able dicts, images stored once as blobs.

The Model stack hands the run store the request and response objects of every call
(:class:`llmlab.backends.model.CallRecord`); this module turns them into plain dicts for the store and
the viewer. Inline images (``data:`` URLs) are cut out of the messages and written once to a content-
addressed blob sink (the run store's ``blobs`` table, keyed by SHA-256), and the message keeps
``{"type": "image_ref", "sha256": ..., "mime": ...}`` in their place: a run that sends the same 2 MB
image in 500 calls stores it once, not 500 times. Remote image URLs are kept as they are.

Deviation: token logprobs are not stored in the transcript (only how many tokens carried them); they
can be megabytes per call and the viewer does not show them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any, Protocol

from llmlab.core.contracts import CallTrace

if TYPE_CHECKING:
    from llmlab.backends.base import GenerateRequest, GenerateResponse, Message
    from llmlab.backends.model import CallRecord

_PARAMS = ("max_tokens", "temperature", "top_p", "seed", "n", "sample_index", "stop", "logprobs",
           "top_logprobs", "tool_choice", "response_format", "timeout")


class BlobSink(Protocol):
    """Somewhere to keep binary blobs by content hash."""

    def put_blob(self, data: bytes, mime: str) -> str:
        """Store ``data`` (once) and return its SHA-256 hex digest."""
        ...


class MemoryBlobs:
    """A :class:`BlobSink` in a dict (for tests and for ``llmlab run``)."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[str, bytes]] = {}

    def put_blob(self, data: bytes, mime: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs.setdefault(digest, (mime, data))
        return digest


def _split_data_url(url: str) -> tuple[str, bytes] | None:
    """``data:<mime>;base64,<payload>`` → (mime, bytes); ``None`` for anything else."""
    if not url.startswith("data:"):
        return None
    head, sep, payload = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    try:
        return head[: -len(";base64")] or "application/octet-stream", base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _part(part: dict[str, Any], blobs: BlobSink | None) -> dict[str, Any]:
    if part.get("type") != "image_url":
        return dict(part)
    url = str(part.get("image_url", {}).get("url", ""))
    inline = _split_data_url(url)
    if inline is None or blobs is None:
        return {"type": "image_url", "url": url if inline is None else f"<inline {len(url)} chars>"}
    mime, data = inline
    return {"type": "image_ref", "sha256": blobs.put_blob(data, mime), "mime": mime, "bytes": len(data)}


def message_to_dict(message: Message, blobs: BlobSink | None = None) -> dict[str, Any]:
    """One message as a dict; inline images go to ``blobs`` (dropped to a placeholder without one)."""
    content: Any = message.content if isinstance(message.content, str) else [
        _part(p, blobs) for p in message.content]
    d: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        d["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    if message.tool_call_id is not None:
        d["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        d["name"] = message.name
    return d


def request_to_dict(request: GenerateRequest, blobs: BlobSink | None = None) -> dict[str, Any]:
    """A request as a dict: messages (or prompt), tools and every sampling parameter that was set.

    Example:
        >>> from llmlab.backends.base import GenerateRequest
        >>> request_to_dict(GenerateRequest.chat([{"role": "user", "content": "hi"}], temperature=0.0))
        {'messages': [{'role': 'user', 'content': 'hi'}], 'params': {'temperature': 0.0, 'n': 1, 'sample_index': 0}}
    """
    d: dict[str, Any] = {}
    if request.messages is not None:
        d["messages"] = [message_to_dict(m, blobs) for m in request.messages]
    if request.prompt is not None:
        d["prompt"] = request.prompt
    params: dict[str, Any] = {}
    for name in _PARAMS:
        value = getattr(request, name)
        if value is None or value == () or value is False or (name == "top_logprobs" and value == 0):
            continue
        params[name] = list(value) if isinstance(value, tuple) else value
    d["params"] = params
    if request.tools:
        d["tools"] = [{"name": t.name, "description": t.description, "parameters": t.parameters}
                      for t in request.tools]
    return d


def response_to_dict(response: GenerateResponse) -> dict[str, Any]:
    """A response as a dict: texts, finish reasons, tool calls, usage (logprobs summarised)."""
    d: dict[str, Any] = {
        "texts": list(response.texts),
        "finish_reasons": list(response.finish_reasons),
        "usage": {"prompt_tokens": response.usage.prompt_tokens,
                  "completion_tokens": response.usage.completion_tokens},
        "model": response.model,
    }
    if response.tool_calls is not None:
        d["tool_calls"] = [[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in choice]
                           for choice in response.tool_calls]
    if response.logprobs is not None:
        d["logprob_tokens"] = [len(seq) for seq in response.logprobs]
    return d


def call_trace(record: CallRecord, blobs: BlobSink | None = None) -> CallTrace:
    """The :class:`~llmlab.core.contracts.CallTrace` of one recorded call."""
    return CallTrace(
        model=record.model,
        request=request_to_dict(record.request, blobs) if record.request is not None else {},
        response=response_to_dict(record.response) if record.response is not None else None,
        latency_s=record.latency_s,
        cached=record.cached,
        error=record.error,
    )


__all__ = ["BlobSink", "MemoryBlobs", "call_trace", "message_to_dict", "request_to_dict", "response_to_dict"]
