"""BT fit and bootstrap on 1M battles among 100 models: llmlab vs fschat 0.2.36, same data, same process.

    python bench/arena.py [--battles 1000000] [--models 100] [--fschat-rounds 10]

Needs the bench-only dependencies ``fschat==0.2.36 scikit-learn pandas`` (fschat's import also pulls
``pytz plotly psutil accelerate`` and torch). Timings are wall-clock on this machine; peak memory is
tracemalloc's peak of Python/numpy allocations during the call (measured in a second, separate call so
tracing does not slow the timed one).

Baselines: ``fastchat.serve.monitor.elo_analysis.compute_elo_mle_with_tie`` (sklearn LogisticRegression on
the duplicated battle table, L2 with C=1) and ``get_bootstrap_result(..., compute_elo_mle_with_tie, 10)``.
Ours: ``bradley_terry`` (unregularised, current FastChat's objective) and ``bradley_terry(reg=0.5)`` (the
same objective as fschat 0.2.36, converged), ``bootstrap_bt(rounds=1000)``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def make_battles(n: int, m: int, seed: int = 0) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    true = rng.normal(0, 150, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    tie = rng.random(n) < 0.2
    kind = np.where(rng.random(n) < 0.5, "tie", "tie (bothbad)")
    winner = np.where(tie, kind, np.where(rng.random(n) < p, "model_a", "model_b")).astype(object)
    names = np.array([f"model-{i:03d}" for i in range(m)], dtype=object)
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--fschat-rounds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()

    from fastchat.serve.monitor import elo_analysis as fs

    from llmlab.stats.arena import FSCHAT_0236_REG, as_battles, bootstrap_bt, bradley_terry, online_elo

    df = make_battles(args.battles, args.models)
    bradley_terry(df.iloc[:2000])  # warm imports (scipy) outside the timed calls

    theirs, t_fs = timed(lambda: fs.compute_elo_mle_with_tie(df))
    ours_l2, t_l2 = timed(lambda: bradley_terry(df, reg=FSCHAT_0236_REG))
    ours_mle, t_mle = timed(lambda: bradley_terry(df))
    bt = as_battles(df)
    _, t_conv = timed(lambda: as_battles(df))
    _, t_fit_only = timed(lambda: bradley_terry(bt, reg=FSCHAT_0236_REG))
    mem_fs = peak_mb(lambda: fs.compute_elo_mle_with_tie(df))
    mem_ours = peak_mb(lambda: bradley_terry(df, reg=FSCHAT_0236_REG))

    d_l2 = ours_l2.as_dict()
    d_mle = ours_mle.as_dict()
    diff_l2 = max(abs(theirs[k] - d_l2[k]) for k in d_l2)
    diff_mle = max(abs(theirs[k] - d_mle[k]) for k in d_mle)

    boot, t_boot = timed(lambda: bootstrap_bt(bt, rounds=args.rounds, seed=0))
    _, t_fs_boot = timed(lambda: fs.get_bootstrap_result(df, fs.compute_elo_mle_with_tie, args.fschat_rounds))

    elo_fs, t_elo_fs = timed(lambda: fs.compute_elo(df))
    elo_ours, t_elo = timed(lambda: online_elo(bt))
    elo_same = elo_ours.as_dict() == elo_fs

    rows = [
        ("BT fit, fschat compute_elo_mle_with_tie", t_fs, mem_fs, 1.0),
        ("BT fit, llmlab reg=0.5 (same objective) from DataFrame", t_l2, mem_ours, t_fs / t_l2),
        ("BT fit, llmlab reg=0 (current FastChat objective)", t_mle, float("nan"), t_fs / t_mle),
        ("  of which DataFrame -> integer codes", t_conv, float("nan"), float("nan")),
        ("  fit from Battles (reg=0.5)", t_fit_only, float("nan"), t_fs / t_fit_only),
        (f"bootstrap fschat, {args.fschat_rounds} rounds", t_fs_boot, float("nan"), 1.0),
        (f"bootstrap llmlab, {args.rounds} rounds", t_boot, float("nan"), t_fs_boot / t_boot),
        ("online Elo, fschat compute_elo", t_elo_fs, float("nan"), 1.0),
        ("online Elo, llmlab", t_elo, float("nan"), t_elo_fs / t_elo),
    ]
    print(f"{args.battles} battles, {args.models} models")
    print(f"{'what':58s} {'seconds':>9s} {'peak MB':>9s} {'x vs baseline':>14s}")
    for name, sec, mb, ratio in rows:
        print(f"{name:58s} {sec:9.3f} {mb:9.1f} {ratio:14.1f}")
    print(f"max |llmlab reg=0.5 - fschat| = {diff_l2:.3f} rating points (fschat stops at sklearn's max_iter=100)")
    print(f"max |llmlab reg=0 - fschat|   = {diff_mle:.3f} rating points (objective differs: no L2)")
    print(f"memory ratio fschat/llmlab = {mem_fs / mem_ours:.1f}; online Elo identical: {elo_same}; "
          f"bootstrap nonconverged rounds: {boot.nonconverged}")
    print(f"bt_speedup={t_fs / t_l2:.1f} max_abs_diff={diff_l2:.3f} bootstrap_{args.rounds}_s={t_boot:.2f} "
          f"fschat_bootstrap_{args.fschat_rounds}_s={t_fs_boot:.2f}")


if __name__ == "__main__":
    main()
