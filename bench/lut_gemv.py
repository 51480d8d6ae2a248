"""LUT GEMV (ShiftAddLLM / LUT-GEMM) vs dense float32 GEMV, batch 1.

Usage: python bench/lut_gemv.py [--n 4096] [--k 4096] [--bits 3] [--group 128] [--threads 2] [--device cpu]

The binary planes and scales are random (speed does not depend on their values); the dense baseline
multiplies the dequantized float32 weight. Correctness (LUT == dense) is checked before timing.
Timings interleave the paths over rounds (best of --repeat per round); the ratio uses medians over
rounds. Final line: ``lut_vs_dense_speedup=<x>`` (dense median / fastest LUT median).
"""

from __future__ import annotations

import argparse
import os
import statistics

# torch's OpenMP workers spin after each call and would steal the cores from numba's pool between the
# interleaved timings; passive waiting makes both paths start from idle cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from _timing import add_threads_arg, interleaved, set_threads
from llmlab.models import shiftadd as sa


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--bits", type=int, default=3)
    ap.add_argument("--group", type=int, default=128)
    add_threads_arg(ap, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    set_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    q, N, K = args.bits, args.n, args.k
    packed = torch.randint(0, 256, (q, N, K // 8), generator=g, dtype=torch.uint8)
    alpha = torch.rand(q, N, K // args.group, generator=g) * 0.1
    planes = sa.unpack_planes(packed)
    W = (alpha.repeat_interleave(args.group, dim=-1) * planes).sum(0).contiguous()  # (N, K) dequantized
    del planes
    x = torch.randn(K, generator=g)

    dense = W @ x
    lw = sa.LUTWeight(alpha, packed, args.group)
    paths = {"dense fp32 (torch.mv)": lambda: torch.mv(W, x)}
    for impl in ("numba", "torch"):
        try:
            y = lw.matvec(x, impl=impl)  # type: ignore[arg-type]
        except Exception as exc:  # numba missing: report and continue
            print(f"# {impl}: unavailable ({exc})")
            continue
        assert torch.allclose(y, dense, atol=1e-3, rtol=1e-4), impl
        paths[f"LUT {impl}"] = lambda i=impl: lw.matvec(x, impl=i)
    # interleave rounds so that load from other processes hits every path alike
    times = interleaved(paths, args.rounds, lambda name: args.repeat if "torch)" not in name else 1)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    base = "dense fp32 (torch.mv)"
    print(f"N={N} K={K} bits={q} group={args.group} threads={args.threads} rounds={args.rounds} "
          f"weight bytes: dense {W.numel() * 4 / 2**20:.1f} MiB, packed {packed.numel() / 2**20:.1f} MiB "
          f"+ scales {alpha.numel() * 4 / 2**20:.2f} MiB")
    print(f"{'path':28s} {'median ms':>10s} {'best ms':>9s} {'vs dense (median)':>18s}")
    for name in paths:
        print(f"{name:28s} {med[name] * 1e3:10.3f} {best[name] * 1e3:9.3f} {med[base] / med[name]:17.2f}x")
    luts = [k for k in paths if k != base]
    fast = min(luts, key=lambda k: med[k]) if luts else None
    if fast is None:
        print("lut_vs_dense_speedup=nan")
        return
    print(f"lut_vs_dense_speedup={med[base] / med[fast]:.2f} best_of_rounds_speedup={best[base] / best[fast]:.2f} "
          f"path={fast.split()[-1]}")


if __name__ == "__main__":
    main()
