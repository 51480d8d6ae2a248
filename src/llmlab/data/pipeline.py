"""The datatrove glue: run a list of pipeline steps on the local or the Ray executor.

Both corpus systems (Magpie, mOSCAR) describe their work as a list of datatrove steps and hand it to
:func:`run_pipeline`, so that the same pipeline runs on a laptop (``LocalPipelineExecutor``, a process
pool of ``workers``) and on a cluster (``RayPipelineExecutor``). A run keeps datatrove's completion
markers in ``logging_dir``: re-running the same call skips the tasks that already finished, so a crashed
run resumes where it stopped. A task that failed is reported as a :class:`~llmlab.core.errors.LabError`
naming its log file, never silently dropped (datatrove's Ray executor only logs application errors).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError, DataError, LabError, MissingExtraError

EXECUTORS = ("local", "ray")
MAX_WORKERS = 1024  # processes / Ray actors at once
MAX_TASKS = 10_000  # shards: each one is a datatrove rank with its own log and completion marker


def check_counts(workers: int, tasks: int | None) -> None:
    """One line for a worker or shard count out of range (before anything is read or started).

    Raises:
        ConfigError: ``workers`` not in 1..MAX_WORKERS or ``tasks`` not in 1..MAX_TASKS.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be >= 1 and <= {MAX_WORKERS}, got {workers}")
    if tasks is not None and not 1 <= tasks <= MAX_TASKS:
        raise ConfigError(f"--tasks must be >= 1 and <= {MAX_TASKS}, got {tasks}")


def _require(module: str, package: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(package, extra, f"the {module} pipeline executor")


def _quiet_datatrove() -> None:
    """Datatrove logs every step at INFO on stderr; keep warnings only unless DATATROVE_LOG_LEVEL says more."""
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("DATATROVE_LOG_LEVEL", "WARNING"))


def _ensure_ray(workers: int) -> None:
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS (ray's own variable) joins an existing cluster; otherwise a local one of `workers` CPUs.
        address = os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(workers, 1), **kwargs)


def run_pipeline(steps: list, *, executor: str = "local", workers: int = 1, logging_dir: str | Path,
                 tasks: int | None = None) -> None:
    """Run datatrove ``steps`` as ``tasks`` shards on ``workers`` parallel processes (local) or Ray actors.

    Args:
        steps: datatrove pipeline steps (readers, filters, writers, dedup stages), in order.
        executor: ``"local"`` (datatrove's ``LocalPipelineExecutor``) or ``"ray"`` (``RayPipelineExecutor``;
            joins ``RAY_ADDRESS`` when set, else starts a local Ray cluster of ``workers`` CPUs).
        workers: how many tasks run at once.
        logging_dir: datatrove's logs, stats and completion markers (what makes a re-run resume).
        tasks: number of shards (datatrove ranks); defaults to ``workers``. The output of a pipeline depends on
            ``tasks``, never on ``workers`` or ``executor``.

    Raises:
        ConfigError: an unknown executor or a count below 1.
        MissingExtraError: datatrove (extra ``datapipe``) or ray (extra ``ray``) is missing.
        DataError: a task failed (the message names its log).

    Example:
        >>> from datatrove.pipeline.readers import JsonlReader  # doctest: +SKIP
        >>> run_pipeline([JsonlReader("in/"), ...], workers=2, logging_dir="logs/")  # doctest: +SKIP
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    check_counts(workers, tasks)
    n_tasks = tasks if tasks is not None else workers
    _require("datatrove", "datatrove", "datapipe")
    logging_dir = Path(logging_dir)
    _quiet_datatrove()
    runner: Any
    if executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        runner = LocalPipelineExecutor(pipeline=steps, tasks=n_tasks, workers=min(workers, n_tasks),
                                       logging_dir=str(logging_dir))
    else:
        _require("ray", "ray", "ray")
        from datatrove.executor.ray import RayPipelineExecutor

        _ensure_ray(workers)
        runner = RayPipelineExecutor(pipeline=steps, tasks=n_tasks, workers=min(workers, n_tasks),
                                     logging_dir=str(logging_dir), mem_per_cpu_gb=0.25)
    try:
        runner.run()
    except (LabError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one task ran in this process (workers=1) and its step raised
        raise DataError(f"a pipeline task failed ({type(exc).__name__}: {exc}); completed tasks are kept, "
                        f"see the logs in {logging_dir}") from exc
    _quiet_datatrove()  # a task running in this process replaced the handlers with its own
    missing = runner.get_incomplete_ranks(range(n_tasks), skip_completed=True)
    if missing:
        logs = ", ".join(str(logging_dir / "logs" / f"task_{r:05d}.log") for r in missing[:3])
        raise DataError(f"{len(missing)} of {n_tasks} pipeline tasks failed; see {logs}")


__all__ = ["EXECUTORS", "MAX_TASKS", "MAX_WORKERS", "check_counts", "run_pipeline"]
