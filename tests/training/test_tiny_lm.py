from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError, DataError  # noqa: E402
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


# The slow tests run the quick (--quick, seed 0) version of each lab experiment and assert what
# docs/experiments.md states for that run; downstream_scaling and shiftadd_quant_ladder have their own
# slow tests (tests/stats/test_scaling_lab.py, tests/models/shiftadd/test_cli.py).


@pytest.mark.slow
def test_drelu_has_the_stated_sparsity_at_equal_loss():
    # docs/experiments.md, quick seed 0 re-measured 2026-12-03 (after the official Samba init, 06a19ae):
    # dReLU 0.795 exact zeros (the claim's > 0.80 narrowly misses at this size) at a loss 0.1% below
    # SwiGLU's; ReLU-gate 0.58, SwiGLU none; sparsity rises with depth; top-20% neuron share 0.51-0.77;
    # predictor recall >= 0.95 per layer, predicted-sparse LM +0.0002 bpb
    res = run_experiment("drelu_vs_swiglu", quick=True)
    m = res["measured"]
    assert 0.765 <= m["drelu_sparsity"] <= 0.825
    assert m["swiglu_sparsity"] == 0.0 < m["relu_gate_sparsity"] < m["drelu_sparsity"]
    assert m["relative_loss_gap"] <= 0.01
    per_layer = res["runs"]["drelu"]["sparsity"]["exact_zero"]
    assert per_layer[-1] > per_layer[0]
    assert min(res["runs"]["drelu"]["top20pct_neuron_share"]) > 0.4  # uniform would be 0.2
    pred = res["predictor"]
    assert all(la["recall"] >= 0.9 for la in pred["per_layer"])
    assert abs(pred["sparse_val_bpb"] - pred["dense_val_bpb"]) < 0.005


@pytest.mark.slow
def test_samba_extrapolates_without_a_length_penalty():
    # docs/experiments.md, quick seed 0 re-measured 2026-12-03 (official Samba init): Samba's loss falls
    # from 1x to 16x by 0.35 bpb and its far penalty vs SWA-only is -0.044 (none); the undertrained quick
    # transformer's is only +0.014, so the contrast with full attention is small here (the default runs
    # showed it, before the init change); "Samba <= best single mixer at 1x" does NOT hold: Mamba-only is
    # 0.24 bpb better
    res = run_experiment("samba_extrapolation", quick=True)
    m = res["measured"]
    assert m["growth_samba"] < -0.2
    assert -0.08 < m["far_penalty_vs_swa_samba"] < 0.02
    assert m["far_penalty_vs_swa_transformer"] > m["far_penalty_vs_swa_samba"] + 0.03
    assert res["claim_direction_holds"] is True
    assert m["transformer"]["1x"] > m["swa"]["1x"] > m["samba"]["1x"] > m["mamba"]["1x"]
    assert 0.1 < res["samba_at_train_len_vs_best_single"] < 0.4


@pytest.mark.slow
def test_moe_gate_norm_lowers_drop_but_final_sharpness_ties():
    # docs/experiments.md, quick seed 0 re-measured 2026-12-03 (current code): the claim as coded does NOT
    # hold: normalisation lowers the final drop rate (0.241 vs 0.323) and raises the mean Max1/Max2 over
    # training (1.36 vs 1.30), but the final Max1/Max2 ties (1.429 vs 1.438); at capacity 1.25 the adaptive
    # α saturates at α_max (so that run equals fixed α); at capacity 2 α tracks each layer's drop rate
    res = run_experiment("moe_gate_norm", quick=True)
    m = res["measured"]
    assert abs(m["max1_max2_on"] - m["max1_max2_off"]) < 0.05
    assert m["max1_max2_mean_over_training_on"] > m["max1_max2_mean_over_training_off"] + 0.03
    assert m["drop_on"] < m["drop_off"] - 0.05
    assert res["claim_direction_holds"] is False
    assert all(a == pytest.approx(0.01) for a in m["adaptive_alpha_per_layer"])
    assert m["val_bpb"]["gate_norm_adaptive_aux"] == pytest.approx(m["val_bpb"]["gate_norm"], abs=1e-6)
    alphas, drops = m["cf2_alpha_per_layer"], m["cf2_drop_per_layer"]
    assert max(alphas) - min(alphas) > 5e-4 and min(alphas) < 0.0095
    assert alphas.index(max(alphas)) == drops.index(max(drops))
    assert alphas.index(min(alphas)) == drops.index(min(drops))
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


def test_interrupted_training_resumes_from_its_checkpoint_exactly(corpus, tmp_path):
    data = load_corpus(corpus, max_bytes=10**7)
    cfg = TrainConfig(arch="transformer", ffn="drelu", steps=8, lr=1e-2, warmup=2, **(TINY | {"log_every": 1}))
    whole = train(cfg, data)

    def crash(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data, on_log=crash, checkpoint=ckpt, checkpoint_every=3)
    assert torch.load(ckpt, weights_only=False)["step"] == 3  # the last save before the crash
    resumed = train(cfg, data, checkpoint=ckpt, checkpoint_every=3)
    assert resumed["history"] == whole["history"]
    for (k, a), b in zip(whole["model"].state_dict().items(), resumed["model"].state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert torch.load(ckpt, weights_only=False)["step"] == 8
    with pytest.raises(ConfigError, match="another training config"):
        train(TrainConfig(arch="transformer", ffn="drelu", steps=9, **TINY), data, checkpoint=ckpt)
