"""``llmlab omegaprm collect``: OmegaPRM process-supervision data from a completer model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import DataError


def _problems(task_params: dict[str, Any], data_file: str | None, limit: int | None) -> list[tuple[str, str]]:
    if data_file is not None:
        from llmlab.core.jsonl import read_jsonl

        out = []
        for where, rec in read_jsonl(Path(data_file), what="problems file"):
            q = rec.get("question", rec.get("problem"))
            a = rec.get("answer", rec.get("final_answer"))
            if not isinstance(q, str) or a is None:
                raise DataError(f"{where}: each line needs 'question' (or 'problem') and 'answer' (or 'final_answer')")
            out.append((q, str(a)))
    else:
        from llmlab.tasks.math import MATH

        out = [(it.input, str(it.target)) for it in MATH(task_params).items()]
    return out[:limit] if limit is not None else out


@click.group("omegaprm")
def omegaprm() -> None:
    """OmegaPRM: collect process-supervision labels by MCTS with binary search."""


@omegaprm.command("collect")
@click.option("--model", "model_spec", required=True, help="The completer (policy) model spec.")
@click.option("--data", "data_file", type=click.Path(dir_okay=False), default=None,
              help="JSONL of {question, answer}; default: the MATH-500 task.")
@click.option("-t", "task_params", multiple=True, metavar="KEY=VALUE", help="MATH task config (subject, level).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("-p", "params", multiple=True, metavar="KEY=VALUE", help="OmegaPRM config (k, search_limit, ...).")
@click.option("--layout", type=click.Choice(["math-aps", "math-aps-tree", "math-shepherd", "prm800k"]),
              default="math-aps", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N problems.")
@click.option("--concurrency", "-c", type=int, default=4, show_default=True, help="Questions in flight.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), required=True)
def collect_cmd(model_spec: str, data_file: str | None, task_params: tuple[str, ...], data_dir: str | None,
                params: tuple[str, ...], layout: str, limit: int | None, concurrency: int, out_file: str) -> None:
    """Run OmegaPRM on each problem and write its labels as JSON lines."""
    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import build_config, parse_params
    from llmlab.methods.omega_prm import OmegaPRMConfig, collect, export

    tp = parse_params(task_params)
    if data_dir is not None:
        tp.setdefault("data_dir", data_dir)
    problems = _problems(tp, data_file, limit)
    cfg = build_config(OmegaPRMConfig, parse_params(params))
    assert isinstance(cfg, OmegaPRMConfig)
    results = run_sync(collect(Model(model_spec), problems, cfg, concurrency=concurrency))
    records = export(results, layout)
    Path(out_file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    skipped = sum(r.skipped is not None for r in results)
    click.echo(f"{len(problems)} problems ({skipped} skipped by the filter), "
               f"{sum(r.total_rollouts for r in results)} rollouts, {sum(r.searches for r in results)} searches, "
               f"{len(records)} {layout} records -> {out_file}")
