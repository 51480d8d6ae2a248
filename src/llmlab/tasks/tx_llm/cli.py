"""``llmlab txllm``: check TDC data for the Tx-LLM harness and print the SOTA table it compares against.

The evaluation itself is ``llmlab eval tx_llm`` and the fine-tuning ``llmlab lab finetune --recipe tx_llm``.
"""

from __future__ import annotations

import json

import click


@click.group("txllm")
def txllm() -> None:
    """Tx-LLM (arXiv 2406.06316): TDC data checks and the per-task SOTA table."""


@txllm.command("check")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder holding tdc/<Name>/.")
@click.option("--task", "tasks", multiple=True, help="A TDC dataset (repeatable; default: every one found).")
@click.option("--show", type=int, default=5, show_default=True, help="Invalid SMILES listed per task.")
def check_cmd(data_dir: str | None, tasks: tuple[str, ...], show: int) -> None:
    """Load each dataset, canonicalise its SMILES with RDKit and report the rows RDKit rejects."""
    from llmlab.core.errors import ConfigError, DataError
    from llmlab.tasks.tx_llm import TASKS, find_tdc_files, load_tdc

    if show < 0:
        raise ConfigError(f"--show must be >= 0, got {show}")
    names = list(tasks) if tasks else [n for n in TASKS if find_tdc_files(n, data_dir) is not None]
    if not names:
        raise DataError("no TDC data found for any Tx-LLM task; pass --data-dir DIR holding tdc/<Name>/")
    report = {}
    for n in names:
        d = load_tdc(n, data_dir)
        report[n] = {"source": d.source, "kind": d.task.kind, "metric": d.task.metric,
                     "rows": {s: len(r) for s, r in d.splits.items()}, "invalid_smiles": len(d.invalid),
                     "invalid_examples": [{"where": w, "smiles": s} for w, s in d.invalid[:show]]}
    click.echo(json.dumps(report, indent=2))


@txllm.command("sota")
@click.option("--catalogue", is_flag=True, help="Only the datasets of the harness's task catalogue.")
def sota_cmd(catalogue: bool) -> None:
    """The paper's per-task SOTA (Tables A.7/A.8 of arXiv 2406.06316v1), each with its source."""
    from llmlab.tasks.tx_llm import NEAR_SOTA_TOLERANCE, NO_SOTA, SOTA, TASKS
    from llmlab.tasks.tx_llm.sota import sota_name

    ours = {key: n for n in TASKS if (key := sota_name(n)) is not None}  # paper's name -> our catalogue name
    click.echo(f"{'task':31s} {'metric':8s} {'split':11s} {'SOTA':>7s} {'Tx-LLM':>7s}  verified  source")
    for name, e in SOTA.items():
        here = ours.get(name)
        if catalogue and here is None:
            continue
        label = name if here is None or here == name else f"{name} ({here})"
        click.echo(f"{label:31s} {e.metric:8s} {e.split:11s} {e.value:7.3f} {e.txllm:7.3f}  "
                   f"{'yes' if e.verified else 'NO ':8s}  {e.source}")
    if not catalogue:
        click.echo(f"no SOTA in the paper (not compared): {', '.join(sorted(NO_SOTA))}")
    missing = sorted(n for n in TASKS if sota_name(n) is None)
    if missing:
        click.echo(f"catalogue tasks without a paper SOTA: {', '.join(missing)}")
    click.echo(f"near SOTA = within {NEAR_SOTA_TOLERANCE:.0%} relative (the paper's rule, §4.1); Tx-LLM = the "
               "paper's Tx-LLM (M) value")


__all__ = ["txllm"]
