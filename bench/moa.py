"""Mixture-of-Agents wall time: our concurrent layers vs the official eval scripts' sequential flow.

MoA with 3 layers x 6 proposers (13 calls) through a real `llmlab serve` whose mock answers every call in
500 ms. Both flows use the very same Model objects (openai backend -> HTTP -> server -> mock), so the only
difference is the control flow:

- ours: `llmlab.methods.moa.MixtureOfAgents` (the proposers of a layer run concurrently);
- official: the loop of togethercomputer/MoA `generate_for_alpaca_eval.py::process_fn` re-expressed on our
  Model stack (each proposer called after the previous one returns; then the aggregator).

The critical path is one call per layer (3 x latency). Goals: speedup >= 4 and critical_path_ratio <= 1.15.
Run from the repository root: `python bench/moa.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.servers import serve_subprocess, server_stats

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.methods.base import Query, Roles
from llmlab.methods.moa import MixtureOfAgents, inject_references


async def official_flow(messages: tuple[Message, ...], proposers: list[Model], aggregator: Model, layers: int) -> str:
    """The official eval scripts' control flow: proposers one after another, layer by layer."""
    references: list[str] = []
    for _ in range(layers - 1):
        new = []
        for model in proposers:
            req = GenerateRequest(messages=inject_references(messages, references), temperature=0.7, max_tokens=2048)
            new.append((await model.generate(req)).text.strip())
        references = new
    req = GenerateRequest(messages=inject_references(messages, references), temperature=0.7, max_tokens=2048)
    return (await aggregator.generate(req)).text.strip()


async def measure(url: str, layers: int, n_proposers: int, repeats: int) -> tuple[list[float], list[float], int]:
    """Time both flows, alternating, on one event loop (the HTTP clients are bound to it)."""
    query = Query.from_text("Name three prime numbers.")
    proposers = [Model(f"openai:m@{url}") for _ in range(n_proposers)]
    aggregator = Model(f"openai:m@{url}")
    roles = Roles(aggregator, proposers=proposers, aggregator=aggregator)
    moa = MixtureOfAgents({"layers": layers})
    for m in [*proposers, aggregator]:  # open every client's connection before timing
        await m.complete("warm-up")
    before = server_stats(url)["requests"]
    ours, official = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await official_flow(query.messages, proposers, aggregator, layers)
        official.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sol = await moa.solve(query, roles)
        ours.append(time.perf_counter() - t0)
        assert sol.trace["calls"] == n_proposers * (layers - 1) + 1
    served = server_stats(url)["requests"] - before
    for m in [*proposers, aggregator]:
        await m.aclose()
    return ours, official, served


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--proposers", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n_calls = args.proposers * (args.layers - 1) + 1
    critical = args.layers * args.latency
    with serve_subprocess(f"mock:echo?latency={args.latency}", name="m", concurrency=64) as url:
        ours, official, served = run_sync(measure(url, args.layers, args.proposers, args.repeats))
    assert served == 2 * n_calls * args.repeats, served
    t_ours, t_off = statistics.median(ours), statistics.median(official)
    print(f"MoA {args.layers} layers x {args.proposers} proposers = {n_calls} calls, mock latency "
          f"{args.latency * 1000:.0f} ms, through llmlab serve; median of {args.repeats}")
    print(f"{'flow':<34} {'wall_s':>7} {'x critical path':>16} {'speedup':>8}")
    print(f"{'official (sequential proposers)':<34} {t_off:>7.2f} {t_off / critical:>16.2f} {1.0:>8.2f}")
    print(f"{'llmlab MixtureOfAgents':<34} {t_ours:>7.2f} {t_ours / critical:>16.2f} {t_off / t_ours:>8.2f}")
    print(f"{'critical path (1 call per layer)':<34} {critical:>7.2f} {1.0:>16.2f} {t_off / critical:>8.2f}")
    print(f"speedup_vs_official_flow={t_off / t_ours:.2f} critical_path_ratio={t_ours / critical:.3f}")


if __name__ == "__main__":
    main()
