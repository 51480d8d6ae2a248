"""Build small run stores by hand (the viewer's and compare's fixtures): known scores, a transcript
with an image, a tool call and its result, and an item that failed with a traceback."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

from llmlab.backends.base import GenerateRequest, GenerateResponse, Message, Tool, ToolCall, Usage, image_part
from llmlab.backends.model import CallRecord
from llmlab.core.runstore import ItemRow, RunStore, call_rows
from llmlab.core.transcripts import message_to_dict


def png(width: int = 48, height: int = 32, rgb: tuple[int, int, int] = (220, 60, 40)) -> bytes:
    """A solid-colour PNG (no imaging library needed)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


QUESTIONS = {f"q{i}": f"What is {i} + {i}? Show the sum of the two numbers." for i in range(6)}


def make_run(runs_dir: Path, run_id: str, correct: dict[str, bool], *, model: str = "mock:alpha",
             method: str = "direct", task: str = "toy", errors: tuple[str, ...] = (),
             clusters: dict[str, str] | None = None, created: float | None = None,
             manifest: dict[str, object] | None = None) -> Path:
    """A run of ``task`` whose items are ``correct``'s keys; every item has a transcript.

    Item ``q1`` (when present and not an error) makes a tool call with an image in its question.
    """
    store = RunStore(runs_dir / run_id)
    store.open_manifest({"run_id": run_id, "task": task, "method": method, "model": model, "roles": [],
                         "method_params": {}, "task_params": {}, "seed": 0,
                         "created": created if created is not None else time.time(), **(manifest or {})},
                        identity_keys=("task",))
    for idx, (item_id, ok) in enumerate(correct.items()):
        question = QUESTIONS.get(item_id, f"Question {item_id}?")
        answer = str(2 * idx if ok else 2 * idx + 1)
        if item_id == "q1":
            content: tuple[dict[str, object], ...] | str = (
                {"type": "text", "text": question}, image_part(png()))
        else:
            content = question
        user = Message("user", content)
        records: list[CallRecord] = []
        if item_id == "q1":
            tool = Tool("calculator", "Adds numbers", {"type": "object", "properties": {"a": {"type": "number"}}})
            call = ToolCall("call_1", "calculator", '{"a": 1, "b": 1}')
            req1 = GenerateRequest(messages=(Message("system", "You are careful."), user), tools=(tool,),
                                   temperature=0.0)
            resp1 = GenerateResponse([""], ["tool_calls"], Usage(30, 5), tool_calls=[[call]])
            req2 = GenerateRequest(messages=(*req1.messages, Message("assistant", "", tool_calls=(call,)),
                                             Message("tool", "2", tool_call_id="call_1")), tools=(tool,),
                                   temperature=0.0)
            resp2 = GenerateResponse([f"The sum is {answer}."], ["stop"], Usage(40, 6))
            records = [CallRecord(model, 30, 5, 0.0, 0.01, False, 0, req1, resp1),
                       CallRecord(model, 40, 6, 0.0, 0.02, False, 0, req2, resp2)]
        elif item_id in errors:
            req = GenerateRequest(messages=(user,), temperature=0.0)
            records = [CallRecord(model, 0, 0, 0.0, 0.5, False, 2, req, None, "RateLimitError: 429 slow down")]
        else:
            req = GenerateRequest(messages=(user,), temperature=0.0)
            records = [CallRecord(model, 12, 4, 0.0, 0.01, False, 0, req,
                                  GenerateResponse([f"The sum is {answer}."], ["stop"], Usage(12, 4)))]
        failed = item_id in errors
        row = ItemRow(
            item_id=item_id, idx=idx, prompt_hash="h", answer=None if failed else answer,
            text=None if failed else f"The sum is {answer}.", score=None if failed else float(ok),
            correct=None if failed else ok, extracted=None if failed else answer, details={}, calls=len(records),
            prompt_tokens=sum(r.prompt_tokens for r in records),
            completion_tokens=sum(r.completion_tokens for r in records), cost=0.0, latency_s=0.05, cache_hits=0,
            retries=0, error="RateLimitError: 429 slow down" if failed else None, trace={},
            cluster=(clusters or {}).get(item_id),
            traceback=('Traceback (most recent call last):\n  File "runner.py", line 1, in run_item\n'
                       'llmlab.core.errors.RateLimitError: 429 slow down') if failed else None,
            query=[message_to_dict(user, store)], target=str(2 * idx),
        )
        store.write(row, call_rows(item_id, records, store))
    store.close()
    return runs_dir / run_id
