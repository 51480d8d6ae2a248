"""PowerInfer-2 offloading engine vs dense layer streaming, decoding a dReLU LM larger than its memory budget.

Two models:

* ``--model DIR`` (the real measurement): a dReLU ``SambaLM`` trained with ``llmlab lab train --ffn drelu``
  (see docs/sparse_ffn.md for the 84 MiB-FFN model and its command). Its activation predictors are trained
  here on the model's own recorded activations (training split of its corpus) and scored on validation
  windows; the hot segment comes from offline profiling of training windows. Locality is the model's own.
* default: a :class:`SambaLM` (``arch=transformer``, ``ffn=drelu``) with random weights, by default d=1024,
  d_ff=8192, 4 layers: 384 MiB of float32 FFN weights. Its predictors are synthetic: a random low-rank
  ``fc2(ReLU(fc1 x))`` whose per-neuron bias follows a power law (a few neurons fire for most tokens, as
  profiled in TurboSparse models), shifted so that the predicted density is ``1 - sparsity`` on the profiling
  tokens. This measures the I/O engine under an assumed locality, not a model.

Budget: ``--budget-frac`` (1/4) of the FFN bytes. Attention, embeddings and predictors stay resident.

Rows (same file, same budget, page cache dropped before each run, ``O_DIRECT`` reads):

* ``dense_stream``: every token reads each non-resident layer whole (llama.cpp mmap-style streaming; the
  layers that fit in the budget stay resident), chunked reads overlapped with compute;
* ``offload_no_pipeline``: PowerInfer-2 engine, reads of a layer's missing clusters all finish before compute;
* ``offload``: PowerInfer-2 engine with the cluster-level pipeline.

Each row's tokens are checked against the in-memory model: the sparse rows against the in-memory sparse model
(dense prefill, then the same predictors), ``dense_stream`` against the in-memory dense model.
Final line: ``offload_speedup_vs_dense_stream=<x> pipeline_gain=<y> hit_rate=<z>``.
Usage: ``python bench/offload.py [--model runs/lab/pinfer-drelu] [--tokens 24] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import mmap
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from _timing import add_threads_arg, set_threads
from llmlab.models.offload import OffloadConfig, OffloadEngine, offload_lm, polymorphic_lm, profile_masks
from llmlab.models.offload.engine import OffloadedFFN, pinned_from_frequency
from llmlab.models.offload.lm import ffn_bytes, sparse_lab_model
from llmlab.models.offload.store import BundleFile, aligned_buffer
from llmlab.models.samba import SambaConfig, SambaLM
from llmlab.models.sparse_ffn import ActivationPredictor, SparseFFN, record_activations


def synthetic_predictors(hiddens: list[torch.Tensor], d_ff: int, sparsity: float, rank: int, seed: int,
                         skew: float, noise: float) -> list[ActivationPredictor]:
    """Per layer, a random predictor with power-law neuron popularity at the requested predicted density.

    Logit of neuron k = ``noise`` · (input-dependent part, unit std) − ``skew`` · log(1 + popularity rank of k),
    shifted to the requested density: ``skew`` sets locality across tokens, ``noise`` the per-token variation.
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for h in hiddens:
        d = h.shape[1]
        p = ActivationPredictor(d, d_ff, rank=rank)
        with torch.no_grad():
            p.fc1.weight.copy_(torch.randn(rank, d, generator=g) / d**0.5)
            p.fc2.weight.copy_(torch.randn(d_ff, rank, generator=g) / rank**0.5)
            p.fc2.weight.mul_(noise / p(h).sub(p.fc2.bias).std())
            popularity = skew * torch.log1p(torch.arange(d_ff, dtype=torch.float32))  # rank-based power law
            p.fc2.bias.copy_(-popularity[torch.randperm(d_ff, generator=g)])
            logits = p(h)  # (T, d_ff)
            p.fc2.bias.sub_(torch.quantile(logits.flatten()[:2_000_000], sparsity))
        out.append(p.eval())
    return out


