"""llmlab vs inspect_ai vs lm-evaluation-harness: one GSM8K eval through one `llmlab serve`, same server.

Every client is a separate process running 500 GSM8K test items (zero-shot, one call per item) against one
`llmlab serve --model "mock:text=#### 18?latency=0.2"` subprocess on 127.0.0.1: every call takes 200 ms,
so the ideal request-phase throughput is concurrency / 0.2 calls per second. Clients, at concurrency
16 / 64 / 128:

- llmlab: `llmlab eval gsm8k --method direct --model openai:m@URL` (default light transport), and the
  same with `openai-sdk:` (the openai SDK + httpx path it replaced), as a baseline in the same run;
- lm-eval: `lm_eval --model local-chat-completions` on a local-file copy of its gsm8k task (aiohttp);
- inspect_ai: `inspect eval` of a `generate()` task over the same JSONL (`openai-api` provider, SDK).

The peers live in a scratch venv (`--venv`, default /tmp/llmlab-peers-venv; created with
`--system-site-packages` and `pip install inspect_ai lm_eval` when missing), never in the project.

Measured per run:
- end to end: items / wall seconds of the client process (start-up, data loading and writing included);
- request phase: calls / (last answer - first request) as the server saw them (`GET /llmlab/stats`, reset
  before each run), so the same clock judges every client;
- client CPU ms/call: CPU seconds (user + system, the client's whole process tree, sampled every 10 ms
  from /proc) spent between the server's first request and last answer, divided by the calls.

`--transports` instead times the bare transports (light, aiohttp, openai SDK; no runner) in this process at
concurrency 128 against the same kind of server, with the server's own CPU per call.

Usage: python bench/peers.py [--items 500] [--levels 16,64,128] [--repeats 1] [--ours-only | --transports]
Ends with: request_phase_vs_lmeval_c64=<x> request_phase_vs_lmeval_c128=<y> client_cpu_ms=<z>
(x, y: llmlab's request-phase throughput / lm-eval's at that concurrency; z: llmlab's client CPU ms per call
at the highest level). `--ours-only` needs no peers and ends with `request_phase_vs_sdk_c<max>=...` instead.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.servers import serve_subprocess  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")

LMEVAL_TASK = """task: gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer.split('####')[-1].strip()}}}}"
generation_kwargs:
  until: ["Question:"]
  do_sample: false
  max_gen_toks: 256
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

INSPECT_TASK = """from inspect_ai import Task, task
from inspect_ai.dataset import Sample, json_dataset
from inspect_ai.scorer import match
from inspect_ai.solver import generate


def record(r):
    return Sample(input=r["question"], target=r["answer"].split("####")[-1].strip())


@task
def gsm8k_local():
    return Task(dataset=json_dataset({data!r}, record), solver=[generate()], scorer=match(numeric=True))
"""


@dataclass
class Result:
    client: str
    concurrency: int
    items: int
    wall_s: float
    calls: int
    phase_s: float
    cpu_ms_per_call: float
    max_in_flight: int = 0

    @property
    def e2e(self) -> float:
        return self.items / self.wall_s

    @property
    def phase(self) -> float:
        return self.calls / self.phase_s if self.phase_s > 0 else float("nan")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry))
        stats[int(entry)] = (int(fields[11]) + int(fields[12])) / CLK
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo += children.get(p, [])
    return total


class Sampler(threading.Thread):
    """Samples (wall time, tree CPU) of a process every ``period`` seconds until stopped."""

    def __init__(self, pid: int, period: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), tree_cpu(self.pid)))
            time.sleep(self.period)

    def cpu_at(self, t: float) -> float:
        """Tree CPU at wall time ``t`` (linear between the samples around it)."""
        s = self.samples
        if not s:
            return 0.0
        if t <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in itertools.pairwise(s):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return s[-1][1]


def run_client(name: str, cmd: list[str], env: dict[str, str], root: str, items: int, c: int,
               log: Path, cwd: Path = REPO) -> Result:
    httpx.post(f"{root}/llmlab/stats/reset", timeout=10)
    t0 = time.time()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(cwd))
        sampler = Sampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        sampler.samples.append((time.time(), sampler.samples[-1][1] if sampler.samples else 0.0))
        sampler.stop.set()
    wall = time.time() - t0
    if rc != 0:
        raise RuntimeError(f"{name} at c={c} exited with {rc}; log:\n{log.read_text()[-3000:]}")
    st = httpx.get(f"{root}/llmlab/stats", timeout=10).json()
    first, last = st["first_request"], st["last_response"]
    calls = st["requests"]
    if calls < items or first is None:
        raise RuntimeError(f"{name} at c={c}: the server saw {calls} calls for {items} items; log:\n"
                           f"{log.read_text()[-3000:]}")
    cpu = sampler.cpu_at(last) - sampler.cpu_at(first)
    return Result(name, c, items, wall, calls, last - first, cpu * 1000 / calls, st["max_in_flight"])


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import lm_eval, inspect_ai"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return venv
    print(f"installing inspect_ai and lm_eval into {venv} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "inspect_ai", "lm_eval"], check=True)
    return venv


def peer_versions(venv: Path) -> str:
    code = "import importlib.metadata as m; print(m.version('lm_eval'), m.version('inspect_ai'))"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True)
    lm, ins = out.stdout.split()
    return f"lm_eval {lm}, inspect_ai {ins}"


