"""``llmlab wildbench``: check official WildBench leaderboard tables against our aggregation."""

from __future__ import annotations

import json

import click


@click.group("wildbench")
def wildbench() -> None:
    """WildBench (WB-Reward, WB-Score) utilities."""


@wildbench.command("verify-leaderboard")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--tol", type=float, default=0.01, show_default=True, help="Largest allowed |reported − recomputed|.")
@click.option("--json", "as_json", is_flag=True, help="Every check as JSON.")
@click.pass_context
def verify_cmd(ctx: click.Context, directory: str, tol: float, as_json: bool) -> None:
    """Recompute every reward and WB-Score macro in the official tables in DIRECTORY from their components.

    Prints, per table and field, how many numbers were recomputed and the largest difference, then every
    number that differs by more than --tol; exits 1 if there is any.
    """
    from llmlab.tasks.wildbench.leaderboard import verify_leaderboard
    from llmlab.tasks.wildbench.rewards import TASK_WEIGHTS

    checks = verify_leaderboard(directory)
    bad = [c for c in checks if c.diff > tol]
    if as_json:
        click.echo(json.dumps({"tol": tol, "n_checks": len(checks), "n_failed": len(bad),
                               "checks": [{"file": c.file, "model": c.model, "field": c.field,
                                           "reported": c.reported, "recomputed": c.recomputed, "diff": c.diff}
                                          for c in checks]}, indent=1))
    else:
        from rich.console import Console
        from rich.table import Table

        groups: dict[tuple[str, str], list[float]] = {}
        for c in checks:
            kind = c.field
            for cat in TASK_WEIGHTS:
                kind = kind.replace(cat, "<category>")
            groups.setdefault((c.file, kind), []).append(c.diff)
        table = Table(title=f"WildBench leaderboard check: {directory} (tolerance {tol})")
        for col in ("table", "field", "numbers", "max |diff|", "over tol"):
            table.add_column(col, justify="left" if col in ("table", "field") else "right")
        for (file, kind), diffs in sorted(groups.items()):
            table.add_row(file, kind, str(len(diffs)), f"{max(diffs):.2e}", str(sum(d > tol for d in diffs)))
        console = Console(width=max(Console().width, 130))
        console.print(table)
        if bad:
            worst = Table(title="differences over tolerance")
            for col in ("table", "model", "field", "reported", "recomputed", "diff"):
                worst.add_column(col)
            for c in sorted(bad, key=lambda c: -c.diff)[:50]:
                worst.add_row(c.file, c.model, c.field, f"{c.reported:.6g}", f"{c.recomputed:.6g}", f"{c.diff:.4g}")
            console.print(worst)
        click.echo(f"{len(checks)} numbers recomputed, {len(bad)} differ by more than {tol}")
    if bad:
        ctx.exit(1)
