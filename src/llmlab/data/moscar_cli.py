"""``llmlab moscar``: the mOSCAR document filters (filter, audit), its planted test corpus and its scoring."""

from __future__ import annotations

import json
from pathlib import Path

import click

from llmlab.core.errors import ConfigError


@click.group("moscar")
def moscar() -> None:
    """The mOSCAR document filters (arXiv 2406.08707) on datatrove: filter, audit, planted corpus."""


@moscar.command("filter")
@click.argument("inp", metavar="IN", type=click.Path(path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--workers", type=int, default=1, show_default=True, help="Tasks run at once.")
@click.option("--tasks", type=int, default=None, help="Shards (default: max(workers, input files)).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="datatrove's local process pool, or Ray (RAY_ADDRESS joins a cluster; else a local one).")
@click.option("-p", "params", multiple=True, metavar="KEY=VALUE", help="MoscarConfig field, e.g. -p min_images=0.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def filter_cmd(inp: Path, out: Path, workers: int, tasks: int | None, executor: str, params: tuple[str, ...],
               progress: bool) -> None:
    """Filter the JSONL documents in IN (a file or a folder) into OUT, with the audit (audit.json, audit.html).

    Re-running the same command resumes: finished tasks are skipped.
    """
    from llmlab.core.config import build_config
    from llmlab.data.moscar import MoscarConfig, filter_corpus
    from llmlab.data.pipeline import check_counts

    check_counts(workers, tasks)
    if not inp.exists():
        raise ConfigError(f"IN {inp} does not exist (give a .jsonl[.gz] file or a folder of them)")
    config = build_config(MoscarConfig, params)
    report = filter_corpus(inp, out, config, workers=workers, tasks=tasks, executor=executor, progress=progress)
    _summary(report, out)


@moscar.command("audit")
@click.argument("out", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--sample", type=int, default=5, show_default=True, help="Removed items shown per stage.")
def audit_cmd(out: Path, sample: int) -> None:
    """Rewrite OUT/audit.json and OUT/audit.html from a filtered folder (counts and samples per stage)."""
    from llmlab.data.moscar import write_audit

    if sample < 0:
        raise ConfigError(f"--sample must be >= 0, got {sample}")
    if not (out / "audit").is_dir():
        raise ConfigError(f"{out} has no audit/ folder: give the OUT of 'llmlab moscar filter'")
    _summary(write_audit(out, sample), out)


@moscar.command("corpus")
@click.argument("out", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--docs", type=int, default=2000, show_default=True, help="Clean base documents.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--noise-rate", type=float, default=0.04, show_default=True, help="Per kind of noise.")
def corpus_cmd(out: Path, docs: int, seed: int, noise_rate: float) -> None:
    """Build the planted test corpus from this machine's Debian message catalogues (OUT/input, planted.json)."""
    from llmlab.data.moscar_corpus import KINDS, build_corpus

    if docs < 10:
        raise ConfigError(f"--docs must be >= 10, got {docs}")
    if not 0 < noise_rate * len(KINDS) <= 1:
        raise ConfigError(f"--noise-rate must be in (0, {1 / len(KINDS):.2f}] (one share per kind), got {noise_rate}")
    click.echo(json.dumps(build_corpus(out, n_docs=docs, seed=seed, noise_rate=noise_rate), indent=1))


@moscar.command("evaluate")
@click.argument("corpus", metavar="CORPUS", type=click.Path(path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(path_type=Path))
def evaluate_cmd(corpus: Path, out: Path) -> None:
    """Precision and recall of each filter on the noise planted in CORPUS, from the filtered folder OUT."""
    from llmlab.data.moscar import iter_removals
    from llmlab.data.moscar_corpus import evaluate

    if not (corpus / "planted.json").is_file():
        raise ConfigError(f"{corpus} has no planted.json: build it with 'llmlab moscar corpus'")
    if not (out / "audit").is_dir():
        raise ConfigError(f"{out} has no audit/ folder: run 'llmlab moscar filter' into it first")
    res = evaluate(corpus, list(iter_removals(out)))
    (out / "evaluation.json").write_text(json.dumps(res, indent=1))
    click.echo(json.dumps(res, indent=1))


def _summary(report: dict, out: Path) -> None:
    stages = {s: {k: v[k] for k in ("documents_removed", "paragraphs_removed", "images_removed")}
              for s, v in report["stages"].items()}
    click.echo(json.dumps({"out": str(out), "documents_in": report["documents_in"],
                           "documents_out": report["documents_out"], "stages": stages,
                           "audit": [str(out / "audit.json"), str(out / "audit.html")]}, indent=1))


__all__ = ["moscar"]
