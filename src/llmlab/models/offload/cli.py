"""``llmlab lab offload``: decode a `lab train` dReLU model with its FFN weights on disk under a memory budget.

Trains one activation predictor per layer on the model's own recorded activations (training split of its
corpus), profiles neuron frequencies for the hot segment, writes the bundle file, then greedy-decodes with
(a) the in-memory polymorphic sparse model (reference), (b) the offloading engine with the cluster pipeline,
(c) without it and (d) dense layer streaming; checks that (b) and (c) produce the tokens of (a) and (d) those
of the in-memory dense model, and reports tokens/s, bytes read, hit rate and I/O vs compute time per token.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import ConfigError

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(text: str) -> int:
    """``"256MB"`` -> 256_000_000; ``"1.5MiB"``, ``"4096"`` also accepted.

    Raises:
        ConfigError: On an unreadable size.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ConfigError(f"cannot read the size '{text}' (use e.g. 256MB, 1.5MiB or a byte count)")
    return int(float(m.group(1)) * _UNITS[unit])


def run_offload(model_dir: Path, budget: int, tokens: int, prompt: str, hot_fraction: float, rank: int,
                pred_steps: int, io_threads: int, out: Path) -> dict[str, Any]:
    """The body of ``llmlab lab offload`` (see the module docstring); returns the result record."""
    from llmlab.models.offload import (
        OffloadConfig,
        OffloadEngine,
        decode,
        offload_lm,
        pinned_from_frequency,
        polymorphic_lm,
    )
    from llmlab.models.offload.engine import OffloadedFFN
    from llmlab.models.offload.lm import ffn_bytes, sparse_lab_model

    lab = sparse_lab_model(model_dir, rank=rank, pred_steps=pred_steps)
    model, layers, freq, metrics = lab.model, lab.layers, lab.frequency, lab.predictor
    total = ffn_bytes(model)
    ref = polymorphic_lm(copy.deepcopy(model), [copy.deepcopy(s) for s in layers])
    ids = list(prompt.encode("utf-8"))
    want = decode(ref, ids, tokens)
    want_dense = decode(model, ids, tokens)  # dense streaming's in-memory counterpart: the dense model
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ffn.bin"
    cfg = OffloadConfig(budget_bytes=budget, hot_fraction=hot_fraction, io_threads=io_threads)
    engine = offload_lm(model, layers, path, cfg, frequency=freq, align=512)
    engine.close()
    pinned = pinned_from_frequency(freq, OffloadEngine.hot_slots(cfg, path))
    rows: dict[str, Any] = {}
    for name, c in (("offload", cfg), ("offload_no_pipeline", dataclasses.replace(cfg, pipeline=False)),
                    ("dense_stream", dataclasses.replace(cfg, mode="dense_stream"))):
        eng = OffloadEngine(path, lab.act, c, pinned if c.mode == "sparse" else None)
        for blk in model.blocks:
            assert isinstance(blk.ffn, OffloadedFFN)
            blk.ffn.engine = eng
        eng.drop_page_cache()
        res = decode(model, ids, tokens)
        st = eng.stats
        same = res.tokens == (want_dense if c.mode == "dense_stream" else want).tokens
        rows[name] = {"tokens_per_s": res.tokens_per_s, "same_tokens_as_in_memory": same,
                      "bytes_read_per_token": st.bytes_read / max(tokens, 1), "hit_rate": st.hit_rate,
                      "io_busy_ms_per_token": 1e3 * st.io_busy_s / max(tokens, 1),
                      "io_wait_ms_per_token": 1e3 * st.io_wait_s / max(tokens, 1),
                      "compute_ms_per_token": 1e3 * st.compute_s / max(tokens, 1), "direct_io": eng.file.direct}
        eng.close()
    path.unlink()
    return {
        "model": str(model_dir), "ffn_bytes": total, "budget_bytes": budget, "ffn_over_budget": total / budget,
        "file_bytes_per_neuron": eng.layout.bundle_bytes, "predictor": metrics, "exact_zero": lab.exact_zero,
        "predicted_density": [float(f.mean()) for f in freq], "prompt": prompt,
        "text": bytes(want.tokens).decode("utf-8", errors="replace"), "in_memory_tokens_per_s": want.tokens_per_s,
        "rows": rows, "note": "prefill excluded from tokens/s; the prefill streams every layer densely",
    }


@click.command("offload")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default="runs/lab/train-transformer-drelu",
              show_default=True, help="A `llmlab lab train --ffn drelu` output folder.")
@click.option("--budget", default="256MB", show_default=True, help="Memory for FFN weights (e.g. 256MB, 1MiB).")
@click.option("--tokens", type=int, default=64, show_default=True, help="Tokens to decode.")
@click.option("--prompt", default="def ", show_default=True)
@click.option("--hot-fraction", type=float, default=0.5, show_default=True, help="Pinned share of the cache.")
@click.option("--rank", type=int, default=64, show_default=True, help="Predictor rank.")
@click.option("--predictor-steps", type=int, default=300, show_default=True)
@click.option("--io-threads", type=int, default=4, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/lab/offload", show_default=True)
def offload_cmd(model_dir: str, budget: str, tokens: int, prompt: str, hot_fraction: float, rank: int,
                predictor_steps: int, io_threads: int, out: str) -> None:
    """PowerInfer-2: decode a lab dReLU model with its FFN on disk under --budget; writes result.json."""
    res = run_offload(Path(model_dir), parse_bytes(budget), tokens, prompt, hot_fraction, rank, predictor_steps,
                      io_threads, Path(out))
    (Path(out) / "result.json").write_text(json.dumps(res, indent=2))
    if res["ffn_over_budget"] < 1:
        click.echo(f"note: the FFN ({res['ffn_bytes']} B) fits in the budget; nothing is really offloaded", err=True)
    click.echo(json.dumps({k: res[k] for k in ("ffn_bytes", "budget_bytes", "ffn_over_budget", "rows")}, indent=2))


__all__ = ["offload_cmd", "parse_bytes", "run_offload"]
