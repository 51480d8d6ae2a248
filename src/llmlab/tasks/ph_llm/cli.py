"""``llmlab phllm``: PH-LLM's agreement analysis and the paper's released PRO results.

``llmlab phllm agreement`` recomputes the rater-agreement figures from the released case-study ratings;
``llmlab phllm pro-results`` summarises the paper's released PRO AUROCs. The exam and case-study tasks run
through ``llmlab eval ph_llm.mcq`` / ``llmlab eval ph_llm.case_study --role judge=SPEC``; the synthetic PRO
experiment through ``llmlab lab experiment ph_llm_pro``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import ConfigError


def _folder(data_dir: str | None, *parts: str) -> Path:
    from llmlab.core.data import find_data

    return find_data("ph-llm", *parts, data_dir=data_dir)


def _fmt(x: Any) -> str:
    return "nan" if isinstance(x, float) and math.isnan(x) else f"{x:.3f}"


@click.group("phllm")
def phllm() -> None:
    """PH-LLM (arXiv 2406.06474): rater agreement on case studies, released PRO results."""


@phllm.command("agreement")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding ph-llm/autoeval_ratings/ (default: the usual data search order).")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap draws for the AC2 CIs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the full report here.")
def agreement_cmd(data_dir: str | None, n_boot: int, seed: int, json_out: str | None) -> None:
    """Gwet's AC2 between experts and between AutoEval and experts, and the paper's agreement claims."""
    from llmlab.tasks.ph_llm.agreement import analyze

    if n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {n_boot}")
    folder = _folder(data_dir, "autoeval_ratings", "sleep_human_expert_ratings.tsv").parent
    rep = analyze(folder, n_boot=n_boot, seed=seed)
    for v, r in rep["verticals"].items():
        click.echo(f"== {v}: expert pairs (Extended Data Fig. 3; quadratic Gwet's AC2, 95% bootstrap CI)")
        for p in r["expert_pairs"]:
            lo, hi = p["ci"]
            click.echo(f"  {p['rater_a']:<22} {p['rater_b']:<22} {p['kind']:<20} n={p['n']:<5} "
                       f"AC2={_fmt(p['ac2'])} [{_fmt(lo)}, {_fmt(hi)}] exact={_fmt(p['exact'])}")
        click.echo(f"== {v}: AutoEval ({r['autoeval_column']}) vs experts (Extended Data Fig. 6)")
        for p in r["autoeval_overlap"]:
            click.echo(f"  {p['rater_a']:<42} {p['rater_b']:<42} n={p['n']:<5} AC2={_fmt(p['ac2'])}")
        for k, s in r["autoeval_vs_expert"].items():
            click.echo(f"  rows {k:<36} n={s['n']:<6} AC2={_fmt(s['ac2'])} exact={_fmt(s['exact'])}")
        rk = r["ranking"]
        for who, key in (("experts", "expert_means"), ("AutoEval", "autoeval_means")):
            means = json.dumps({k: round(x, 3) for k, x in rk[key].items()})
            click.echo(f"  mean rating by source, {who}: {means}")
        click.echo(f"  Spearman(experts, AutoEval) over {len(rk['common_sources'])} sources = {_fmt(rk['spearman'])}")
    click.echo("== claims")
    for c, ok in rep["claims"].items():
        click.echo(f"  [{'holds' if ok else 'FAILS'}] {c}")
    if json_out is not None:
        Path(json_out).write_text(json.dumps(rep, indent=1, default=float))


@phllm.command("pro-results")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding ph-llm/pro_preds_bootstrap.tsv.")
def pro_results_cmd(data_dir: str | None) -> None:
    """The paper's released PRO AUROCs: adapter vs logistic regression vs zero/few-shot text, per target."""
    from llmlab.tasks.ph_llm.pro import released_pro_summary

    s = released_pro_summary(_folder(data_dir, "pro_preds_bootstrap.tsv"))
    arms = ("adapter", "logreg", "few_shot", "zero_shot", "cnn")
    click.echo(f"{'target':<52}" + "".join(f"{a:>10}" for a in arms))
    for t, row in s["auroc"].items():
        click.echo(f"{t:<52}" + "".join(f"{row[a]:>10.3f}" for a in arms))
    click.echo(f"{'mean':<52}" + "".join(f"{s['mean_auroc'][a]:>10.3f}" for a in arms))
    n = s["targets"]
    click.echo(f"adapter > best of zero/few-shot on {s['adapter_beats_zero_and_few_shot']}/{n} targets; adapter CI "
               f"lower bound above it on {s['adapter_ci_above_best_text_mean']}/{n}; logistic regression inside "
               f"the adapter's CI on {s['adapter_ci_contains_logreg_mean']}/{n}; mean adapter − LR = "
               f"{s['adapter_minus_logreg_mean']:+.3f}")
