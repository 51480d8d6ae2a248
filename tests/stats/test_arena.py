from __future__ import annotations

import json
import math

import numpy as np
import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.stats.arena import (
    FSCHAT_0236_REG,
    Battles,
    as_battles,
    bootstrap_bt,
    bootstrap_elo,
    bradley_terry,
    bt_loss,
    half_wins,
    identifiable,
    online_elo,
    predicted_win_prob,
    rank_by_ci,
    win_rate_matrix,
)


def rec(a: str, b: str, w: str) -> dict[str, str]:
    return {"model_a": a, "model_b": b, "winner": w}


def synthetic(n: int, m: int, seed: int = 0, tie_rate: float = 0.2) -> tuple[list[dict[str, str]], np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 150, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    tie = rng.random(n) < tie_rate
    kinds = np.where(rng.random(n) < 0.5, "tie", "tie (bothbad)")
    win = np.where(tie, kinds, np.where(rng.random(n) < p, "model_a", "model_b"))
    return [rec(f"m{i}", f"m{j}", str(w)) for i, j, w in zip(a, b, win, strict=True)], true


# -- §12.2 test vectors -----------------------------------------------------------------------------------

def test_elo_one_win_vector() -> None:
    assert online_elo([rec("A", "B", "model_a")]).as_dict() == {"A": 1002.0, "B": 998.0}


def test_bt_three_wins_in_four_vector() -> None:
    votes = [rec("A", "B", "model_a")] * 3 + [rec("A", "B", "model_b")]
    r = bradley_terry(votes).as_dict()
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert round(r["A"] - r["B"], 2) == 190.85
    assert (r["A"] + r["B"]) / 2 == pytest.approx(1000.0)  # unanchored gauge: mean = init


def test_bt_two_models_closed_form_with_ties_and_seats() -> None:
    # p = (wins + ties/2) / n, counted over both seatings
    votes = [rec("A", "B", "model_a"), rec("B", "A", "model_b"), rec("A", "B", "tie"),
             rec("B", "A", "tie (bothbad)"), rec("B", "A", "model_a")]
    p = (2 + 1) / 5  # A wins twice (once from each seat), B once, two ties
    r = bradley_terry(votes).as_dict()
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(p / (1 - p)), abs=1e-6)


# -- Elo ---------------------------------------------------------------------------------------------------

def test_elo_is_order_dependent_and_zero_sum() -> None:
    votes = [rec("A", "B", "model_a"), rec("B", "C", "model_a"), rec("C", "A", "tie")]
    r1 = online_elo(votes)
    r2 = online_elo(list(reversed(votes)))
    assert r1.ratings.sum() == pytest.approx(3000.0)
    assert not np.allclose(r1.ratings, r2.ratings)


def test_elo_matches_a_plain_reference_loop() -> None:
    votes, _ = synthetic(500, 5, seed=3)
    ref: dict[str, float] = {}
    for v in votes:
        ra, rb = ref.get(v["model_a"], 1000.0), ref.get(v["model_b"], 1000.0)
        ea = 1 / (1 + 10 ** ((rb - ra) / 400))
        sa = {"model_a": 1.0, "model_b": 0.0}.get(v["winner"], 0.5)
        ref[v["model_a"]] = ra + 4 * (sa - ea)
        ref[v["model_b"]] = rb - 4 * (sa - ea)
    ours = online_elo(votes).as_dict()
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v, abs=1e-9)


def test_elo_bootstrap_median_and_interval_contain_full_ratings_roughly() -> None:
    votes, _ = synthetic(400, 4, seed=5)
    boot = bootstrap_elo(votes, rounds=40, seed=1)
    assert boot.samples.shape == (40, 4)
    assert np.all(boot.lower <= boot.rating) and np.all(boot.rating <= boot.upper)
    again = bootstrap_elo(votes, rounds=40, seed=1)
    assert np.array_equal(boot.samples, again.samples)  # seeded


# -- Bradley–Terry -----------------------------------------------------------------------------------------