def transports_only(latency: float, calls: int, c: int, rounds: int) -> None:
    """Client and server CPU per call of each transport in the Model stack (one process, no runner, no scoring)."""
    import asyncio

    from llmlab.backends.base import GenerateRequest
    from llmlab.backends.openai_compat import OpenAIBackend

    req = GenerateRequest.chat([{"role": "user", "content": "What is two plus two? " * 10}], max_tokens=16)
    rows: dict[str, list[tuple[float, float, float]]] = {}

    async def go(url: Any) -> None:
        from llmlab.backends.model import Model

        # inside the Model stack (retries on, as in an eval); its limiter is above the concurrency used
        backends = {k: Model(OpenAIBackend("m", [url], transport=k), concurrency=4 * c)
                    for k in ("light", "aiohttp", "sdk")}
        for _ in range(rounds):
            for name, b in backends.items():
                sem = asyncio.Semaphore(c)

                async def one(b: Model = b, sem: asyncio.Semaphore = sem) -> None:
                    async with sem:
                        await b.generate(req)

                await asyncio.gather(*(one() for _ in range(c)))  # warm connections
                s0, c0, t0 = tree_cpu(url.proc.pid), time.process_time(), time.perf_counter()
                await asyncio.gather(*(one() for _ in range(calls)))
                wall = time.perf_counter() - t0
                rows.setdefault(name, []).append((calls / wall, (time.process_time() - c0) * 1000 / calls,
                                                  (tree_cpu(url.proc.pid) - s0) * 1000 / calls))
        for b in backends.values():
            await b.aclose()

    with serve_subprocess(f"mock:echo?latency={latency}", name="m", concurrency=1024) as url:
        asyncio.run(go(url))
    print(f"{calls} chat calls per run, concurrency {c}, server latency {latency * 1000:.0f} ms, {rounds} rounds "
          "(median)")
    print(f"{'transport':<10}{'calls/s':>9}{'ideal':>7}{'client cpu ms/call':>20}{'server cpu ms/call':>20}")
    for name, vals in rows.items():
        med = [statistics.median(v[i] for v in vals) for i in range(3)]
        print(f"{name:<10}{med[0]:>9.1f}{c / latency:>7.0f}{med[1]:>20.3f}{med[2]:>20.3f}")
    light, aio, sdk = (statistics.median(v[1] for v in rows[k]) for k in ("light", "aiohttp", "sdk"))
    print(f"light_cpu_ms={light:.3f} aiohttp_cpu_ms={aio:.3f} sdk_cpu_ms={sdk:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--levels", default="16,64,128")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=1, help="runs per client and level (the median is shown)")
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--venv", default=os.path.join(tempfile.gettempdir(), "llmlab-peers-venv"))
    ap.add_argument("--ours-only", action="store_true", help="only llmlab (default and openai-sdk transports)")
    ap.add_argument("--transports", action="store_true", help="time the bare transports only (see above)")
    ap.add_argument("--clients", default=None,
                    help="comma-separated subset of: llmlab, llmlab (openai-sdk), lm-eval, inspect_ai")
    args = ap.parse_args()
    if args.transports:
        transports_only(args.latency, 1500, 128, max(3, args.repeats))
        return
    levels = [int(x) for x in args.levels.split(",")]
    data = Path(args.data_dir) / "gsm8k" / "test.jsonl"
    if not data.exists():
        sys.exit(f"GSM8K test file not found at {data}; pass --data-dir")
    venv = None if args.ours_only else ensure_venv(Path(args.venv))
    scratch = Path(tempfile.mkdtemp(prefix="llmlab-peers-"))
    subset = scratch / "gsm8k_test.jsonl"
    subset.write_text("".join(data.read_text().splitlines(keepends=True)[: args.items]))
    (scratch / "lmeval").mkdir()
    (scratch / "lmeval" / "gsm8k_local.yaml").write_text(LMEVAL_TASK.format(data=subset))
    (scratch / "inspect_task.py").write_text(INSPECT_TASK.format(data=str(subset)))
    base_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "OPENAI_API_KEY": "EMPTY", "LLMLAB_API_KEY": "EMPTY"}
    results: list[Result] = []
    spec = f"mock:text=#### 18?latency={args.latency}"
    data_dir = scratch / "_d" / "gsm8k"
    data_dir.mkdir(parents=True)
    shutil.copy(subset, data_dir / "test.jsonl")
    with serve_subprocess(spec, name="m", concurrency=1024) as url:
        clients: dict[str, tuple[list[str], dict[str, str]]] = {}
        for kind in ("openai", "openai-sdk"):
            label = "llmlab" if kind == "openai" else "llmlab (openai-sdk)"
            clients[label] = ([sys.executable, "-m", "llmlab.cli", "eval", "gsm8k", "--method", "direct",
                               "--model", f"{kind}:m@{url}", "--data-dir", str(scratch / "_d"),
                               "--limit", str(args.items), "--runs-dir", str(scratch / "runs"),
                               "--no-progress", "--concurrency", "{c}", "--run-id", f"{kind}-{{c}}-{{r}}"],
                              base_env)
        if venv is not None:
            vbin = venv / "bin"
            lm_args = (f"model=m,base_url={url}/chat/completions,num_concurrent={{c}},max_retries=3,"
                       "tokenized_requests=False")
            clients["lm-eval"] = ([str(vbin / "lm_eval"), "--model", "local-chat-completions", "--model_args",
                                   lm_args, "--tasks", "gsm8k_local", "--include_path", str(scratch / "lmeval"),
                                   "--limit", str(args.items), "--apply_chat_template",
                                   "--output_path", str(scratch / "lmeval-out-{c}-{r}")],
                                  {**base_env, "PYTHONPATH": ""})
            clients["inspect_ai"] = ([str(vbin / "inspect"), "eval", "inspect_task.py",
                                      "--model", "openai-api/llmlab/m", "--limit", str(args.items),
                                      "--max-connections", "{c}", "--log-dir", str(scratch / "inspect-{c}-{r}"),
                                      "--display", "none", "--no-log-samples"],
                                     {**base_env, "PYTHONPATH": "", "LLMLAB_BASE_URL": url,
                                      "INSPECT_LOG_LEVEL": "warning"})
        if args.clients is not None:
            keep = [c.strip() for c in args.clients.split(",")]
            clients = {k: v for k, v in clients.items() if k in keep}
        # warm-up: page in imports and the data for every client (not measured)
        for label, (cmd, env) in clients.items():
            warm = [a.replace("{c}", "8").replace("{r}", "warm") for a in cmd]
            warm[warm.index(str(args.items))] = "16"
            subprocess.run(warm, env=env, cwd=str(scratch if label == "inspect_ai" else REPO), capture_output=True,
                           timeout=600)
        for c in levels:
            for r in range(args.repeats):
                order = list(clients) if r % 2 == 0 else list(reversed(clients))
                for label in order:
                    cmd, env = clients[label]
                    argv = [a.replace("{c}", str(c)).replace("{r}", str(r)) for a in cmd]
                    log = scratch / f"{label.replace(' ', '_')}-{c}-{r}.log"
                    res = run_client(label, argv, env, url.root, args.items, c, log,
                                     scratch if label == "inspect_ai" else REPO)
                    print(f"  {label:<22} c={c:<4} e2e {res.e2e:7.1f} items/s  request phase {res.phase:7.1f} "
                          f"calls/s  cpu {res.cpu_ms_per_call:6.3f} ms/call  max in flight {res.max_in_flight}",
                          flush=True)
                    results.append(res)
    shutil.rmtree(scratch, ignore_errors=True)

    def med(label: str, c: int, attr: str) -> float:
        vals = [getattr(x, attr) for x in results if x.client == label and x.concurrency == c]
        return statistics.median(vals) if vals else float("nan")

    labels = list(dict.fromkeys(x.client for x in results))
    print()
    if venv is not None:
        print(f"peers: {peer_versions(venv)}")
    print(f"{args.items} GSM8K items, server latency {args.latency * 1000:.0f} ms, {args.repeats} run(s) per cell "
          "(median)")
    print(f"{'client':<22}{'conc':>5}{'wall s':>8}{'e2e items/s':>12}{'req-phase calls/s':>18}{'ideal':>7}"
          f"{'cpu ms/call':>12}")
    for c in levels:
        for label in labels:
            print(f"{label:<22}{c:>5}{med(label, c, 'wall_s'):>8.2f}{med(label, c, 'e2e'):>12.1f}"
                  f"{med(label, c, 'phase'):>18.1f}{c / args.latency:>7.0f}{med(label, c, 'cpu_ms_per_call'):>12.3f}")
    top = levels[-1]
    cpu = med("llmlab", top, "cpu_ms_per_call")
    if venv is not None and "lm-eval" in labels:
        parts = [f"request_phase_vs_lmeval_c{c}={med('llmlab', c, 'phase') / med('lm-eval', c, 'phase'):.2f}"
                 for c in levels if c in (64, 128)]
        e2e = [f"e2e_vs_{p}_c{top}={med('llmlab', top, 'e2e') / med(p, top, 'e2e'):.2f}"
               for p in ("lm-eval", "inspect_ai") if p in labels]
        print(" ".join(e2e))
        print(" ".join([*parts, f"client_cpu_ms={cpu:.3f}"]))
    elif "llmlab (openai-sdk)" in labels:
        ratio = med("llmlab", top, "phase") / med("llmlab (openai-sdk)", top, "phase")
        print(f"request_phase_vs_sdk_c{top}={ratio:.2f} client_cpu_ms={cpu:.3f}")


if __name__ == "__main__":
    main()
