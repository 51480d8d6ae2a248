"""Smoke check of a fresh install with only ``.[all]`` (no dev or compare extras).

Every registered entry of every system imports, every command group answers --help, and the arena ratings
(numpy + scipy) run. Run by ``.ci/run`` in a fresh venv; lists every failure and exits non-zero if any.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from llmlab.core.registry import REGISTRIES, all_systems


def main() -> int:
    failures = []
    for kind, reg in REGISTRIES.items():
        if kind == "dataset":
            continue
        for name in reg.names():
            try:
                reg.get(name)
            except Exception as exc:  # report every missing dependency, not just the first
                failures.append(f"{kind} {name} ({reg.owner(name)}): {type(exc).__name__}: {exc}")
    llmlab = [sys.executable, "-m", "llmlab.cli"]
    for name in REGISTRIES["command"].names():
        r = subprocess.run([*llmlab, name, "--help"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            failures.append(f"command {name} --help: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    with tempfile.TemporaryDirectory() as tmp:
        votes = Path(tmp) / "votes.jsonl"
        rows = [{"model_a": "a", "model_b": "b", "winner": w} for w in ("model_a", "model_b", "tie", "model_a")]
        votes.write_text("".join(json.dumps(r) + "\n" for r in rows * 5))
        r = subprocess.run([*llmlab, "arena", "ratings", str(votes), "--rounds", "20"],
                           capture_output=True, text=True, timeout=300, env={**os.environ})
        if r.returncode != 0:
            failures.append(f"arena ratings: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    n = sum(len(s.provides) for s in all_systems())
    for f in failures:
        print("FAIL", f)
    print(f"smoke (.[all]): {n} registered entries of {len(all_systems())} systems, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
