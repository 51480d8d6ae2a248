"""TextGrad wall time: one prompt-optimization step, ours vs the official textgrad 0.1.8, same server, same run.

The step (paper §3.3, batch 8): 8 answers, 8 LLM losses (``TextLoss``), ``tg.sum``, backward (8 loss→answer
and 8 answer→prompt feedback calls), 1 TGD update = 33 calls, through a real ``llmlab serve`` whose mock
answers every call in 200 ms. The official side runs the package's own training loop with its own
``ChatExternalClient`` engine in the scratch venv (``bench/textgrad_official_worker.py``, a subprocess);
ours runs the same graph with ``llmlab.methods.textgrad`` on an ``openai:`` Model at the same URL.

The critical path is 5 dependent calls (answer → loss → feedback to the answer → feedback to the prompt →
update) = 1.0 s. Goals: speedup >= 4 and critical_path_ratio <= 1.2.

Run from the repository root (needs the scratch venv)::

    python -m venv /tmp/tg-venv && /tmp/tg-venv/bin/pip install textgrad==0.1.8
    python bench/textgrad.py --official-python /tmp/tg-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.servers import serve_subprocess, server_stats

from llmlab.backends.model import Model
from llmlab.core.concurrency import gather, run_sync
from llmlab.methods import textgrad as tg

RULES = """\
rules:
  - pattern: "IMPROVED_VARIABLE"
    reply: "<IMPROVED_VARIABLE>Answer step by step; count carefully.</IMPROVED_VARIABLE>"
"""  # every other call echoes its prompt: all prompts differ, so textgrad's prompt cache never answers
CRITICAL_CALLS = 5


async def ours(url: str, batch: int, repeats: int) -> tuple[list[float], list[float]]:
    """The same step with llmlab's TextGrad: items at once, ready backward nodes at once.

    Also returns the wall time of replaying the step's recorded calls stage by stage (forward, loss, feedback
    to the answers, feedback to the prompt, update; each stage all at once): the best any scheduler can do
    on this client, server and machine.
    """
    model = Model(f"openai:m@{url}", concurrency=64)
    engine = tg.Engine(model)
    await engine.agenerate("warm-up", "warm-up")
    times: list[float] = []
    replay: list[float] = []
    for rep in range(repeats):
        system_prompt = tg.Variable(f"Answer the question step by step ({time.time()}).", requires_grad=True,
                                    role_description="structured system prompt to a somewhat capable language "
                                                     "model that specifies the behavior and strategies for the QA task")
        llm = tg.BlackboxLLM(engine, system_prompt)
        optimizer = tg.TGD(engine=engine, parameters=[system_prompt])
        loss_fn = tg.TextLoss("Is the answer correct? Criticise it.", engine=engine)

        async def item(i: int, rep: int = rep, llm: tg.BlackboxLLM = llm,
                       loss_fn: tg.TextLoss = loss_fn) -> tg.Variable:
            x = tg.Variable(f"Question {rep}-{i}: how many legs do {i + 2} spiders have?", requires_grad=False,
                            role_description="query to the language model")
            return await loss_fn.acall(await llm.acall(x))

        with tg.call_log() as log:
            t0 = time.perf_counter()
            optimizer.zero_grad()
            losses = await gather([lambda i=i: item(i) for i in range(batch)])  # type: ignore[misc]
            await tg.sum(losses).abackward(engine)
            await optimizer.astep()
            times.append(time.perf_counter() - t0)
        assert system_prompt.value.startswith("Answer step by step"), system_prompt.value
        back = [e for e in log.entries if e.kind == "backward"]
        base = [e for e in back if "evaluation of the variable" in e.user.split("\n")[0]]
        stages = [[e for e in log.entries if e.kind == "forward"], [e for e in log.entries if e.kind == "loss"],
                  base, [e for e in back if e not in base], [e for e in log.entries if e.kind == "optimizer"]]
        assert [len(s) for s in stages] == [batch, batch, batch, batch, 1]
        t0 = time.perf_counter()
        for stage in stages:
            await gather([lambda e=e: model.complete(e.user + " (replay)", system=e.system) for e in stage])
        replay.append(time.perf_counter() - t0)
    await model.aclose()
    return times, replay


def official(python: str, url: str, batch: int, repeats: int) -> list[float]:
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "XDG_CACHE_HOME": str(Path(work) / "cache"),
               "TEXTGRAD_LOG_DIR": str(Path(work) / "logs"), "OPENAI_API_KEY": "none"}
        worker = Path(__file__).resolve().parent / "textgrad_official_worker.py"
        out = subprocess.run([python, "-P", str(worker), url, "m", str(batch), str(repeats)], cwd=work, env=env,
                             capture_output=True, text=True, timeout=1200)
        if out.returncode != 0:
            raise SystemExit(f"official worker failed:\n{out.stderr[-3000:]}")
        data = json.loads(out.stdout.strip().splitlines()[-1])
        assert data["prompt"].startswith("Answer step by step"), data["prompt"]
        times: list[float] = data["times"]
        return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official-python", default=os.environ.get("LLMLAB_TEXTGRAD_OFFICIAL", "/tmp/tg-venv/bin/python"))
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n_calls = 4 * args.batch + 1
    critical = CRITICAL_CALLS * args.latency
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(RULES)
    try:
        with serve_subprocess(f"mock:{f.name}?latency={args.latency}", name="m", concurrency=64) as url:
            before = server_stats(url)["requests"]
            t_off = official(args.official_python, url, args.batch, args.repeats)
            mid = server_stats(url)["requests"]
            t_ours, t_replay = run_sync(ours(url, args.batch, args.repeats))
            after = server_stats(url)["requests"]
    finally:
        os.unlink(f.name)
    # each side: one warm-up call, then n_calls per repeat
    assert mid - before == 1 + n_calls * args.repeats, (mid - before)
    assert after - mid == 1 + 2 * n_calls * args.repeats, (after - mid)
    m_off, m_ours, m_replay = statistics.median(t_off), statistics.median(t_ours), statistics.median(t_replay)
    print(f"TextGrad prompt-optimization step, batch {args.batch} = {n_calls} calls, mock latency "
          f"{args.latency * 1000:.0f} ms, through llmlab serve; median of {args.repeats}")
    print(f"{'flow':<40} {'wall_s':>7} {'x critical path':>16} {'speedup':>8}")
    print(f"{'textgrad 0.1.8 (its training loop)':<40} {m_off:>7.2f} {m_off / critical:>16.2f} {1.0:>8.2f}")
    print(f"{'llmlab textgrad (concurrent)':<40} {m_ours:>7.2f} {m_ours / critical:>16.2f} {m_off / m_ours:>8.2f}")
    print(f"{'same calls replayed stage by stage':<40} {m_replay:>7.2f} {m_replay / critical:>16.2f} "
          f"{m_off / m_replay:>8.2f}")
    print(f"{'critical path (5 dependent calls)':<40} {critical:>7.2f} {1.0:>16.2f} {m_off / critical:>8.2f}")
    print(f"ours / stage-by-stage replay = {m_ours / m_replay:.3f} (what the scheduler adds on this machine)")
    print(f"speedup_vs_textgrad={m_off / m_ours:.2f} critical_path_ratio={m_ours / critical:.3f}")


if __name__ == "__main__":
    main()
