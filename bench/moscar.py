"""mOSCAR filter pipeline throughput: datatrove at 1 and 2 workers vs a plain single-process Python loop.

Builds the planted Debian-catalogue corpus (``llmlab.data.moscar_corpus``), then times, on the same input:

- ``loop``: :func:`llmlab.data.moscar.filter_documents_inline`, every stage and both dedups in one process;
- ``datatrove, N workers``: :func:`llmlab.data.moscar.filter_corpus` (4 executor runs: filters + signatures,
  buckets, clusters, dedup filter) with ``--tasks`` shards on N local worker processes.

Every path is checked to keep the same documents (the loop against the 1-task pipeline's kept ids, the worker
counts against each other). docs/s = input documents / wall seconds, start-up included (process pool, model
and blocklist loading per task). The last line is ``docs_per_s=<x> worker_scaling=<y>``: x = the pipeline at
the most workers, y = its docs/s over the 1-worker pipeline's.
Usage: ``python bench/moscar.py [--docs 4000] [--tasks 2] [--url-blocklist file|ut1]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from llmlab.data.moscar import MoscarConfig, filter_corpus, filter_documents_inline, read_documents
from llmlab.data.moscar_corpus import build_corpus


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4000, help="clean base documents (planted copies on top)")
    ap.add_argument("--tasks", type=int, default=2, help="shards of every pipeline run (same for all worker counts)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--url-blocklist", default="file",
                    help="'file': the corpus's sampled UT1 domains (fast); 'ut1': datatrove's full list")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="moscar-bench-"))
    info = build_corpus(root / "corpus", n_docs=args.docs, seed=0, n_files=args.tasks)
    n = info["documents"]
    bl = str(root / "corpus" / "blocked_domains.txt") if args.url_blocklist == "file" else args.url_blocklist
    config = MoscarConfig(url_blocklist=bl)
    records = [json.loads(ln) for f in sorted((root / "corpus" / "input").glob("*.jsonl")) for ln in f.open()]
    print(f"mOSCAR filters on {n} documents ({len(info['languages'])} languages), tasks={args.tasks}, "
          f"url blocklist={args.url_blocklist}")
    t = time.perf_counter()
    kept, _ = filter_documents_inline(records, config)
    t_loop = time.perf_counter() - t
    rows = [("plain Python loop (1 process)", t_loop, len(kept))]
    rates = {}
    ids = None
    for w in args.workers:
        out = root / f"out-w{w}"
        t = time.perf_counter()
        rep = filter_corpus(root / "corpus" / "input", out, config, workers=w, tasks=args.tasks)
        dt = time.perf_counter() - t
        got = sorted(d["id"] for d in read_documents(out))
        if ids is not None and got != ids:
            raise SystemExit(f"{w} workers kept other documents than {args.workers[0]}")
        ids = got
        rows.append((f"datatrove local, {w} worker(s)", dt, rep["documents_out"]))
        rates[w] = n / dt
    if ids is not None and len(ids) != len(kept):
        print(f"note: the loop keeps {len(kept)}, the {args.tasks}-task pipeline {len(ids)} "
              "(which copy of a duplicate is kept depends on the sharding)")
    print(f"{'path':<34}{'seconds':>10}{'docs/s':>10}{'kept':>8}{'vs loop':>9}")
    for name, dt, k in rows:
        print(f"{name:<34}{dt:>10.2f}{n / dt:>10.1f}{k:>8}{t_loop / dt:>8.2f}x")
    top = max(args.workers)
    scaling = rates[top] / rates[min(args.workers)]
    print(f"docs_per_s={rates[top]:.1f} worker_scaling={scaling:.2f}")


if __name__ == "__main__":
    main()
