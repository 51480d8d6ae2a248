"""PRM head: the batched single-pass scorer vs the per-prefix reference (run: ``python bench/prm_head.py``).

A tiny random Llama (the tests' helper, built offline in a temp folder) scores solutions of M steps. The
reference path runs one forward per step prefix (M forwards, quadratic in length); the fast path runs
one padded forward per batch and gathers the hidden state at each step's end. Prints a table and a
``key=value`` line; ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _timing import add_threads_arg, interleaved, set_threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_threads_arg(ap)
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    set_threads(args.threads)

    import torch
    from tests.helpers.tiny_hf import make_tiny_model

    from llmlab.methods.prm import HFPRMHead

    with tempfile.TemporaryDirectory() as tmp:
        head = HFPRMHead(make_tiny_model(Path(tmp) / "m"))
        rows = []
        for m in args.steps:
            steps = [f"Step {i}: two plus {i} is {i + 2}." for i in range(1, m + 1)]
            batch = [head.encode(f"Question {b}: add the numbers.", steps) for b in range(args.batch)]

            def fast(batch: list = batch) -> None:  # type: ignore[type-arg]
                with torch.no_grad():
                    head.logits(batch)

            def ref(batch: list = batch) -> None:  # type: ignore[type-arg]
                with torch.no_grad():
                    for ids, ends in batch:
                        head.reference_logits(ids, ends)

            times = interleaved({"fast": fast, "reference": ref}, args.rounds, lambda name: 3)
            f, r = statistics.median(times["fast"]), statistics.median(times["reference"])
            rows.append((m, len(batch[0][0]), f * 1e3, r * 1e3, r / f))
    print(f"| steps | tokens | fast ms (batch {args.batch}) | reference ms | speed-up |")
    print("|---|---|---|---|---|")
    for m, t, f, r, x in rows:
        print(f"| {m} | {t} | {f:.1f} | {r:.1f} | {x:.1f}x |")
    print(" ".join(f"speedup_m{m}={x:.2f}" for m, _, _, _, x in rows))


if __name__ == "__main__":
    main()
