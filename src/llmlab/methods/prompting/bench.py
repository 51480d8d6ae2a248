r"""The Prompt Report's MMLU benchmark of techniques (arXiv 2406.06608 §6.1), run on MMLU-Redux.

Conditions, each with and without self-consistency: zero-shot (the report's three baseline
instructions), zero-shot CoT with its three thought inducers ("let's think...", "plan-and-solve",
"thread-of-thought"), few-shot (the report's MMLU exemplar block of the item's category) and few-shot
CoT (its "2-shot CoT" block, JSON responses). The instructions, inducers and exemplar blocks are read at
run time from the report's ``prompts.json`` (``prompt-report/prompts.json`` by the usual data lookup, or
``--prompts FILE``). The answer is taken as the report's experiment does for its two formats: the
``"answer"`` field of a JSON response, else the last parenthesised letter ``(X)``; the MMLU-Redux
extractor is the last fallback.

Deliberate deviations:

- Data: MMLU-Redux (its ``original`` labels by default, ``-t labels=ok_only`` for the clean subset),
  not the report's 2.8K-question MMLU subset.
- One question format (the ``Question: / Choices: (A) ...`` layout of the report's exemplar blocks); the
  report ran two formats. The zero-shot rows average the three baseline instructions by running each
  on a third of the items (item i uses instruction i mod 3); the CoT rows do the same with the inducers.
- Subjects map to the report's four categories by the standard MMLU grouping (our table below).

Writes ``results.json``, ``table.md`` and ``bars.png`` (when matplotlib is installed) under ``--out``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import click

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Roles
from llmlab.core.errors import ConfigError, DataError, MissingExtraError

STEM = {
    "abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
    "college_mathematics", "college_physics", "computer_security", "conceptual_physics", "electrical_engineering",
    "elementary_mathematics", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_mathematics", "high_school_physics", "high_school_statistics", "machine_learning", "virology",
}
HUMANITIES = {
    "formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
    "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios", "philosophy",
    "prehistory", "professional_law", "world_religions",
}
SOCIAL = {
    "econometrics", "high_school_geography", "high_school_government_and_politics", "high_school_macroeconomics",
    "high_school_microeconomics", "high_school_psychology", "human_sexuality", "professional_psychology",
    "public_relations", "security_studies", "sociology", "us_foreign_policy",
}

QUESTION_BLOCK = "Question: {question}\nChoices:\n{choices}"
ZERO_SHOT = "{instruction}\n\n{block}\nAnswer:"
ZERO_SHOT_COT = "{instruction}\n\n{block}\n{inducer}"
FEW_SHOT = "{instruction}\n\n{exemplars}\n\n{block}\nAnswer:"
FEW_SHOT_COT = (
    "{instruction} Respond in JSON with the fields \"reasoning\" and \"answer\" (the letter).\n{exemplars}\n\n"
    "{block}\nResponse:"
)
BASELINES = ("baseline1", "baseline2", "baseline3")
INDUCERS = ("let's think...", "plan-and-solve", "thread-of-thought")

_JSON_ANSWER_RE = re.compile(r'"answer"\s*:\s*"\(?([A-J])\)?"')
_PAREN_RE = re.compile(r"\(([A-J])\)")


def category(subject: str) -> str:
    """The report's MMLU category of a subject (STEM, Humanities, Social Sciences, Other)."""
    s = subject.lower().replace(" ", "_")
    return "STEM" if s in STEM else "Humanities" if s in HUMANITIES else "Social Sciences" if s in SOCIAL else "Other"


def extract_report_answer(text: str | None) -> str | None:
    """The letter of a reply: a JSON ``"answer"`` field, else the last ``(X)``, else MMLU-Redux's extractor.

    Example:
        >>> extract_report_answer('{"reasoning": "...", "answer": "B"}'), extract_report_answer("So (C).")
        ('B', 'C')
    """
    if text is None:
        return None
    m = _JSON_ANSWER_RE.findall(text)
    if m:
        return str(m[-1])
    p = _PAREN_RE.findall(text)
    if p:
        return str(p[-1])
    from llmlab.tasks.mmlu_redux.scoring import extract_choice

    return extract_choice(text)


