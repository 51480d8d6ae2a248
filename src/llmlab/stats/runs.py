"""Error bars on stored runs: per-run estimates, ``llmlab compare`` and the eval-matrix table.

A run's headline metrics (``score``: the mean of ``Score.value``; ``accuracy``: the mean of
``Score.correct`` where the task sets it) are recomputed from the store's rows with their standard
errors and 95% CIs (:mod:`llmlab.stats.inference`), clustered by ``Score.cluster`` when items share a
question. ``compare`` pairs two runs of the same task on the items both scored without error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import ConfigError, DataError
from llmlab.core.runstore import ItemRow, RunStore
from llmlab.stats.inference import Z95, Estimate, PairedComparison, mean_se, paired_compare

METRICS = ("score", "accuracy")


def metric_values(rows: Sequence[ItemRow], metric: str) -> tuple[list[ItemRow], list[float]]:
    """The rows that carry ``metric`` (error rows never do) and their values."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric '{metric}'; one of: {', '.join(METRICS)}")
    keep: list[ItemRow] = []
    values: list[float] = []
    for r in rows:
        if r.error is not None:
            continue
        v = r.score if metric == "score" else (None if r.correct is None else float(r.correct))
        if v is None:
            continue
        keep.append(r)
        values.append(float(v))
    return keep, values


def run_estimates(rows: Sequence[ItemRow]) -> dict[str, Estimate]:
    """``score`` and (when the task marks items correct) ``accuracy``, each with SE and 95% CI.

    Example:
        >>> from llmlab.core.runstore import ItemRow
        >>> rows = [ItemRow(str(i), i, "", None, None, float(i % 2), bool(i % 2), None, {}, 0, 0, 0, 0.0, 0.0,
        ...                 0, 0, None, {}) for i in range(4)]
        >>> run_estimates(rows)["accuracy"].fmt()
        '0.500 ± 0.566'
    """
    out: dict[str, Estimate] = {}
    for metric in METRICS:
        keep, values = metric_values(rows, metric)
        if values:
            out[metric] = mean_se(values, [r.cluster for r in keep])
    return out


def open_run(run_id: str, runs_dir: str | Path) -> tuple[RunStore, dict[str, Any]]:
    """Open a stored run read-only, with its manifest.

    Raises:
        ConfigError: No such run.
        DataError: The store has no manifest.
    """
    root = Path(runs_dir) / run_id
    if not (root / "run.sqlite").exists():
        raise ConfigError(f"no run '{run_id}' in {runs_dir}/ (see the run ids there, or pass --runs-dir)")
    store = RunStore(root, readonly=True)
    manifest = store.manifest()
    if manifest is None:
        store.close()
        raise DataError(f"{root / 'run.sqlite'}: no manifest; the run never started")
    return store, manifest


