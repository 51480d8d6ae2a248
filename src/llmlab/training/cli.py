"""``llmlab lab``: train a byte-level LM of the model lab, or run one of its experiments.

Each command writes ``result.json`` and ``plot.png`` into ``--out`` (default ``runs/lab/<name>``).
torch and matplotlib are imported only inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from llmlab.cli import LazyGroup
from llmlab.core.errors import ConfigError, MissingExtraError

ARCHES = ["samba", "transformer", "swa", "mamba"]
FFNS = ["swiglu", "drelu", "relu_gate"]

class LabGroup(LazyGroup):
    """The ``lab`` group: own commands plus the registry's ``lab_command`` entries (other papers' modules)."""

    registry_kind = "lab_command"


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover
        raise MissingExtraError("matplotlib", "plot", "lab plots") from exc
    return plt


def plot_history(runs: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Training-loss curves (bits/byte) of one or more runs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rec in runs.items():
        steps, losses = zip(*rec["history"], strict=True)
        ax.plot(steps, losses, label=f"{name} (val {rec['val_bpb']:.3f})")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (bits/byte)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_experiment(res: dict[str, Any], path: Path) -> None:
    """The experiment's headline figure."""
    plt = _plt()
    name = res["experiment"]
    runs = res["runs"]
    if not all(isinstance(r, dict) and "history" in r for r in runs.values()):
        # another module's experiment: a bar chart of its numeric measurements
        vals = {k: v for k, v in res.get("measured", {}).items() if isinstance(v, int | float)}
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(vals)), 4))
        ax.bar(list(vals), list(vals.values()))
        ax.tick_params(axis="x", rotation=60)
        ax.set_title(name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, rec in runs.items():
        steps, losses = zip(*rec["history"], strict=True)
        axes[0].plot(steps, losses, label=k)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("train loss (bits/byte)")
    axes[0].legend()
    ax = axes[1]
    if name == "drelu_vs_swiglu":
        for k, rec in runs.items():
            ax.plot(range(len(rec["sparsity"]["exact_zero"])), rec["sparsity"]["exact_zero"], "o-", label=k)
        ax.set_xlabel("layer")
        ax.set_ylabel("fraction of exactly-zero FFN activations")
        ax.set_ylim(0, 1)
    elif name == "samba_extrapolation":
        for k, rec in runs.items():
            xs = [int(m.rstrip("x")) * res["train_len"] for m in rec["val_bpb_at"]]
            ax.plot(xs, list(rec["val_bpb_at"].values()), "o-", label=k)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"evaluation length (bytes; trained at {res['train_len']})")
        ax.set_ylabel("val loss (bits/byte)")
    elif name == "moe_gate_norm":
        for k, rec in runs.items():
            steps_moe = [t["step"] for t in rec["moe"]]
            ratio = [sum(layer["max1_max2"] for layer in t["layers"]) / len(t["layers"]) for t in rec["moe"]]
            ax.plot(steps_moe, ratio, label=f"{k} Max1/Max2")
        ax.set_xlabel("step")
        ax.set_ylabel("mean Max1/Max2 gate probability ratio")
    ax.legend()
    fig.suptitle(f"{name}{' (quick)' if res.get('quick') else ''}: claim holds = {res.get('claim_direction_holds')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@click.group("lab", cls=LabGroup)
def lab() -> None:
    """Train byte-level LMs on local text and run the model-lab experiments (needs the torch extra)."""


@lab.command("train")
@click.option("--arch", type=click.Choice(ARCHES), default="samba", show_default=True)
@click.option("--ffn", type=click.Choice(FFNS), default="swiglu", show_default=True)
@click.option("--moe", "moe_experts", type=int, default=0, show_default=True, help="Experts per FFN (0: dense).")
@click.option("--moe-top-k", type=int, default=2, show_default=True)
@click.option("--moe-capacity", type=float, default=None, help="Expert capacity factor (default: no drop).")
@click.option("--gate-norm", type=float, default=None, help="Skywork gating-logit normalisation λ.")
@click.option("--adaptive-aux/--fixed-aux", default=False, help="Skywork adaptive aux-loss coefficient.")
@click.option("--steps", type=int, default=300, show_default=True)
@click.option("--seq-len", type=int, default=256, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--window", "local_window", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--corpus", type=click.Path(file_okay=False), default=None,
              help="Folder of .py/.txt files (default: the Python standard library).")
@click.option("-p", "params", multiple=True, metavar="KEY=VALUE", help="Any other TrainConfig field.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default runs/lab/train-<arch>-<ffn>.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Save <out>/checkpoint.pt every N steps and resume from it when rerun (0: no checkpoints).")
def train_cmd(params: tuple[str, ...], out: str | None, checkpoint_every: int, **kw: Any) -> None:
    """Train one byte-level LM; writes result.json and plot.png (resumable with --checkpoint-every)."""
    import yaml

    from llmlab.training.tiny_lm import TrainConfig, save_json, train

    extra: dict[str, Any] = {}
    for p in params:
        key, sep, val = p.partition("=")
        if not sep:
            raise ConfigError(f"-p expects KEY=VALUE, got '{p}'")
        extra[key.strip()] = yaml.safe_load(val)
    cfg = TrainConfig.from_dict({
        "arch": kw["arch"], "ffn": kw["ffn"], "moe_experts": kw["moe_experts"], "moe_top_k": kw["moe_top_k"],
        "moe_capacity_factor": kw["moe_capacity"], "moe_gate_norm": kw["gate_norm"],
        "moe_adaptive": kw["adaptive_aux"], "steps": kw["steps"], "seq_len": kw["seq_len"],
        "batch_size": kw["batch_size"], "local_window": kw["local_window"], "seed": kw["seed"],
        "corpus": kw["corpus"], **extra,
    })
    name = f"train-{cfg.arch}-{cfg.ffn}" + (f"-moe{cfg.moe_experts}" if cfg.moe_experts else "")
    folder = Path(out) if out is not None else Path("runs") / "lab" / name
    ckpt = folder / "checkpoint.pt" if checkpoint_every else None
    rec = train(cfg, on_log=lambda s, loss: click.echo(f"step {s:5d}  loss {loss:.4f} bits/byte", err=True),
                checkpoint=ckpt, checkpoint_every=checkpoint_every)
    model = rec.pop("model")
    folder.mkdir(parents=True, exist_ok=True)
    save_json(rec, folder / "result.json")
    plot_history({name: rec}, folder / "plot.png", name)
    import torch

    torch.save(model.state_dict(), folder / "model.pt")
    click.echo(json.dumps({"out": str(folder), "params": rec["params"], "val_bpb": round(rec["val_bpb"], 4),
                           "seconds": round(rec["seconds"], 1)}))


@lab.command("experiment")
@click.argument("name")
@click.option("--quick", is_flag=True, help="Smaller models and fewer steps (minutes on 2 CPU cores).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default runs/lab/<name>.")
def experiment_cmd(name: str, quick: bool, seed: int, out: str | None) -> None:
    """Run a model-lab experiment; writes result.json and plot.png and prints the verdict."""
    from llmlab.training.tiny_lm import run_experiment, save_json

    folder = Path(out) if out is not None else Path("runs") / "lab" / name
    res = run_experiment(name, quick=quick, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_json(res, folder / "result.json")
    plot_experiment(res, folder / "plot.png")
    click.echo(json.dumps({"out": str(folder), "claim": res.get("claim"), "measured": res.get("measured"),
                           "claim_direction_holds": res["claim_direction_holds"],
                           "seconds": round(res["seconds"], 1)}, indent=2, default=float))


@lab.command("finetune")
@click.option("--recipe", required=True, help="A registered fine-tuning recipe (llmlab list recipe), e.g. tx_llm.")
@click.option("--model", "model", required=True, metavar="hf:DIR", help="The causal LM to fine-tune (hf:<dir or id>).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder holding the recipe's data.")
@click.option("-p", "params", multiple=True, metavar="KEY=VALUE", help="A field of the recipe's config.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default runs/lab/finetune-<recipe>.")
def finetune_cmd(recipe: str, model: str, data_dir: str | None, params: tuple[str, ...], out: str | None) -> None:
    """Fine-tune a model with a registered recipe; writes result.json and the adapter into --out.

    Recipes come from the registry (``recipe`` entries of a system), so any system or plugin adds one:
    a callable ``(model, data_dir, params, out, on_log) -> result dict``.
    """
    from llmlab.core.config import parse_params
    from llmlab.core.registry import RECIPES

    fn = RECIPES.get(recipe)
    if out is not None and not out.strip():
        raise ConfigError("--out needs a folder name")
    folder = Path(out) if out is not None else Path("runs") / "lab" / f"finetune-{recipe}"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; pass a folder")
    res = fn(model=model, data_dir=data_dir, params=parse_params(params), out=folder,
             on_log=lambda msg: click.echo(msg, err=True))
    summary = {k: res[k] for k in ("recipe", "trainable_params", "seconds") if k in res}
    if isinstance(res.get("tasks"), dict):
        summary["tasks"] = {n: {k: v for k, v in t.items() if k in ("metric", "before", "after")}
                            for n, t in res["tasks"].items()}
    click.echo(json.dumps({"out": str(folder), **summary}, indent=2, default=float))


__all__ = ["lab", "plot_experiment", "plot_history"]
