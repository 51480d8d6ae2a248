"""The ``llmlab`` command line: a thin, synchronous edge over the async library.

Every :class:`~llmlab.core.errors.LabError` becomes one line on stderr and a non-zero exit code; only a
bug shows a traceback. Subcommand groups owned by a paper's module (``lab``, ``generate``, ``data``,
``arena``, ``wildbench``) are imported only when invoked, so ``llmlab list`` never imports torch.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from typing import Any

import click

from llmlab.core.errors import LabError


class LazyGroup(click.Group):
    """A click group whose subcommands come from a registry kind, imported on first use.

    ``registry_kind`` names the registry (``command`` for ``llmlab``, ``lab_command`` for ``llmlab lab``);
    the registry's entries are ``"module:attr"`` targets with a one-line help each.
    """

    registry_kind: str = "command"

    @property
    def lazy_commands(self) -> dict[str, tuple[str, str]]:
        from llmlab.core.registry import REGISTRIES

        reg = REGISTRIES[self.registry_kind]
        return {name: (reg.raw(name), help_) for name, help_ in reg.items()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands
        if cmd_name in lazy:
            target, _ = lazy[cmd_name]
            module, _, attr = target.partition(":")
            try:
                cmd: click.Command = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                where = f"{ctx.command_path} {cmd_name}"
                raise click.ClickException(f"command '{where}' is not available ({exc})") from None
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        lazy = self.lazy_commands
        for name in self.list_commands(ctx):
            if name in lazy:
                rows.append((name, lazy[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None:
                    rows.append((name, cmd.get_short_help_str(80)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llmlab")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """llmlab: the systems of the LLM papers of 10-16 June 2024 — methods, benchmarks, models."""
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")


# -- shared options ------------------------------------------------------------------------------------

def model_options(f: Any, *, many: bool = False) -> Any:
    """Options that build the Model stack (shared by eval and run); ``many``: ``--model`` may repeat."""
    opts = [
        click.option("--model", "-m", "model_spec", required=True, multiple=many,
                     help="openai:<model>@<url>[,<url>...] | hf:<id or path> | mock:<script>"
                          + (" (repeat for an eval matrix)" if many else "")),
        click.option("--role", "roles", multiple=True, metavar="NAME=SPEC",
                     help="A named role's model (repeat a name for a list, e.g. MoA proposers)."),
        click.option("--cache/--no-cache", default=False, help="Cache responses in SQLite (complete keys)."),
        click.option("--budget", type=float, default=None, help="Spending limit in USD."),
        click.option("--on-budget", type=click.Choice(["warn", "stop"]), default="warn"),
        click.option("--prices", type=click.Path(dir_okay=False), default=None,
                     help="YAML: model: {input_per_m: $, output_per_m: $}."),
        click.option("--max-retries", type=int, default=6, show_default=True),
        click.option("--timeout", type=float, default=None, help="Seconds per call (openai backend)."),
        click.option("-p", "params", multiple=True, metavar="KEY=VALUE", help="Method config (YAML values)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


# -- commands ------------------------------------------------------------------------------------------

@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(kind: str | None, as_json: bool) -> None:
    """List the 31 systems with their status and everything registered (or one KIND: method, task, ...)."""
    from llmlab.core.registry import KINDS, REGISTRIES, all_systems
    from llmlab.systems import CORE, SYSTEMS

    systems = all_systems()
    plugins = [s for s in systems if s not in SYSTEMS and s not in CORE]
    if kind is not None:
        singular = kind[:-1] if kind.endswith("s") and kind[:-1] in REGISTRIES else kind
        if singular in REGISTRIES:
            for name, help_ in REGISTRIES[singular].items():
                click.echo(f"{name}\t{help_ or REGISTRIES[singular].owner(name)}")
            return
        views = REGISTRIES["list_view"]
        if kind not in views:
            raise LabError(f"unknown list '{kind}'; one of: {', '.join([*KINDS, *views.names()])}")
        click.echo(views.get(kind)())
        return
    if as_json:
        out: dict[str, Any] = {
            "systems": [_system_json(s) for s in SYSTEMS],
            "plugins": [_system_json(s) for s in plugins],
        }
        out.update({f"{k}s": REGISTRIES[k].names() for k in KINDS})
        click.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"llmlab systems ({len(SYSTEMS)})", show_lines=False)
    for col in ("system", "arXiv", "kind", "status", "module"):
        table.add_column(col)
    for s in (*SYSTEMS, *plugins):
        table.add_row(s.name, s.arxiv, s.kind, s.status, s.module)
    console = Console()
    console.print(table)
    for k in ("method", "task", "backend"):
        console.print(f"{k}s: {', '.join(REGISTRIES[k].names())}")


def _system_json(s: Any) -> dict[str, Any]:
    d = s._asdict()
    d["provides"] = [{"kind": p.kind, "name": p.name} for p in s.provides]
    return dict(d)


@cli.command("eval")
@click.argument("task")
@click.option("--method", default="direct", show_default=True)
@functools.partial(model_options, many=True)
@click.option("-t", "task_params", multiple=True, metavar="KEY=VALUE", help="Task config (YAML values).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder with <dataset>/ files.")
@click.option("--data", "data_file", type=click.Path(dir_okay=False), default=None,
              help="A task's data file (sets the task parameter data_file).")
@click.option("--limit", type=int, default=None, help="Only the first N items.")
@click.option("--concurrency", "-c", type=int, default=8, show_default=True, help="Items in flight.")
@click.option("--run-id", default=None, help="Resume (or name) a run.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--seed", type=int, default=None,
              help="Seed every sampler: each request's seed (backends fold in the sample index) and seeded task/"
                   "method configs; part of the run's identity. Default: none sent, as the official code.")
@click.option("--progress/--no-progress", default=True)
@click.option("--transcripts/--no-transcripts", default=True, show_default=True,
              help="Store every model call's request and response with its item (for llmlab view).")
def eval_cmd(task: str, method: str, data_dir: str | None, data_file: str | None, limit: int | None, concurrency: int,
             run_id: str | None, runs_dir: str, seed: int | None, progress: bool, task_params: tuple[str, ...],
             transcripts: bool, model_spec: tuple[str, ...], **model_kw: Any) -> None:
    """Evaluate METHOD on TASK, one stored row per item; re-run with --run-id to resume.

    TASK may be a comma-separated list and --model may repeat: every task x model cell is then its own run,
    and one table of score ± 95% CI per cell is printed.
    """
    from llmlab.runner import EvalSpec, eval_matrix, matrix_summary, run_eval

    tasks = [t.strip() for t in task.split(",") if t.strip()]
    spec = EvalSpec(task=tasks[0] if tasks else task, method=method, task_params=list(task_params),
                    data_dir=data_dir, data=data_file, limit=limit, concurrency=concurrency, run_id=run_id,
                    runs_dir=runs_dir, seed=seed, transcripts=transcripts, model_spec=model_spec[0], **model_kw)
    if len(tasks) != 1 or len(model_spec) != 1:
        summaries = eval_matrix(spec, tasks, list(dict.fromkeys(model_spec)), progress=progress)
        click.echo(matrix_summary(summaries))
        failed = [s for s in summaries if s.n_errors]
        if failed:
            raise LabError(
                f"{sum(s.n_errors for s in failed)} items failed in {len(failed)} of {len(summaries)} runs "
                f"(first: {failed[0].run_id}: {failed[0].errors[0]}); re-run a cell with its --run-id to retry them"
                + (f", or the whole matrix with --run-id {run_id}" if run_id is not None else "")
            )
        return
    summary = run_eval(spec, progress=progress)
    click.echo(summary.render())
    if summary.n_errors:
        raise LabError(
            f"{summary.n_errors} of {summary.n_items} items failed (first: {summary.errors[0]}); "
            f"re-run with --run-id {summary.run_id} to retry only those"
        )


@cli.command("run")
@click.argument("method")
@model_options
@click.argument("question")
def run_cmd(method: str, question: str, **model_kw: Any) -> None:
    """Answer one QUESTION with METHOD and print the answer and a summary of the trace."""
    from llmlab.runner import run_one

    click.echo(run_one(method, question, **model_kw))


@cli.command("report")
@click.argument("run_id")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def report_cmd(run_id: str, runs_dir: str, as_json: bool) -> None:
    """Summarise a stored run (table; writes report.json and a PNG next to the store)."""
    from llmlab.runner import report

    click.echo(report(run_id, runs_dir, as_json=as_json))


@cli.command("score")
@click.argument("task")
@click.option("--predictions", required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write each line back with 'correct'.")
@click.option("--json", "as_json", is_flag=True)
@click.option("-t", "task_params", multiple=True, metavar="KEY=VALUE")
@click.option("--model", "-m", "model_spec", default=None, help="The judge, for tasks scored by a model.")
@click.option("--role", "roles", multiple=True, metavar="NAME=SPEC", help="A named role (judge=SPEC).")
def score_cmd(task: str, predictions: str, out: str | None, as_json: bool, task_params: tuple[str, ...],
              model_spec: str | None, roles: tuple[str, ...]) -> None:
    """Score a JSONL file of predictions made elsewhere (judge tasks: --role judge=SPEC)."""
    from llmlab.runner import score_file

    click.echo(score_file(task, predictions, out=out, as_json=as_json, task_params=list(task_params),
                          model_spec=model_spec, roles=list(roles)))


@cli.group("cache")
def cache_group() -> None:
    """Inspect or clear the response cache."""


@cache_group.command("stats")
@click.option("--path", type=click.Path(dir_okay=False), default=None)
def cache_stats(path: str | None) -> None:
    """Print entries and size of the cache."""
    cache = _open_cache(path)
    click.echo(json.dumps(cache.stats() if cache is not None else {"path": path, "entries": 0, "exists": False},
                          indent=2))


@cache_group.command("clear")
@click.option("--path", type=click.Path(dir_okay=False), default=None)
def cache_clear(path: str | None) -> None:
    """Delete every cached response."""
    cache = _open_cache(path)
    click.echo(f"removed {cache.clear() if cache is not None else 0} entries")


def _open_cache(path: str | None) -> Any:
    """The cache at ``path`` (default location when None); None when an explicit path does not exist."""
    import sqlite3
    from pathlib import Path

    from llmlab.backends.cache import ResponseCache

    if path is not None and not Path(path).is_file():
        return None  # nothing cached there: never create folders or a database just to report on it
    try:
        return ResponseCache(path)
    except (OSError, sqlite3.DatabaseError) as exc:
        raise LabError(f"cache {path or '(default)'}: cannot open ({exc}); pass --path to a cache file") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning LabError into one line and an exit code."""
    try:
        try:
            cli.main(args=argv, prog_name="llmlab", standalone_mode=False)
        except BaseExceptionGroup as group:
            from llmlab.core.concurrency import first_error

            raise first_error(group) from None
    except LabError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted; completed items are saved — re-run with the same --run-id to resume", err=True)
        return 130
    except click.UsageError as exc:  # one line, not click's usage block
        where = exc.ctx.command_path if exc.ctx is not None else "llmlab"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted; completed items are saved — re-run with the same --run-id to resume", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["cli", "main"]
