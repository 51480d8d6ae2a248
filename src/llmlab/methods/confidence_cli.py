"""``llmlab confidence``: the black-box confidence report on real sampled generations."""

from __future__ import annotations

import json

import click


@click.group("confidence")
def confidence() -> None:
    """Black-box confidence estimation (arXiv 2406.04370): consistency features + logistic regression."""


@confidence.command("report")
@click.option("--data-dir", default=None, help="Folder holding uq-triviaqa-llama13b/test.jsonl.")
@click.option("--num-gens", type=int, default=20, show_default=True, help="Samples per question used (2-20).")
@click.option("--label", type=click.Choice(["match", "rougeL"]), default="match", show_default=True,
              help="Correctness of sample 0: normalised match, or Lin et al.'s ROUGE-L > 0.3.")
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report_cmd(data_dir: str | None, num_gens: int, label: str, folds: int, as_json: bool) -> None:
    """AUROC of each feature and of the cross-validated combined model, with ECE and Brier."""
    from llmlab.core.data import find_data
    from llmlab.methods.confidence import (
        cross_validated_report,
        format_report,
        load_uq_generations,
        triviaqa_feature_table,
    )

    rows = load_uq_generations(find_data("uq-triviaqa-llama13b", "test.jsonl", data_dir=data_dir))
    rep = cross_validated_report(triviaqa_feature_table(rows, num_gens=num_gens, label=label), folds=folds)
    rep.update({"num_gens": num_gens, "label": label})
    click.echo(json.dumps(rep, indent=2) if as_json else format_report(rep))


__all__ = ["confidence"]
