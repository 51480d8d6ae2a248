from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.models.offload import (  # noqa: E402
    BundleFile,
    OffloadConfig,
    OffloadEngine,
    active_ids,
    clusters,
    coactivation_order,
    decode,
    ffn_weights,
    offload_lm,
    pinned_from_frequency,
    polymorphic_lm,
    profile_frequency,
    profile_masks,
    write_bundles,
)
from llmlab.models.samba import SambaConfig, SambaLM  # noqa: E402
from llmlab.models.sparse_ffn import (  # noqa: E402
    ActivationPredictor,
    GatedFFN,
    SparseFFN,
    record_activations,
)
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def _dyadic(*shape, gen):
    """Multiples of 1/16 in [-1, 1]: every product and sum below is exact in float64, in any order."""
    return torch.randint(-16, 17, shape, generator=gen).double() / 16


def _dyadic_layer(d=32, d_ff=256, seed=0, hot=16):
    gen = torch.Generator().manual_seed(seed)
    ffn = GatedFFN(d, d_ff, act="drelu").double()
    pred = ActivationPredictor(d, d_ff, rank=8).double()
    with torch.no_grad():
        for lin in (ffn.w_gate, ffn.w_up, ffn.w_down):
            lin.weight.copy_(_dyadic(*lin.weight.shape, gen=gen))
        pred.fc1.weight.mul_(4)
        pred.fc2.bias.copy_(torch.randn(d_ff, generator=gen, dtype=torch.float64) - 0.7)  # ~25% predicted active
    hot_idx = torch.randperm(d_ff, generator=gen)[:hot] if hot else None
    return ffn, SparseFFN(ffn, pred, hot_idx=hot_idx)


def test_clusters_are_runs_of_contiguous_ids_capped():
    assert clusters(np.array([], dtype=np.int64), 4) == []
    ids = np.array([0, 1, 2, 3, 4, 9, 11, 12])
    assert clusters(ids, 3) == [(0, 3), (3, 2), (5, 1), (6, 2)]
    got = np.concatenate([ids[p:p + n] for p, n in clusters(ids, 3)])
    assert np.array_equal(got, ids)


def test_bundle_file_round_trip_with_direct_io(tmp_path):
    ffn, sp = _dyadic_layer()
    lay = write_bundles(tmp_path / "w.bin", [ffn_weights(sp)], dtype="float64")
    assert lay.bundle_bytes % 4096 == 0 and lay.bundle_bytes >= 3 * 32 * 8
    assert (tmp_path / "w.bin").stat().st_size == lay.layer_bytes
    f = BundleFile(tmp_path / "w.bin")
    if not f.direct:
        pytest.skip("filesystem refuses O_DIRECT")
    from llmlab.models.offload import aligned_buffer

    buf = aligned_buffer(3 * lay.bundle_bytes)
    views = [memoryview(buf)[i * lay.bundle_bytes:(i + 1) * lay.bundle_bytes] for i in range(3)]
    assert f.read_into(0, 5, views) == 3 * lay.bundle_bytes
    rows = np.frombuffer(buf, dtype="float64").reshape(3, -1)
    assert np.array_equal(rows[:, :32], ffn.w_gate.weight[5:8].detach().numpy())
    assert np.array_equal(rows[:, 32:64], ffn.w_up.weight[5:8].detach().numpy())
    assert np.array_equal(rows[:, 64:96], ffn.w_down.weight[:, 5:8].T.detach().numpy())
    f.close()


@pytest.mark.parametrize("reorder", [False, True])
@pytest.mark.parametrize("pipeline", [True, False])
@pytest.mark.parametrize("use_kernel", [True, False])
def test_offloaded_decode_equals_in_memory_sparse_ffn_bit_for_bit(tmp_path, pipeline, use_kernel, reorder):
    ffn, sp = _dyadic_layer()
    sp.use_kernel = use_kernel
    order = np.random.default_rng(3).permutation(256)[None] if reorder else None  # any file order
    write_bundles(tmp_path / "w.bin", [ffn_weights(sp)], dtype="float64", order=order)
    lay = BundleFile(tmp_path / "w.bin").layout
    # 120 slots of 256 neurons: hits, misses and evictions all happen
    cfg = OffloadConfig(budget_bytes=120 * lay.bundle_bytes, hot_fraction=0.25, max_cluster=4, pipeline=pipeline)
    pinned = {0: sp.perm[:16].numpy()}
    eng = OffloadEngine(tmp_path / "w.bin", "drelu", cfg, pinned)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(12):
            x = _dyadic(1, 32, gen=gen)
            ids = active_ids(sp, x)
            assert torch.equal(eng.ffn_sparse(0, x, ids), sp(x))
            prefill = _dyadic(5, 32, gen=gen)
            assert torch.equal(eng.ffn_dense(0, prefill), ffn(prefill))
    st = eng.stats
    assert st.hits > 0 and st.misses > 0
    assert st.bytes_read == st.misses * lay.bundle_bytes + 12 * lay.layer_bytes  # misses + 12 dense prefills
    assert eng.cache is not None and eng.cache.preload_bytes == 16 * lay.bundle_bytes
    eng.close()


