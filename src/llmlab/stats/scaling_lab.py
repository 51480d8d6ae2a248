"""The downstream-scaling experiment at our scale: a family of tiny LMs trained here, scored on MC items.

Schaeffer et al. (arXiv:2406.04391) find that per-sample scores correlate with compute strongly for
``log p_vocab(correct)`` and less and less along the chain ``p_vocab`` → ``p_choices`` → Brier → accuracy,
because the later quantities depend on the incorrect choices' mass. We train a family of byte-level LMs
with the lab's trainer (:mod:`llmlab.training.tiny_lm`, Python-stdlib corpus) at increasing compute
(C = 6·N·D, N parameters, D training bytes) and score them on multiple-choice items made from held-out
text: the context is 64 bytes of a validation file ending at a line break; the choices are the next line and
three other lines of the validation text of similar length ("next-line cloze"). The result says whether the
paper's degradation appears at this scale; it is reported, not assumed (``docs/scaling.md``).
"""

from __future__ import annotations

import math
import random
from typing import Any

from llmlab.stats.scaling import METRICS, analyze, chain_degrades, transform_chain


def family(quick: bool) -> list[dict[str, Any]]:
    """The model family: width, depth and steps grow together (compute spans ~2.5 decades)."""
    if quick:
        shapes = [(16, 1, 8), (24, 1, 16), (32, 1, 32), (40, 1, 48)]
        common = {"seq_len": 64, "batch_size": 8}
    else:
        shapes = [(16, 1, 20), (24, 1, 40), (32, 1, 80), (48, 2, 120), (64, 2, 200), (80, 2, 300)]
        common = {"seq_len": 64, "batch_size": 8}
    return [{"arch": "transformer", "n_embd": e, "n_layer": layer, "n_head": 2, "intermediate_size": 4 * e,
             "steps": s, "warmup": max(2, s // 10), "eval_windows": 4, "log_every": max(1, s // 5), **common}
            for e, layer, s in shapes]


def cloze_items(val: bytes, n: int, context_len: int = 96, seed: int = 0, k: int = 4) -> list[dict[str, Any]]:
    """Next-line multiple-choice items from held-out bytes (module docstring)."""
    rng = random.Random(seed)
    starts = [i + 1 for i in range(context_len, len(val) - 1) if val[i] == 10]  # just after a newline
    lines = []
    for s in starts:
        e = val.find(b"\n", s)
        if e == -1:
            continue
        line = val[s:e + 1]
        if 12 <= len(line.strip()) <= 60:
            lines.append((s, line))
    if len(lines) < k * 4:
        raise ValueError(f"validation text too short for cloze items ({len(lines)} usable lines)")
    rng.shuffle(lines)
    items: list[dict[str, Any]] = []
    for s, line in lines:
        if len(items) >= n:
            break
        pool = [ln for _, ln in lines if ln != line and abs(len(ln) - len(line)) <= 12]
        distractors = list(dict.fromkeys(rng.sample(pool, min(len(pool), 12))))[: k - 1]
        if len(distractors) < k - 1:
            continue
        correct = rng.randrange(k)
        choices = [*distractors[:correct], line, *distractors[correct:]]
        items.append({"id": f"val@{s}", "context": val[s - context_len:s], "choices": choices, "correct": correct})
    return items


def byte_logliks(model: Any, context: bytes, choices: list[bytes]) -> list[float]:
    """Summed log-probabilities of each choice's bytes after ``context`` under a byte-level lab LM."""
    import torch

    seqs = [list(context + c) for c in choices]
    width = max(map(len, seqs))
    x = torch.tensor([s + [0] * (width - len(s)) for s in seqs])  # (K, L), right-padded (causal: harmless)
    with torch.no_grad():
        logp = torch.log_softmax(model(x).float(), dim=-1)  # (K, L, 256)
    out = []
    for j, c in enumerate(choices):
        pos = torch.arange(len(context) - 1, len(context) + len(c) - 1)
        tgt = torch.tensor(list(c))
        out.append(float(logp[j, pos, tgt].sum()))
    return out


def experiment_downstream_scaling(quick: bool = False, seed: int = 0, data: Any = None) -> dict[str, Any]:
    """Train the family, score the cloze items, run the paper's analysis; report whether the chain degrades."""
    from llmlab.training.tiny_lm import TrainConfig, load_corpus, train

    train_data, val_data = data if data is not None else load_corpus(None, 300_000 if quick else 2_000_000)
    val = bytes(val_data.tolist())
    items = cloze_items(val, 48 if quick else 240, context_len=64, seed=seed)
    rows: list[dict[str, Any]] = []
    models = []
    for i, spec in enumerate(family(quick)):
        cfg = TrainConfig.from_dict({**spec, "seed": seed})
        rec = train(cfg, (train_data, val_data))
        model = rec["model"].eval()
        tokens = cfg.steps * cfg.batch_size * cfg.seq_len
        log_c = math.log10(6.0 * rec["params"] * tokens)
        name = f"m{i}-d{cfg.n_embd}-l{cfg.n_layer}-s{cfg.steps}"
        models.append({"name": name, "params": rec["params"], "train_bytes": tokens, "log10_compute": log_c,
                       "val_bpb": rec["val_bpb"], "seconds": rec["seconds"]})
        for it in items:
            lls = byte_logliks(model, it["context"], it["choices"])
            rows.extend({"model": name, "log10_compute": log_c, "item": it["id"], "choice": k, "loglik": ll,
                         "correct": k == it["correct"], "n_bytes": len(it["choices"][k])} for k, ll in enumerate(lls))
    from llmlab.stats.scaling import chain_table

    result = analyze(chain_table(rows))
    summary = {m: {c: {s: result["correlations"][m][c][s] for s in ("mean", "median", "frac_nan", "auc_max")}
                   for c in ("pearson", "spearman", "kendall")} for m in METRICS}
    degrades = chain_degrades(result, "spearman", "mean")
    measured = {f"spearman_mean_{m}": summary[m]["spearman"]["mean"] for m in METRICS}
    return {
        "experiment": "downstream_scaling",
        "claim": "per-sample correlation with log compute degrades along log p_vocab(correct) -> p_choices -> acc "
                 "(Schaeffer et al. 2024)",
        "measured": measured,
        "claim_direction_holds": degrades,
        "runs": {m["name"]: {k: v for k, v in m.items() if k != "name"} for m in models},
        "models": models,
        "n_items": len(items),
        "means": result["means"],
        "correlations": summary,
        "incorrect_mass": {k: v for k, v in result["incorrect_mass"].items() if k.startswith("mean")},
        "chain_degrades_spearman_mean": degrades,
        "chain_degrades_pearson_mean": chain_degrades(result, "pearson", "mean"),
        "check_example": transform_chain([-1.0, -2.0, -3.0], 0),
    }
