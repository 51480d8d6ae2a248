"""McEval in the sandbox: throughput one-at-a-time vs concurrency = cores, and the per-run sandbox overhead.

Canonical solutions of ``--per-language`` items in each of 5 languages (compiled: C, C++; interpreted:
Python, JavaScript, Perl), each run through the full path (extract, write files, sandbox, judge):

1. one at a time (sandbox concurrency 1) -> items/s;
2. concurrency = cores -> items/s; ``parallel_speedup`` = (2) / (1). The items are shuffled (fixed seed)
   into ``--rounds`` chunks that mix the languages; each chunk runs both ways back to back, in alternating
   order, so load drift on the shared machine hits both modes alike;
3. the same programs as a bare ``subprocess`` in a temp dir (no sandbox, no limits), interleaved item by
   item with sandboxed one-at-a-time runs (so load drift on the shared machine hits both alike);
   ``sandbox_overhead_ms`` = (sandboxed - bare) / runs, plus a ``true`` micro-benchmark.

Ratios are measured in the same run (the machine is shared and noisy). Final line:
``sandbox_overhead_ms=<x> parallel_speedup=<y>``.

Usage: ``LLMLAB_DATA_DIR=../shared/data python bench/mceval.py [--per-language 40]``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from llmlab import sandbox
from llmlab.core.concurrency import gather, run_sync
from llmlab.sandbox.runner import write_files
from llmlab.tasks.mceval import LANGS, McEval
from llmlab.tasks.mceval.languages import render_script

BENCH_LANGS = ("C", "CPP", "Python", "JavaScript", "Perl")


def _items(per: int) -> list[tuple[McEval, Any]]:
    out = []
    for name in BENCH_LANGS:
        if LANGS[name].missing_tool():
            print(f"# {name}: not run: {LANGS[name].missing_tool()} missing")
            continue
        task = McEval({"language": name, "limit": per})
        out += [(task, it) for it in task.items()]
    return out


async def _sandboxed(pairs: list[tuple[McEval, Any]], conc: int) -> tuple[float, int]:
    sandbox.set_concurrency(conc)

    def one(task: McEval, it: Any) -> Any:
        async def go() -> bool:
            return (await task.run_one(it, task.canonical_reply(it))).passed

        return go

    t0 = time.perf_counter()
    oks = await gather([one(t, it) for t, it in pairs], limit=conc)
    return time.perf_counter() - t0, sum(oks)


def _bare_one(task: McEval, it: Any) -> bool:
    """One program and script, run by a plain subprocess in a temp dir (no isolation)."""
    lang = task.lang_of(it)
    program = task.program(it, task.canonical_reply(it))
    d = tempfile.mkdtemp(prefix="bench-bare-")
    try:
        write_files(d, {f"run/{lang.filename}": program, "run/run.sh": render_script(lang, None)})
        done = subprocess.run(["bash", "run.sh"], cwd=os.path.join(d, "run"), capture_output=True,
                              timeout=lang.timeout * 4, check=False)
        return done.returncode == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _interleaved(pairs: list[tuple[McEval, Any]]) -> tuple[float, int, float, int]:
    """Bare and sandboxed (one at a time) runs of each item back to back, so load drift hits both alike."""
    sandbox.set_concurrency(1)
    t_bare = t_sb = 0.0
    ok_bare = ok_sb = 0
    for task, it in pairs:
        t0 = time.perf_counter()
        ok_bare += _bare_one(task, it)
        t1 = time.perf_counter()
        ok_sb += run_sync(task.run_one(it, task.canonical_reply(it))).passed
        t2 = time.perf_counter()
        t_bare += t1 - t0
        t_sb += t2 - t1
    return t_bare, ok_bare, t_sb, ok_sb


def _speedup(pairs: list[tuple[McEval, Any]], cores: int, rounds: int) -> tuple[float, float, int]:
    """Seconds one at a time and ``cores`` at a time over the same chunks, alternating which goes first."""
    order = list(pairs)
    random.Random(0).shuffle(order)
    chunks = [order[i::rounds] for i in range(rounds)]
    t_one = t_par = 0.0
    ok_par = 0
    for i, chunk in enumerate(chunks):
        modes = (1, cores) if i % 2 == 0 else (cores, 1)
        for conc in modes:
            t, ok = run_sync(_sandboxed(chunk, conc))
            if conc == 1:
                t_one += t
            else:
                t_par += t
                ok_par += ok
    return t_one, t_par, ok_par


def _micro(n: int) -> tuple[float, float]:
    """Per-run seconds of ``true``: bare subprocess vs sandbox.run (one at a time)."""
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    bare = (time.perf_counter() - t0) / n
    sandbox.set_concurrency(1)

    async def loop() -> None:
        for _ in range(n):
            r = await sandbox.run({}, ["true"], timeout=10)
            assert r.ok, r.stderr

    t0 = time.perf_counter()
    run_sync(loop())
    return bare, (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-language", type=int, default=40)
    ap.add_argument("--micro", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4, help="chunks for the interleaved speedup measurement")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    iso = sandbox.isolation()
    print(f"# isolation: {iso.mode}; cores: {cores}; python {sys.version.split()[0]}")
    pairs = _items(args.per_language)
    n = len(pairs)
    bare_true, sb_true = _micro(args.micro)
    t_bare, ok_bare, t_seq, ok_seq = _interleaved(pairs)
    t_seq1, t_par, ok_par = _speedup(pairs, cores, max(1, args.rounds))
    print("| mode | runs | passed | wall (s) | items/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| bare subprocess, 1 at a time | {n} | {ok_bare} | {t_bare:.1f} | {n / t_bare:.2f} |")
    print(f"| sandbox, 1 at a time | {n} | {ok_seq} | {t_seq:.1f} | {n / t_seq:.2f} |")
    print(f"| sandbox, 1 at a time (chunks, for the speedup) | {n} | - | {t_seq1:.1f} | {n / t_seq1:.2f} |")
    print(f"| sandbox, {cores} at a time | {n} | {ok_par} | {t_par:.1f} | {n / t_par:.2f} |")
    print(f"| `true` micro: bare / sandbox (ms per run) | {args.micro} | - | {1000 * bare_true:.1f} / "
          f"{1000 * sb_true:.1f} | - |")
    overhead_ms = 1000 * (t_seq - t_bare) / n if n else float("nan")
    print(f"# per-run overhead on McEval programs: {overhead_ms:.1f} ms; on `true`: "
          f"{1000 * (sb_true - bare_true):.1f} ms")
    print(f"sandbox_overhead_ms={overhead_ms:.1f} parallel_speedup={t_seq1 / t_par:.2f}")


if __name__ == "__main__":
    main()
