from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError, DataError  # noqa: E402
from llmlab.core.registry import EXPERIMENTS  # noqa: E402
from llmlab.training.tiny_lm import (  # noqa: E402
    TrainConfig,
    eval_windows,
    get_batch,
    is_validation,
    load_corpus,
    loss_by_position,
    lr_at,
    run_experiment,
    train,
)
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture

TINY = dict(n_layer=2, n_embd=16, n_head=2, intermediate_size=32, local_window=8, d_state=4, seq_len=32,
            batch_size=4, log_every=5, eval_windows=4, threads=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    text = "def add(a, b):\n    return a + b\n\nclass Point:\n    x: int = 0\n    y: int = 0\n"
    for i in range(200):
        (root / f"m{i:03d}.py").write_text(text * 10 + f"# file {i}\n")
    return root


def test_split_is_by_file_and_deterministic(corpus):
    files = sorted(corpus.glob("*.py"))
    val = [f for f in files if is_validation(f, corpus, 0.05)]
    assert 0 < len(val) < len(files) // 5
    assert val == [f for f in files if is_validation(f, corpus, 0.05)]
    tr, va = load_corpus(corpus, max_bytes=10**7)
    assert tr.dtype == torch.uint8 and tr.numel() + va.numel() > 150_000
    assert abs(va.numel() / (tr.numel() + va.numel()) - len(val) / len(files)) < 0.02


def test_missing_or_tiny_corpus_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "a.py").write_text("x = 1\n")
    with pytest.raises(DataError, match="too small"):
        load_corpus(tmp_path)


def test_batches_are_shifted_windows():
    data = torch.arange(200, dtype=torch.uint8)
    x, y = get_batch(data, 3, 10, torch.Generator().manual_seed(0))
    assert x.shape == (3, 10) and torch.equal(y, x + 1)
    a, _ = eval_windows(data, 20, 4)
    b, _ = eval_windows(data, 40, 4)
    c, _ = eval_windows(data, 20, 4)
    assert torch.equal(a, c)


def test_lr_schedule_warmup_then_cosine_to_a_tenth():
    cfg = TrainConfig(lr=1.0, warmup=10, steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(110, cfg) == pytest.approx(0.1)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 110))


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="Available"):
        TrainConfig.from_dict({"n_embed": 3})


@pytest.mark.parametrize("arch", ["samba", "transformer"])
def test_training_learns_and_is_seeded(corpus, arch):
    data = load_corpus(corpus, max_bytes=10**7)
    cfg = TrainConfig(arch=arch, steps=30, lr=1e-2, warmup=3, **TINY)
    a = train(cfg, data)
    b = train(cfg, data)
    assert a["history"] == b["history"]
    first, last = a["history"][0][1], a["history"][-1][1]
    assert first > 7.0 and last < first - 2.0  # from ~8 bits (uniform bytes) toward the repeated text
    assert a["val_bpb"] < 6.0 and a["params"] > 0


def test_moe_training_records_router_stats(corpus):
    data = load_corpus(corpus, max_bytes=10**7)
    cfg = TrainConfig(arch="transformer", moe_experts=4, moe_capacity_factor=1.0, moe_gate_norm=1.0,
                      moe_adaptive=True, steps=6, **TINY)
    rec = train(cfg, data)
    layers = rec["moe"][-1]["layers"]
    assert len(layers) == TINY["n_layer"]
    assert all(0.0 <= la["drop_rate"] <= 1.0 and la["max1_max2"] >= 1.0 for la in layers)
    assert all(0.0 <= la["alpha"] <= 0.01 + 1e-12 for la in layers)


def test_unknown_experiment_raises():
    with pytest.raises(ConfigError, match="Available"):
        run_experiment("nope")


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS.names())
def test_experiment_quick_runs_for_real(name):
    res = run_experiment(name, quick=True)
    assert isinstance(res["claim_direction_holds"], bool)
    for rec in res["runs"].values():
        assert math.isfinite(rec["val_bpb"]) and rec["val_bpb"] < 8.0


def test_loss_by_position_buckets():
    class Model(torch.nn.Module):  # predicts the next byte (x + 1) confidently only at positions < 4
        def forward(self, x):
            logits = torch.zeros(*x.shape, 256)
            logits[:, :4].scatter_(-1, (x[:, :4, None] + 1) % 256, 100.0)
            return logits

    x = torch.arange(16).repeat(3, 1)
    buckets = loss_by_position(Model(), x, x + 1, [0, 4, 8, 16])
    assert buckets[0] == pytest.approx(0.0, abs=1e-6)
    assert buckets[1] == pytest.approx(8.0) and buckets[2] == pytest.approx(8.0)
