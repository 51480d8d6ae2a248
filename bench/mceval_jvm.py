"""McEval's JVM languages (Kotlin, Scala, Groovy): the canonical control with and without the harness's JVM flags.

Each item's canonical solution goes through the McEval path (extract, program + test, sandboxed build and
run, official pass rule) under two or more JVM configurations, back to back item by item (the order
alternates from item to item) so that load drift on the shared machine hits every configuration alike:

- ``harness``: the language exactly as ``llmlab.tasks.mceval.languages.LANGS`` runs it (``McEval.run_one``);
- ``plain``: the same command with the launcher's own JVM options only (no ``JAVA_OPTS`` of ours: Debian's
  ``kotlinc``/``scala`` then use ``-Xmx256M -Xms32M``, ``groovy`` the JVM's defaults);
- ``--try NAME='FLAGS'``: the launcher defaults plus FLAGS (probing other flags).

Every row goes to ``--out`` (JSONL; a rerun skips the rows already there, so an interrupted sweep resumes).
The summary gives, per language and configuration, the canonical pass count, the median and total wall time,
the items whose verdict differs between configurations (must be none for a flag to be kept), and the load
average seen. Final line: ``jvm_speedup=<plain total / harness total> verdicts_changed=<n>``.

Usage: ``LLMLAB_DATA_DIR=../shared/data python bench/mceval_jvm.py --out /tmp/jvm.jsonl [-l Kotlin] [--limit 5]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from llmlab import sandbox
from llmlab.core.concurrency import gather, run_sync
from llmlab.tasks.mceval import LANGS, McEval
from llmlab.tasks.mceval.execute import Outcome, execute
from llmlab.tasks.mceval.languages import JVM_LAUNCHER_OPTS, Lang

LANGUAGES = ("Kotlin", "Scala", "Groovy")


def variant(lang: Lang, flags: str | None) -> Lang:
    """``lang`` with ``JAVA_OPTS`` = the launcher's default plus ``flags`` (``None``: no JAVA_OPTS of ours)."""
    env = {k: v for k, v in lang.env.items() if k != "JAVA_OPTS"}
    if flags is not None:
        env["JAVA_OPTS"] = f"{JVM_LAUNCHER_OPTS.get(lang.name, '')} {flags}".strip()
    return dataclasses.replace(lang, env=env)


def _first_error(o: Outcome) -> str:
    for line in (o.stderr + "\n" + o.stdout).splitlines():
        if "error" in line.lower() or "exception" in line.lower() or "assert" in line.lower():
            return line.strip()[:200]
    return (o.stderr or o.stdout).strip().splitlines()[-1][:200] if (o.stderr or o.stdout).strip() else ""


async def _one(task: McEval, item: Any, config: str, flags: str | bool | None) -> dict[str, Any]:
    reply = task.canonical_reply(item)
    if flags is True:  # the harness as registered: exactly McEval.run_one
        out = await task.run_one(item, reply)
    else:
        lang = variant(task.lang_of(item), flags if isinstance(flags, str) else None)
        out = await execute(lang, task.program(item, reply), item.metadata["row"], data_files=task.data_files(),
                            timeout_scale=task.cfg.timeout_scale)
    return {"language": task.lang_of(item).name, "task_id": item.id, "config": config, "passed": out.passed,
            "status": out.status, "wall_s": round(out.wall_s, 3), "load1": round(os.getloadavg()[0], 2),
            "error": "" if out.passed else _first_error(out), "time": time.time()}


