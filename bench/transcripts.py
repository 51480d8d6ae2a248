"""What storing transcripts costs: eval wall time and store size with transcripts on vs off.

An in-process mock backend (zero model latency, so the store's work is as visible as it can be) answers
N items of a toy task, each with one call; rounds alternate the on/off order so machine load hits both
alike. A second pair of runs sends the same PNG image (``--image-kb``) in every call, to show the blob
table storing it once per run instead of once per call.

Usage: python bench/transcripts.py [--items 300] [--rounds 3] [--image-kb 64]
Ends with one line: transcripts_time_ratio=<on/off wall> store_kb_per_item_on=<x> store_kb_per_item_off=<y>
image_store_kb_per_item=<z> inline_image_kb_per_item=<w>
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmlab.backends.base import GenerateRequest, image_part
from llmlab.backends.mock import MockBackend
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Item, Query, Roles, Score, Solution
from llmlab.core.registry import BACKENDS, METHODS, TASKS
from llmlab.methods.base import Method
from llmlab.runner import EvalSpec, run_eval
from llmlab.tasks.base import Task, TaskConfig

IMAGE = b""


class BenchConfig(TaskConfig):
    n: int = 300


class Bench(Task):
    name = "bench_toy"
    Config = BenchConfig

    def items(self) -> Any:
        for i in range(self.config.n):
            yield Item(id=f"b{i}", input=i, target=str(2 * i))

    def prompt(self, item: Item) -> Query:
        return Query.from_text(f"Please double the number {item.input} and answer with the number only. " * 4,
                               system="You are a careful calculator.")

    def score(self, item: Item, answer: str | None) -> Score:
        ok = answer == item.target
        return Score(float(ok), ok, answer)


class LookConfig(LabConfig):
    pass


class Look(Method):
    name = "bench_look"
    Config = LookConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        msgs = [{"role": "user", "content": [{"type": "text", "text": query.text}, image_part(IMAGE)]}]
        text = (await roles.default.generate(GenerateRequest.chat(msgs))).text
        return Solution(text, text)


class VisionMock(MockBackend):
    name = "benchvision"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.capabilities = dataclasses.replace(self.capabilities, images=True)


def _size_kb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.iterdir() if p.name.startswith("run.sqlite")) / 1024


def main() -> None:
    global IMAGE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--image-kb", type=int, default=64)
    args = ap.parse_args()
    TASKS.register("bench_toy", Bench)
    METHODS.register("bench_look", Look)
    BACKENDS.register("benchvision", VisionMock)
    IMAGE = b"\x89PNG\r\n\x1a\n" + os.urandom(args.image_kb * 1024)  # incompressible bytes; only stored, never decoded
    tmp = Path(tempfile.mkdtemp(prefix="llmlab-bench-transcripts-"))
    times: dict[bool, list[float]] = {True: [], False: []}
    sizes: dict[bool, float] = {}
    for r in range(args.rounds):
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            run_id = f"r{r}-{'on' if on else 'off'}"
            spec = EvalSpec(task="bench_toy", model_spec="mock:text=42", runs_dir=str(tmp), run_id=run_id,
                            task_params=[f"n={args.items}"], concurrency=8, transcripts=on)
            t0 = time.perf_counter()
            run_eval(spec)
            times[on].append(time.perf_counter() - t0)
            sizes[on] = _size_kb(tmp / run_id)
    img_sizes = {}
    for on in (True, False):
        run_id = f"img-{'on' if on else 'off'}"
        run_eval(EvalSpec(task="bench_toy", method="bench_look", model_spec="benchvision:text=42", runs_dir=str(tmp),
                          run_id=run_id, task_params=[f"n={args.items}"], concurrency=8, transcripts=on))
        img_sizes[on] = _size_kb(tmp / run_id)
    inline_kb = len(base64.b64encode(IMAGE)) / 1024  # what one call's request would hold if images were inlined
    n = args.items
    on_t, off_t = statistics.median(times[True]), statistics.median(times[False])
    print(f"{n} items, 1 call each, in-process mock (zero latency), {args.rounds} rounds, median wall")
    print("| transcripts | wall s | ms/item | vs off | store KB/item |")
    print("|---|---|---|---|---|")
    print(f"| off | {off_t:.3f} | {1000 * off_t / n:.3f} | 1.00x | {sizes[False] / n:.2f} |")
    print(f"| on | {on_t:.3f} | {1000 * on_t / n:.3f} | {on_t / off_t:.2f}x | {sizes[True] / n:.2f} |")
    print(f"image of {args.image_kb} KB in every call: store {img_sizes[True] / n:.2f} KB/item with transcripts "
          f"(blob stored once), {img_sizes[False] / n:.2f} KB/item without; inlined it would be "
          f"{inline_kb:.1f} KB/item")
    print(f"transcripts_time_ratio={on_t / off_t:.3f} store_kb_per_item_on={sizes[True] / n:.3f} "
          f"store_kb_per_item_off={sizes[False] / n:.3f} image_store_kb_per_item={img_sizes[True] / n:.3f} "
          f"inline_image_kb_per_item={inline_kb:.1f}")


if __name__ == "__main__":
    main()