def greedy(model: torch.nn.Module, prompt: list[int], n_tokens: int, after_prefill: Callable[[], None] | None = None,
           ) -> tuple[list[int], float]:
    """Prefill, then ``n_tokens`` greedy tokens (the first from the prefill); returns tokens and decode seconds."""
    with torch.no_grad():
        logits, caches = model.prefill(torch.tensor([prompt]))
        tok = int(logits[0, -1].argmax())
        if after_prefill is not None:
            after_prefill()
        toks = []
        t0 = time.perf_counter()
        for _ in range(n_tokens):
            toks.append(tok)
            tok = int(model.step(torch.tensor([tok]), caches)[0].argmax())
        return toks, time.perf_counter() - t0


def run(model: SambaLM, engine: OffloadEngine, prompt: list[int], n_tokens: int) -> dict[str, float | list[int]]:
    """Prefill (not timed in tok/s, not counted), then greedy decode with per-token engine counters."""
    for blk in model.blocks:
        assert isinstance(blk.ffn, OffloadedFFN)
        blk.ffn.engine = engine
    engine.drop_page_cache()
    toks, wall = greedy(model, prompt, n_tokens, after_prefill=engine.reset_stats)
    st = engine.stats
    return {"tok_s": n_tokens / wall, "wall_ms": 1e3 * wall / n_tokens, "mb_read": st.bytes_read / n_tokens / 2**20,
            "hit_rate": st.hit_rate, "io_busy_ms": 1e3 * st.io_busy_s / n_tokens,
            "io_wait_ms": 1e3 * st.io_wait_s / n_tokens, "compute_ms": 1e3 * st.compute_s / n_tokens,
            "reads": st.reads / n_tokens, "tokens": toks}


Setup = tuple[SambaLM, list[SparseFFN], list[np.ndarray], list[int], str]


def random_setup(args: argparse.Namespace) -> Setup:
    """The random-weight model with synthetic predictors (see the module docstring)."""
    torch.manual_seed(args.seed)
    cfg = SambaConfig(n_layer=args.layers, n_embd=args.d, n_head=8, intermediate_size=args.d_ff, arch="transformer",
                      ffn="drelu")
    model = SambaLM(cfg).eval()
    prof = torch.randint(0, 256, (1, 256), generator=torch.Generator().manual_seed(args.seed + 1))
    hiddens = [h for h, _ in record_activations(model, [prof])]
    preds = synthetic_predictors(hiddens, args.d_ff, args.sparsity, 64, args.seed, args.skew, args.noise)
    layers = [SparseFFN(blk.ffn, p) for blk, p in zip(model.blocks, preds, strict=True)]
    masks = profile_masks(layers, hiddens)
    return model, layers, masks, list(range(32, 48)), f"random weights, skew {args.skew}, noise {args.noise}"


def trained_setup(args: argparse.Namespace) -> Setup:
    """A `lab train` dReLU model with predictors trained on its own activations; prints per-layer locality."""
    t0 = time.perf_counter()
    lab = sparse_lab_model(args.model, rank=args.rank, pred_steps=args.predictor_steps,
                           prof_windows=args.prof_windows, val_windows=args.val_windows)
    model = lab.model
    print(f"trained model {args.model}: {model.num_params() / 1e6:.1f}M params, d={lab.config.n_embd}, "
          f"d_ff={lab.config.intermediate_size}, {lab.config.n_layer} layers; predictors rank {args.rank}, "
          f"{args.predictor_steps} steps on {args.prof_windows}x{lab.config.seq_len} training tokens "
          f"({time.perf_counter() - t0:.0f} s)")
    print("| layer | exact zeros (val) | predictor recall | precision | predicted density | true density |")
    print("|---|---|---|---|---|---|")
    for i, (z, m) in enumerate(zip(lab.exact_zero, lab.predictor, strict=True)):
        print(f"| {i} | {z:.3f} | {m['recall']:.3f} | {m['precision']:.3f} | {m['predicted_density']:.3f} | "
              f"{m['true_density']:.3f} |")
    n = args.prompt_bytes
    start = lab.val.numel() // 3  # a validation window (never trained on, never profiled)
    prompt = [int(b) for b in lab.val[start:start + n]]
    return model, lab.layers, lab.masks, prompt, "trained weights, trained predictors"


