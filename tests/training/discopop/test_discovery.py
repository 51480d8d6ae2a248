import json
import math

import pytest

torch = pytest.importorskip("torch")

from llmlab.backends.mock import MockBackend  # noqa: E402
from llmlab.backends.model import Model  # noqa: E402
from llmlab.core.errors import ParseError  # noqa: E402
from llmlab.training import discopop as dp  # noqa: E402


def _pairs(n=64, seed=0, dtype=torch.float64, scale=40.0):
    g = torch.Generator().manual_seed(seed)
    return [(-torch.rand(n, generator=g, dtype=dtype) * scale) for _ in range(4)]


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

    # 15 s: valid candidates train 30 steps in the worker, which takes several seconds on a loaded 2-core VM;
    # only the infinite loop waits the whole limit
    with dp.SandboxWorker(timeout=15.0) as worker:
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
