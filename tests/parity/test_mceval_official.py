"""McEval side by side with the official extractors on the official example outputs (opt-in).

Point ``LLMLAB_MCEVAL_OFFICIAL`` at a checkout of MCEVAL/McEval (commit 09dec12; it needs ``eval/extract/``
and ``examples/evaluate/generation/``). For every example line (real model outputs with ``raw_generation``),
the official ``extract()`` builds its program, which we run with the official C command in our sandbox, and
our own pipeline scores the same reply; the verdicts must agree except for the official bugs listed below.

    git --git-dir=<mirror> archive HEAD eval/extract examples/evaluate | tar -x -C /tmp/scratch-mceval
    LLMLAB_MCEVAL_OFFICIAL=/tmp/scratch-mceval pytest tests/parity/test_mceval_official.py

Result (2026-12-03): C 49/50 agree; the one difference is KNOWN_DIFFERENCES["C/11"].
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from llmlab.core.concurrency import run_sync
from llmlab.tasks.mceval import LANGS, McEval
from llmlab.tasks.mceval.execute import execute

OFFICIAL = os.environ.get("LLMLAB_MCEVAL_OFFICIAL")

KNOWN_DIFFERENCES = {
    # The reply's fence is tagged ```python around C code. The official C regex only skips a c/cpp tag, so
    # the word "python" stays in the program, which then fails to compile; we take the fence body.
    "C/11": ("passed", "failed"),
}


@pytest.mark.skipif(OFFICIAL is None, reason="set LLMLAB_MCEVAL_OFFICIAL to an official McEval checkout")
def test_verdicts_match_the_official_extractors_on_the_official_examples() -> None:
    root = Path(str(OFFICIAL))
    sys.path.insert(0, str(root / "eval"))
    try:
        from extract import extract  # the official package (outside this repository)
    finally:
        sys.path.pop(0)
    checked, diffs = 0, {}
    for path in sorted((root / "examples" / "evaluate" / "generation").glob("*.jsonl")):
        lang = path.stem
        if lang not in LANGS or LANGS[lang].missing_tool():
            continue
        task = McEval({"language": lang})
        for line in path.read_text().splitlines():
            row = json.loads(line)
            reply = row["raw_generation"][0]
            item = task.item_for(lang, row)
            ours = run_sync(task.run_one(item, reply))
            official_program = extract(reply, dict(row), lang)
            theirs = run_sync(execute(LANGS[lang], official_program, row, data_files={}))
            checked += 1
            if ours.passed != theirs.passed:
                diffs[row["task_id"]] = (ours.status, theirs.status)
    assert checked >= 50
    assert diffs == {k: v for k, v in KNOWN_DIFFERENCES.items() if k in diffs}
    assert set(diffs) <= set(KNOWN_DIFFERENCES)