def test_bt_is_a_stationary_point_of_the_reference_objective() -> None:
    from scipy.optimize import minimize

    votes, _ = synthetic(3000, 6, seed=1)
    ours = bradley_terry(votes)
    wins = half_wins(as_battles(votes).counts())
    ref = minimize(bt_loss, np.zeros(6), args=(wins, math.log(10.0)), method="BFGS", options={"gtol": 1e-9})
    ref_ratings = 400 * (ref.x - ref.x.mean()) + 1000
    np.testing.assert_allclose(ours.ratings, ref_ratings, atol=1e-3)
    assert ours.converged


def test_bt_recovers_true_ratings_on_large_sample() -> None:
    votes, true = synthetic(60000, 5, seed=2, tie_rate=0.0)
    r = bradley_terry(votes)
    order = [int(m[1:]) for m in r.models]
    np.testing.assert_allclose(r.ratings - r.ratings.mean(), true[order] - true[order].mean(), atol=15)


def test_bt_invariant_to_seat_swap_and_battle_order() -> None:
    votes, _ = synthetic(800, 4, seed=4)
    flip = {"model_a": "model_b", "model_b": "model_a"}
    swapped = [rec(v["model_b"], v["model_a"], flip.get(v["winner"], v["winner"])) for v in votes]
    r1 = bradley_terry(votes).as_dict()
    r2 = bradley_terry(list(reversed(swapped))).as_dict()
    for k in r1:
        assert r1[k] == pytest.approx(r2[k], abs=1e-6)


def test_bt_l2_objective_matches_its_optimality_condition() -> None:
    votes, _ = synthetic(500, 4, seed=6)
    r = bradley_terry(votes, reg=FSCHAT_0236_REG)
    x = (r.ratings - 1000) / 400
    wins = half_wins(as_battles(votes).counts())
    eps = 1e-6
    for i in range(4):
        d = np.zeros(4)
        d[i] = eps
        g = (bt_loss(x + d, wins, math.log(10), 0.5) - bt_loss(x - d, wins, math.log(10), 0.5)) / (2 * eps)
        assert abs(g) < 1e-4
    # shrinkage: the regularised spread is smaller than the MLE's
    assert np.ptp(r.ratings) < np.ptp(bradley_terry(votes).ratings)


def test_bt_anchor_shifts_but_keeps_differences() -> None:
    votes, _ = synthetic(500, 4, seed=7)
    free = bradley_terry(votes)
    anchored = bradley_terry(votes, anchor=("m2", 1114.0))
    assert anchored.as_dict()["m2"] == pytest.approx(1114.0)
    np.testing.assert_allclose(np.diff(anchored.ratings), np.diff(free.ratings), atol=1e-9)
    with pytest.raises(ConfigError, match="anchor"):
        bradley_terry(votes, anchor=("nope", 1000.0))


def test_bt_nonexistent_mle_is_refused_unless_regularised() -> None:
    votes = [rec("A", "B", "model_a"), rec("B", "C", "model_a")]
    assert not identifiable(half_wins(as_battles(votes).counts()))
    with pytest.raises(DataError, match="does not exist"):
        bradley_terry(votes)
    r = bradley_terry(votes, reg=0.5).as_dict()
    assert r["A"] > r["B"] > r["C"]


def test_bootstrap_bt_point_is_full_fit_and_anchor_collapses_its_ci() -> None:
    votes, _ = synthetic(2000, 5, seed=8)
    boot = bootstrap_bt(votes, rounds=60, seed=0)
    np.testing.assert_allclose(boot.rating, bradley_terry(votes).ratings, atol=1e-6)
    assert np.all(boot.lower < boot.rating) and np.all(boot.rating < boot.upper)
    assert boot.nonconverged == 0
    anch = bootstrap_bt(votes, rounds=60, seed=0, anchor=("m0", 1000.0))
    i = anch.models.index("m0")
    assert anch.upper[i] - anch.lower[i] == pytest.approx(0.0, abs=1e-9)
    # each round's ratings are the unanchored round shifted: widths of differences are unchanged
    j = anch.models.index("m1")
    np.testing.assert_allclose(anch.samples[:, j] - anch.samples[:, i], boot.samples[:, j] - boot.samples[:, i],
                               atol=1e-6)


def test_bootstrap_multinomial_draws_keep_battle_total() -> None:
    votes, _ = synthetic(300, 3, seed=9)
    boot = bootstrap_bt(votes, rounds=5, seed=3)
    assert boot.samples.shape == (5, 3)
    assert not np.allclose(boot.samples[0], boot.samples[1])


def test_bootstrap_bt_counts_nonconverged_rounds() -> None:
    votes = [rec("A", "B", "model_a")] * 3 + [rec("A", "B", "model_b")]
    boot = bootstrap_bt(votes, rounds=50, seed=0)
    assert 0 < boot.nonconverged < 50  # rounds drawing no B win have no MLE


def test_a_sparsely_observed_model_does_not_move_the_other_intervals() -> None:
    votes, _ = synthetic(6000, 12, seed=3)
    base = bootstrap_bt(votes, rounds=200, seed=0)
    sparse = [*votes, rec("newcomer", "m0", "model_a"), rec("m1", "newcomer", "model_a")]  # 1 win, 1 loss
    boot = bootstrap_bt(sparse, rounds=200, seed=0)
    idx = [boot.models.index(m) for m in base.models]
    width_base = base.upper - base.lower
    width = (boot.upper - boot.lower)[idx]
    assert np.all(np.isfinite(width))
    assert np.median(width / width_base) == pytest.approx(1.0, abs=0.1)  # unbounded runaway was ~100x
    assert np.max(np.abs(boot.rating[idx] - base.rating)) < 15  # the full fit barely moves either
    ranks = boot.ranks()[idx]
    assert sorted(ranks.tolist()) == sorted(base.ranks().tolist())  # not every model ranked #1
    k = boot.models.index("newcomer")
    assert boot.upper[k] == np.inf and boot.lower[k] == -np.inf  # resamples with only its win or only its loss
    assert boot.nonconverged > 0


# -- win rates, predictions, ranks --------------------------------------------------------------------------

def test_win_rate_matrix_counts_both_seats() -> None:
    votes = [rec("A", "B", "model_a"), rec("B", "A", "model_a"), rec("A", "B", "tie")]
    models, w = win_rate_matrix(votes)
    ia, ib = models.index("A"), models.index("B")
    assert w[ia, ib] == pytest.approx(1 / 3)
    assert w[ib, ia] == pytest.approx(1 / 3)
    _, half = win_rate_matrix(votes, tie_value=0.5)
    assert half[ia, ib] + half[ib, ia] == pytest.approx(1.0)
    assert np.isnan(w[ia, ia])


def test_predicted_win_prob() -> None:
    p = predicted_win_prob(np.array([1400.0, 1000.0]))
    assert p[0, 1] == pytest.approx(10 / 11)
    np.testing.assert_allclose(p + p.T, np.ones((2, 2)))


def test_rank_by_ci() -> None:
    assert rank_by_ci(np.array([10.0, 0.0, -5.0]), np.array([20.0, 12.0, 1.0])).tolist() == [1, 1, 2]


# -- input handling -----------------------------------------------------------------------------------------

def test_bad_inputs_raise_one_line_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="winner"):
        Battles.from_records([rec("A", "B", "left")])
    with pytest.raises(DataError, match="needs keys"):
        Battles.from_records([{"model_a": "A"}])
    p = tmp_path / "v.jsonl"
    p.write_text(json.dumps(rec("A", "B", "model_a")) + "\n{oops\n")
    with pytest.raises(DataError, match=r"v\.jsonl:2"):
        Battles.from_jsonl(p)
    with pytest.raises(DataError, match="not found"):
        Battles.from_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="no battles"):
        bradley_terry([])


def test_counts_deduplicate() -> None:
    bt = Battles.from_records([rec("A", "B", "model_a")] * 4 + [rec("B", "A", "tie")])
    c = bt.counts()
    assert c.sum() == 5
    assert c[0, 1, 2] == 4 and c[1, 0, 1] == 1
