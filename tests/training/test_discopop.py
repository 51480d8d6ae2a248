import json
import math
import os
import sys

import pytest

torch = pytest.importorskip("torch")

from llmlab.backends.mock import MockBackend  # noqa: E402
from llmlab.backends.model import Model  # noqa: E402
from llmlab.core.errors import ConfigError, ParseError  # noqa: E402
from llmlab.training import discopop as dp  # noqa: E402

F = torch.nn.functional


def _pairs(n=64, seed=0, dtype=torch.float64, scale=40.0):
    g = torch.Generator().manual_seed(seed)
    return [(-torch.rand(n, generator=g, dtype=dtype) * scale) for _ in range(4)]


def _rho_inputs(rho, beta=0.05):
    """Inputs whose β-scaled log-ratio difference is exactly ``rho``."""
    z = torch.zeros_like(rho)
    return rho / beta, z, z, z


# -- LRML values and gradients --------------------------------------------------------------------------


def test_lrml_at_zero_is_half_logistic_half_exp():
    z = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(dp.discopop_loss(z, z, z, z), torch.full((3,), 0.5 * math.log(2) + 0.5, dtype=torch.float64))


def test_lrml_limits_and_tau_infinity():
    rho = torch.tensor([2.0, 5.0, -2.0, -5.0], dtype=torch.float64)
    out = dp.discopop_loss(*_rho_inputs(rho))
    # ρ >> τ: exponential loss; ρ << -τ: logistic loss
    assert torch.allclose(out[:2], torch.exp(-rho[:2]), rtol=1e-12)
    assert torch.allclose(out[2:], -F.logsigmoid(rho[2:]), rtol=1e-12)
    blend = dp.discopop_loss(*_rho_inputs(rho), tau=1e12)
    assert torch.allclose(blend, 0.5 * torch.exp(-rho) + 0.5 * -F.logsigmoid(rho), rtol=1e-9)


def test_lrml_matches_closed_form_and_formula_on_random_logps():
    pc, pr, rc, rr = _pairs()
    beta, tau = 0.05, 0.05
    rho = beta * ((pc - pr) - (rc - rr))
    m = torch.sigmoid(rho / tau)
    expected = (1 - m) * -F.logsigmoid(rho) + m * torch.exp(-rho)
    assert torch.allclose(dp.discopop_loss(pc, pr, rc, rr), expected, rtol=1e-12)


def test_lrml_gradient_matches_autograd_and_is_finite_everywhere():
    rho = torch.linspace(-60, 60, 241, dtype=torch.float64)
    pc = (rho / 0.05).clone().requires_grad_()
    pr = torch.zeros_like(rho, requires_grad=True)
    z = torch.zeros_like(rho)
    dp.discopop_loss(pc, pr, z, z).sum().backward()
    closed = dp.discopop_grad(pc.detach(), pr.detach(), z, z)
    assert torch.allclose(pc.grad, closed, atol=1e-12, rtol=1e-9)
    assert torch.allclose(pr.grad, -closed, atol=1e-12, rtol=1e-9)
    assert torch.isfinite(pc.grad).all()
    # far outside the guard (float32, ρ = -1000) the loss and gradient stay finite
    far = torch.tensor([-1000.0 / 0.05], requires_grad=True)
    zz = torch.zeros(1)
    loss = dp.discopop_loss(far, zz, zz, zz)
    loss.backward()
    assert torch.isfinite(loss).all() and torch.isfinite(far.grad).all()
    # gradcheck on the closed form's autograd in float64 around the blend region
    x = torch.linspace(-3, 3, 7, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: dp.discopop_loss(t, z[:7], z[:7], z[:7]), (x,))


# -- baselines -----------------------------------------------------------------------------------------


