"""PowerInfer-2 offloading engine vs dense layer streaming, decoding a dReLU LM larger than its memory budget.

Model: a :class:`SambaLM` (``arch=transformer``, ``ffn=drelu``) with random weights, by default d=1024,
d_ff=8192, 4 layers: 384 MiB of float32 FFN weights in the bundle file, budget 1/4 of that (96 MiB).
Attention, embeddings and predictors stay resident. The predictors are synthetic: a random low-rank
``fc2(ReLU(fc1 x))`` whose per-neuron bias follows a power law (a few neurons fire for most tokens, as
profiled in TurboSparse models), shifted so that the predicted density is ``1 - sparsity`` on the profiling
tokens. The bench measures the I/O engine, not model quality.

Rows (same file, same budget, page cache dropped before each run, ``O_DIRECT`` reads):

* ``dense_stream``: every token reads each non-resident layer whole (llama.cpp mmap-style streaming; the
  layers that fit in the budget stay resident), chunked reads overlapped with compute;
* ``offload_no_pipeline``: PowerInfer-2 engine, reads of a layer's missing clusters all finish before compute;
* ``offload``: PowerInfer-2 engine with the cluster-level pipeline.

Final line: ``offload_speedup_vs_dense_stream=<x> pipeline_gain=<y> hit_rate=<z>``.
Usage: ``python bench/offload.py [--tokens 24] [--rounds 2] [--dir /tmp/llmlab-offload-bench]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _timing import add_threads_arg, set_threads
from llmlab.models.offload import OffloadConfig, OffloadEngine, offload_lm, profile_frequency
from llmlab.models.offload.engine import OffloadedFFN, pinned_from_frequency
from llmlab.models.offload.lm import ffn_bytes
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


def run(model: SambaLM, engine: OffloadEngine, prompt: list[int], n_tokens: int) -> dict[str, float | list[int]]:
    """Prefill (not timed in tok/s), then greedy decode with per-token engine counters."""
    for blk in model.blocks:
        assert isinstance(blk.ffn, OffloadedFFN)
        blk.ffn.engine = engine
    engine.drop_page_cache()
    with torch.no_grad():
        logits, caches = model.prefill(torch.tensor([prompt]))
        tok = int(logits[0, -1].argmax())
        engine.reset_stats()
        toks = []
        t0 = time.perf_counter()
        for _ in range(n_tokens):
            toks.append(tok)
            tok = int(model.step(torch.tensor([tok]), caches)[0].argmax())
        wall = time.perf_counter() - t0
    st = engine.stats
    return {"tok_s": n_tokens / wall, "wall_ms": 1e3 * wall / n_tokens, "mb_read": st.bytes_read / n_tokens / 2**20,
            "hit_rate": st.hit_rate, "io_busy_ms": 1e3 * st.io_busy_s / n_tokens,
            "io_wait_ms": 1e3 * st.io_wait_s / n_tokens, "compute_ms": 1e3 * st.compute_s / n_tokens, "tokens": toks}


def main() -> None:
    ap = argparse.ArgumentParser()
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
    torch.manual_seed(args.seed)
    cfg = SambaConfig(n_layer=args.layers, n_embd=args.d, n_head=8, intermediate_size=args.d_ff, arch="transformer",
                      ffn="drelu")
    model = SambaLM(cfg).eval()
    total = ffn_bytes(model)
    budget = int(args.budget_frac * total)
    prof = torch.randint(0, 256, (1, 256), generator=torch.Generator().manual_seed(args.seed + 1))
    hiddens = [h for h, _ in record_activations(model, [prof])]
    preds = synthetic_predictors(hiddens, args.d_ff, args.sparsity, 64, args.seed, args.skew, args.noise)
    layers = [SparseFFN(blk.ffn, p) for blk, p in zip(model.blocks, preds, strict=True)]
    freq = profile_frequency(layers, hiddens)
    density = float(np.mean([f.mean() for f in freq]))
    folder = Path(args.dir)
    shutil.rmtree(folder, ignore_errors=True)
    path = folder / "ffn.bin"
    base = OffloadConfig(budget_bytes=budget, hot_fraction=args.hot_fraction, io_threads=args.io_threads,
                         max_cluster=args.max_cluster)
    first = offload_lm(model, layers, path, base, frequency=freq)
    pinned = pinned_from_frequency(freq, OffloadEngine.hot_slots(base, path))
    engines = {
        "dense_stream": lambda: OffloadEngine(path, "drelu", dataclasses.replace(base, mode="dense_stream")),
        "offload_no_pipeline": lambda: OffloadEngine(path, "drelu", dataclasses.replace(base, pipeline=False), pinned),
        "offload": lambda: OffloadEngine(path, "drelu", base, pinned),
    }
    first.close()
    print(f"FFN {total / 2**20:.0f} MiB in {path} (bundle {first.layout.bundle_bytes} B), budget {budget / 2**20:.0f} "
          f"MiB ({total / budget:.1f}x smaller), predicted density {density:.3f}, O_DIRECT {first.file.direct}, "
          f"{args.tokens} tokens x {args.rounds} rounds, skew {args.skew}, noise {args.noise}, "
          f"torch threads {args.threads}, io threads {args.io_threads}")
    prompt = list(range(32, 48))
    results: dict[str, list[dict[str, float | list[int]]]] = {k: [] for k in engines}
    for _ in range(args.rounds):  # interleaved: load from other processes hits every row alike
        for name, make in engines.items():
            eng = make()
            results[name].append(run(model, eng, prompt, args.tokens))
            eng.close()
    assert results["offload"][0]["tokens"] == results["offload_no_pipeline"][0]["tokens"], "same neurons, same tokens"
    print("| row | tok/s (median) | ms/token | MiB read/token | hit rate | I/O busy ms/tok | I/O wait ms/tok "
          "| compute ms/tok |")
    print("|---|---|---|---|---|---|---|---|")
    med: dict[str, dict[str, float]] = {}
    for name, rs in results.items():
        med[name] = {k: statistics.median(float(r[k]) for r in rs)  # type: ignore[arg-type]
                     for k in rs[0] if k != "tokens"}
        m = med[name]
        print(f"| {name} | {m['tok_s']:.2f} | {m['wall_ms']:.1f} | {m['mb_read']:.1f} | {m['hit_rate']:.3f} | "
              f"{m['io_busy_ms']:.1f} | {m['io_wait_ms']:.1f} | {m['compute_ms']:.1f} |")
    speedup = med["offload"]["tok_s"] / med["dense_stream"]["tok_s"]
    gain = med["offload"]["tok_s"] / med["offload_no_pipeline"]["tok_s"]
    shutil.rmtree(folder, ignore_errors=True)
    print(f"offload_speedup_vs_dense_stream={speedup:.2f} pipeline_gain={gain:.2f} "
          f"hit_rate={med['offload']['hit_rate']:.3f}")


if __name__ == "__main__":
    main()
