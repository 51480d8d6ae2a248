"""LUT GEMV (ShiftAddLLM / LUT-GEMM) vs dense float32 GEMV, batch 1.

Usage: python bench/lut_gemv.py [--n 4096] [--k 4096] [--bits 3] [--group 128] [--threads 2] [--device cpu]

The binary planes and scales are random (speed does not depend on their values); the dense baseline
multiplies the dequantized float32 weight. Correctness (LUT == dense) is checked before timing.
Final line: ``lut_vs_dense_speedup=<x>`` (dense time / best LUT time).
"""

from __future__ import annotations

import argparse
import time

import torch

from llmlab.models import shiftadd as sa


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--bits", type=int, default=3)
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    g = torch.Generator().manual_seed(0)
    q, N, K = args.bits, args.n, args.k
    packed = torch.randint(0, 256, (q, N, K // 8), generator=g, dtype=torch.uint8)
    alpha = torch.rand(q, N, K // args.group, generator=g) * 0.1
    planes = sa.unpack_planes(packed)
    W = (alpha.repeat_interleave(args.group, dim=-1) * planes).sum(0).contiguous()  # (N, K) dequantized
    del planes
    x = torch.randn(K, generator=g)

    dense = W @ x
    rows = [("dense fp32 (torch.mv)", best_of(lambda: torch.mv(W, x), args.repeat))]
    for impl in ("numba", "torch"):
        try:
            y = sa.lut_gemv(x, alpha, packed, args.group, impl=impl)  # type: ignore[arg-type]
        except Exception as exc:  # numba missing: report and continue
            print(f"# {impl}: unavailable ({exc})")
            continue
        assert torch.allclose(y, dense, atol=1e-3, rtol=1e-4), impl
        rows.append((f"LUT {impl}", best_of(lambda i=impl: sa.lut_gemv(x, alpha, packed, args.group, impl=i),
                                            args.repeat if impl == "numba" else 3)))
    base = rows[0][1]
    print(f"N={N} K={K} bits={q} group={args.group} threads={args.threads} "
          f"weight bytes: dense {W.numel() * 4 / 2**20:.1f} MiB, packed {packed.numel() / 2**20:.1f} MiB "
          f"+ scales {alpha.numel() * 4 / 2**20:.2f} MiB")
    print(f"{'path':28s} {'ms':>9s} {'vs dense':>9s}")
    for name, t in rows:
        print(f"{name:28s} {t * 1e3:9.3f} {base / t:9.2f}x")
    lut_best = min(t for name, t in rows[1:]) if len(rows) > 1 else float("nan")
    print(f"lut_vs_dense_speedup={base / lut_best:.2f}")


if __name__ == "__main__":
    main()