def test_pinned_neurons_are_never_evicted_and_lru_evicts_oldest(tmp_path):
    ffn, sp = _dyadic_layer(hot=0)
    write_bundles(tmp_path / "w.bin", [ffn_weights(sp)], dtype="float64")
    bb = BundleFile(tmp_path / "w.bin").layout.bundle_bytes
    eng = OffloadEngine(tmp_path / "w.bin", "drelu", OffloadConfig(budget_bytes=6 * bb, hot_fraction=0.34),
                        {0: np.array([0, 1])})
    x = torch.ones(1, 32, dtype=torch.float64)
    for ids in ([10, 11], [12, 13], [10, 11], [20, 21]):  # cold segment holds 4: 12, 13 are the LRU victims
        eng.ffn_sparse(0, x, np.array(ids))
    assert eng.cache is not None
    resident = set(np.flatnonzero(eng.cache.where[0] >= 0).tolist())
    assert resident == {0, 1, 10, 11, 20, 21}
    assert eng.stats.misses == 6 and eng.stats.hits == 2
    with pytest.raises(ConfigError, match="budget too small"):
        eng.ffn_sparse(0, x, np.arange(30, 40))
    eng.close()


def test_hot_pinning_beats_plain_lru_on_a_power_law_trace(tmp_path):
    ffn, sp = _dyadic_layer(hot=0)
    write_bundles(tmp_path / "w.bin", [ffn_weights(sp)], dtype="float64")
    bb = BundleFile(tmp_path / "w.bin").layout.bundle_bytes
    rng = np.random.default_rng(0)
    p = 0.6 / (1 + np.arange(256)) ** 0.8  # Zipf-like activation probabilities
    perm = rng.permutation(256)
    trace = [np.sort(perm[np.flatnonzero(rng.random(256) < p)]) for _ in range(200)]
    freq = np.zeros(256)
    for ids in trace[:100]:
        freq[ids] += 1
    rates = {}
    for hot_fraction in (0.0, 0.5):
        cfg = OffloadConfig(budget_bytes=64 * bb, hot_fraction=hot_fraction)
        pinned = pinned_from_frequency([freq], OffloadEngine.hot_slots(cfg, tmp_path / "w.bin"))
        eng = OffloadEngine(tmp_path / "w.bin", "drelu", cfg, pinned)
        x = torch.zeros(1, 32, dtype=torch.float64)
        for ids in trace[100:]:
            eng.ffn_sparse(0, x, ids)
        rates[hot_fraction] = eng.stats.hit_rate
        eng.close()
    assert rates[0.5] > rates[0.0]


def test_pinned_from_frequency_takes_global_top():
    got = pinned_from_frequency([np.array([0.1, 0.9, 0.5]), np.array([0.8, 0.0])], 3)
    assert {k: v.tolist() for k, v in got.items()} == {0: [1, 2], 1: [0]}


def _tiny_lm(seed=0):
    torch.manual_seed(seed)
    cfg = SambaConfig(n_layer=2, n_embd=32, n_head=2, intermediate_size=128, arch="transformer", ffn="drelu")
    return SambaLM(cfg).eval()


def _sparse_layers(model, seed=0):
    torch.manual_seed(seed)
    out = []
    for blk in model.blocks:
        pred = ActivationPredictor(32, 128, rank=8)
        with torch.no_grad():
            pred.fc2.bias.sub_(0.5)
        out.append(SparseFFN(blk.ffn, pred, hot_idx=torch.arange(8)))
    return out


@pytest.mark.parametrize(("mode", "reorder"), [("sparse", False), ("sparse", True), ("dense_stream", False),
                                               ("dense_stream", True)])
