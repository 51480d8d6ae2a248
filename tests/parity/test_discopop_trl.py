"""DiscoPOP / DPO losses vs TRL's own ``DPOTrainer._compute_loss`` (TRL is never a dependency of llmlab).

Runs only when pointed at a scratch TRL install outside the repo (it must not replace torch/transformers):

    pip install --no-deps --target "$SCRATCH"/trl trl
    LLMLAB_TRL_PATH="$SCRATCH"/trl python -m pytest tests/parity/test_discopop_trl.py -q

It compares ``loss_type="discopop"`` (τ = 0.05 and 1) and ``"sigmoid"`` with ours at β ∈ {0.05, 0.1} on 48
random float32 pairs, per pair, to 1e-6.
"""

import os
import sys

import pytest

torch = pytest.importorskip("torch")

from llmlab.training import discopop as dp  # noqa: E402


def _pairs(n=64, seed=0, dtype=torch.float64, scale=40.0):
    g = torch.Generator().manual_seed(seed)
    return [(-torch.rand(n, generator=g, dtype=dtype) * scale) for _ in range(4)]


def _trl_losses(loss_type, pc, pr, rc, rr, beta, tau):
    """TRL's own DPOTrainer._compute_loss on the given log-probs, one pair per call (per-pair values)."""
    from collections import defaultdict
    from types import SimpleNamespace

    from trl.trainer.dpo_trainer import DPOTrainer

    class _Acc:
        device = torch.device("cpu")

        def gather_for_metrics(self, t):
            return t

        gather = gather_for_metrics

    out = []
    for i in range(pc.shape[0]):
        T = 3
        per_tok = torch.stack([pc[i : i + 1], pr[i : i + 1]]).repeat(1, T) / T  # (2, T) sums to the logps

        class _Model:
            training = True

            def __init__(self, lp):
                self.lp = lp

            def __call__(self, **kw):
                n = self.lp.shape[1]
                return SimpleNamespace(log_probs=self.lp, entropy=torch.zeros(2, n), mean_logits=torch.zeros(2, n),
                                       is_top1=torch.zeros(2, n, dtype=torch.bool))

        model = _Model(per_tok)
        fake = SimpleNamespace(
            model=model, accelerator=_Acc(), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
            f_divergence_type="reverse_kl", loss_types=[loss_type], loss_weights=[1.0], beta=beta,
            args=SimpleNamespace(discopop_tau=tau), use_weighting=False, label_smoothing=0.0,
            _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
        )
        inputs = {"input_ids": torch.zeros(2, T + 1, dtype=torch.long), "attention_mask": torch.ones(2, T + 1),
                  "completion_mask": torch.ones(2, T + 1), "ref_chosen_logps": rc[i : i + 1],
                  "ref_rejected_logps": rr[i : i + 1]}
        out.append(DPOTrainer._compute_loss(fake, model, inputs, False))
    return torch.stack([o if isinstance(o, torch.Tensor) else o[0] for o in out]).reshape(-1)


@pytest.mark.skipif(not os.environ.get("LLMLAB_TRL_PATH"), reason="set LLMLAB_TRL_PATH to a scratch trl install")
def test_parity_with_trl_discopop_and_sigmoid():
    sys.path.append(os.environ["LLMLAB_TRL_PATH"])
    pytest.importorskip("trl", reason="LLMLAB_TRL_PATH does not hold an importable trl")
    pc, pr, rc, rr = _pairs(n=48, seed=3, dtype=torch.float32)
    for beta in (0.05, 0.1):
        for tau in (0.05, 1.0):  # τ = 1: where a clamp of ρ would show
            ours = dp.discopop_loss(pc, pr, rc, rr, beta=beta, tau=tau)
            theirs = _trl_losses("discopop", pc, pr, rc, rr, beta, tau)
            assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()
        ours = dp.dpo_loss(pc, pr, rc, rr, beta=beta)
        theirs = _trl_losses("sigmoid", pc, pr, rc, rr, beta, 0.05)
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()
