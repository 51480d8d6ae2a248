"""``llmlab mceval setup | toolchains | canonical``: install the toolchains, list them, run the positive control."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from typing import Any

import click

from llmlab.tasks.mceval.languages import LANGS, debian_packages


def toolchain_table() -> list[tuple[str, str]]:
    """``(language, "ok" | "not run: <tool> missing" | "reference comparison")`` for every language."""
    out = []
    for name, lang in LANGS.items():
        if lang.kind in ("json", "html", "markdown"):
            out.append((name, "reference comparison (no toolchain)"))
            continue
        missing = lang.missing_tool()
        out.append((name, "ok" if missing is None else f"not run: {missing} missing"))
    return out


def install(packages: list[str], *, dry_run: bool = False, echo: Any = click.echo) -> dict[str, Any]:
    """``apt-get install`` each package on its own (one failure does not stop the rest); timed.

    Returns:
        ``{"packages": {pkg: "ok" | "failed: ..."}, "seconds": total}``.
    """
    result: dict[str, Any] = {"packages": {}, "seconds": 0.0}
    if shutil.which("apt-get") is None:
        raise click.ClickException("apt-get not found: install the toolchains with your system's package manager "
                                   f"({' '.join(packages)})")
    if os.geteuid() != 0 and not dry_run:
        raise click.ClickException("apt-get needs root: run `sudo llmlab mceval setup` (or --dry-run to list)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    t_all = time.monotonic()
    if dry_run:
        echo("apt-get install -y --no-install-recommends " + " ".join(packages))
        return result
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL)
    for pkg in packages:
        t0 = time.monotonic()
        done = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg], env=env,
                              check=False, capture_output=True, text=True)
        took = time.monotonic() - t0
        status = "ok" if done.returncode == 0 else "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
        result["packages"][pkg] = status
        echo(f"  {pkg:<40} {status}  ({took:.0f}s)")
    result["seconds"] = time.monotonic() - t_all
    return result


@click.group("mceval")
def mceval() -> None:
    """McEval: toolchains for 40 languages and the canonical-solution positive control."""


@mceval.command("setup")
@click.option("--language", "-l", "languages", multiple=True, help="Only these languages (default: all).")
@click.option("--dry-run", is_flag=True, help="Print the apt-get command only.")
def setup_cmd(languages: tuple[str, ...], dry_run: bool) -> None:
    """Install the Debian packages of every McEval toolchain (apt-get; never a downloaded binary)."""
    for name in languages:
        if name not in LANGS:
            raise click.ClickException(f"unknown McEval language {name!r}; use one of: {', '.join(LANGS)}")
    pkgs = ["bubblewrap", *debian_packages(list(languages) if languages else None)]  # the sandbox first
    res = install(pkgs, dry_run=dry_run)
    if not dry_run:
        failed = [p for p, s in res["packages"].items() if s != "ok"]
        click.echo(f"installed {len(pkgs) - len(failed)}/{len(pkgs)} packages in {res['seconds']:.0f}s"
                   + (f"; failed: {', '.join(failed)}" if failed else ""))
    for name, status in toolchain_table():
        click.echo(f"  {name:<14} {status}")


@mceval.command("toolchains")
def toolchains_cmd() -> None:
    """Which McEval languages can run on this machine."""
    for name, status in toolchain_table():
        click.echo(f"  {name:<14} {status}")


@mceval.command("canonical")
@click.option("--language", "-l", "languages", multiple=True, help="Languages (default: all).")
@click.option("--limit", type=int, default=None, help="Items per language.")
@click.option("--concurrency", "-c", type=int, default=None, help="Sandboxed runs at once (default: cores).")
@click.option("--timeout-scale", type=float, default=1.0, show_default=True)
@click.option("--data-dir", default=None, help="Folder holding mceval/generation/.")
@click.option("--json", "json_out", default=None, help="Write per-item outcomes to this JSONL file.")
def canonical_cmd(languages: tuple[str, ...], limit: int | None, concurrency: int | None, timeout_scale: float,
                  data_dir: str | None, json_out: str | None) -> None:
    """Positive control: every item's canonical solution, shaped as a model answer, must pass."""
    from llmlab.core.concurrency import run_sync

    rows = run_sync(canonical_sweep(list(languages) if languages else list(LANGS), limit=limit,
                                    concurrency=concurrency, timeout_scale=timeout_scale, data_dir=data_dir))
    click.echo(render_table(rows))
    if json_out:
        with open(json_out, "w") as fh:
            for r in rows:
                for o in r["outcomes"]:
                    fh.write(json.dumps({"language": r["language"], **o}) + "\n")


async def canonical_sweep(languages: list[str], *, limit: int | None = None, concurrency: int | None = None,
                          timeout_scale: float = 1.0, data_dir: str | None = None) -> list[dict[str, Any]]:
    """Run the positive control for ``languages``; one summary row per language (with its failures)."""
    from llmlab import sandbox
    from llmlab.core.concurrency import gather
    from llmlab.tasks.mceval import McEval

    if concurrency is not None:
        sandbox.set_concurrency(concurrency)
    out = []
    for name in languages:
        task = McEval({"language": name, "limit": limit, "timeout_scale": timeout_scale, "data_dir": data_dir})
        items = list(task.items())
        t0 = time.monotonic()
        outs = await gather([_control(task, it) for it in items], limit=sandbox.concurrency())
        ran = [o for o in outs if o.ran]
        row: dict[str, Any] = {
            "language": name, "items": len(items), "ran": len(ran), "passed": sum(o.passed for o in ran),
            "median_s": statistics.median([o.wall_s for o in ran]) if ran else None,
            "seconds": time.monotonic() - t0, "status": None if ran else (outs[0].status if outs else "no items"),
            "outcomes": [{"task_id": it.id, **o.as_dict()} for it, o in zip(items, outs, strict=True)],
        }
        out.append(row)
    return out


def _control(task: Any, item: Any) -> Any:
    async def go() -> Any:
        return await task.run_one(item, task.canonical_reply(item))

    return go


def render_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: language, items, canonical pass rate, median run time (or why it did not run)."""
    lines = ["| language | items | canonical pass | median run (s) |", "|---|---:|---:|---:|"]
    for r in rows:
        if r["ran"] == 0:
            lines.append(f"| {r['language']} | {r['items']} | {r['status']} | - |")
            continue
        rate = r["passed"] / r["ran"]
        med = "-" if r["median_s"] is None else f"{r['median_s']:.2f}"
        lines.append(f"| {r['language']} | {r['items']} | {r['passed']}/{r['ran']} ({100 * rate:.1f}%) | {med} |")
    fails = [(r["language"], o) for r in rows for o in r["outcomes"] if not o["passed"] and
             not o["status"].startswith("not run")]
    if fails:
        lines.append("")
        lines.append("failures:")
        for lang, o in fails:
            tail = (o["stderr"] or o["stdout"]).strip().splitlines()[-1:] or [""]
            lines.append(f"- {o['task_id']} ({lang}): {o['status']}: {tail[0][:160]}")
    return "\n".join(lines)
