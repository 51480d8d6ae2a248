"""``llmlab eco``: the tiny-LM unlearning experiment, TOFU metrics from eval logs, the prompt classifier."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("eco")
def eco() -> None:
    """ECO unlearning via embedding-corrupted prompts (arXiv 2406.07933)."""


@eco.command("experiment")
@click.option("--quick", is_flag=True, help="The small variant of the default test suite.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write result.json and plot.png here.")
def experiment_cmd(quick: bool, seed: int, out: str | None) -> None:
    """Train full/retain tiny LMs, unlearn with ECO, search σ, print forget quality and retain behaviour."""
    from llmlab.core.errors import ConfigError
    from llmlab.methods.eco.experiment import plot_experiment, run_eco_experiment

    folder = None
    if out is not None:  # checked before minutes of training, not after
        if not out.strip():
            raise ConfigError("--out needs a folder name (got an empty string)")
        folder = Path(out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    res = run_eco_experiment(quick=quick, seed=seed)
    if folder is not None:
        (folder / "result.json").write_text(json.dumps(res, indent=2, default=float))
        plot_experiment(res, str(folder / "plot.png"))
    fq, zo = res["forget_quality"], res["zo"]
    click.echo(f"people {res['people']} (forget {res['n_forget']}), params {res['params']}")
    click.echo(f"classifier flags: forget {res['classifier']['forget_flagged']:.2f}, "
               f"retain {res['classifier']['retain_flagged']:.2f}")
    click.echo(f"sigma* {zo['sigma_star']:.4f} after {zo['evaluations']} evaluations; "
               f"f {zo['f_initial']:.4g} -> {zo['f_final']:.4g}")
    for k in ("full", "retain_model", "eco"):
        f = res["forget"][k]
        click.echo(f"forget set  {k:<13} true loss {f['mean_true_loss']:.3f}  prefers true {f['prefers_true']:.2f}")
    click.echo(f"forget quality (KS p): full {fq['full']:.3g}  ECO {fq['eco']:.3g}")
    click.echo(f"retain set unchanged by ECO: {res['retain_set']['eco_identical_to_full']}")


@eco.command("tofu")
@click.option("--unlearned", required=True, type=click.Path(file_okay=False), help="Eval-results folder.")
@click.option("--retain", required=True, type=click.Path(file_okay=False), help="The retain model's folder.")
def tofu_cmd(unlearned: str, retain: str) -> None:
    """Forget quality and model utility from TOFU eval logs (as the official aggregate_eval_stat.py)."""
    from llmlab.methods.eco.tofu import load_tofu_results, tofu_report

    rep = tofu_report(load_tofu_results(Path(unlearned)), load_tofu_results(Path(retain)))
    click.echo(json.dumps(rep, indent=2))


@eco.command("classifier")
@click.option("--data-dir", default=None, help="Folder holding eco/, nq-open/ and medqa/.")
@click.option("--retain-n", type=int, default=1200, show_default=True, help="NQ-open questions used as retain.")
def classifier_cmd(data_dir: str | None, retain_n: int) -> None:
    """Train the prompt classifier on synthetic WMDP vs NQ-open; held-out flag rates (and on MedQA)."""
    from llmlab.core.data import find_data
    from llmlab.core.jsonl import read_jsonl
    from llmlab.methods.eco.classifier import classifier_report, load_synthetic_wmdp

    eco_root = find_data("eco", "local_data", data_dir=data_dir).parent
    forget = [r["question"] for r in load_synthetic_wmdp(eco_root)]
    retain = [r["question"] for _, r in read_jsonl(find_data("nq-open", "NQ-open.dev.jsonl", data_dir=data_dir))]
    related = [r["question"] for _, r in read_jsonl(find_data("medqa", "medqa", "test.jsonl", data_dir=data_dir))]
    click.echo(json.dumps(classifier_report(forget, retain[:retain_n], related=related[:300]), indent=2))


__all__ = ["eco"]
