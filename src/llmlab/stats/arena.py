"""Arena ratings: online Elo, Bradley–Terry MLE, bootstrap CIs, win rates.

Paper: "GenAI Arena: An Open Evaluation Platform for Generative Models" (Jiang et al., arXiv 2406.04485),
whose leaderboard code is a fork of FastChat's ``fastchat/serve/monitor/elo_analysis.py``; the rating
code followed here is FastChat's (lm-sys/FastChat ``fastchat/serve/monitor/rating_systems.py`` and
fschat 0.2.36's ``elo_analysis.py``). Spec: ``specs/evaluation.md`` §8.

Implemented:

- Online Elo (§8.3): ratings start at 1000, ``E_a = 1 / (1 + 10^((R_b − R_a)/400))``, ``K = 4``, a tie of
  either kind scores 0.5. The update is written with the same float operations as fschat 0.2.36's
  ``compute_elo`` so that the two agree to the last bit.
- Bradley–Terry by maximum likelihood (§8.4): ties count as half a win for each side,
  ``P(a beats b) = σ(ln 10 · (r_a − r_b))``, rating ``= 400 · r + 1000``; optionally shifted so that an
  anchor model has a fixed rating. Default unregularised like current FastChat (``compute_bt``); with
  ``reg > 0`` the objective is ``Σ BCE + reg/2 · ‖r‖²``, and ``reg = 0.5`` is exactly the objective that
  fschat 0.2.36's ``compute_elo_mle_with_tie`` gives scikit-learn (L2 with ``C = 1`` on a battle table
  duplicated so that a tie is one win for each side).
- Bootstrap CIs by the multinomial scheme of FastChat PR #3523 (resampling battles with replacement is the
  same distribution as drawing multinomial counts over the unique ``(a, b, outcome)`` cells), and the
  row-resampling scheme for online Elo; ``rank(a) = 1 + #{b : lower(b) > upper(a)}``.
- Win-rate matrix (FastChat ``compute_pairwise_win_fraction``) and predicted win probabilities.

Deliberate deviations from the official code, with reasons:

1. The BT fit works on a model × model matrix of half-win counts and is solved by Newton's method with a
   backtracking line search to a tight tolerance (step < 1e-10 in log10 units, i.e. < 4e-8 rating
   points), instead of L-BFGS-B capped at 100 iterations (FastChat) or scikit-learn's lbfgs capped at 100
   iterations (fschat 0.2.36), which stop before convergence on large data (about one rating point off on
   1M battles). The objective is the same; only the optimiser and its stopping rule differ.
2. Without an anchor, ratings are reported in the gauge ``mean(rating) = init`` (1000). FastChat's
   unanchored L-BFGS started from 0 lands in the same gauge, since every gradient sums to zero.
3. A BT fit whose maximum-likelihood estimate does not exist (some group of models never lost, or never
   won, against the rest — the comparison graph is not strongly connected) raises
   :class:`~llmlab.core.errors.DataError` when ``reg == 0``; FastChat silently returns whatever L-BFGS
   reached after 100 iterations. A bootstrap round that hits this (a model seen in two battles wins both
   in the resample) is fitted on its largest strongly connected component; models outside it are
   ``+inf``/``-inf`` in that round (beat it / lost to it) and the round is aligned to the full fit by a
   battle-weighted offset, so a sparsely observed model cannot move the others' intervals. (The plain
   unanchored bootstrap lets that model run off and drags every model through the mean gauge: median CI
   width ~4,300 points on 44,926 battles with one 2-battle model.) Such rounds are counted in
   :attr:`BootstrapResult.nonconverged`; the sparse model's interval is honestly unbounded.
4. The bootstrap is seeded and deterministic; FastChat's BT bootstrap is seeded (``default_rng(0)``) but its
   Elo bootstrap uses the global ``np.random`` state.
5. Battles where a model meets itself carry no information for BT and are ignored by the fit (FastChat's
   cleaning step drops them before rating).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.core.errors import ConfigError, DataError
from llmlab.core.jsonl import read_jsonl

WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
"""The four vote values (FastChat): ``leftvote`` → model_a, ``rightvote`` → model_b, tie, both bad."""

# FastChat's outcome codes: model_a win -> 2, tie -> 1, model_b win -> 0 (outcome for a = code / 2).
A_WINS, TIE, B_WINS = 2, 1, 0

FSCHAT_0236_REG = 0.5
"""``reg`` that reproduces fschat 0.2.36's sklearn objective (C=1 on duplicated battles): see module doc."""

