"""``llmlab data``: inspect benchmark data without a model.

One click sub-group per dataset (``llmlab data mmlu_redux stats``, ``llmlab data tot_arithmetic stats``).
To add a dataset, write a ``@data.group("<name>")`` with its commands below; every command takes
``--data-dir`` (resolved like ``llmlab eval``, see :func:`llmlab.core.data.find_data`) and ``--json``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import click

DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="Folder holding <dataset>/ (default: $LLMLAB_DATA_DIR, ../shared/data, the cache).",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group("data")
def data() -> None:
    """Inspect benchmark data (counts, label formats, annotation statistics)."""


def _console() -> Any:
    import shutil

    from rich.console import Console

    # The per-subject table has 10 columns: never squeeze it below 140 characters.
    return Console(width=max(140, shutil.get_terminal_size().columns))


# -- MMLU-Redux ----------------------------------------------------------------------------------------

@data.group("mmlu_redux")
def mmlu_redux_group() -> None:
    """MMLU-Redux 2.0 (57 subjects × 100 annotated questions)."""


@mmlu_redux_group.command("stats")
@JSON_OPTION
@DATA_DIR_OPTION
@click.option("--subject", "subjects", multiple=True, help="Only this subject (repeatable).")
def mmlu_redux_stats(as_json: bool, data_dir: str | None, subjects: tuple[str, ...]) -> None:
    """Per-subject and per-error-type counts (e.g. Virology: 57% erroneous)."""
    from llmlab.core.data import find_data
    from llmlab.tasks.mmlu_redux import DATASET, ERROR_TYPES, SUBDIR, load_redux, redux_stats

    folder = find_data(DATASET, SUBDIR, data_dir=data_dir)
    infos, rows = load_redux(folder, list(subjects) if subjects else None)
    stats = redux_stats(infos, rows)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    from rich.table import Table

    short = {"ok": "ok", "bad question clarity": "bad Q", "bad options clarity": "bad opts",
             "no correct answer": "no correct", "multiple correct answers": "multiple",
             "wrong groundtruth": "wrong GT", "expert": "expert"}
    labels = [*ERROR_TYPES, *stats["unknown_labels"]]
    table = Table(title=f"MMLU-Redux: {stats['n_rows']} questions in {stats['n_files']} files")
    table.add_column("subject")
    table.add_column("n", justify="right")
    for t in labels:
        table.add_column(short.get(t, t), justify="right")
    table.add_column("erroneous", justify="right")
    for subj, c in stats["subjects"].items():
        table.add_row(subj, str(c["n"]), *(str(c.get(t, 0)) for t in labels), f"{100 * c['erroneous']:.0f}%")
    table.add_section()
    total = stats["error_types"]
    table.add_row("ALL", str(stats["n_rows"]), *(str(total.get(t, 0)) for t in labels),
                  f"{100 * stats['erroneous']['fraction']:.2f}%")
    console = _console()
    console.print(table)

    by_type = Table(title="per error type")
    for col in ("error type", "n", "share", "correct_answer formats"):
        by_type.add_column(col, justify="right" if col in ("n", "share") else "left")
    for t, n in total.items():
        kinds = ", ".join(f"{k} {v}" for k, v in stats["correct_answer_kinds"].get(t, {}).items())
        by_type.add_row(t, str(n), f"{100 * n / stats['n_rows']:.2f}%", kinds)
    console.print(by_type)
    console.print("corrected-label protocol: " + ", ".join(f"{k} {v}" for k, v in stats["corrected"].items()))
    odd = ", ".join(f"{s} ({v['encoding']}, '{v['delimiter']}', {v['rows']} rows)" for s, v in stats["files"].items())
    if odd:
        console.print(f"files not utf-8/','/100 rows: {odd}")
    console.print("flags: " + ", ".join(f"{k} {v}" for k, v in stats["flags"].items()))


# -- ToT-Arithmetic ------------------------------------------------------------------------------------

@data.group("tot_arithmetic")
def tot_arithmetic_group() -> None:
    """Test of Time, ToT-Arithmetic (1850 questions, 7 categories)."""


@tot_arithmetic_group.command("stats")
@JSON_OPTION
@DATA_DIR_OPTION
@click.option("--file", "data_file", type=click.Path(dir_okay=False), default=None, help="A ToT JSON file.")
def tot_arithmetic_stats(as_json: bool, data_dir: str | None, data_file: str | None) -> None:
    """Questions per category and answer format (label key set)."""
    from llmlab.tasks.test_of_time import ToTArithmetic

    items = ToTArithmetic({"data_dir": data_dir, "data_file": data_file}).items()
    per_cat = Counter(str(it.metadata["category"]) for it in items)
    per_fmt = Counter((str(it.metadata["category"]), ",".join(it.metadata["keys"])) for it in items)
    stats: dict[str, Any] = {
        "n": len(items),
        "categories": dict(per_cat.most_common()),
        "formats": {c: {f: n for (c2, f), n in per_fmt.most_common() if c2 == c} for c in per_cat},
    }
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"ToT-Arithmetic: {stats['n']} questions")
    for col in ("category", "n", "label formats"):
        table.add_column(col, justify="right" if col == "n" else "left")
    for c, n in stats["categories"].items():
        table.add_row(c, str(n), ", ".join(f"{f} ({k})" for f, k in stats["formats"][c].items()))
    _console().print(table)


__all__ = ["data"]
