"""``llmlab medfuzz``: run MedFuzz on a multiple-choice task (``medqa`` by default) and report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from llmlab.core.contracts import Item
from llmlab.core.errors import ConfigError
from llmlab.methods.medfuzz import MCQ

MEDICAL_MMLU = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "high_school_biology",
                "medical_genetics", "professional_medicine")


def mcq_from_item(item: Item, task_name: str) -> MCQ:
    """A :class:`~llmlab.methods.medfuzz.MCQ` from a task item.

    Two item shapes are understood: ``medqa`` (``input`` = vignette, ``metadata["options"]``, letter target)
    and ``mmlu_redux`` (``input`` = ``{question, choices}``, target = a 1-tuple of the correct index).

    Raises:
        ConfigError: Any other shape (the task is not multiple choice, or has several correct options).
    """
    options = item.metadata.get("options")
    if isinstance(options, dict) and isinstance(item.input, str):
        return MCQ(item.id, item.input, {str(k): str(v) for k, v in options.items()}, str(item.target))
    inp = item.input
    if isinstance(inp, dict) and isinstance(inp.get("choices"), list) and isinstance(item.target, tuple) \
            and len(item.target) == 1:
        letters = "ABCDEFGHIJ"[: len(inp["choices"])]
        return MCQ(item.id, str(inp["question"]), dict(zip(letters, map(str, inp["choices"]), strict=True)),
                   letters[int(item.target[0])])
    raise ConfigError(f"task '{task_name}' item {item.id} is not a single-answer multiple-choice item")


@click.group("medfuzz")
def medfuzz() -> None:
    """MedFuzz (arXiv 2406.06573): adversarial patient-characteristic rewrites with a permutation test."""


@medfuzz.command("run")
@click.option("--target", required=True, help="Model spec of the model under test.")
@click.option("--attacker", required=True, help="Model spec of the attacker (writes rewrites and controls).")
@click.option("--task", "task_name", default="medqa", show_default=True, help="A multiple-choice task.")
@click.option("--limit", type=int, default=None, help="Only the first N items.")
@click.option("--data-dir", default=None, help="Folder holding the task's data.")
@click.option("-t", "task_params", multiple=True,
              help="Task option key=value, e.g. -t 'subjects=[professional_medicine]' for mmlu_redux.")
@click.option("-p", "params", multiple=True, help="MedFuzz option key=value (max_turns, n_controls, alpha, ...).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write one JSON line per item here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run_cmd(target: str, attacker: str, task_name: str, limit: int | None, data_dir: str | None,
            task_params: tuple[str, ...], params: tuple[str, ...], out: str | None, as_json: bool) -> None:
    """Fuzz the items the target answers correctly; print accuracy before/after and significant attacks.

    Tasks: ``medqa`` (default) or ``mmlu_redux`` (its medical subjects by default: anatomy, clinical
    knowledge, college biology/medicine, high-school biology, medical genetics, professional medicine).
    """
    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import parse_params
    from llmlab.core.contracts import Roles
    from llmlab.core.registry import TASKS
    from llmlab.methods.medfuzz import MedFuzz, fuzz_report, result_to_dict

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    tparams = parse_params(task_params)
    if data_dir is not None:
        tparams["data_dir"] = data_dir
    if task_name == "mmlu_redux":
        tparams.setdefault("subjects", list(MEDICAL_MMLU))
    task = TASKS.get(task_name)(tparams)
    items: list[MCQ] = []
    for item in task.items():
        items.append(mcq_from_item(item, task_name))
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