def test_baselines_reduce_to_textbook_values():
    pc, pr, rc, rr = (torch.tensor([v], dtype=torch.float64) for v in (-3.0, -7.0, -4.0, -6.0))
    d = (pc - pr) - (rc - rr)  # = 2
    b = 0.1
    assert d.item() == 2.0
    assert dp.dpo_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(math.log1p(math.exp(-0.2)))
    assert dp.hinge_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(0.8)
    assert dp.ipo_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx((2 - 5) ** 2)
    assert dp.cell_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(
        0.5 * math.exp(-0.2) + 0.5 * math.log1p(math.exp(-0.2)))
    assert dp.padll_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(0.9 * math.log1p(math.exp(-0.2)))
    assert dp.padll_loss(pr, pc, rr, rc, beta=b).item() == pytest.approx(0.45 * math.log1p(math.exp(0.2)))
    # PFL: the policy prefers chosen (pc > pr) -> logistic / 2
    assert dp.pfl_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(math.log1p(math.exp(-0.2)) / 2)
    assert dp.pfl_loss(pr, pc, rr, rc, beta=b).item() == pytest.approx(2 * 1.2)
    # KTO-pair with one pair: chosen KL = 1, rejected KL = clamp(-1) = 0
    expected = (1 - 1 / (1 + math.exp(-0.1 * (1 - 0)))) + (1 - 1 / (1 + math.exp(-0.1 * (1 + 1))))
    assert dp.kto_pair_loss(pc, pr, rc, rr, beta=b).item() == pytest.approx(expected)
    for name in dp.LOSSES:
        out = dp.get_loss(name)(*_pairs(n=10))
        assert out.shape == (10,) and torch.isfinite(out).all(), name
    with pytest.raises(ConfigError, match="Available"):
        dp.get_loss("nope")


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
    pytest.importorskip("trl")
    pc, pr, rc, rr = _pairs(n=48, seed=3, dtype=torch.float32)
    for beta in (0.05, 0.1):
        ours = dp.discopop_loss(pc, pr, rc, rr, beta=beta, tau=0.05)
        theirs = _trl_losses("discopop", pc, pr, rc, rr, beta, 0.05)
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()
        ours = dp.dpo_loss(pc, pr, rc, rr, beta=beta)
        theirs = _trl_losses("sigmoid", pc, pr, rc, rr, beta, 0.05)
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), (ours - theirs).abs().max()


# -- candidate validation (in-process part of the sandbox) ---------------------------------------------


LRML_CODE = dp.SEED_CODES["dpo"].replace(
    "return -F.logsigmoid(self.beta * logits)",
    "logits = logits * self.beta\n    m = torch.sigmoid(logits / 0.05)\n"
    "    return (1 - m) * -F.logsigmoid(logits) + m * torch.exp(-logits)",
)
BROKEN = {
    "syntax": "def loss_fn(self, a, b, c, d)\n    return a",
    "two_functions": "def f(self, a, b, c, d):\n    return a - b\n\ndef g(x):\n    return x",
    "wrong_shape": "def loss_fn(self, a, b, c, d):\n    return (a - b).mean()",
    "nan": "def loss_fn(self, a, b, c, d):\n    return (a - b) * float('nan')",
    "not_differentiable": "def loss_fn(self, a, b, c, d):\n    return torch.relu(1 - (a - b).detach())",
    "import_os": "def loss_fn(self, a, b, c, d):\n    import os\n    return a - b",
    # finite loss, NaN gradient: the unused sqrt branch of where() back-propagates 0 * nan
    "nan_grad": "def loss_fn(self, a, b, c, d):\n    return torch.where(a < 1, b - a, torch.sqrt(a))",
}


def test_validator_accepts_lrml_and_rejects_broken_code_with_reasons():
    fn = dp.load_candidate(LRML_CODE)
    dp.validate_candidate(fn)
    pc, pr, rc, rr = _pairs(n=10, dtype=torch.float32)

    class S:
        beta = 0.05

    assert torch.allclose(fn(S(), pc, pr, rc, rr), dp.discopop_loss(pc, pr, rc, rr), atol=1e-6)
    reasons = {}
    for name, code in BROKEN.items():
        with pytest.raises(Exception) as info:
            dp.validate_candidate(dp.load_candidate(code))
        reasons[name] = str(info.value)
    assert "SyntaxError" in reasons["syntax"]
    assert "exactly one function" in reasons["two_functions"]
    assert "shape" in reasons["wrong_shape"]
    assert "non-finite" in reasons["nan"]
    assert "differentiable" in reasons["not_differentiable"]
    assert "not allowed" in reasons["import_os"]
    assert "gradient has non-finite" in reasons["nan_grad"]


