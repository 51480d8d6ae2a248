"""PH-LLM PRO prediction: the synthetic generator, encodings, adapters, the released results, the experiment."""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.ph_llm import pro


def test_generator_is_seeded_and_its_links_are_learnable():
    a, b = pro.generate_wearables(400, seed=5), pro.generate_wearables(400, seed=5)
    assert np.array_equal(a.daily, b.daily) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.daily, pro.generate_wearables(400, seed=6).daily)
    d = pro.generate_wearables(3000, seed=0, outcomes=["tiredness"], noise=0.5)
    assert d.daily.shape == (3000, 15, 20) and abs(d.y.mean() - 0.25) < 0.02
    from sklearn.linear_model import LogisticRegression

    z, = pro.zscore(pro.aggregate(d.daily))
    coef = LogisticRegression(max_iter=2000).fit(z, d.y[:, 0]).coef_[0]
    codes = [f[0] for f in pro.FEATURES]
    tst, tst_var = codes.index("tst"), pro.N_FEATURES + codes.index("tst")
    assert coef[tst] < -0.5 and coef[tst_var] > 0.2  # the generating links: short, irregular sleep -> tired
    assert abs(coef[codes.index("stp")]) < abs(coef[tst]) / 3  # an unlinked feature
    with pytest.raises(ConfigError, match="unknown PRO outcome"):
        pro.generate_wearables(10, outcomes=["happiness"])


def test_text_encoding_is_fixed_width_and_auroc_is_mann_whitney():
    rng = np.random.default_rng(0)
    lens = {len(pro.encode_text(rng.normal(0, 4, 40))) for _ in range(50)}
    assert lens == {len(pro.encode_text([0.0] * 40))}
    with pytest.raises(DataError):
        pro.encode_text([0.0] * 39)
    from sklearn.metrics import roc_auc_score

    y, s = rng.integers(0, 2, 200), np.round(rng.normal(size=200), 1)
    assert pro.auroc(y.tolist(), s.tolist()) == pytest.approx(roc_auc_score(y, s))


def test_adapters_give_k_soft_tokens_and_the_lm_stays_frozen():
    torch = pytest.importorskip("torch")
    lm = pro.build_lm(pro.LMConfig(hidden=16, layers=1, heads=2, intermediate=32), seed=0)
    for p in lm.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    mlp = pro.make_adapter("mlp", pro.N_FEATURES, 16, 3)
    seq = pro.make_adapter("sequence", pro.N_FEATURES, 16, 2, width=8)
    x = torch.randn(5, 2 * pro.N_FEATURES)
    assert mlp(x).shape == (5, 3, 16) and seq(torch.randn(5, 15, pro.N_FEATURES)).shape == (5, 2, 16)
    emb = pro.adapter_inputs(lm, mlp(x), "tiredness")
    assert emb.shape == (5, 3 + len(pro.question("tiredness")), 16)
    opt = torch.optim.SGD(mlp.parameters(), lr=0.1)
    w0 = mlp.net[0].weight.clone()
    loss = pro.yes_no_logit(lm, inputs_embeds=emb).pow(2).mean()
    loss.backward()
    opt.step()
    assert not torch.equal(w0, mlp.net[0].weight)
    assert all(torch.equal(v, lm.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ConfigError):
        pro.make_adapter("cnn", 20, 16, 2)


def test_released_results_show_the_papers_finding(shared_data):
    s = pro.released_pro_summary(shared_data / "ph-llm" / "pro_preds_bootstrap.tsv")
    assert s["targets"] == 16
    m = s["mean_auroc"]
    assert abs(m["adapter"] - m["logreg"]) < 0.01 and m["adapter"] > max(m["zero_shot"], m["few_shot"]) + 0.1
    assert s["adapter_ci_above_best_text_mean"] >= 12 and s["adapter_ci_contains_logreg_mean"] >= 14


@pytest.mark.slow
def test_pro_experiment_quick_adapter_matches_logistic_regression_and_beats_text():
    """The claim docs/ph_llm.md states for ``llmlab lab experiment ph_llm_pro --quick``."""
    res = pro.experiment_ph_llm_pro(quick=True, seed=0)
    checks = res["checks"]
    assert checks["LM unchanged by adapter training"]
    # what the doc states for the quick run: the adapter clearly beats both text encodings, and text falls
    # short of logistic regression; but at this scale the adapter itself also falls short of it
    assert checks["adapter beats every text arm by more than tol"], res["measured"]
    assert checks["text arms fall short of logistic regression by more than tol"], res["measured"]
    assert not checks["adapter within tol of logistic regression"], res["measured"]
    assert not res["claim_direction_holds"]