FASTCHAT_ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)
"""FastChat's anchor (lm-sys/FastChat #3377); pass ``anchor=FASTCHAT_ANCHOR`` to reproduce its tables."""


# -- battles -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Battles:
    """Pairwise battles as integer codes.

    Args:
        models: Model names; ``a``/``b`` index into it.
        a: Model-A index per battle, int32 ``(N,)``.
        b: Model-B index per battle, int32 ``(N,)``.
        outcome: 2 = model_a wins, 1 = tie (either kind), 0 = model_b wins; uint8 ``(N,)``.

    Example:
        >>> bt = Battles.from_records([{"model_a": "x", "model_b": "y", "winner": "model_a"}])
        >>> bt.models, len(bt)
        (('x', 'y'), 1)
    """

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def n_models(self) -> int:
        return len(self.models)

    @staticmethod
    def from_columns(model_a: Any, model_b: Any, winner: Any) -> Battles:
        """Build from three equally long columns (lists, numpy arrays or pandas Series).

        Raises:
            DataError: Columns of different lengths or a winner outside :data:`WINNERS`.
        """
        ca, cb, cw = _as_object_array(model_a), _as_object_array(model_b), _as_object_array(winner)
        if not (len(ca) == len(cb) == len(cw)):
            raise DataError(f"battle columns differ in length: {len(ca)}, {len(cb)}, {len(cw)}")
        codes, models = _factorize(np.concatenate([ca, cb]))
        n = len(ca)
        outcome = np.full(n, TIE, dtype=np.uint8)
        is_a, is_b = cw == "model_a", cw == "model_b"
        outcome[is_a] = A_WINS
        outcome[is_b] = B_WINS
        bad = ~(is_a | is_b | (cw == "tie") | (cw == "tie (bothbad)"))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"battle {i}: winner {cw[i]!r} is not one of {', '.join(WINNERS)}")
        return Battles(tuple(models), codes[:n].astype(np.int32), codes[n:].astype(np.int32), outcome)

    @staticmethod
    def from_records(records: Iterable[Mapping[str, Any]], where: str = "battle") -> Battles:
        """Build from dicts with ``model_a``, ``model_b`` and ``winner``.

        Raises:
            DataError: A record without those keys, or with an unknown winner.
        """
        cols: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for i, r in enumerate(records):
            try:
                cols[0].append(r["model_a"])
                cols[1].append(r["model_b"])
                cols[2].append(r["winner"])
            except (KeyError, TypeError):
                raise DataError(f"{where} {i + 1}: needs keys model_a, model_b, winner; got {r!r:.120}") from None
        return Battles.from_columns(*cols)

    @staticmethod
    def from_jsonl(path: str | Path) -> Battles:
        """Read a JSONL file of votes (``model_a``, ``model_b``, ``winner`` per line; blank lines skipped).

        Raises:
            DataError: Missing file, bad JSON, or a bad record (the message names file and line).
        """
        records = []
        for where, rec in read_jsonl(path, what="votes file"):
            for key in ("model_a", "model_b", "winner"):
                if key not in rec:
                    raise DataError(f"{where}: missing key '{key}'")
            if rec["winner"] not in WINNERS:
                raise DataError(f"{where}: winner {rec['winner']!r} is not one of {', '.join(WINNERS)}")
            records.append(rec)
        return Battles.from_records(records)

    def counts(self) -> np.ndarray:
        """Deduplicated outcome counts, float64 ``(M, M, 3)``: ``[a, b, code]`` = battles with that result."""
        m = self.n_models
        cell = (self.a.astype(np.int64) * m + self.b) * 3 + self.outcome
        return np.bincount(cell, minlength=m * m * 3).reshape(m, m, 3).astype(np.float64)

    def subset(self, mask: np.ndarray) -> Battles:
        """The battles where ``mask`` is true (model list unchanged)."""
        return Battles(self.models, self.a[mask], self.b[mask], self.outcome[mask])


