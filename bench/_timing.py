"""Timing helpers shared by the bench scripts (run as ``python bench/x.py``, which puts bench/ on sys.path).

- :func:`add_threads_arg` / :func:`set_threads`: the ``--threads`` option and applying it to torch and numba.
- :func:`best_time`: best (or a low quantile) of repeated single calls after warm-up calls.
- :func:`mean_time`: mean of one timed block of back-to-back calls (decode steps).
- :func:`interleaved`: best-of timings of several paths, interleaved over rounds so that load from other
  processes hits every path alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

THREADS_HELP = "torch and numba threads (1: see docs/perf.md)"


def add_threads_arg(ap: argparse.ArgumentParser, default: int = 1) -> None:
    """Add ``--threads`` (torch and numba threads) to ``ap``."""
    ap.add_argument("--threads", type=int, default=default, help=THREADS_HELP)


def set_threads(n: int) -> None:
    """Use ``n`` torch intra-op threads and (when numba is installed) ``n`` numba threads, capped at its pool."""
    import torch

    torch.set_num_threads(n)
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def best_time(fn: Callable[[], Any], repeats: int, *, warmup: int = 1, quantile: float = 0.0) -> float:
    """Seconds of one call of ``fn``: the ``quantile`` of ``repeats`` timed calls (0: the best).

    ``warmup`` untimed calls come first (numba compile / cache load, allocator warm-up).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[int(len(times) * quantile)]


def mean_time(fn: Callable[[], Any], calls: int, *, warmup: int = 3) -> float:
    """Mean seconds per call over one timed block of ``calls`` back-to-back calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def interleaved(
    paths: dict[str, Callable[[], Any]], rounds: int, repeats: Callable[[str], int]
) -> dict[str, list[float]]:
    """Per path, one :func:`best_time` (best of ``repeats(name)``) per round, the paths taking turns each round."""
    times: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            times[name].append(best_time(fn, repeats(name)))
    return times