@dataclass
class RunComparison:
    """Two runs paired on their shared items."""

    run_a: str
    run_b: str
    task: str
    metric: str
    n_a: int
    n_b: int
    item_ids: list[str]
    a: list[float]
    b: list[float]
    result: PairedComparison
    notes: list[str] = field(default_factory=list)

    def differing(self) -> list[tuple[str, float, float]]:
        """Items where the runs' scores differ, largest difference first."""
        pairs = [(i, x, y) for i, x, y in zip(self.item_ids, self.a, self.b, strict=True) if x != y]
        return sorted(pairs, key=lambda t: -abs(t[1] - t[2]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a, "run_b": self.run_b, "task": self.task, "metric": self.metric,
            "shared_items": len(self.item_ids), "items_a": self.n_a, "items_b": self.n_b,
            **self.result.to_dict(), "differing_items": [i for i, _, _ in self.differing()], "notes": self.notes,
        }

    def render(self, show: int = 10) -> str:
        r = self.result
        d = r.diff
        lines = [
            f"{self.task} · {self.metric} on {len(self.item_ids)} shared items "
            f"(A has {self.n_a}, B has {self.n_b} scored)",
            f"  A {self.run_a}: {r.mean_a:.4f}",
            f"  B {self.run_b}: {r.mean_b:.4f}",
        ]
        if d.se is None:
            lines.append(f"  A − B = {d.mean:+.4f} (no SE: {d.n} item(s))")
        else:
            cl = f", {d.n} items in {d.n_clusters} clusters" if d.clustered else ""
            lines.append(f"  A − B = {d.mean:+.4f} ± {Z95 * d.se:.4f}  "
                         f"(95% CI {d.ci_low:+.4f} to {d.ci_high:+.4f}; SE {d.se:.4f}{cl})")
        if r.t is not None and r.t_p is not None:
            lines.append(f"  paired t = {r.t:.3f}, p = {r.t_p:.4g}")
        if r.binary:
            lines.append(f"  McNemar exact: A right/B wrong {r.a_only}, B right/A wrong {r.b_only}, "
                         f"p = {r.mcnemar_p:.4g}")
        if r.corr is not None:
            lines.append(f"  per-item correlation of A and B: {r.corr:.3f}")
        lines.extend(f"  note: {n}" for n in self.notes)
        diff = self.differing()
        if diff:
            lines.append(f"  {len(diff)} items differ; first {min(show, len(diff))}:")
            lines.extend(f"    {i}: A {x:g}  B {y:g}" for i, x, y in diff[:show])
        return "\n".join(lines)


def compare_runs(run_a: str, run_b: str, runs_dir: str | Path = "runs", *, metric: str | None = None,
                 runs_dir_b: str | Path | None = None) -> RunComparison:
    """Pair two stored runs on the items both scored without error.

    Args:
        run_a: Run A's id.
        run_b: Run B's id.
        runs_dir: Folder holding the runs.
        metric: ``accuracy`` or ``score``; default accuracy when every shared item of both runs has it.
        runs_dir_b: Run B's folder when it is elsewhere.

    Raises:
        ConfigError: The runs are of different tasks, share no scored items, or a run is missing.
    """
    store_a, man_a = open_run(run_a, runs_dir)
    store_b, man_b = open_run(run_b, runs_dir_b if runs_dir_b is not None else runs_dir)
    try:
        rows_a, rows_b = list(store_a.rows()), list(store_b.rows())
    finally:
        store_a.close()
        store_b.close()
    if man_a["task"] != man_b["task"]:
        raise ConfigError(f"runs '{run_a}' ({man_a['task']}) and '{run_b}' ({man_b['task']}) are of different "
                          "tasks; compare runs of one task")
    chosen = metric
    if chosen is None:
        acc_a = {r.item_id for r in metric_values(rows_a, "accuracy")[0]}
        acc_b = {r.item_id for r in metric_values(rows_b, "accuracy")[0]}
        score_a = {r.item_id for r in metric_values(rows_a, "score")[0]}
        score_b = {r.item_id for r in metric_values(rows_b, "score")[0]}
        chosen = "accuracy" if (acc_a & acc_b) and (acc_a & acc_b) == (score_a & score_b) else "score"
    keep_a, va = metric_values(rows_a, chosen)
    keep_b, vb = metric_values(rows_b, chosen)
    by_b = {r.item_id: (r, v) for r, v in zip(keep_b, vb, strict=True)}
    ids: list[str] = []
    xa: list[float] = []
    xb: list[float] = []
    clusters: list[str | None] = []
    for r, v in zip(keep_a, va, strict=True):
        if r.item_id in by_b:
            ids.append(r.item_id)
            xa.append(v)
            xb.append(by_b[r.item_id][1])
            clusters.append(r.cluster if r.cluster is not None else by_b[r.item_id][0].cluster)
    if not ids:
        raise ConfigError(f"runs '{run_a}' and '{run_b}' share no items scored without error; nothing to pair")
    notes = []
    pa, pb = man_a.get("task_params") or {}, man_b.get("task_params") or {}
    differ = sorted(k for k in set(pa) | set(pb) if k not in ("data_dir", "data_file") and pa.get(k) != pb.get(k))
    if differ:  # the same item id may then be a different question (another split or subset): say so
        notes.append(f"the runs' task settings differ ({', '.join(differ)}); items are paired by id")
    return RunComparison(run_a, run_b, man_a["task"], chosen, len(keep_a), len(keep_b), ids, xa, xb,
                         paired_compare(xa, xb, clusters), notes)


def render_estimates(estimates: dict[str, Estimate]) -> list[tuple[str, str]]:
    """``(label, text)`` rows for a report table."""
    rows = []
    for metric, e in estimates.items():
        if e.se is None:
            rows.append((f"{metric} ± 95% CI", e.fmt(4)))
            continue
        cl = f" in {e.n_clusters} clusters" if e.clustered else ""
        rows.append((f"{metric} ± 95% CI", f"{e.fmt(4)} [{e.ci_low:.4f}, {e.ci_high:.4f}], SE {e.se:.4f}, n={e.n}{cl}"))
    return rows


def matrix_table(cells: Sequence[dict[str, Any]]) -> str:
    """One table of an eval matrix: a row per task, a column per model, ``score ± CI`` per cell.

    Each cell is ``{"task", "model", "run_id", "estimate": Estimate | None, "errors": int}``.
    """
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    tasks = list(dict.fromkeys(c["task"] for c in cells))
    models = list(dict.fromkeys(c["model"] for c in cells))
    by = {(c["task"], c["model"]): c for c in cells}
    table = Table(title=f"eval matrix ({len(tasks)} tasks × {len(models)} models; mean ± 95% CI)")
    table.add_column("task")
    for m in models:
        table.add_column(m)
    for t in tasks:
        row = [t]
        for m in models:
            c = by.get((t, m))
            if c is None:
                row.append("—")
                continue
            est: Estimate | None = c["estimate"]
            text = est.fmt(3) if est is not None else "no scored items"
            if c["errors"]:
                text += f" ({c['errors']} errors)"
            row.append(f"{text}\n[dim]{c['run_id']}[/dim]")
        table.add_row(*row)
    buf = StringIO()
    Console(file=buf, width=max(100, 34 * (len(models) + 1))).print(table)
    return buf.getvalue().rstrip()


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--metric", type=click.Choice(list(METRICS)), default=None,
              help="Default: accuracy when both runs mark items correct, else score.")
@click.option("--show", type=int, default=10, show_default=True, help="How many differing items to list.")
@click.option("--json", "as_json", is_flag=True)
def compare_command(run_a: str, run_b: str, runs_dir: str, metric: str | None, show: int, as_json: bool) -> None:
    """Paired difference of RUN_A and RUN_B on their shared items, with its 95% CI and paired tests."""
    c = compare_runs(run_a, run_b, runs_dir, metric=metric)
    click.echo(json.dumps(c.to_dict(), indent=2) if as_json else c.render(show))


__all__ = ["RunComparison", "compare_command", "compare_runs", "matrix_table", "metric_values", "open_run",
           "render_estimates", "run_estimates"]
