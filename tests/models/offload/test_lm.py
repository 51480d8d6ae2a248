"""A trained dReLU LM on the offloading engine: the locality PowerInfer-2 relies on, measured on real text.

The slow test trains a small dReLU ``SambaLM`` for real (the Python standard library's sources, one torch
thread, a few minutes), fits its predictors and puts it on the engine at a quarter of its FFN bytes. It
asserts what docs/sparse_ffn.md states about trained-model locality (bounds set below the measured values
with a margin): sparse activations, predictors that recall most active neurons, a hit rate well above what
the budget alone would give, fewer reads with the co-activation order, and the in-memory sparse model's
tokens. No timing is asserted.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import asdict

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from llmlab.models.offload import (  # noqa: E402
    OffloadConfig,
    OffloadEngine,
    decode,
    offload_lm,
    pinned_from_frequency,
    polymorphic_lm,
)
from llmlab.models.offload.engine import OffloadedFFN  # noqa: E402
from llmlab.models.offload.lm import ffn_bytes, sparse_lab_model  # noqa: E402
from llmlab.training.tiny_lm import TrainConfig, train  # noqa: E402
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture

# d=256: a 3 KiB bundle (6 x 512 B blocks, align 512); d_ff = 8d; 6 MiB of float32 FFN in 2 layers
SMALL = dict(arch="transformer", ffn="drelu", n_layer=2, n_embd=256, n_head=4, intermediate_size=2048,
             seq_len=128, batch_size=8, steps=300, lr=1e-3, warmup=20, threads=1)


@pytest.mark.slow
def test_trained_drelu_lm_has_the_locality_the_offloading_engine_relies_on(tmp_path):
    cfg = TrainConfig(**SMALL)
    rec = train(cfg)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"config": asdict(cfg)}))
    torch.save(rec.pop("model").state_dict(), folder / "model.pt")
    lab = sparse_lab_model(folder, rank=64, pred_steps=600, prof_windows=32, val_windows=8)
    assert min(lab.exact_zero) >= 0.80  # trained dReLU: most activations exactly zero on held-out text
    assert min(m["recall"] for m in lab.predictor) >= 0.85
    density = float(np.mean([f.mean() for f in lab.frequency]))
    assert density <= 0.25

    model, layers = lab.model, lab.layers
    ref = polymorphic_lm(copy.deepcopy(model), [copy.deepcopy(s) for s in layers])
    prompt = [int(b) for b in lab.val[1000:1064]]
    want = decode(ref, prompt, 24).tokens
    budget = ffn_bytes(model) // 4
    cfg_e = OffloadConfig(budget_bytes=budget, hot_fraction=0.25)
    reads, hit = {}, {}
    for reorder in (False, True):
        m = copy.deepcopy(model)
        engine = offload_lm(m, [copy.deepcopy(s) for s in layers], tmp_path / f"ffn{reorder}.bin", cfg_e,
                            frequency=lab.frequency, align=512, masks=lab.masks if reorder else None)
        engine.close()
        pinned = pinned_from_frequency(lab.frequency, OffloadEngine.hot_slots(cfg_e, tmp_path / f"ffn{reorder}.bin"))
        for pipeline in (True, False):
            eng = OffloadEngine(tmp_path / f"ffn{reorder}.bin", lab.act, dataclasses.replace(cfg_e, pipeline=pipeline),
                                pinned)
            for blk in m.blocks:
                assert isinstance(blk.ffn, OffloadedFFN)
                blk.ffn.engine = eng
            eng.drop_page_cache()
            got = decode(m, prompt, 24).tokens
            assert got == want, (reorder, pipeline)  # same neurons as the in-memory sparse model, same tokens
            reads[reorder], hit[reorder] = eng.stats.reads, eng.stats.hit_rate
            eng.close()
    # a quarter of the FFN in memory, yet most computed neurons are already resident (pinned hot set + LRU)
    assert hit[False] >= 0.75 and abs(hit[True] - hit[False]) < 0.03  # the order changes reads, hardly hits
    assert reads[True] <= 0.8 * reads[False]  # co-active neurons adjacent in the file: fewer, longer reads