def test_offloaded_lm_decodes_like_the_in_memory_model(tmp_path, mode, reorder):
    model = _tiny_lm()
    ref = copy.deepcopy(model)
    layers = _sparse_layers(model)
    ref_layers = [copy.deepcopy(s) for s in layers]
    if mode == "dense_stream":
        ref_layers = [SparseFFN(b.ffn, None) for b in ref.blocks]  # unused: dense reference below
    x = torch.randint(0, 256, (1, 40))
    hiddens = [h for h, _ in record_activations(model, [x])]
    freq = profile_frequency(layers, hiddens)
    masks = profile_masks(layers, hiddens)
    assert all(np.allclose(m.mean(0), f) for m, f in zip(masks, freq, strict=True))
    lay_bytes = 128 * 4096
    cfg = OffloadConfig(budget_bytes=lay_bytes // 2, hot_fraction=0.5, max_cluster=8, mode=mode)
    engine = offload_lm(model, layers, tmp_path / "ffn.bin", cfg, frequency=freq, masks=masks if reorder else None)
    assert engine.layout.reordered == reorder
    assert all(s.bundle.numel() == 0 for s in layers)  # weights left memory
    if mode == "sparse":
        polymorphic_lm(ref, ref_layers)
    engine.drop_page_cache()
    got = decode(model, [1, 2, 3, 4], 10, keep_logits=True)
    want = decode(ref, [1, 2, 3, 4], 10, keep_logits=True)
    assert got.tokens == want.tokens
    for a, b in zip(got.logits, want.logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if mode == "dense_stream":  # nothing fits: every layer streamed whole on each of 1 prefill + 10 steps
        assert engine.stats.bytes_read == 11 * 2 * lay_bytes
    else:
        assert 0 < engine.stats.hit_rate < 1
    engine.close()


def test_config_validation():
    with pytest.raises(ConfigError):
        OffloadConfig(budget_bytes=0)
    with pytest.raises(ConfigError):
        OffloadConfig(budget_bytes=10, hot_fraction=2.0)
    with pytest.raises(ConfigError):
        OffloadConfig(budget_bytes=10, mode="mmap")  # type: ignore[arg-type]


def test_reordered_bundle_file_stores_neurons_at_their_positions(tmp_path):
    ffn, sp = _dyadic_layer()
    order = np.random.default_rng(0).permutation(256)
    write_bundles(tmp_path / "w.bin", [ffn_weights(sp)], dtype="float64", order=order[None])
    f = BundleFile(tmp_path / "w.bin", direct=False)
    assert f.layout.reordered and f.position is not None and np.array_equal(f.position[0][order], np.arange(256))
    from llmlab.models.offload import aligned_buffer

    bb = f.layout.bundle_bytes
    buf = aligned_buffer(2 * bb)
    f.read_into(0, 10, [memoryview(buf)[:bb], memoryview(buf)[bb:2 * bb]])
    rows = np.frombuffer(buf, dtype="float64").reshape(2, -1)
    assert np.array_equal(rows[:, :32], ffn.w_gate.weight[order[10:12]].detach().numpy())
    f.close()
    write_bundles(tmp_path / "w.bin", [ffn_weights(sp)], dtype="float64")  # rewritten by id: order file goes
    assert not (tmp_path / "w.bin.order.npy").exists() and BundleFile(tmp_path / "w.bin").position is None
    with pytest.raises(ConfigError, match="permutation"):
        write_bundles(tmp_path / "x.bin", [ffn_weights(sp)], order=np.zeros((1, 256), dtype=np.int64))


def test_coactivation_order_puts_co_active_neurons_together_and_pinned_first():
    rng = np.random.default_rng(0)
    groups = rng.permutation(256).reshape(32, 8)  # 32 groups of 8 neurons that fire together
    masks = np.zeros((400, 256), dtype=bool)
    for t in range(400):
        for g in rng.choice(32, size=3, replace=False):
            masks[t, groups[g]] = True
    pinned = np.array([5, 77, 200])
    order = coactivation_order(masks, pinned)
    assert np.array_equal(np.sort(order), np.arange(256)) and order[:3].tolist() == [5, 77, 200]
    position = np.argsort(order)

    def reads(pos_of):
        return sum(len(clusters(np.sort(pos_of[np.flatnonzero(m)]), 64)) for m in masks)

    by_id, reordered = reads(np.arange(256)), reads(position)
    assert reordered <= 0.25 * by_id  # groups of 8 become runs: ~3-4 reads per token instead of ~20