def summarize(rows: list[dict[str, Any]], configs: list[str]) -> tuple[str, float | None, int]:
    """Per language and configuration: pass count, median/total seconds, load; verdict differences."""
    lines = ["| language | config | items | canonical pass | median run (s) | total (s) | load avg (1 min) |",
             "|---|---|---:|---:|---:|---:|---|"]
    changed = 0
    tot: dict[str, float] = {c: 0.0 for c in configs}
    diffs: list[str] = []
    for lang in dict.fromkeys(r["language"] for r in rows):
        by: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in configs}
        for r in rows:
            if r["language"] == lang and r["config"] in by:
                by[r["config"]][r["task_id"]] = r
        common = sorted(set.intersection(*(set(v) for v in by.values())), key=lambda t: int(t.split("/")[1]))
        for c in configs:
            rs = [by[c][t] for t in common]
            if not rs:
                continue
            walls = [r["wall_s"] for r in rs]
            loads = [r["load1"] for r in rs]
            tot[c] += sum(walls)
            lines.append(f"| {lang} | {c} | {len(rs)} | {sum(r['passed'] for r in rs)}/{len(rs)} | "
                         f"{statistics.median(walls):.2f} | {sum(walls):.0f} | {min(loads):.1f}-{max(loads):.1f} |")
        for t in common:
            verdicts = {c: by[c][t]["passed"] for c in configs}
            if len(set(verdicts.values())) > 1:
                changed += 1
                diffs.append(f"- verdict differs: {t}: " + ", ".join(f"{c}={by[c][t]['status']}" for c in configs))
        for t in common:
            r = by[configs[0]][t]
            if not r["passed"]:
                diffs.append(f"- {t} ({configs[0]}): {r['status']} ({r['wall_s']:.1f} s): {r['error']}")
    speed = tot["plain"] / tot["harness"] if "plain" in tot and tot.get("harness") else None
    return "\n".join([*lines, "", *diffs]), speed, changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-l", "--language", action="append", choices=LANGUAGES, help="default: all three")
    ap.add_argument("--limit", type=int, default=None, help="items per language (default: all)")
    ap.add_argument("--configs", default="harness,plain", help="comma-separated: harness, plain, --try names")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME=FLAGS",
                    help="an extra configuration: the launcher defaults plus FLAGS")
    ap.add_argument("--concurrency", "-c", type=int, default=1, help="sandboxed runs at once (default 1)")
    ap.add_argument("--timeout-scale", type=float, default=1.0)
    ap.add_argument("--out", required=True, help="JSONL of every run; rows already there are not rerun")
    ap.add_argument("--summary-only", action="store_true", help="summarize --out, run nothing")
    args = ap.parse_args()
    flags: dict[str, str | bool | None] = {"harness": True, "plain": None}
    for t in args.tries:
        name, _, fl = t.partition("=")
        flags[name] = fl
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in flags]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; define them with --try NAME=FLAGS")
    out = Path(args.out)
    rows = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()] if out.exists() else []
    done = {(r["task_id"], r["config"]) for r in rows}
    sandbox.set_concurrency(args.concurrency)
    if not args.summary_only:
        for name in args.language or LANGUAGES:
            if LANGS[name].missing_tool():
                print(f"# {name}: not run: {LANGS[name].missing_tool()} missing", flush=True)
                continue
            task = McEval({"language": name, "limit": args.limit, "timeout_scale": args.timeout_scale})
            items = list(task.items())

            def job(it: Any, order: list[str], task: McEval = task) -> Any:
                async def go() -> list[dict[str, Any]]:
                    got = []
                    for c in order:
                        if (it.id, c) in done:
                            continue
                        r = await _one(task, it, c, flags[c])
                        with out.open("a") as fh:  # one line per run: nothing lost on a crash
                            fh.write(json.dumps(r) + "\n")
                        print(f"{r['task_id']:<10} {c:<8} {r['status']:<8} {r['wall_s']:6.1f}s load {r['load1']:.1f}"
                              + (f"  {r['error'][:100]}" if r["error"] else ""), flush=True)
                        got.append(r)
                    return got

                return go

            jobs = [job(it, configs if i % 2 == 0 else configs[::-1]) for i, it in enumerate(items)]
            for got in run_sync_gather(jobs, args.concurrency):
                rows += got
    table, speed, changed = summarize(rows, configs)
    print(table)
    print(f"jvm_speedup={speed:.2f} verdicts_changed={changed}" if speed is not None
          else f"verdicts_changed={changed}")


def run_sync_gather(jobs: list[Any], limit: int) -> list[list[dict[str, Any]]]:
    """Run the per-item jobs, ``limit`` at once."""
    return list(run_sync(gather(jobs, limit=limit)))


if __name__ == "__main__":
    main()
