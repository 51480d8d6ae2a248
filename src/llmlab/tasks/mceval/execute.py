"""Run one McEval program in the sandbox and judge it (the official pass rules, timeouts always fail)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmlab import sandbox
from llmlab.tasks.mceval.languages import Lang, render_script, run_env

EXCERPT = 2000  # characters of stdout/stderr kept in a failed item's record


@dataclass(frozen=True)
class Outcome:
    """The verdict on one program.

    Attributes:
        passed: The official pass rule held (exit 0 and no failure marker; or the reference matched).
        status: ``passed``, ``failed``, ``timeout``, ``killed:<why>``, ``mismatch``, or ``not run: <tool> missing``.
        wall_s: Seconds the sandboxed run took (0 for reference comparisons).
        stdout: Excerpt of stdout (failures only).
        stderr: Excerpt of stderr (failures only).
    """

    passed: bool
    status: str
    wall_s: float = 0.0
    stdout: str = ""
    stderr: str = ""

    @property
    def ran(self) -> bool:
        return not self.status.startswith("not run")

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "status": self.status, "wall_s": round(self.wall_s, 3),
                "stdout": self.stdout, "stderr": self.stderr}


def _html_equal(a: str, b: str) -> bool:
    from llmlab.core.errors import MissingExtraError

    try:
        from bs4 import BeautifulSoup
    except ImportError as exc:
        raise MissingExtraError("beautifulsoup4", "code", "McEval HTML scoring") from exc
    pa, pb = BeautifulSoup(a, "html.parser").prettify(), BeautifulSoup(b, "html.parser").prettify()
    return bool(pa.strip() == pb.strip())


def compare_reference(kind: str, answer: str, reference: str) -> bool:
    """Whether a markup answer matches its reference.

    JSON: equal after parsing; HTML: equal after BeautifulSoup ``prettify``; Markdown: identical text
    (trailing newlines ignored: a fenced block cannot carry them).
    """
    if kind == "json":
        try:
            return bool(json.loads(answer) == json.loads(reference))
        except (json.JSONDecodeError, ValueError):
            return False
    if kind == "html":
        return _html_equal(answer, reference)
    return answer.rstrip("\n") == reference.rstrip("\n")


def _judge(lang: Lang, res: sandbox.RunResult) -> tuple[bool, str]:
    if res.timed_out:
        return False, "timeout"  # official: a pass for Common Lisp and Shell; a failure here, always
    if res.killed_by is not None and not res.killed_by.startswith("signal:"):
        return False, f"killed:{res.killed_by}"  # a sandbox limit; a crash (abort, segfault) is a plain fail
    if res.exit_code != 0:
        return False, "failed"
    out = res.stdout.lower() if lang.lower_stdout else res.stdout
    if any(m in out for m in lang.stdout_fail) or any(m in res.stderr for m in lang.stderr_fail):
        return False, "failed"
    if lang.name == "PHP" and "assert()" in res.stderr and "failed" in res.stderr:
        return False, "failed"
    return True, "passed"


async def execute(lang: Lang, program: str, item: Mapping[str, Any], *, data_files: Mapping[str, bytes],
                  timeout_scale: float = 1.0, expected_output: str | None = None) -> Outcome:
    """Build and run ``program`` for ``item`` in a fresh sandbox and apply the language's pass rule.

    Args:
        lang: The language.
        program: The full program (extracted code + test harness), or the AWK command.
        item: The data row (``module`` names the Erlang file).
        data_files: Input files the tests read, by path relative to the data root (``data/...``).
        timeout_scale: Multiplies the language's wall-clock limit (slow machines).
        expected_output: AWK only: the canonical command's output to compare with (``None``: this IS the
            canonical command; its full stdout comes back in the outcome).

    Returns:
        An :class:`Outcome`.
    """
    missing = lang.missing_tool()
    if missing is not None:
        return Outcome(False, f"not run: {missing} missing")
    module = item.get("module")
    src = lang.filename.replace("{module}", str(module) if module else "main")
    files: dict[str, str | bytes] = dict(data_files)
    if lang.kind == "awk":
        files["main.sh"] = program + "\n"
        command = ["sh", "main.sh"]
    else:
        files[f"run/{src}"] = program
        files["run/run.sh"] = render_script(lang, str(module) if module else None)
        command = ["bash", "-c", "cd run && exec bash run.sh"]
    ro: tuple[str, ...] = ()
    if lang.name == "Go":
        import anyio.to_thread

        from llmlab.tasks.mceval.languages import go_warm_cache

        warm = await anyio.to_thread.run_sync(go_warm_cache)
        ro = (str(warm),) if warm is not None else ()
    t0 = time.monotonic()
    res = await sandbox.run(files, command, timeout=lang.timeout * timeout_scale, memory=lang.memory,
                            env=run_env(lang), ro_paths=ro,
                            limits=sandbox.Limits(processes=1024, open_files=4096, memory=lang.memory))
    wall = time.monotonic() - t0
    if lang.kind == "awk":
        if res.timed_out or res.killed_by:
            ok, status = False, ("timeout" if res.timed_out else f"killed:{res.killed_by}")
        elif expected_output is None:  # running the canonical command for its reference output
            return Outcome(res.exit_code == 0, "reference", wall, res.stdout, res.stderr[-EXCERPT:])
        else:
            ok = res.stdout == expected_output
            status = "passed" if ok else "mismatch"
    else:
        ok, status = _judge(lang, res)
    if ok:
        return Outcome(True, status, wall)
    return Outcome(False, status, wall, res.stdout[-EXCERPT:], res.stderr[-EXCERPT:])
