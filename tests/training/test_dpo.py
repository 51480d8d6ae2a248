import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.samba import SambaConfig, SambaLM  # noqa: E402
from llmlab.training import dpo  # noqa: E402
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def _lm(seed=0):
    torch.manual_seed(seed)
    cfg = SambaConfig(arch="transformer", n_layer=1, n_embd=32, n_head=4, intermediate_size=64)
    return SambaLM(cfg).eval()


def _text(n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(32, 127, (n,), generator=g, dtype=torch.uint8)


def test_vowel_reward():
    ys = torch.tensor([list(b"aXeY"), list(b"zzzz")])
    assert dpo.vowel_reward(ys).tolist() == [0.5, 0.0]


def test_sequence_logps_counts_only_completion_tokens():
    m = _lm()
    p = torch.tensor([[65, 66, 67]])
    c = torch.tensor([[68, 69]])
    with torch.no_grad():
        lp = m(torch.tensor([[65, 66, 67, 68]])).log_softmax(-1)  # (1, 4, V)
        expected = lp[0, 2, 68] + lp[0, 3, 69]
        assert torch.allclose(dpo.sequence_logps(m, p, c), expected.reshape(1), atol=1e-5)


def test_preference_data_orders_pairs_by_reward_and_training_moves_margin():
    ref = _lm()
    cfg = dpo.PrefConfig(n_pairs=64, n_eval=16, prompt_len=8, completion_len=8, steps=15, batch_size=16,
                         lr=3e-3, loss="discopop", beta=0.5)
    data = dpo.make_preference_data(ref, _text(), cfg)
    assert data.prompts.shape[1] == 8 and data.chosen.shape == data.rejected.shape
    assert (dpo.vowel_reward(data.chosen) > dpo.vowel_reward(data.rejected)).all()
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    rec = dpo.train_preference(ref, data, cfg)
    for k, v in ref.state_dict().items():  # the reference is frozen
        assert torch.equal(v, before[k])
    pol = rec["policy"]
    with torch.no_grad():
        margin = (dpo.sequence_logps(pol, data.prompts, data.chosen) - data.ref_chosen_logps) - (
            dpo.sequence_logps(pol, data.prompts, data.rejected) - data.ref_rejected_logps)
    assert margin.mean() > 0  # the implicit reward now prefers the chosen responses
    assert math.isfinite(rec["kl"]) and 0 <= rec["reward"] <= 1
    assert rec["history"][-1][1] < rec["history"][0][1]
    with pytest.raises(ConfigError):
        dpo.PrefConfig(beta=0)


@pytest.mark.slow
def test_experiment_reward_kl_real_run():
    # minutes: pre-trains a byte LM, samples pairs, trains DPO / DiscoPOP / hinge over four betas
    r = dpo.experiment_reward_kl(quick=False)
    rewards = [v["reward"] for runs in r["runs"].values() for v in runs.values()]
    kls = [v["kl"] for runs in r["runs"].values() for v in runs.values()]
    assert len(rewards) == 12 and all(math.isfinite(x) for x in rewards + kls)
    # docs/experiments.md reports that the paper's claim does NOT hold here; it states these facts:
    # LRML has far lower KL than DPO at every β but its reward falls below the reference's (0.06-0.19 vs
    # 0.20), and LRML's training ends in the loss's local minimum at ρ ≈ -0.12 (final losses 0.78-0.80,
    # minimum 0.786). All of these held in the 2026-12-04 run (the table); "DPO and hinge more than double
    # the reference's reward" did not (DPO at β = 0.01: 0.317 vs 0.203) and is not asserted
    ref, runs, holds = r["ref_reward"], r["runs"], r["claim_direction_holds"]
    assert holds["discopop KL < dpo KL at mid β (0.025-0.1)"] is True
    assert holds["discopop reward >= 0.95 x dpo reward at mid β"] is False
    for b, v in runs["discopop"].items():
        assert v["kl"] < 0.5 * runs["dpo"][b]["kl"]
        assert v["reward"] < ref
        assert 0.76 <= v["final_loss"] <= 0.82