def probe_reads(path: Path, threads: int, n: int = 200, seed: int = 0) -> str:
    """Random ``O_DIRECT`` reads of runs of 1..64 bundles from the bundle file: latency and effective bandwidth.

    Each size: ``n`` reads at random bundle-aligned offsets (page cache dropped), one thread then ``threads``.
    """
    f = BundleFile(path, direct=True)
    lay = f.layout
    rng = np.random.default_rng(seed)
    lines = [f"random reads from {path.name} (O_DIRECT {f.direct}, bundle {lay.bundle_bytes} B):",
             "| bundles/read | KiB/read | ms/read (1 thread) | MB/s (1 thread) | ms/read wall "
             f"({threads} threads) | MB/s ({threads} threads) |", "|---|---|---|---|---|---|"]
    for k in (1, 2, 4, 8, 16, 64):
        bufs = [aligned_buffer(k * lay.bundle_bytes) for _ in range(threads)]
        starts = rng.integers(0, lay.n_layers * lay.d_ff - k, size=n)
        f.drop_cache()

        def one(i: int, b: int, starts: np.ndarray = starts, bufs: list[mmap.mmap] = bufs, k: int = k) -> None:
            s0 = int(starts[i])
            f.read_into(s0 // lay.d_ff, s0 % lay.d_ff, [memoryview(bufs[b])[:k * lay.bundle_bytes]])

        t0 = time.perf_counter()
        for i in range(n):
            one(i, 0)
        t1 = time.perf_counter() - t0
        f.drop_cache()
        with ThreadPoolExecutor(threads) as pool:
            t0 = time.perf_counter()
            list(pool.map(lambda i: one(i, i % threads), range(n)))  # a buffer per thread slot (contents unused)
            tn = time.perf_counter() - t0
        mb = n * k * lay.bundle_bytes / 1e6
        lines.append(f"| {k} | {k * lay.bundle_bytes / 1024:.0f} | {1e3 * t1 / n:.3f} | {mb / t1:.0f} | "
                     f"{1e3 * tn / n:.3f} | {mb / tn:.0f} |")
    f.close()
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="a `llmlab lab train --ffn drelu` folder (default: random model)")
    ap.add_argument("--rank", type=int, default=128, help="predictor rank (trained model)")
    ap.add_argument("--predictor-steps", type=int, default=1000, help="predictor training steps (trained model)")
    ap.add_argument("--prof-windows", type=int, default=64, help="training windows for predictors and profiling")
    ap.add_argument("--val-windows", type=int, default=16, help="validation windows for predictor metrics")
    ap.add_argument("--prompt-bytes", type=int, default=64, help="prompt length (trained model)")
    ap.add_argument("--align", type=int, default=4096, help="bundle alignment in the file")
    ap.add_argument("--reorder", action="store_true", help="store neurons in co-activation order (pinned first)")
    ap.add_argument("--probe-reads", action="store_true", help="also time random reads of 1..64 bundles")
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--d-ff", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--budget-frac", type=float, default=0.25, help="budget / FFN bytes")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--skew", type=float, default=1.0, help="power-law strength of neuron popularity")
    ap.add_argument("--noise", type=float, default=1.0, help="std of the input-dependent predictor logit")
    ap.add_argument("--hot-fraction", type=float, default=0.5)
    ap.add_argument("--io-threads", type=int, default=4)
    ap.add_argument("--max-cluster", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "llmlab-offload-bench"))
    ap.add_argument("--seed", type=int, default=0)
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    load0 = os.getloadavg()
    model, layers, masks, prompt, what = trained_setup(args) if args.model else random_setup(args)
    freq = [m.mean(0) for m in masks]
    total = ffn_bytes(model)
    budget = int(args.budget_frac * total)
    density = float(np.mean([f.mean() for f in freq]))
    dense_ref = copy.deepcopy(model)  # in-memory references, before offload_lm moves the FFN weights to disk
    sparse_ref = polymorphic_lm(copy.deepcopy(model), [copy.deepcopy(sp) for sp in layers])
    want_sparse, _ = greedy(sparse_ref, prompt, args.tokens)
    want_dense, _ = greedy(dense_ref, prompt, args.tokens)
    del dense_ref, sparse_ref
    folder = Path(args.dir)
    shutil.rmtree(folder, ignore_errors=True)
    path = folder / "ffn.bin"
    base = OffloadConfig(budget_bytes=budget, hot_fraction=args.hot_fraction, io_threads=args.io_threads,
                         max_cluster=args.max_cluster)
    first = offload_lm(model, layers, path, base, frequency=freq, align=args.align,
                       masks=masks if args.reorder else None)
    act = first.act
    pinned = pinned_from_frequency(freq, OffloadEngine.hot_slots(base, path))
    engines = {
        "dense_stream": lambda: OffloadEngine(path, act, dataclasses.replace(base, mode="dense_stream")),
        "offload_no_pipeline": lambda: OffloadEngine(path, act, dataclasses.replace(base, pipeline=False), pinned),
        "offload": lambda: OffloadEngine(path, act, base, pinned),
    }
    first.close()
    print(f"FFN {total / 2**20:.1f} MiB in {path} (bundle {first.layout.bundle_bytes} B), budget "
          f"{budget / 2**20:.1f} MiB ({total / budget:.1f}x smaller), predicted density {density:.3f}, "
          f"O_DIRECT {first.file.direct}, {what}, {args.tokens} tokens x {args.rounds} rounds, "
          f"torch threads {args.threads}, io threads {args.io_threads}, hot fraction {args.hot_fraction}, "
          f"co-activation order {args.reorder}")
    if args.probe_reads:
        print(probe_reads(path, args.io_threads))
    results: dict[str, list[dict[str, float | list[int]]]] = {k: [] for k in engines}
    for _ in range(args.rounds):  # interleaved: load from other processes hits every row alike
        for name, make in engines.items():
            eng = make()
            results[name].append(run(model, eng, prompt, args.tokens))
            eng.close()
    same = {name: all(r["tokens"] == (want_dense if name == "dense_stream" else want_sparse) for r in rs)
            for name, rs in results.items()}
    print("| row | tok/s (median) | ms/token | MiB read/token | reads/token | hit rate | I/O busy ms/tok "
          "| I/O wait ms/tok | compute ms/tok | tokens = in-memory |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    med: dict[str, dict[str, float]] = {}
    for name, rs in results.items():
        med[name] = {k: statistics.median(float(r[k]) for r in rs)  # type: ignore[arg-type]
                     for k in rs[0] if k != "tokens"}
        m = med[name]
        print(f"| {name} | {m['tok_s']:.2f} | {m['wall_ms']:.1f} | {m['mb_read']:.2f} | {m['reads']:.0f} | "
              f"{m['hit_rate']:.3f} | {m['io_busy_ms']:.1f} | {m['io_wait_ms']:.1f} | {m['compute_ms']:.1f} | "
              f"{same[name]} |")
    rounds = {k: " ".join(f"{float(r['tok_s']):.2f}" for r in rs) for k, rs in results.items()}  # type: ignore[arg-type]
    print("tok/s per round: " + "; ".join(f"{k} {v}" for k, v in rounds.items()))
    load1 = os.getloadavg()
    print(f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at end "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    speedup = med["offload"]["tok_s"] / med["dense_stream"]["tok_s"]
    gain = med["offload"]["tok_s"] / med["offload_no_pipeline"]["tok_s"]
    shutil.rmtree(folder, ignore_errors=True)
    if not all(same.values()):
        raise SystemExit(f"tokens differ from the in-memory model: {same}")
    print(f"offload_speedup_vs_dense_stream={speedup:.2f} pipeline_gain={gain:.2f} "
          f"hit_rate={med['offload']['hit_rate']:.3f}")


if __name__ == "__main__":
    main()
