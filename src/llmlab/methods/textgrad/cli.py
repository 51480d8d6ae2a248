"""``llmlab textgrad ...``: the paper's prompt-optimization and code-optimization protocols from the CLI.

Protocol 1 (solution optimization) is a method: ``llmlab eval mmlu_redux --method textgrad -p iterations=3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from llmlab.cli import model_options


@click.group("textgrad")
def textgrad() -> None:
    """TextGrad (arXiv 2406.07496): optimize a task's system prompt or LeetCode solutions."""


def _roles(model_kw: dict[str, Any]) -> tuple[Any, list[str]]:
    from llmlab.runner import build_roles

    params = list(model_kw.pop("params", ()))
    roles = build_roles(model_kw.pop("model_spec"), model_kw.pop("roles", ()), **model_kw)
    return roles, params


@textgrad.command("optimize-prompt")
@click.option("--task", default="bbh_object_counting", show_default=True,
              help="bbh_object_counting, bbh_word_sorting or gsm8k.")
@click.option("--out", type=click.Path(file_okay=False), default="textgrad-prompt", show_default=True,
              help="Folder for prompt.txt, results.json and learning_curve.png.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@model_options
def optimize_prompt(task: str, out: str, data_dir: str | None, **model_kw: Any) -> None:
    """Optimize TASK's system prompt: batch 3, 3 epochs x 4 steps, validation-revert (paper §3.3).

    Roles: --role task=SPEC (the model whose prompt is optimized) and --role optimizer=SPEC (feedback and
    updates); both default to --model. Use the result with: llmlab eval TASK -p system_prompt=@OUT/prompt.txt
    """
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import build_config, parse_params
    from llmlab.methods.textgrad.prompt_optimization import (
        PromptOptimizationConfig,
        PromptOptimizer,
        write_outputs,
    )

    roles, params = _roles(model_kw)
    raw = parse_params(params)
    raw["task"] = task
    if data_dir is not None:
        raw["data_dir"] = data_dir
    cfg = build_config(PromptOptimizationConfig, raw)
    result = run_sync(PromptOptimizer(cfg, roles).run(progress=click.echo))
    written = write_outputs(result, Path(out), task)
    click.echo(f"final prompt:\n{result.prompt}\n")
    click.echo(f"test accuracy per step: {result.test_acc}")
    click.echo(f"calls: {result.calls}; tag failures: {result.tag_failures}")
    click.echo("wrote " + ", ".join(str(p) for p in written))
    click.echo(f"evaluate it with: llmlab eval {task} -m SPEC -p system_prompt=@{Path(out) / 'prompt.txt'}")


@textgrad.command("optimize-code")
@click.option("--out", type=click.Path(dir_okay=False), default="textgrad-code.jsonl", show_default=True,
              help="One JSON line per problem (code per iteration, test results).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--limit", type=int, default=None, help="Only the first N problems.")
@model_options
def optimize_code(out: str, data_dir: str | None, limit: int | None, **model_kw: Any) -> None:
    """LeetCode-Hard code optimization: 5 test-time iterations from running the tests (paper §3.1)."""
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import build_config, parse_params
    from llmlab.methods.textgrad.code_optimization import CodeOptimizationConfig, optimize_leetcode

    roles, params = _roles(model_kw)
    raw = parse_params(params)
    if data_dir is not None:
        raw["data_dir"] = data_dir
    if limit is not None:
        raw["limit"] = limit
    cfg = build_config(CodeOptimizationConfig, raw)
    summary = run_sync(optimize_leetcode(cfg, roles, Path(out), progress=click.echo))
    click.echo(summary)