def as_battles(data: BattlesLike) -> Battles:
    """Accept :class:`Battles`, a pandas DataFrame with FastChat's columns, or an iterable of dicts."""
    if isinstance(data, Battles):
        return data
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # a DataFrame
        return Battles.from_columns(data["model_a"], data["model_b"], data["winner"])
    return Battles.from_records(data)


def _as_object_array(col: Any) -> np.ndarray:
    if hasattr(col, "to_numpy"):
        return np.asarray(col.to_numpy(dtype=object))
    return np.asarray(list(col) if not isinstance(col, np.ndarray) else col, dtype=object)


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes in order of first appearance (like ``pandas.factorize``), without needing pandas."""
    try:
        import pandas as pd

        codes, uniques = pd.factorize(values)
        return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]
    except ImportError:
        index: dict[Any, int] = {}
        codes_list = [index.setdefault(v, len(index)) for v in values.tolist()]
        return np.asarray(codes_list, dtype=np.int64), [str(k) for k in index]


def half_wins(counts: np.ndarray) -> np.ndarray:
    """``W[i, j]`` = wins of i over j with each tie as half a win for both, float64 ``(M, M)``."""
    tie_half = 0.5 * counts[:, :, TIE]
    w = counts[:, :, A_WINS] + tie_half + (counts[:, :, B_WINS] + tie_half).T
    np.fill_diagonal(w, 0.0)
    return w


BattlesLike = Battles | Iterable[Mapping[str, Any]] | Any
"""What the rating functions accept: :class:`Battles`, a DataFrame with FastChat's columns, or dicts."""


