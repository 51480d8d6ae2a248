"""The datatrove glue: executor choice, bad counts, a missing Ray, a failing shard."""

from __future__ import annotations

import sys

import pytest

from llmlab.core.errors import ConfigError, DataError, MissingExtraError
from llmlab.data.pipeline import run_pipeline

pytest.importorskip("datatrove")


def test_bad_executor_and_counts_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--executor must be one of local, ray"):
        run_pipeline([], executor="slurm", logging_dir=tmp_path)
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        run_pipeline([], workers=0, logging_dir=tmp_path)


def test_ray_missing_names_its_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"llmlab\[ray\]"):
        run_pipeline([], executor="ray", logging_dir=tmp_path)


def _boom(data, rank: int = 0, world_size: int = 1):
    raise ValueError("shard exploded")
    yield  # pragma: no cover - a generator step


def test_a_failing_shard_is_one_data_error_pointing_at_the_logs(tmp_path):
    with pytest.raises(DataError, match=r"shard exploded|tasks failed") as info:
        run_pipeline([_boom], logging_dir=tmp_path / "logs")
    assert str(tmp_path / "logs") in str(info.value)


def test_steps_run_once_per_task_and_completed_tasks_are_skipped(tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()

    def mark(data, rank: int = 0, world_size: int = 1):
        (seen / f"{rank}").write_text(str(world_size))
        yield from ()

    run_pipeline([mark], logging_dir=tmp_path / "logs", tasks=3)
    assert sorted(p.name for p in seen.iterdir()) == ["0", "1", "2"]
    for p in seen.iterdir():
        p.unlink()
    run_pipeline([mark], logging_dir=tmp_path / "logs", tasks=3)  # resumed: all done, nothing reruns
    assert not list(seen.iterdir())
