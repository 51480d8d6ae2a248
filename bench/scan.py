"""Selective scan speed: fused/chunked ``selective_scan`` vs the sequential ``selective_scan_ref``.

Forward at batch 1, L=2048, d=256, n=16 (float32, CPU, torch threads as configured). Prints a table with
ratios against the reference measured in the same run; the last line is ``scan_speedup=<x>`` (best fast
path vs reference, forward). Usage: ``python bench/scan.py [--repeats 5] [--L 2048]``.
"""

from __future__ import annotations

import argparse

import torch

from _timing import add_threads_arg, best_time, set_threads
from llmlab.models.ssm import numba_available, selective_scan, selective_scan_ref


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--L", type=int, default=2048)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    b, d, L, n = args.batch, args.d, args.L, args.n
    u, dl = torch.randn(b, d, L), torch.randn(b, d, L)
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)  # S4D-real init
    B, C, D, z = torch.randn(b, n, L), torch.randn(b, n, L), torch.ones(d), torch.randn(b, d, L)
    bias = torch.full((d,), -3.0)

    def run(impl: str):
        return lambda: selective_scan(u, dl, A, B, C, D, z, bias, True, impl=impl)  # type: ignore[arg-type]

    print(f"selective scan forward, batch={b} L={L} d={d} n={n}, float32, threads={torch.get_num_threads()}")
    with torch.no_grad():
        ref_out = selective_scan_ref(u, dl, A, B, C, D, z, bias, True)
        t_ref = best_time(run("ref"), args.repeats)
        rows = [("ref (sequential)", t_ref)]
        impls = ["chunked"] + (["numba"] if numba_available() else [])
        for impl in impls:
            out = run(impl)()
            err = ((out - ref_out).abs().max() / ref_out.abs().max()).item()
            rows.append((f"{impl} (max rel err {err:.1e})", best_time(run(impl), args.repeats)))
    print(f"{'impl':<34}{'seconds':>10}{'speedup':>10}")
    for name, t in rows:
        print(f"{name:<34}{t:>10.4f}{t_ref / t:>9.2f}x")
    best = min(t for _, t in rows[1:])
    # forward + backward (training), at a shorter length so the autograd reference stays quick
    Lb = min(L, 512)
    args_b = [t[..., :Lb].clone().requires_grad_() for t in (u, dl, B, C, z)]
    Ab = A.clone().requires_grad_()

    def fb(impl: str):
        def go():
            ub, db, Bb, Cb, zb = args_b
            y = selective_scan(ub, db, Ab, Bb, Cb, D, zb, bias, True, impl=impl)  # type: ignore[arg-type]
            y.sum().backward()
        return go

    t_ref_b = best_time(fb("ref"), args.repeats)
    print(f"forward+backward at L={Lb}:")
    print(f"{'ref (sequential, autograd)':<34}{t_ref_b:>10.4f}{1.0:>9.2f}x")
    for impl in impls:
        t = best_time(fb(impl), args.repeats)
        print(f"{impl:<34}{t:>10.4f}{t_ref_b / t:>9.2f}x")
    print(f"scan_speedup={t_ref / best:.2f}")


if __name__ == "__main__":
    main()
