"""Eval throughput vs concurrency through a real `llmlab serve` whose mock answers in 200 ms.

The ideal is concurrency / latency items per second (one call per item with `direct`); each level runs
rounds x concurrency items after a warm-up run, so start-up costs are not counted as throughput. Goal: at least
0.8 x ideal at concurrency 64. Run from the repository root: `python bench/throughput.py`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.servers import serve_subprocess

from llmlab.runner import EvalSpec, run_eval


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--levels", default="1,2,4,8,16,32,64")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--rounds", type=int, default=10, help="items per level = rounds x concurrency")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, serve_subprocess(
        f"mock:text=#### 18?latency={args.latency}", name="m", concurrency=256
    ) as url:
        # warm-up: imports, the data file, the first connections
        run_eval(EvalSpec(task="gsm8k", method="direct", model_spec=f"openai:m@{url}", limit=8, concurrency=8,
                          run_id="warm", runs_dir=tmp, data_dir=args.data_dir))
        for c in levels:
            n = max(20, args.rounds * c)
            t0 = time.perf_counter()
            s = run_eval(EvalSpec(task="gsm8k", method="direct", model_spec=f"openai:m@{url}", limit=n, concurrency=c,
                                  run_id=f"c{c}", runs_dir=tmp, data_dir=args.data_dir))
            wall = time.perf_counter() - t0
            assert s.n_scored == n, s.errors[:3]
            ideal = c / args.latency
            rows.append((c, n, wall, n / wall, ideal))
    print(f"{'concurrency':>11} {'items':>6} {'wall_s':>8} {'items/s':>9} {'ideal/s':>8} {'ratio':>6}")
    for c, n, wall, ips, ideal in rows:
        print(f"{c:>11} {n:>6} {wall:>8.2f} {ips:>9.1f} {ideal:>8.1f} {ips / ideal:>6.2f}")
    c, n, wall, ips, ideal = rows[-1]
    print(f"throughput_at_{c}={ips:.1f} ideal_at_{c}={ideal:.1f} ratio_at_{c}={ips / ideal:.2f}")


if __name__ == "__main__":
    main()
