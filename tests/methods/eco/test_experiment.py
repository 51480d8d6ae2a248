"""ECO's "as if never trained" claim on tiny byte LMs trained with the lab's trainer.

The quick variant (default suite) checks what must hold at any scale: retain prompts are never flagged and
their answers are bit-identical under ECO, the zeroth-order σ search drives its objective down, and ECO moves
the forget-set answer loss to the retain model's. The slow variant asserts the claim docs/eco.md states.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from tests.helpers.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    import torch

    from llmlab.methods.eco.experiment import experiment_eco_unlearning

    torch.set_num_threads(1)
    return experiment_eco_unlearning(quick=True, seed=0)


def test_quick_claims(quick: dict[str, Any]) -> None:
    res = quick["result"]
    assert res["classifier"] == {"forget_flagged": 1.0, "retain_flagged": 0.0}
    assert res["retain_set"]["eco_identical_to_full"]
    zo = res["zo"]
    assert zo["evaluations"] == 2 * len(zo["history"])
    assert zo["f_final"] < zo["f_initial"]  # the search moves the truth ratios toward the retain model's
    fo = res["forget"]
    gap_full = fo["retain_model"]["mean_true_loss"] - fo["full"]["mean_true_loss"]
    gap_eco = abs(fo["eco"]["mean_true_loss"] - fo["retain_model"]["mean_true_loss"])
    assert gap_full > 0.2  # the full model learned the forget facts
    assert gap_eco < gap_full  # ECO moves the forget loss toward the never-trained model's
    assert quick["claim_direction_holds"]


def test_loss_helper_matches_a_plain_forward() -> None:
    import torch

    from llmlab.methods.eco.experiment import answer_losses
    from llmlab.models.samba import SambaConfig, SambaLM

    torch.manual_seed(0)
    m = SambaLM(SambaConfig(vocab_size=256, n_layer=1, n_embd=16, n_head=2, intermediate_size=32, arch="transformer",
                            local_window=32))
    prompt, ans = "Q: x?\nA:", " Durn."
    got = answer_losses(m, prompt, [ans, " Velmor."])[0]
    seq = torch.tensor([list((prompt + ans).encode())])
    logp = torch.log_softmax(m(seq[:, :-1]), -1)[0]
    p = len(prompt.encode())
    want = -sum(logp[t - 1, seq[0, t]].item() for t in range(p, seq.shape[1])) / len(ans.encode())
    assert got == pytest.approx(want, rel=1e-5)
    # σ = 0 corruption is the identity; a large σ changes the loss; the hook is gone afterwards
    assert answer_losses(m, prompt, [ans], sigma=0.0)[0] == pytest.approx(got, abs=1e-6)
    assert answer_losses(m, prompt, [ans], sigma=5.0)[0] != pytest.approx(got, abs=1e-3)
    assert len(m.wte._forward_hooks) == 0
    assert answer_losses(m, prompt, [ans])[0] == got


@pytest.mark.slow
def test_slow_forget_quality_moves_toward_never_trained() -> None:
    """The claims docs/eco.md states for the slow run (80 people, 20 forgotten, seed 0): "as if never
    trained" at TOFU's 5% level (the full model is distinguishable from the never-trained one, ECO(full) is
    not), with the retain set bit-identical."""
    from llmlab.methods.eco.experiment import experiment_eco_unlearning

    out = experiment_eco_unlearning(quick=False, seed=0)
    res = out["result"]
    assert out["claim_direction_holds"]
    assert res["classifier"] == {"forget_flagged": 1.0, "retain_flagged": 0.0}
    assert res["retain_set"]["eco_identical_to_full"]
    fq = res["forget_quality"]
    assert fq["full"] < 0.05  # the full model is distinguishable from the never-trained one
    assert fq["eco"] > 0.05  # ECO(full) is not distinguishable from the never-trained model at 5%
    assert res["zo"]["f_final"] < 0.6 * res["zo"]["f_initial"]
    fo = res["forget"]
    assert fo["full"]["prefers_true"] > fo["eco"]["prefers_true"] >= fo["retain_model"]["prefers_true"]