# -- results -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratings:
    """Ratings of ``models`` (same order), on the Elo scale.

    Attributes:
        system: ``"elo"`` or ``"bt"``.
        converged: BT only: whether the optimiser met its tolerance.
        iterations: Optimiser iterations (BT) or battles processed (Elo).
        config: The settings that produced it (base, scale, init, reg, anchor, K).
    """

    models: tuple[str, ...]
    ratings: np.ndarray
    system: str
    converged: bool = True
    iterations: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {m: float(r) for m, r in zip(self.models, self.ratings, strict=True)}

    def ranked(self) -> list[tuple[str, float]]:
        """``(model, rating)`` best first."""
        order = np.argsort(-self.ratings, kind="stable")
        return [(self.models[i], float(self.ratings[i])) for i in order]


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap confidence intervals.

    Attributes:
        rating: Point estimate per model (full-data fit for BT, bootstrap median for Elo, as FastChat).
        lower: ``quantiles[0]`` of the bootstrap ratings.
        upper: ``quantiles[1]`` of the bootstrap ratings.
        samples: ``(rounds, M)`` bootstrap ratings.
        nonconverged: Rounds whose fit stopped at the iteration cap.
    """

    models: tuple[str, ...]
    rating: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    samples: np.ndarray
    system: str
    nonconverged: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def ranks(self) -> np.ndarray:
        return rank_by_ci(self.lower, self.upper)

    def table(self) -> list[dict[str, Any]]:
        """Rows best first: model, rating, lower, upper, rank (by CI)."""
        ranks = self.ranks()
        order = np.argsort(-self.rating, kind="stable")
        return [
            {"model": self.models[i], "rating": float(self.rating[i]), "lower": float(self.lower[i]),
             "upper": float(self.upper[i]), "rank": int(ranks[i])}
            for i in order
        ]


def rank_by_ci(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """FastChat's rank with CIs: ``1 + #{b : lower(b) > upper(a)}``.

    Example:
        >>> rank_by_ci(np.array([10.0, 0.0, -5.0]), np.array([20.0, 12.0, 1.0])).tolist()
        [1, 1, 2]
    """
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


# -- online Elo ----------------------------------------------------------------------------------------


def online_elo(
    battles: BattlesLike,
    *,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    init: float = 1000.0,
) -> Ratings:
    """Online (order-dependent) Elo as FastChat computes it.

    Args:
        battles: Battles in chronological order.
        k: Update step K.
        base: Logistic base.
        scale: Rating scale.
        init: Starting rating.

    Returns:
        :class:`Ratings` with ``system="elo"``.

    Example:
        >>> online_elo([{"model_a": "x", "model_b": "y", "winner": "model_a"}]).as_dict()
        {'x': 1002.0, 'y': 998.0}
    """
    bt = as_battles(battles)
    rating = [float(init)] * bt.n_models
    score = {A_WINS: 1.0, TIE: 0.5, B_WINS: 0.0}
    for ia, ib, o in zip(bt.a.tolist(), bt.b.tolist(), bt.outcome.tolist(), strict=True):
        ra, rb = rating[ia], rating[ib]
        # Same float operations as fschat 0.2.36 compute_elo, so results match bit for bit.
        ea = 1 / (1 + base ** ((rb - ra) / scale))
        eb = 1 / (1 + base ** ((ra - rb) / scale))
        sa = score[o]
        rating[ia] += k * (sa - ea)
        rating[ib] += k * (1 - sa - eb)
    return Ratings(bt.models, np.asarray(rating), "elo", True, len(bt),
                   {"k": k, "base": base, "scale": scale, "init": init})


def _elo_rounds(bt: Battles, idx: np.ndarray, k: float, base: float, scale: float, init: float) -> np.ndarray:
    """Online Elo on each column of ``idx`` (N, R) at once, vectorised over rounds. Returns ``(R, M)``."""
    rounds = idx.shape[1]
    alpha = math.log(base) / scale
    ratings = np.full((rounds, bt.n_models), float(init))
    rr = np.arange(rounds)
    outcome = bt.outcome.astype(np.float64) / 2.0
    for row in idx:  # (R,) battle indices, one per round
        ia, ib = bt.a[row], bt.b[row]
        p = 1.0 / (1.0 + np.exp(alpha * (ratings[rr, ib] - ratings[rr, ia])))
        upd = k * (outcome[row] - p)
        ratings[rr, ia] += upd
        ratings[rr, ib] -= upd
    return ratings


def bootstrap_elo(
    battles: BattlesLike,
    *,
    rounds: int = 100,
    seed: int = 0,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    init: float = 1000.0,
    quantiles: tuple[float, float] = (0.025, 0.975),
) -> BootstrapResult:
    """Bootstrap online Elo: each round resamples battles with replacement (random order), as FastChat.

    Returns:
        :class:`BootstrapResult` whose ``rating`` is the per-model median over rounds.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    bt = as_battles(battles)
    if len(bt) == 0:
        raise DataError("no battles to rate")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(bt), size=(len(bt), rounds))
    samples = _elo_rounds(bt, idx, k, base, scale, init)
    lo, hi = np.quantile(samples, quantiles, axis=0)
    return BootstrapResult(bt.models, np.median(samples, axis=0), lo, hi, samples, "elo", 0,
                           {"rounds": rounds, "seed": seed, "k": k})


# -- Bradley–Terry -------------------------------------------------------------------------------------


def bt_loss(r: np.ndarray, wins: np.ndarray, alpha: float, reg: float = 0.0) -> float:
    """Negative log-likelihood ``−Σ W_ij log σ(α(r_i − r_j)) + reg/2 ‖r‖²`` (the reference objective)."""
    diff = alpha * (r[:, None] - r[None, :])  # (M, M)
    return float((wins * np.logaddexp(0.0, -diff)).sum() + 0.5 * reg * (r @ r))


