"""``llmlab medfuzz``: run MedFuzz on a multiple-choice task (``medqa`` by default) and report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from llmlab.core.errors import ConfigError


@click.group("medfuzz")
def medfuzz() -> None:
    """MedFuzz (arXiv 2406.06573): adversarial patient-characteristic rewrites with a permutation test."""


@medfuzz.command("run")
@click.option("--target", required=True, help="Model spec of the model under test.")
@click.option("--attacker", required=True, help="Model spec of the attacker (writes rewrites and controls).")
@click.option("--task", "task_name", default="medqa", show_default=True, help="A multiple-choice task.")
@click.option("--limit", type=int, default=None, help="Only the first N items.")
@click.option("--data-dir", default=None, help="Folder holding the task's data.")
@click.option("-p", "params", multiple=True, help="MedFuzz option key=value (max_turns, n_controls, alpha, ...).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write one JSON line per item here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run_cmd(target: str, attacker: str, task_name: str, limit: int | None, data_dir: str | None,
            params: tuple[str, ...], out: str | None, as_json: bool) -> None:
    """Fuzz the items the target answers correctly; print accuracy before/after and significant attacks."""
    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import parse_params
    from llmlab.core.contracts import Roles
    from llmlab.core.registry import TASKS
    from llmlab.methods.medfuzz import MCQ, MedFuzz, fuzz_report, result_to_dict

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    task = TASKS.get(task_name)({"data_dir": data_dir} if data_dir is not None else {})
    items = []
    for item in task.items():
        options = item.metadata.get("options") if isinstance(item.metadata, dict) else None
        if not isinstance(options, dict) or not isinstance(item.input, str):
            raise ConfigError(f"task '{task_name}' is not multiple choice (items need metadata['options'])")
        items.append(MCQ(item.id, item.input, dict(options), str(item.target)))
        if limit is not None and len(items) >= limit:
            break
    fuzzer = MedFuzz(parse_params(params))
    t = Model(target)
    roles = Roles(t, target=t, attacker=Model(attacker))
    results = run_sync(fuzzer.fuzz_many(items, roles))
    report = fuzz_report(results, alpha=fuzzer.config.alpha)
    if out is not None:
        Path(out).write_text("".join(json.dumps(result_to_dict(r)) + "\n" for r in results))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for k, v in report.items():
        click.echo(f"{k:<28}{v if not isinstance(v, float) else round(v, 4)}")


__all__ = ["medfuzz"]
