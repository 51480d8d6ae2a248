"""``llmlab scaling collect|analyze``: per-choice log-likelihood tables and the paper's analysis and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.group("scaling")
def scaling() -> None:
    """Downstream-scaling analysis (Schaeffer et al. 2024): collect log-likelihoods, analyze the chain."""


@scaling.command("collect")
@click.option("--task", "task_name", default="mmlu_redux", show_default=True, help="A multiple-choice task.")
@click.option("--models", "-m", multiple=True, required=True, help="Model specs (hf:PATH, openai:NAME@URL).")
@click.option("--compute", "-c", multiple=True, required=True, metavar="SPEC=FLOPS",
              help="Training compute of each model (e.g. 6*N*D).")
@click.option("--format", "fmt", type=click.Choice(["letters", "cloze"]), default="letters", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N items.")
@click.option("-t", "task_params", multiple=True, help="Task option key=value.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL table to write.")
def collect_cmd(task_name: str, models: tuple[str, ...], compute: tuple[str, ...], fmt: str, limit: int | None,
                task_params: tuple[str, ...], out: str) -> None:
    """Score every choice of every item with every model; write one row per (model, item, choice)."""
    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import parse_params
    from llmlab.core.errors import ConfigError
    from llmlab.core.registry import TASKS
    from llmlab.stats.scaling_collect import choice_logliks, parse_compute, rows_for, task_mc_items

    flops = parse_compute(compute)
    missing = [m for m in models if m not in flops]
    if missing:
        raise ConfigError(f"no --compute for {', '.join(missing)}; give SPEC=FLOPS for every model")
    task = TASKS.get(task_name)(parse_params(list(task_params)))
    items = task_mc_items(task, fmt, limit)  # type: ignore[arg-type]

    async def run() -> int:
        n = 0
        with Path(out).open("w") as f:
            for spec in models:
                model = Model(spec)
                for item in items:
                    for row in rows_for(spec, flops[spec], item, await choice_logliks(model, item)):
                        f.write(json.dumps(row) + "\n")
                        n += 1
                await model.aclose()
        return n

    n = run_sync(run())
    click.echo(f"wrote {n} rows ({len(items)} items x {len(models)} models) to {out}")


def read_table(path: str) -> list[dict[str, Any]]:
    from llmlab.core.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"table {p} not found (write one with `llmlab scaling collect`)")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{i}: not JSON ({exc.msg})") from None
    return rows


@scaling.command("analyze")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for analysis.json and the plots.")
@click.option("--plots/--no-plots", default=True, show_default=True)
def analyze_cmd(table: str, out_dir: str | None, plots: bool) -> None:
    """Per-sample correlations with compute along the chain, their statistics, and the paper's plots."""
    from llmlab.stats.scaling import METRICS, analyze, chain_table

    res = analyze(chain_table(read_table(table)))
    click.echo(f"{len(res['models'])} models, {res['n_items']} items")
    click.echo(f"{'metric':<26} {'pearson':>8} {'spearman':>9} {'kendall':>8}  (mean per-sample correlation)")
    for m in METRICS:
        c = res["correlations"][m]
        click.echo(f"{m:<26} {c['pearson']['mean']:>8.3f} {c['spearman']['mean']:>9.3f} {c['kendall']['mean']:>8.3f}")
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "analysis.json").write_text(json.dumps(res, indent=2, default=float))
        if plots:
            plot_analysis(chain_table(read_table(table)), d)
        click.echo(f"wrote {d / 'analysis.json'}" + (" and plots" if plots else ""))


def plot_analysis(table: dict[str, Any], out_dir: Path) -> list[Path]:
    """The paper's figures: survival functions of the per-sample correlations per metric, and the means."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "plot", "scaling plots") from None
    import numpy as np

    from llmlab.stats.scaling import METRICS, per_sample_compute_correlation

    x = table["log10_compute"]
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, method in zip(axes, ("pearson", "spearman", "kendall"), strict=True):
        for m in METRICS:
            rho = per_sample_compute_correlation(table["metrics"][m], x, method)  # type: ignore[arg-type]
            r = np.sort(rho[np.isfinite(rho)])
            if r.size:
                ax.step(r, 1.0 - np.arange(1, r.size + 1) / r.size, where="post", label=m)
        ax.set_xlim(-1, 1)
        ax.set_xlabel(f"{method} correlation with log10 compute")
        ax.set_title(method)
    axes[0].set_ylabel("1 - ECDF (fraction of samples)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    p = out_dir / "correlation_survival.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    fig, axes = plt.subplots(1, len(METRICS) + 1, figsize=(3.2 * (len(METRICS) + 1), 3.2))
    for ax, m in zip(axes, (*METRICS, "prob_vocab_incorrect"), strict=True):
        ax.plot(x, np.nanmean(table["metrics"][m], axis=1), "o-")
        ax.set_title(m, fontsize=8)
        ax.set_xlabel("log10 compute")
    fig.tight_layout()
    p = out_dir / "means_vs_compute.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths
