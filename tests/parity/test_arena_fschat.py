"""Side by side with FastChat's own rating code (PyPI ``fschat`` 0.2.36; a test-only dependency)."""

from __future__ import annotations

import numpy as np
import pytest

elo_analysis = pytest.importorskip("fastchat.serve.monitor.elo_analysis")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

from llmlab.stats.arena import FSCHAT_0236_REG, bradley_terry, online_elo  # noqa: E402


@pytest.fixture(scope="module")
def battles() -> object:
    rng = np.random.default_rng(11)
    m, n = 8, 4000
    true = rng.normal(0, 200, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    tie = rng.random(n) < 0.25
    kind = np.where(rng.random(n) < 0.5, "tie", "tie (bothbad)")
    win = np.where(tie, kind, np.where(rng.random(n) < p, "model_a", "model_b"))
    names = np.array([f"model-{i}" for i in range(m)], dtype=object)
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": win})


def test_online_elo_is_identical_to_fschat(battles) -> None:  # type: ignore[no-untyped-def]
    theirs = elo_analysis.compute_elo(battles)
    ours = online_elo(battles).as_dict()
    assert ours == theirs  # bit for bit


def test_l2_option_is_fschat_0236_objective_converged(battles, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sklearn.linear_model

    ours = bradley_terry(battles, reg=FSCHAT_0236_REG).as_dict()
    as_shipped = elo_analysis.compute_elo_mle_with_tie(battles)
    # fschat stops at sklearn's default iteration cap: close, not equal
    assert max(abs(as_shipped[k] - v) for k, v in ours.items()) < 2.0

    base = sklearn.linear_model.LogisticRegression

    class Converged(base):  # type: ignore[misc, valid-type]
        def __init__(self, **kw: object) -> None:
            super().__init__(max_iter=10_000, tol=1e-12, **kw)

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", Converged)
    converged = elo_analysis.compute_elo_mle_with_tie(battles)
    assert max(abs(converged[k] - v) for k, v in ours.items()) < 1e-3


def test_unregularised_fit_differs_from_l2_by_shrinkage_only(battles) -> None:  # type: ignore[no-untyped-def]
    plain = bradley_terry(battles)
    l2 = bradley_terry(battles, reg=FSCHAT_0236_REG)
    assert np.argsort(plain.ratings).tolist() == np.argsort(l2.ratings).tolist()
    assert np.ptp(plain.ratings) > np.ptp(l2.ratings)
