"""Sparse (predicted-active neurons only) vs dense FFN, batch-1 decode, CPU float32.

d=2048, d_ff=8192 by default. The sparse time includes the PowerInfer-style predictor's forward (rank
``--rank``) plus the neuron-aware bundle gather and the small matmuls; the active set has the requested
sparsity (the predictor is timed but its mask is replaced by one of exact density, so that each row measures
the stated sparsity). Sparsities: 90% and, when ``runs/lab/drelu_vs_swiglu/result.json`` exists, the mean
sparsity the lab's dReLU model actually shows (else ``--measured``). Final line:
``sparse_ffn_speedup_at_90=<x>``. Usage: ``python bench/sparse_ffn.py [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from _timing import add_threads_arg, set_threads
from _timing import best_time as _timing_best_time
from llmlab.models.sparse_ffn import ActivationPredictor, GatedFFN, SparseFFN


def best_time(fn, repeats: int) -> float:
    return _timing_best_time(fn, repeats, warmup=3, quantile=0.25)  # lower quartile: robust on a shared machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--d-ff", type=int, default=8192)
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--measured", type=float, default=None, help="dReLU sparsity to add as a row")
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    d, dff = args.d, args.d_ff
    # SwiGLU weights for timing: its activations are never exactly zero, so every predicted neuron costs a
    # full gate/up/down row - the conservative case (a dReLU neuron predicted active that comes out zero
    # skips its down row in the fused kernel, which would flatter a random mask). Compute is otherwise
    # identical to dReLU.
    ffn = GatedFFN(d, dff, act="swiglu").eval()
    pred = ActivationPredictor(d, dff, rank=args.rank).eval()
    x = torch.randn(1, d)
    sparsities = [0.5, 0.8, 0.9, 0.95]
    measured = args.measured
    res_path = Path("runs/lab/drelu_vs_swiglu/result.json")
    if measured is None and res_path.exists():
        measured = json.loads(res_path.read_text())["measured"]["drelu_sparsity"]
    if measured is not None:
        sparsities.append(round(float(measured), 3))
    print(f"FFN batch-1 decode, d={d} d_ff={dff} float32, threads={torch.get_num_threads()}, "
          f"predictor rank {args.rank} (cost included)")
    with torch.no_grad():
        t_dense = best_time(lambda: ffn(x), args.repeats)  # 200 MB of weights: never cache-resident
        t_pred = best_time(lambda: pred(x), args.repeats)
        print(f"{'variant':<36}{'ms':>9}{'speedup':>9}{'max err':>10}")
        print(f"{'dense':<36}{t_dense * 1e3:>9.3f}{1.0:>8.2f}x{'':>10}")
        print(f"{'predictor alone':<36}{t_pred * 1e3:>9.3f}{t_dense / t_pred:>8.2f}x{'':>10}")
        speed = {}
        for hot_frac in (0.0, 0.05):
            for s in sorted(set(sparsities)):
                k = round((1 - s) * dff)
                g = torch.Generator().manual_seed(1)
                active = torch.randperm(dff, generator=g)[:k]
                n_hot = int(hot_frac * dff) if hot_frac else 0
                hot = active[:n_hot] if n_hot else None  # hot neurons are (by construction) always active
                sp = SparseFFN(ffn, predictor=pred, hot_idx=hot)
                mask = torch.zeros(1, dff, dtype=torch.bool)
                mask[0, active] = True
                # a fresh active set for every timed token (as across tokens and layers in decoding), so the
                # active rows are not served from cache by the previous repetition
                pool = []
                for r in range(8):
                    m = torch.zeros(1, dff, dtype=torch.bool)
                    extra = torch.randperm(dff, generator=torch.Generator().manual_seed(100 + r))
                    m[0, extra[: k - n_hot]] = True
                    if hot is not None:
                        m[0, hot] = True
                    pool.append(m)
                # exactness vs dense restricted to the same neurons
                ref = (ffn.intermediate(x) * mask) @ ffn.w_down.weight.T
                err = (sp(x, mask=mask) - ref).abs().max().item()

                calls = [0]

                def run(sp=sp, pool=pool, calls=calls):
                    pred(x)  # the predictor's cost is paid on every token
                    calls[0] += 1
                    return sp(x, mask=pool[calls[0] % len(pool)])

                t = best_time(run, args.repeats)
                speed[(hot_frac, s)] = t_dense / t
                label = f"sparse {s:.0%}" + (f" (+{hot_frac:.0%} hot)" if hot_frac else "")
                if measured is not None and s == round(float(measured), 3):
                    label += " [dReLU measured]"
                print(f"{label:<36}{t * 1e3:>9.3f}{t_dense / t:>8.2f}x{err:>10.1e}")
        # the plain PyTorch path (index_select gather of the bundles + two small matmuls) at 90%
        k = round(0.1 * dff)
        pool = []
        for r in range(8):
            m = torch.zeros(1, dff, dtype=torch.bool)
            m[0, torch.randperm(dff, generator=torch.Generator().manual_seed(200 + r))[:k]] = True
            pool.append(m)
        sp_plain = SparseFFN(ffn, predictor=pred, use_kernel=False)
        calls = [0]

        def run_plain() -> None:
            pred(x)
            calls[0] += 1
            sp_plain(x, mask=pool[calls[0] % len(pool)])

        t = best_time(run_plain, args.repeats)
        print(f"{'sparse 90%, torch index_select path':<36}{t * 1e3:>9.3f}{t_dense / t:>8.2f}x{'':>10}")
    tail = f"sparse_ffn_speedup_at_90={speed[(0.0, 0.9)]:.2f}"
    if measured is not None:
        tail += f" sparse_ffn_speedup_at_measured={speed[(0.0, round(float(measured), 3))]:.2f}"
    print(tail)


if __name__ == "__main__":
    main()
