"""``llmlab lab quantize`` and the ShiftAddLLM quality-ladder experiment on a tiny trained LM.

Paper: "ShiftAddLLM: Accelerating Pretrained LLMs via Post-Training Multiplication-Less
Reparameterization" (arXiv 2406.05981), §4 (perplexity vs RTN / GPTQ at 3 and 2 bits, mixed-precision
allocation at 2.2 bits). The model is a byte-level LM from :mod:`llmlab.training.tiny_lm` trained on the
Python standard library; quality is validation bits per byte (perplexity per byte = 2^bpb).

Deviations: the paper evaluates OPT/LLaMA (125M-70B) on WikiText-2 with 128 × 2048-token calibration
windows; here a ~1M-parameter byte LM and 32 × 256-byte windows from its own training split. The numbers
speak to the direction of the paper's claims only.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import ConfigError, DataError

METHOD_CHOICES = ["rtn", "gptq", "bcq", "shiftadd"]


def _calibration(train_data: Any, n: int, seq_len: int, seed: int) -> list[Any]:
    import torch

    from llmlab.training.tiny_lm import get_batch

    gen = torch.Generator().manual_seed(seed + 1234)
    x, _ = get_batch(train_data, n, seq_len, gen)
    return list(x.split(8))  # batches of 8 windows, (8, L)


def quantize_and_eval(
    model: Any,
    calib: list[Any],
    val: tuple[Any, Any],
    method: str,
    bits: int,
    group: int,
    rounds: int = 10,
    apot_terms: int = 3,
    budget: float | None = None,
    layout: str = "row",
) -> dict[str, Any]:
    """Quantize a copy of ``model`` and return its validation bits/byte and per-layer report.

    Args:
        model: A trained LM (left untouched).
        calib: Calibration batches of token ids.
        val: ``(x, y)`` validation windows.
        method: rtn | gptq | bcq | shiftadd.
        bits: Bits per weight (the lowest width when ``budget`` is set).
        group: Group size.
        rounds: BCQ alternating rounds.
        apot_terms: Power-of-two terms per scale (shiftadd).
        budget: Average-bit budget for automated allocation over widths ``bits`` and ``bits + 1``.
        layout: ``row`` (LUT layout) or ``column`` (the official "Acc." mode) for bcq/shiftadd.

    Returns:
        ``{"method", "bits", "avg_bits", "val_bpb", "ppl_per_byte", "layer_bits", "seconds"}``.
    """
    from llmlab.models.shiftadd import QuantConfig, linear_layers, quantize_model
    from llmlab.training.tiny_lm import evaluate

    q = copy.deepcopy(model)
    cfg = QuantConfig(method=method, bits=bits, group_size=group, rounds=rounds, apot_terms=apot_terms,  # type: ignore[arg-type]
                      layout=layout)  # type: ignore[arg-type]
    sizes = {n: m.weight.numel() for n, m in linear_layers(q, cfg.skip).items()}
    t0 = time.perf_counter()
    rep = quantize_model(q, calib, cfg, budget=budget, choices=(bits, bits + 1))
    secs = time.perf_counter() - t0
    bpb = evaluate(q, *val)
    return {
        "method": method, "layout": layout, "bits": bits, "budget": budget, "avg_bits": rep.average_bits(sizes),
        "val_bpb": bpb, "ppl_per_byte": 2**bpb, "layer_bits": rep.bits,
        "mean_output_err": (sum(rep.output_err.values()) / len(rep.output_err)) if rep.output_err else None,
        "seconds": secs,
    }


def experiment_quant_ladder(quick: bool = False, seed: int = 0, data: Any = None) -> dict[str, Any]:
    """Train a tiny transformer LM, then RTN / GPTQ / BCQ / ShiftAddLLM at 3 and 2 bits and mixed 2.2 bits.

    Args:
        quick: Fewer training steps (for tests and smoke runs).
        seed: Training seed.
        data: Pre-loaded ``(train, val)`` corpus bytes.

    Returns:
        A record with every run, the paper's claims and ``claim_direction_holds`` per claim.
    """
    import torch

    from llmlab.training.tiny_lm import TrainConfig, eval_windows, evaluate, load_corpus, train

    t0 = time.perf_counter()
    cfg = TrainConfig(arch="transformer", n_layer=4, n_embd=128, n_head=4, intermediate_size=512,
                      steps=120 if quick else 600, seq_len=256, batch_size=8, seed=seed, eval_windows=16)
    data = data if data is not None else load_corpus(None, 4_000_000)
    rec = train(cfg, data=data)
    model = rec["model"].eval()
    val = eval_windows(data[1], cfg.seq_len, 32)
    calib = _calibration(data[0], 32, cfg.seq_len, seed)
    torch.manual_seed(seed)
    runs: dict[str, dict[str, Any]] = {"fp32": {"val_bpb": evaluate(model, *val), "avg_bits": 32.0}}
    # shiftadd = the paper's accuracy mode (column-wise scales); shiftadd-lat = the LUT (row) layout
    variants = (("rtn", "rtn", "row"), ("gptq", "gptq", "row"), ("bcq", "bcq", "column"),
                ("shiftadd", "shiftadd", "column"), ("shiftadd-lat", "shiftadd", "row"))
    for bits in (3, 2):
        for label, method, layout in variants:
            runs[f"{label}-{bits}"] = quantize_and_eval(model, calib, val, method, bits, 128, layout=layout)
    runs["shiftadd-mixed-2.2"] = quantize_and_eval(model, calib, val, "shiftadd", 2, 128, budget=2.2,
                                                   layout="column")
    bpb = {k: v["val_bpb"] for k, v in runs.items()}
    holds = {
        "fp32 < shiftadd-3": bpb["fp32"] < bpb["shiftadd-3"],
        "shiftadd-3 <= gptq-3": bpb["shiftadd-3"] <= bpb["gptq-3"],
        "gptq-3 < rtn-3": bpb["gptq-3"] < bpb["rtn-3"],
        "shiftadd-2 < rtn-2": bpb["shiftadd-2"] < bpb["rtn-2"],
        "mixed-2.2 < uniform-2 (shiftadd)": bpb["shiftadd-mixed-2.2"] < bpb["shiftadd-2"],
    }
    holds["shiftadd-lat-3 <= gptq-3"] = bpb["shiftadd-lat-3"] <= bpb["gptq-3"]
    return {
        "experiment": "shiftadd_quant_ladder", "quick": quick, "seed": seed,
        "train": {"params": rec["params"], "steps": cfg.steps, "train_val_bpb": rec["val_bpb"],
                  "seconds": rec["seconds"]},
        "claim": "ppl: fp32 < ShiftAddLLM <= GPTQ < RTN at 3 bits; mixed 2.2 bits < uniform 2 bits",
        "runs": runs, "measured": {k: round(v, 4) for k, v in bpb.items()},
        "claim_direction_holds": holds, "seconds": time.perf_counter() - t0,
    }


@click.command("quantize")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--method", type=click.Choice(METHOD_CHOICES), default="shiftadd", show_default=True)
@click.option("--bits", type=int, default=3, show_default=True)
@click.option("--group", "group", type=int, default=128, show_default=True, help="Group size (-1: whole row).")
@click.option("--rounds", type=int, default=10, show_default=True, help="BCQ alternating rounds.")
@click.option("--apot-terms", type=int, default=3, show_default=True, help="Power-of-two terms per scale.")
@click.option("--layout", type=click.Choice(["row", "column"]), default="column", show_default=True,
              help="bcq/shiftadd scale groups: column (the paper's Acc. mode) or row (the LUT kernel's layout).")
@click.option("--budget", type=float, default=None,
              help="Average bits for automated allocation over --bits and --bits+1 (e.g. --bits 2 --budget 2.2).")
@click.option("--calib", type=int, default=32, show_default=True, help="Calibration windows.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Result JSON (default MODEL_DIR/quant-<method>-<bits>.json).")
def quantize_cmd(model_dir: str, method: str, bits: int, group: int, rounds: int, apot_terms: int, layout: str,
                 budget: float | None, calib: int, seed: int, out: str | None) -> None:
    """Quantize a model trained by `llmlab lab train` (MODEL_DIR holds result.json and model.pt).

    Prints the validation bits/byte before and after, and writes a JSON record.
    """
    import torch

    from llmlab.models.samba import SambaLM
    from llmlab.training.tiny_lm import TrainConfig, eval_windows, evaluate, load_corpus

    folder = Path(model_dir)
    if not (folder / "result.json").is_file() or not (folder / "model.pt").is_file():
        raise DataError(f"{folder} lacks result.json/model.pt; train one first with `llmlab lab train --out DIR`")
    if budget is not None and not bits <= budget <= bits + 1:
        raise ConfigError(f"--budget {budget} must lie between --bits {bits} and {bits + 1}")
    cfg = TrainConfig.from_dict(json.loads((folder / "result.json").read_text())["config"])
    model = SambaLM(cfg.model_config())
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    model.eval()
    torch.set_num_threads(cfg.threads)
    data = load_corpus(cfg.corpus, cfg.max_corpus_bytes)
    val = eval_windows(data[1], cfg.seq_len, cfg.eval_windows)
    calib_batches = _calibration(data[0], calib, cfg.seq_len, seed)
    fp = evaluate(model, *val)
    res = quantize_and_eval(model, calib_batches, val, method, bits, group, rounds, apot_terms, budget, layout)
    res["fp32_val_bpb"] = fp
    path = Path(out) if out is not None else folder / f"quant-{method}-{bits}{'-mixed' if budget else ''}.json"
    path.write_text(json.dumps(res, indent=2, default=float))
    click.echo(json.dumps({"out": str(path), "method": method, "avg_bits": round(res["avg_bits"], 3),
                           "fp32_val_bpb": round(fp, 4), "val_bpb": round(res["val_bpb"], 4),
                           "ppl_per_byte": round(res["ppl_per_byte"], 4),
                           "delta_bpb": round(res["val_bpb"] - fp, 4)}))


__all__ = ["experiment_quant_ladder", "quantize_and_eval", "quantize_cmd"]