def test_parse_proposal_variants():
    obj = {"thought": "t", "name": "n", "code": "x"}
    assert dp.parse_proposal(json.dumps(obj)) == ("t", "n", "x")
    assert dp.parse_proposal("Sure!\n```json\n" + json.dumps(obj) + "\n```") == ("t", "n", "x")
    with pytest.raises(ParseError):
        dp.parse_proposal("no json here")
    with pytest.raises(ParseError):
        dp.parse_proposal('{"thought": "t"}')


def test_toy_fitness_prefers_aligned_over_anti_aligned_loss():
    good = dp.toy_fitness(dp.load_candidate(dp.SEED_CODES["dpo"]), steps=30)
    bad = dp.toy_fitness(dp.load_candidate(dp.SEED_CODES["dpo"].replace("-F.logsigmoid", "F.logsigmoid")), steps=30)
    assert good["reward"] > good["ref_reward"] > bad["reward"]


# -- the loop, through the sandboxed worker ------------------------------------------------------------


def _proposal(name, code):
    return json.dumps({"thought": f"try {name}", "name": name, "code": code})


def test_discovery_loop_with_mock_proposer_rejects_broken_losses_cleanly():
    replies = [
        _proposal("lrml", LRML_CODE),
        _proposal("syntax", BROKEN["syntax"]),
        _proposal("nan", BROKEN["nan"]),
        _proposal("not_differentiable", BROKEN["not_differentiable"]),
        "I think we should try something new but I forgot the JSON.",
        _proposal("hinge", dp.SEED_CODES["hinge"]),
        _proposal("infinite_loop", "def loss_fn(self, a, b, c, d):\n    while True:\n        pass\n"),
    ]
    backend = MockBackend(replies)
    model = Model(backend)
    seed = [{"name": "dpo", "code": dp.SEED_CODES["dpo"], "fitness": 0.5}]
    from llmlab.core.concurrency import run_sync

    with dp.SandboxWorker(timeout=4.0) as worker:
        res = run_sync(dp.discover(model, generations=len(replies), fitness="toy",
                                   fitness_options={"steps": 30}, seed_archive=seed, worker=worker))
        # the worker was killed by the time limit and comes back for the next request
        assert worker.validate(LRML_CODE)["ok"] is True
    names = [c.name for c in res.history]
    valid = {c.name: c.valid for c in res.history}
    assert names == ["lrml", "syntax", "nan", "not_differentiable", "unparsed", "hinge", "infinite_loop"]
    assert valid == {"lrml": True, "syntax": False, "nan": False, "not_differentiable": False, "unparsed": False,
                     "hinge": True, "infinite_loop": False}
    errors = {c.name: c.error for c in res.history}
    assert "SyntaxError" in errors["syntax"] and "non-finite" in errors["nan"]
    assert "timed out" in errors["infinite_loop"]
    assert [a["name"] for a in res.archive] == ["dpo", "lrml", "hinge"]
    assert {c.name for c in res.best(2)} == {"lrml", "hinge"}
    assert all(c.fitness is not None and math.isfinite(c.fitness) for c in res.best())
    # the conversation: archive first, then fitness or the error fed back each turn
    msgs = backend.requests[-1].messages
    assert msgs[0].role == "system" and "loss_fn" in msgs[0].content
    assert "Here are some results" in msgs[1].content and '"dpo"' in msgs[1].content
    users = [m.content for m in msgs if m.role == "user"][1:]
    assert users[0].startswith("Fitness:")
    assert "SyntaxError" in users[1] and "Code not valid" in users[1]
    assert "no JSON object" in users[4]