def _grad_hess(
    r: np.ndarray, wins: np.ndarray, games: np.ndarray, alpha: float, reg: float
) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import expit

    p = expit(alpha * (r[:, None] - r[None, :]))  # (M, M) P(i beats j)
    # d/dr_i: α Σ_j (W_ji P_ij − W_ij P_ji)
    grad = alpha * ((wins.T * p).sum(axis=1) - (wins * p.T).sum(axis=1)) + reg * r
    q = games * p * p.T  # (M, M) N_ij P_ij P_ji
    hess = -(alpha**2) * q
    hess[np.diag_indices_from(hess)] = (alpha**2) * q.sum(axis=1) + reg
    return grad, hess


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run BLAS/LAPACK single-threaded inside (when ``threadpoolctl`` is installed).

    The Newton systems are tiny (M × M); waking OpenBLAS's thread pool for each solve costs tens of
    milliseconds on a loaded machine, far more than the solve itself.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fit_bt(
    wins: np.ndarray,
    *,
    alpha: float = math.log(10.0),
    reg: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-10,
    x0: np.ndarray | None = None,
) -> tuple[np.ndarray, bool, int]:
    """Minimise :func:`bt_loss` by Newton's method with backtracking, in log-``base`` units.

    Args:
        wins: Half-win matrix ``(M, M)`` (:func:`half_wins`).
        alpha: ``ln(base)``.
        reg: L2 strength (0: the plain MLE; the gauge is then ``mean(r) = 0``).
        max_iter: Newton iterations at most.
        tol: Stop when the largest step is below this (log-base units).
        x0: Starting point (default zeros).

    Returns:
        ``(r, converged, iterations)``.
    """
    m = wins.shape[0]
    games = wins + wins.T
    r = np.zeros(m) if x0 is None else np.array(x0, dtype=np.float64)
    if reg == 0.0:
        r -= r.mean()
    if m < 2:
        return r, True, 0
    f = bt_loss(r, wins, alpha, reg)
    gauge = np.full((m, m), 1.0 / m) if reg == 0.0 else 0.0  # pins the null direction (all ones)
    for it in range(1, max_iter + 1):
        g, h = _grad_hess(r, wins, games, alpha, reg)
        try:
            step = -np.linalg.solve(h + gauge, g)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(h + gauge, g, rcond=None)[0]
        if reg == 0.0:
            step -= step.mean()
        slope = float(g @ step)
        t = 1.0
        while True:
            cand = r + t * step
            fc = bt_loss(cand, wins, alpha, reg)
            if fc <= f + 1e-4 * t * slope or t < 1e-8:
                break
            t *= 0.5
        moved = float(np.abs(t * step).max())
        r, f = cand, fc
        if moved < tol:
            return r, True, it
    return r, False, max_iter


def identifiable(wins: np.ndarray) -> bool:
    """Whether the BT MLE exists: the directed "won at least half a game against" graph is strongly connected."""
    m = wins.shape[0]
    if m < 2:
        return True
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n, _ = connected_components(csr_matrix(wins > 0), directed=True, connection="strong")
    return bool(n == 1)


def _to_scale(r: np.ndarray, models: Sequence[str], scale: float, init: float,
              anchor: tuple[str, float] | None) -> np.ndarray:
    out = scale * r + init  # (..., M)
    if anchor is not None:
        name, value = anchor
        if name in models:
            i = list(models).index(name)
            out = out + (value - out[..., [i]])
    return out


def _check_anchor(anchor: tuple[str, float] | None, models: Sequence[str]) -> None:
    if anchor is not None and anchor[0] not in models:
        raise ConfigError(f"anchor model {anchor[0]!r} is not among the rated models; pick one of {list(models)[:8]}")


