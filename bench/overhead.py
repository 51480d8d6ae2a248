"""Added latency per call of the full llmlab Model stack vs the bare openai SDK, same loopback server.

Both clients call one ``llmlab serve --model mock:echo`` process on 127.0.0.1 (zero model latency), one
call at a time. "bare" is ``openai.AsyncOpenAI(...).chat.completions.create``; "stack" is
``Model(OpenAIBackend(...))`` (ledger, limiter, retry; no cache) ``.generate(GenerateRequest.chat(...))``.
Rounds alternate which client goes first, so drift in machine load hits both alike. A third row times the
Model stack alone over a no-op in-process backend (no HTTP), to show where the difference comes from.

Usage: python bench/overhead.py [--rounds 40] [--calls 25]
Ends with one line: stack_overhead_ms=<x> bare_ms=<y> stack_ms=<z> paired_overhead_ms=<p> cpu_overhead_ms=<c>
(x: difference of the medians; p: median over rounds of the per-round median difference; c: extra
client-process CPU per call, the figure least disturbed by other jobs on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.servers import serve_subprocess

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    Usage,
)
from llmlab.backends.model import Model
from llmlab.backends.openai_compat import OpenAIBackend

PROMPT = "What is two plus two?"


class NoopBackend(Backend):
    name = "noop"
    model = "noop"
    capabilities = Capabilities(chat=True, raw_completion=True)

    @classmethod
    def from_spec(cls, spec: str) -> NoopBackend:
        return cls()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return GenerateResponse(texts=["4"], finish_reasons=["stop"], usage=Usage(5, 1))


async def run(url: str, served: str, rounds: int, calls: int) -> dict[str, list[float]]:
    import openai

    bare = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    stack = Model(OpenAIBackend(served, [url]))
    local = Model(NoopBackend())

    async def call_bare() -> str:
        out = await bare.chat.completions.create(
            model=served, messages=[{"role": "user", "content": PROMPT}], max_tokens=16)
        return out.choices[0].message.content or ""

    async def call_stack() -> str:
        resp = await stack.generate(GenerateRequest.chat([{"role": "user", "content": PROMPT}], max_tokens=16))
        return resp.text

    async def call_local() -> str:
        resp = await local.generate(GenerateRequest.chat([{"role": "user", "content": PROMPT}], max_tokens=16))
        return resp.text

    fns = {"bare": call_bare, "stack": call_stack, "local": call_local}
    for fn in fns.values():  # warm-up: connections, imports, caches
        for _ in range(20):
            assert await fn() in (PROMPT, "4")
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, float] = dict.fromkeys(fns, 0.0)
    paired: list[float] = []
    for r in range(rounds):
        order = ["bare", "stack"] if r % 2 == 0 else ["stack", "bare"]
        per_round: dict[str, list[float]] = {}
        for name in [*order, "local"]:
            fn = fns[name]
            ts = []
            c0 = time.process_time()
            for _ in range(calls):
                t0 = time.perf_counter()
                await fn()
                ts.append((time.perf_counter() - t0) * 1000)
            cpu[name] += time.process_time() - c0
            per_round[name] = ts
            times[name].extend(ts)
        paired.append(statistics.median(per_round["stack"]) - statistics.median(per_round["bare"]))
    times["paired"] = paired
    for k, v in cpu.items():  # client-process CPU ms per call: less sensitive to other jobs' load
        times[f"cpu_{k}"] = [v * 1000 / (rounds * calls)]
    await bare.close()
    await stack.aclose()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--calls", type=int, default=25, help="calls per client per round")
    args = ap.parse_args()
    with serve_subprocess("mock:echo", name="echo") as url:
        times = anyio.run(run, url, url.model, args.rounds, args.calls)
    bare, stack = times["bare"], times["stack"]
    med_b, med_s = statistics.median(bare), statistics.median(stack)
    print(f"{'client':<32}{'calls':>6}{'median ms':>10}{'mean ms':>9}{'p90 ms':>8}{'vs bare':>8}"
          f"{'client CPU ms':>14}")
    for label, key in (("bare openai SDK (AsyncOpenAI)", "bare"), ("llmlab Model(OpenAIBackend)", "stack"),
                       ("llmlab Model(no-op, no HTTP)", "local")):
        ts = times[key]
        p90 = statistics.quantiles(ts, n=10)[-1]
        print(f"{label:<32}{len(ts):>6}{statistics.median(ts):>10.3f}{statistics.mean(ts):>9.3f}{p90:>8.3f}"
              f"{statistics.median(ts) / med_b:>7.2f}x{times['cpu_' + key][0]:>14.3f}")
    print(f"difference stack - bare: median {med_s - med_b:+.3f} ms, mean "
          f"{statistics.mean(stack) - statistics.mean(bare):+.3f} ms, "
          f"median of per-round paired differences {statistics.median(times['paired']):+.3f} ms")
    cpu_extra = times["cpu_stack"][0] - times["cpu_bare"][0]
    print(f"client CPU per call, stack - bare: {cpu_extra:+.3f} ms")
    print(f"stack_overhead_ms={med_s - med_b:.3f} bare_ms={med_b:.3f} stack_ms={med_s:.3f} "
          f"paired_overhead_ms={statistics.median(times['paired']):.3f} cpu_overhead_ms={cpu_extra:.3f}")


if __name__ == "__main__":
    main()
