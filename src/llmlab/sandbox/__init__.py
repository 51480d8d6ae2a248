"""Run untrusted (model-written) code safely: ``await llmlab.sandbox.run(files, command, ...)``.

Each run gets a fresh temporary directory as its cwd, HOME and TMPDIR, a scrubbed environment (nothing
of the parent's — no API keys or tokens — unless passed explicitly), no network, limits on CPU time,
address space, file size, open files and processes, a wall-clock timeout that kills the whole process
tree, and capped stdout/stderr. How much of this the machine can enforce is probed once
(:func:`isolation`; ``llmlab doctor`` prints it): bubblewrap namespaces where available, else
``unshare``, else resource limits only (warned loudly). See :mod:`llmlab.sandbox.isolation_modes`.

Used by McEval (:mod:`llmlab.tasks.mceval`), the DiscoPOP discovery loop, and every method that executes
generated code. Not a defence against kernel exploits: it is the usual namespace + rlimit sandbox.

Example:
    >>> from llmlab.core.concurrency import run_sync
    >>> from llmlab import sandbox
    >>> r = run_sync(sandbox.run({"main.sh": "echo $((6 * 7))"}, ["sh", "main.sh"], timeout=5))
    >>> r.ok, r.stdout.strip()
    (True, '42')
"""

from __future__ import annotations

from llmlab.sandbox.isolation_modes import Isolation
from llmlab.sandbox.isolation_modes import detect as isolation
from llmlab.sandbox.runner import (
    Limits,
    RunResult,
    SandboxProcess,
    concurrency,
    python_env,
    run,
    run_blocking,
    scrubbed_env,
    set_concurrency,
)

__all__ = [
    "Isolation",
    "Limits",
    "RunResult",
    "SandboxProcess",
    "concurrency",
    "isolation",
    "python_env",
    "run",
    "run_blocking",
    "scrubbed_env",
    "set_concurrency",
]