def bradley_terry(
    battles: BattlesLike,
    *,
    base: float = 10.0,
    scale: float = 400.0,
    init: float = 1000.0,
    reg: float = 0.0,
    anchor: tuple[str, float] | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> Ratings:
    """Bradley–Terry ratings by maximum likelihood, ties as half wins.

    Args:
        battles: The battles (order does not matter).
        base: Logistic base (10).
        scale: Rating scale (400).
        init: Rating of ``r = 0`` (1000): without anchor the mean rating.
        reg: L2 strength on ``r``; 0 is current FastChat, :data:`FSCHAT_0236_REG` reproduces fschat 0.2.36.
        anchor: ``(model, rating)`` to shift the scale to, e.g. :data:`FASTCHAT_ANCHOR`.
        max_iter: Newton iterations at most.
        tol: Convergence tolerance on the step (log-base units).

    Returns:
        :class:`Ratings` with ``system="bt"``.

    Raises:
        DataError: No battles, or (with ``reg == 0``) an MLE that does not exist.
        ConfigError: The anchor model is not in the battles.

    Example:
        >>> bt = bradley_terry([{"model_a": "x", "model_b": "y", "winner": w}
        ...                     for w in ("model_a", "model_a", "model_a", "model_b")])
        >>> round(bt.as_dict()["x"] - bt.as_dict()["y"], 2)
        190.85
    """
    bt = as_battles(battles)
    if len(bt) == 0:
        raise DataError("no battles to rate")
    _check_anchor(anchor, bt.models)
    wins = half_wins(bt.counts())
    if reg == 0.0 and not identifiable(wins):
        raise DataError(
            "the Bradley–Terry MLE does not exist for these battles: some models never lost (or never won) "
            "against the others; collect more votes or pass reg>0 (e.g. 0.5)"
        )
    with single_thread_blas():
        r, ok, its = fit_bt(wins, alpha=math.log(base), reg=reg, max_iter=max_iter, tol=tol)
    return Ratings(bt.models, _to_scale(r, bt.models, scale, init, anchor), "bt", ok, its,
                   {"base": base, "scale": scale, "init": init, "reg": reg, "anchor": anchor})


def bootstrap_bt(
    battles: BattlesLike,
    *,
    rounds: int = 1000,
    seed: int = 0,
    base: float = 10.0,
    scale: float = 400.0,
    init: float = 1000.0,
    reg: float = 0.0,
    anchor: tuple[str, float] | None = None,
    quantiles: tuple[float, float] = (0.025, 0.975),
    max_iter: int = 100,
    tol: float = 1e-8,
) -> BootstrapResult:
    """Bootstrap CIs for BT: multinomial counts over the unique (a, b, outcome) cells, one refit per round.

    Each round is warm-started from the full-data fit. With an anchor, every round is anchored (FastChat),
    which collapses the anchor's CI to zero; without one, rounds use the ``mean = init`` gauge.

    Returns:
        :class:`BootstrapResult` whose ``rating`` is the full-data fit (as FastChat reports for BT).

    Raises:
        DataError: As :func:`bradley_terry`.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    bt = as_battles(battles)
    full = bradley_terry(bt, base=base, scale=scale, init=init, reg=reg, anchor=anchor, tol=min(tol, 1e-10))
    alpha = math.log(base)
    counts = bt.counts()
    m = bt.n_models
    cells = np.flatnonzero(counts)  # flat indices into (M, M, 3)
    w = counts.ravel()[cells]
    ia, rem = np.divmod(cells, m * 3)
    ib, code = np.divmod(rem, 3)
    # where each cell's count lands in the half-win matrix: winner row, loser column, weight
    win_idx = np.where(code == B_WINS, ib * m + ia, ia * m + ib)
    tie_mask = code == TIE
    back_idx = ib * m + ia
    # warm start and gauge: the full fit in natural units (mean 0, the reg = 0 gauge)
    x_full = (full.ratings - init) / scale
    x_full = x_full - x_full.mean()  # (an anchored fit is a constant shift of this)
    weight = counts.sum(axis=2).sum(axis=0) + counts.sum(axis=2).sum(axis=1)  # battles per model
    rng = np.random.default_rng(seed)
    n = int(w.sum())
    samples = np.empty((rounds, m))
    bad = 0
    chunk = 100
    with single_thread_blas():
        for start in range(0, rounds, chunk):
            draws = rng.multinomial(n, w / w.sum(), size=min(chunk, rounds - start)).astype(np.float64)
            for j, d in enumerate(draws):
                full_w = np.where(tie_mask, 0.5 * d, d)
                wm = np.bincount(win_idx, weights=full_w, minlength=m * m)
                wm += np.bincount(back_idx[tie_mask], weights=0.5 * d[tie_mask], minlength=m * m)
                wins = wm.reshape(m, m)
                np.fill_diagonal(wins, 0.0)
                r, ok = _round_ratings(wins, weight, x_full, alpha, reg, max_iter, tol)
                bad += not ok
                samples[start + j] = r
    samples = _samples_to_scale(samples, bt.models, scale, init, anchor, full.ratings)
    lo, hi = _ci(samples, quantiles)
    return BootstrapResult(bt.models, full.ratings, lo, hi, samples, "bt", bad,
                           {"rounds": rounds, "seed": seed, "reg": reg, "anchor": anchor, "base": base,
                            "scale": scale, "init": init})


def _reachable(adj: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Nodes reachable from ``start`` along ``adj[i, j]`` (i → j), ``start`` included."""
    seen = start.copy()
    frontier = start.copy()
    while frontier.any():
        nxt = adj[frontier].any(axis=0) & ~seen
        seen |= nxt
        frontier = nxt
    return seen


def _round_ratings(wins: np.ndarray, weight: np.ndarray, x_full: np.ndarray, alpha: float, reg: float,
                   max_iter: int, tol: float) -> tuple[np.ndarray, bool]:
    """One bootstrap round's ratings (natural units, the full fit's gauge) and whether all were identified.

    A resample can lose strong connectivity (a model seen in two battles wins both): its MLE does not exist.
    Instead of letting that model's rating run off and drag every other model through the mean gauge (what
    an unanchored fit does), the round is fitted on its largest strongly connected component (by battles);
    a model outside it that beat that component without losing to it is ``+inf`` in that round, one that
    only lost to it ``-inf``, one not connected ``nan``. Each round is then aligned to the full fit by a
    battle-weighted mean offset over the fitted models, so a sparsely observed model cannot move the others.
    """
    m = wins.shape[0]
    if reg > 0.0:
        r, ok, _ = fit_bt(wins, alpha=alpha, reg=reg, max_iter=max_iter, tol=tol, x0=x_full)
        inside = np.ones(m, dtype=bool)
        complete = True
    else:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        beat = wins > 0  # beat[i, j]: i won at least half a game against j
        n_comp, labels = connected_components(csr_matrix(beat), directed=True, connection="strong")
        if n_comp == 1:
            r, ok, _ = fit_bt(wins, alpha=alpha, reg=0.0, max_iter=max_iter, tol=tol, x0=x_full)
            inside = np.ones(m, dtype=bool)
            complete = True
        else:
            games = (wins + wins.T).sum(axis=1)
            giant = int(np.argmax(np.bincount(labels, weights=games, minlength=n_comp)))
            inside = labels == giant
            sub = wins[np.ix_(inside, inside)]
            x0 = x_full[inside] - x_full[inside].mean()
            r_sub, ok, _ = fit_bt(sub, alpha=alpha, reg=0.0, max_iter=max_iter, tol=tol, x0=x0)
            r = np.full(m, np.nan)
            r[inside] = r_sub
            below = _reachable(beat, inside) & ~inside  # the component beat them (transitively)
            above = _reachable(beat.T, inside) & ~inside  # they beat the component
            r[above] = np.inf
            r[below & ~above] = -np.inf
            complete = False
    wi = weight[inside]
    if wi.sum() > 0:
        r = r + float((wi * (x_full[inside] - r[inside])).sum() / wi.sum())
    return r, bool(ok and complete)


def _samples_to_scale(samples: np.ndarray, models: Sequence[str], scale: float, init: float,
                      anchor: tuple[str, float] | None, full_ratings: np.ndarray) -> np.ndarray:
    """Natural-unit bootstrap rows → ratings.

    With an anchor each row is shifted so the anchor sits at its value (FastChat; the anchor's own CI
    collapses); without one the rows keep the full fit's gauge (mean = init).
    """
    out = scale * samples + init
    if anchor is None:
        return out
    name, value = anchor
    i = list(models).index(name)
    shift = value - out[:, i]
    # a row where the anchor itself was not identified keeps the full fit's anchored gauge (the rows are in
    # the full fit's mean-0 gauge, and the anchored full fit is that gauge shifted by this constant)
    offset = float(np.mean(full_ratings) - init)
    shift = np.where(np.isfinite(shift), shift, offset)
    return out + shift[:, None]


def _ci(samples: np.ndarray, quantiles: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-model quantiles over rounds.

    ``nan`` rounds are left out; ``±inf`` rounds count, without interpolating across an infinity (``nan``).
    """
    m = samples.shape[1]
    lo, hi = np.empty(m), np.empty(m)
    for k in range(m):
        col = samples[:, k]
        col = col[~np.isnan(col)]
        if col.size == 0:
            lo[k] = hi[k] = np.nan
            continue
        if np.isfinite(col).all():
            lo[k], hi[k] = np.quantile(col, list(quantiles))
        else:
            lo[k], hi[k] = np.quantile(col, list(quantiles), method="inverted_cdf")
    return lo, hi


# -- win rates and predictions -------------------------------------------------------------------------


def win_rate_matrix(
    battles: BattlesLike, *, tie_value: float = 0.0
) -> tuple[tuple[str, ...], np.ndarray]:
    """Empirical ``P(row beats column)`` over both seatings (FastChat ``compute_pairwise_win_fraction``).

    Args:
        battles: The battles.
        tie_value: What a tie counts as (FastChat: 0, i.e. a tie is not a win; 0.5 for half wins).

    Returns:
        ``(models, matrix)``; pairs that never met are NaN (and the diagonal).
    """
    bt = as_battles(battles)
    c = bt.counts()
    wins = c[:, :, A_WINS] + c[:, :, B_WINS].T + tie_value * (c[:, :, TIE] + c[:, :, TIE].T)
    games = c.sum(axis=2)
    games = games + games.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, wins / games, np.nan)
    np.fill_diagonal(rate, np.nan)
    return bt.models, rate


def predicted_win_prob(ratings: Ratings | np.ndarray, *, base: float = 10.0, scale: float = 400.0) -> np.ndarray:
    """``P(i beats j) = 1 / (1 + base^((R_j − R_i)/scale))`` as an ``(M, M)`` matrix.

    Example:
        >>> predicted_win_prob(np.array([1000.0, 1000.0]))[0, 1]
        0.5
    """
    r = ratings.ratings if isinstance(ratings, Ratings) else np.asarray(ratings, dtype=float)
    return 1.0 / (1.0 + base ** ((r[None, :] - r[:, None]) / scale))


def battle_counts(battles: Battles) -> np.ndarray:
    """Battles per model (either seat)."""
    return np.bincount(battles.a, minlength=battles.n_models) + np.bincount(battles.b, minlength=battles.n_models)


__all__ = [
    "FASTCHAT_ANCHOR",
    "FSCHAT_0236_REG",
    "WINNERS",
    "Battles",
    "BootstrapResult",
    "Ratings",
    "as_battles",
    "battle_counts",
    "bootstrap_bt",
    "bootstrap_elo",
    "bradley_terry",
    "bt_loss",
    "fit_bt",
    "half_wins",
    "identifiable",
    "online_elo",
    "predicted_win_prob",
    "rank_by_ci",
    "win_rate_matrix",
]
