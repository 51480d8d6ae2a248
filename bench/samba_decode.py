"""Per-token decode cost vs context length: Samba (constant state) vs a full-attention Transformer.

Both models: byte vocab, d=256, 4 blocks, 8 heads, d_ff 1024 (Samba: Mamba/SWA alternating, window 256).
For each context length the prompt is prefilled once, then ``--tokens`` single-token steps are timed.
Prints ms/token and the ratio to the shortest context (Samba should stay ~flat, the Transformer grows
with its KV cache). Final line: ``samba_decode_growth=<x> transformer_decode_growth=<y>
samba_vs_transformer_at_max=<z>``. Usage: ``python bench/samba_decode.py [--contexts 256,1024,4096,8192]``.
"""

from __future__ import annotations

import argparse

import torch

from _timing import add_threads_arg, mean_time, set_threads
from llmlab.models.samba import SambaConfig, SambaLM


def per_token(model: SambaLM, ctx: int, tokens: int) -> float:
    idx = torch.randint(0, 256, (1, ctx), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, caches = model.prefill(idx)
        tok = torch.tensor([65])
        return mean_time(lambda: model.step(tok, caches), tokens, warmup=3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contexts", default="256,1024,4096,8192")
    ap.add_argument("--tokens", type=int, default=32)
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    ctxs = [int(c) for c in args.contexts.split(",")]
    torch.manual_seed(0)
    shape = dict(n_layer=4, n_embd=256, n_head=8, intermediate_size=1024, local_window=256, attn_impl="chunked")
    models = {"samba": SambaLM(SambaConfig(arch="samba", **shape)).eval(),
              "transformer": SambaLM(SambaConfig(arch="transformer", **shape)).eval()}
    print(f"decode ms/token vs context, threads={torch.get_num_threads()}")
    print(f"{'context':>8}" + "".join(f"{n + ' ms':>16}{'x vs first':>11}" for n in models) + f"{'T/S':>8}")
    res: dict[str, list[float]] = {n: [] for n in models}
    for c in ctxs:
        row = f"{c:>8}"
        for n, m in models.items():
            t = per_token(m, c, args.tokens)
            res[n].append(t)
            row += f"{t * 1e3:>16.3f}{t / res[n][0]:>10.2f}x"
        row += f"{res['transformer'][-1] / res['samba'][-1]:>7.2f}x"
        print(row)
    print(f"samba_decode_growth={res['samba'][-1] / res['samba'][0]:.2f} "
          f"transformer_decode_growth={res['transformer'][-1] / res['transformer'][0]:.2f} "
          f"samba_vs_transformer_at_max={res['transformer'][-1] / res['samba'][-1]:.2f}")


if __name__ == "__main__":
    main()
