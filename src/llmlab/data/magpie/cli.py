"""``llmlab magpie``: generate (resumable), tag, filter (datatrove), and show a model's templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import ConfigError


def _load_tokenizer(path: str | None) -> Any:
    if path is None:
        return None
    try:
        from transformers import AutoTokenizer
    except ImportError:
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("transformers", "hf", "--tokenizer") from None
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--tokenizer {path}: cannot load a tokenizer ({first})") from None


def _positive(name: str, value: int | None) -> None:
    # the same bound as every count of a LabConfig (core/config.py)
    if value is not None and not 1 <= value <= 100_000:
        raise ConfigError(f"{name} must be >= 1 and <= 100000, got {value}")


@click.group("magpie")
def magpie() -> None:
    """Magpie (arXiv 2406.08464): instruction data from an aligned model's pre-query template."""


@magpie.command("generate")
@click.option("--model", "model_spec", required=True, help="The aligned chat model (raw completion: openai: or hf:).")
@click.option("--n", "n", type=int, default=1000, show_default=True, help="Conversations to make.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder (resumable).")
@click.option("--template", "template_model", default=None,
              help="Use this model_configs.json entry (e.g. meta-llama/Meta-Llama-3-8B-Instruct).")
@click.option("--tokenizer", "tokenizer_path", default=None,
              help="Tokenizer folder: derive the template from its chat template; needed for --turns > 1 over HTTP.")
@click.option("--variant", type=click.Choice(["default", "system", "math", "code", "translation"]), default="default",
              show_default=True, help="Pre-query template variant (system prompt / task control).")
@click.option("--batch", type=int, default=None, help="Samples per instruction call (default 200, at most --n).")
@click.option("--turns", type=int, default=1, show_default=True, help="Turns per conversation (Magpie-MT: 2).")
@click.option("-p", "params", multiple=True, metavar="KEY=VALUE",
              help="MagpieConfig: temperature, top_p, max_tokens, sanitize, early_stopping, response_*, seed.")
@click.option("--concurrency", "-c", type=int, default=16, show_default=True, help="Calls in flight.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder holding magpie/.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def generate_cmd(model_spec: str, n: int, out_dir: str, template_model: str | None, tokenizer_path: str | None,
                 variant: str, batch: int | None, turns: int, params: tuple[str, ...], concurrency: int,
                 data_dir: str | None, no_progress: bool) -> None:
    """Generate instructions (raw completion) and responses (chat) into OUT; rerun to resume."""
    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.core.config import build_config, parse_params
    from llmlab.data.magpie.generate import MagpieConfig, generate
    from llmlab.data.magpie.templates import resolve_template

    _positive("--n", n)
    _positive("--batch", batch)
    _positive("--turns", turns)
    _positive("--concurrency", concurrency)
    if not out_dir:
        raise ConfigError("--out needs a folder name")
    values = parse_params(params)
    values.update(n=n, variant=variant, num_turns=turns, batch=min(batch if batch is not None else 200, n))
    cfg = build_config(MagpieConfig, values)
    model = Model(model_spec, concurrency=concurrency)
    tokenizer = _load_tokenizer(tokenizer_path)
    if tokenizer is None:
        tokenizer = getattr(model.backend, "tokenizer", None)
    template = resolve_template(model.name, tokenizer=tokenizer, template_model=template_model, data_dir=data_dir)

    async def _run() -> Any:
        try:
            await model.prepare()
            return await generate(model, out_dir, template, cfg, tokenizer=tokenizer, concurrency=concurrency,
                                  progress=not no_progress)
        finally:
            await model.aclose()

    s = run_sync(_run())
    click.echo(f"{s.records} conversations ({s.empty_instructions} empty instructions) from {template.model} "
               f"[{template.source} template, {cfg.variant}]: {s.calls_made} calls made, {s.calls_resumed} resumed "
               f"-> {s.out_dir}/magpie.jsonl, sharegpt.jsonl, messages.jsonl")


@magpie.command("tag")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--mission", "missions", multiple=True, required=True,
              type=click.Choice(["difficulty", "quality", "classification", "safety", "reward"]))
@click.option("--judge", "judge_spec", default=None, help="Judge model spec (difficulty, quality, classification).")
@click.option("--guard", "guard_spec", default=None, help="Guard model spec (safety), e.g. Llama-Guard.")
@click.option("--reward-model", "reward_path", default=None, help="Reward model folder or hub id (transformers).")
@click.option("--concurrency", "-c", type=int, default=16, show_default=True)
def tag_cmd(run_dir: str, missions: tuple[str, ...], judge_spec: str | None, guard_spec: str | None,
            reward_path: str | None, concurrency: int) -> None:
    """Tag RUN_DIR's records (appends RUN_DIR/tags.jsonl; rerun to resume)."""
    from llmlab.backends.model import Model
    from llmlab.core.concurrency import run_sync
    from llmlab.data.magpie.filters import read_records
    from llmlab.data.magpie.tagging import HFRewardModel, tag_records

    _positive("--concurrency", concurrency)
    path = Path(run_dir) / "magpie.jsonl"
    if not path.exists():
        raise ConfigError(f"{path} not found; run `llmlab magpie generate --out {run_dir}` first")
    records = read_records(path)
    judge = Model(judge_spec, concurrency=concurrency) if judge_spec else None
    guard = Model(guard_spec, concurrency=concurrency) if guard_spec else None
    reward = HFRewardModel(reward_path) if reward_path else None
    made = run_sync(tag_records(records, run_dir, list(missions), judge=judge, guard=guard, reward=reward,
                                concurrency=concurrency))
    click.echo(f"{made} tags added for {len(records)} records -> {Path(run_dir) / 'tags.jsonl'}")


@magpie.command("filter")
@click.argument("source", type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default SOURCE/filtered); emptied first.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--tasks", type=int, default=None, help="Shards (default: --workers).")
@click.option("-p", "params", multiple=True, metavar="KEY=VALUE",
              help="FilterConfig: min_chars, max_chars, languages, min_quality, min_reward, dedup, top_k, ...")
def filter_cmd(source: str, out_dir: str | None, executor: str, workers: int, tasks: int | None,
               params: tuple[str, ...]) -> None:
    """Filter a run folder (or a records .jsonl/.json): length, repetition, language, tags, MinHash dedup."""
    from llmlab.core.config import build_config
    from llmlab.data.magpie.filters import FilterConfig, filter_records
    from llmlab.data.pipeline import check_counts

    check_counts(workers, tasks)
    if not Path(source).exists():
        raise ConfigError(f"{source} not found; give a `llmlab magpie generate` folder or a records file")
    cfg = build_config(FilterConfig, params)
    stats = filter_records(source, out_dir, cfg, executor=executor, workers=workers, tasks=tasks)
    click.echo(json.dumps(stats))


@magpie.command("template")
@click.argument("model")
@click.option("--tokenizer", "tokenizer_path", default=None, help="Derive from this tokenizer's chat template.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def template_cmd(model: str, tokenizer_path: str | None, data_dir: str | None) -> None:
    """Print MODEL's pre-query templates and stop tokens as JSON."""
    from llmlab.data.magpie.templates import derive_template, resolve_template

    tok = _load_tokenizer(tokenizer_path)
    t = derive_template(tok, model) if tok is not None else resolve_template(model, data_dir=data_dir)
    click.echo(json.dumps({"model": t.model, "source": t.source, "pre_query": t.pre_query,
                           "stop_tokens": list(t.stop_tokens), "stop_token_ids": list(t.stop_token_ids),
                           "mt_append": t.mt_append}, indent=2, ensure_ascii=False))
