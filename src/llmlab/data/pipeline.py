"""The one datatrove glue: run a list of pipeline steps on the local or the Ray executor.

The same steps run on a laptop (``LocalPipelineExecutor``, ``workers`` processes) and on a cluster
(``RayPipelineExecutor`` on the Ray cluster ``ray.init()`` connects to). ``tasks`` is the number of shards
(datatrove ranks; default: ``workers``); a rank that finished is skipped on a rerun with the same
``logging_dir`` (datatrove's completion markers), so a crashed pipeline resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError, DataError, MissingExtraError

EXECUTORS = ("local", "ray")


def run_pipeline(steps: list[Any], *, executor: str = "local", workers: int = 1, logging_dir: str | Path,
                 tasks: int | None = None) -> None:
    """Run ``steps`` (datatrove pipeline steps) to completion.

    Args:
        steps: datatrove ``PipelineStep`` objects (reader first, writer last).
        executor: ``"local"`` or ``"ray"``.
        workers: Processes (local) or Ray tasks in flight at once.
        logging_dir: datatrove's logs, stats and completion markers.
        tasks: Shards; default ``workers``.

    Raises:
        ConfigError: Unknown executor or a count below 1.
        MissingExtraError: datatrove (``datapipe`` extra) or ray (``ray`` extra) is not installed.
        DataError: A shard failed (the message points at the logs).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    n_tasks = tasks if tasks is not None else workers
    if n_tasks < 1:
        raise ConfigError(f"tasks must be >= 1, got {n_tasks}")
    try:
        import datatrove  # noqa: F401
    except ImportError:
        raise MissingExtraError("datatrove", "datapipe", "data pipelines") from None
    if executor == "ray":
        try:
            import ray
        except ImportError:
            raise MissingExtraError("ray", "ray", "--executor ray") from None
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, log_to_driver=False)
        runner: Any = RayPipelineExecutor(pipeline=steps, tasks=n_tasks, workers=workers,
                                          logging_dir=str(logging_dir))
    else:
        from datatrove.executor import LocalPipelineExecutor

        runner = LocalPipelineExecutor(pipeline=steps, tasks=n_tasks, workers=workers, logging_dir=str(logging_dir))
    try:
        runner.run()
    except Exception as exc:  # datatrove re-raises a shard's failure as a plain exception
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"pipeline failed ({first}); see the logs in {logging_dir}") from exc