def load_prompts(path: Path) -> dict[str, Any]:
    """Read the report's ``prompts.json`` and check the entries the benchmark needs."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the Prompt Report prompts ({exc})") from None
    need = [*BASELINES, *INDUCERS, "2-shot CoT", *(f"MMLU {c}" for c in ("STEM", "Humanities", "Social Sciences",
                                                                           "Other"))]
    missing = [k for k in need if k not in data]
    if missing:
        raise DataError(f"{path}: missing prompt(s) {', '.join(map(repr, missing))}")
    return dict(data)


def condition_prompt(condition: str, item: Item, prompts: dict[str, Any], index: int) -> str:
    """The user prompt of one benchmark condition for one MMLU-Redux item."""
    inp = item.input
    choices = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(inp["choices"]))
    block = QUESTION_BLOCK.format(question=inp["question"], choices=choices)
    instruction = prompts[BASELINES[index % 3]]
    if condition == "zero_shot":
        return ZERO_SHOT.format(instruction=instruction, block=block)
    if condition == "zero_shot_cot":
        return ZERO_SHOT_COT.format(instruction=instruction, block=block, inducer=prompts[INDUCERS[index % 3]])
    if condition == "few_shot":
        exemplars = prompts[f"MMLU {category(str(inp['subject']))}"].strip()
        return FEW_SHOT.format(instruction=prompts["baseline1"], exemplars=exemplars, block=block)
    if condition == "few_shot_cot":
        return FEW_SHOT_COT.format(instruction=prompts["baseline1"], exemplars=prompts["2-shot CoT"].rstrip(),
                                   block=block)
    raise ConfigError(f"unknown condition '{condition}'")


CONDITIONS = ("zero_shot", "zero_shot_cot", "few_shot", "few_shot_cot")


async def run_bench(items: Sequence[Item], score: Callable[[Item, str | None], Any], roles: Roles,
                    prompts: dict[str, Any], *, sc_n: int = 5, concurrency: int = 8,
                    max_tokens: int | None = 1024) -> list[dict[str, Any]]:
    """Accuracy of every condition (and its self-consistency variant when ``sc_n > 1``) on ``items``."""
    from llmlab.core.concurrency import gather
    from llmlab.methods.prompting.base import Prompting

    rows = []
    variants = [(c, "direct") for c in CONDITIONS]
    if sc_n > 1:
        variants += [(c, f"self_consistency(n={sc_n})") for c in CONDITIONS]
    for cond, spec in variants:
        method = Prompting({"technique": spec, "max_tokens": max_tokens})
        calls = 0

        def job(i: int, item: Item, cond: str = cond, method: Prompting = method) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                nonlocal calls
                q = Query((Message("user", condition_prompt(cond, item, prompts, i)),), extract=extract_report_answer)
                sol = await method.solve(q, roles)
                calls += len(sol.trace["calls"])
                return score(item, sol.answer)

            return run

        scores = await gather([job(i, it) for i, it in enumerate(items)], limit=concurrency)
        correct = [s.correct for s in scores if s.correct is not None]
        rows.append({
            "condition": cond, "self_consistency": sc_n if spec != "direct" else 1, "n": len(correct),
            "accuracy": sum(correct) / len(correct) if correct else None,
            "unparsed": sum(s.extracted is None for s in scores), "calls": calls,
        })
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of the benchmark rows."""
    out = ["| condition | SC | n | accuracy | unparsed | calls |", "|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "-"
        sc, cond = r["self_consistency"], r["condition"]
        out.append(f"| {cond} | {sc} | {r['n']} | {acc} | {r['unparsed']} | {r['calls']} |")
    return "\n".join(out)


def bar_chart(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """A bar chart of accuracy per condition (matplotlib, the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("matplotlib", "plot", "the prompting benchmark chart") from None
    labels = [f"{r['condition']}{' +SC' if r['self_consistency'] > 1 else ''}" for r in rows]
    values = [r["accuracy"] or 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(range(len(values)), values, color=["#4c72b0" if r["self_consistency"] == 1 else "#dd8452" for r in rows])
    ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@click.group("bench")
def bench() -> None:
    """Benchmarks of methods against each other (the Prompt Report's technique comparison)."""


@bench.command("prompting")
@click.option("--task", "task_name", default="mmlu_redux", show_default=True, help="Only mmlu_redux.")
@click.option("--model", "model_spec", required=True, help="Model spec, e.g. openai:<model>@<url>.")
@click.option("-t", "task_params", multiple=True, metavar="KEY=VALUE", help="MMLU-Redux task config.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False), default=None,
              help="The report's prompts.json (default: prompt-report/prompts.json in the data folder).")
@click.option("--limit", type=int, default=None, help="Only the first N items.")
@click.option("--sc-n", type=int, default=5, show_default=True, help="Self-consistency samples (1: no SC rows).")
@click.option("--concurrency", "-c", type=int, default=8, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench-prompting", show_default=True)
def prompting_cmd(task_name: str, model_spec: str, task_params: tuple[str, ...], data_dir: str | None,
                  prompts_file: str | None, limit: int | None, sc_n: int, concurrency: int, out_dir: str) -> None:
    """Compare zero-shot, zero-shot CoT, few-shot and few-shot CoT (each +/- SC) on MMLU-Redux."""
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import parse_params
    from llmlab.core.data import find_data
    from llmlab.runner import build_roles, make_task

    if task_name != "mmlu_redux":
        raise ConfigError(f"bench prompting runs on mmlu_redux only, not '{task_name}'")
    params = parse_params(task_params)
    if data_dir is not None:
        params.setdefault("data_dir", data_dir)
    task = make_task(task_name, params)
    items = list(task.items())[:limit] if limit is not None else list(task.items())
    if not items:
        raise DataError("bench prompting: no items")
    prompts = load_prompts(Path(prompts_file) if prompts_file else find_data("prompt-report", "prompts.json",
                                                                              data_dir=data_dir))
    roles = build_roles(model_spec)
    rows = run_sync(run_bench(items, task.score, roles, prompts, sc_n=sc_n, concurrency=concurrency))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"model": model_spec, "task": task_name, "n_items": len(items),
                                                  "rows": rows}, indent=2))
    text = table(rows)
    (out / "table.md").write_text(text + "\n")
    try:
        bar_chart(rows, out / "bars.png", f"Prompt Report techniques on MMLU-Redux ({model_spec}, n={len(items)})")
    except MissingExtraError as exc:
        click.echo(f"(no chart: {exc})")
    click.echo(text)
    click.echo(f"written to {out}/")
