from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmlab.models import slime_lab as L  # noqa: E402
from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def test_render_places_four_distinct_coloured_digits():
    cfg = L.ToyConfig()
    img, digits = L.render(np.random.default_rng(0), cfg)
    assert img.shape == (3, 64, 64) and len(digits) == 4
    assert len({d for d, _, _ in digits}) == 4 and len({c for _, c, _ in digits}) == 4
    for d, c, cell in digits:
        r, col = divmod(cell, cfg.cells)
        block = img[:, r * 8:r * 8 + 7, col * 8 + 1:col * 8 + 6]
        ink = np.array([[ch == "#" for ch in row] for row in L.DIGITS_5X7[d]])
        rgb = np.array(L.COLOURS[L.COLOUR_NAMES[c]])
        # inked pixels carry the digit's colour (up to the brightness factor), the rest is dark noise
        lit = block[:, ink]
        assert np.allclose(lit / lit.max(), (rgb / rgb.max())[:, None], atol=0.05)
        assert block[:, ~ink].max() < 0.4


def test_views_and_labels_line_up():
    cfg = L.ToyConfig()
    data = L.dataset(np.random.default_rng(1), cfg, 3)
    # the global view is the 4x box-downsampled image at the encoder's input size, like each crop
    assert data["global"].shape == (3, 3, 32, 32) and data["crops"].shape == (3, 4, 3, 32, 32)
    dl, cl, gl = L.token_labels(data, cfg)
    assert dl.shape == (3, 4, 16) and cl.shape == (3, 4, 16) and gl.shape == (3, 16, 4)
    for i in range(3):
        # the target cell holds the asked digit with the answer colour
        cell = int(data["cell"][i])
        assert int(data["cell_digit"][i, cell]) == int(data["digit"][i])
        assert int(data["cell_colour"][i, cell]) == int(data["colour"][i])
        r, c = divmod(cell, cfg.cells)
        crop, local = (r // 4) * 2 + c // 4, (r % 4) * 4 + c % 4  # patch 8: one crop token per cell
        assert int(dl[i, crop, local]) == int(data["digit"][i])
        assert int(cl[i, crop, local]) == int(data["colour"][i])
        assert gl[i, (r // 2) * 4 + c // 2, int(data["colour"][i])] == 1  # a global token covers 2x2 cells
        # the crop is the image's quarter and its token's patch shows the glyph's pixels
        pr, pc = (r % 4) * 8, (c % 4) * 8
        assert data["crops"][i, crop, :, pr:pr + 8, pc:pc + 8].amax() > 0.5
    assert int((dl < 10).sum()) == 3 * 4 and int((cl < 4).sum()) == 3 * 4 and int((gl.sum(-1) > 0).sum()) <= 3 * 4
    # the global view is blurred: no pixel of it is as bright as a glyph's ink
    assert float(data["global"].amax()) < float(data["crops"].amax())


def test_token_labels_repeat_a_cell_over_its_patches():
    cfg = L.ToyConfig(patch=4)  # 2x2 encoder tokens per cell
    data = L.dataset(np.random.default_rng(3), cfg, 2)
    dl, cl, gl = L.token_labels(data, cfg)
    assert dl.shape == (2, 4, 64) and gl.shape == (2, 64, 4)
    for i in range(2):
        cell = int(data["cell"][i])
        r, c = divmod(cell, cfg.cells)
        crop = (r // 4) * 2 + c // 4
        toks = [((r % 4) * 2 + a) * 8 + (c % 4) * 2 + b for a in range(2) for b in range(2)]
        assert [int(dl[i, crop, t]) for t in toks] == [int(data["digit"][i])] * 4
    assert int((dl < 10).sum()) == 2 * 4 * 4


def test_toy_forward_keeps_what_it_is_asked():
    cfg = L.ToyConfig()
    toy = L.Toy(cfg, 0)
    toy.conn.eval()
    toy.lm.eval()
    data = L.dataset(np.random.default_rng(2), cfg, 4)
    with torch.no_grad():
        f = toy.features(data)
        for k in (0, 3, 64):
            logits, kept = toy.logits(data, f, keep=k)
            assert logits.shape == (4, 4) and all(len(ix) == k for ix in kept)
        logits, kept = toy.logits(data, f, keep=5, policy="random", rng=np.random.default_rng(0))
        assert all(len(ix) == 5 and ix.tolist() == sorted(ix.tolist()) for ix in kept)
        # the text-guided choice of 5 is the 5 highest selector scores
        _, kept = toy.logits(data, f, keep=5)
        out = toy.conn(f["global"], f["crops"], toy.embed(L.question_ids(data["digit"].tolist()))[:, 1:], None,
                       toy.embed(torch.tensor(L.TOK[","])), crop_grid=(2, 2), keep=None)
        for ix, sel in zip(kept, out.selections, strict=True):
            inside = torch.zeros(len(sel.scores), dtype=torch.bool)
            inside[ix] = True
            # (empty cells give near-identical tokens: allow float ties at the boundary)
            assert sel.scores[inside].min() >= sel.scores[~inside].max() - 1e-5


def test_question_ids_end_with_the_digit():
    ids = L.question_ids([7, 0])
    assert ids.shape == (2, 5)
    assert [L.VOCAB[int(i)] for i in ids[0]] == ["<image>", "what", "colour", "is", "7"]


def test_recipes_train_the_same_groups_for_the_same_steps():
    from llmlab.core.errors import ConfigError
    from llmlab.models.slime import SLIME_STAGES

    cfg = L.ToyConfig(steps_1a=3, steps_1b=5, steps_2=7, steps_3=11)
    alt, joint = L.recipe_stages("alternating", cfg), L.recipe_stages("joint", cfg)
    assert [s for s, _ in alt] == list(SLIME_STAGES) and [n for _, n in alt] == [3, 5, 7, 11]
    assert sum(n for _, n in alt) == sum(n for _, n in joint)
    (j, nj), (last, nl) = joint
    assert (last, nl) == alt[-1]
    # the joint stage trains every adapter group the three alternating stages train, at once, on both branches
    assert set(j.trainable) == {g for s, _ in alt[:3] for g in s.trainable}
    assert j.branches == "both" and j.forced_expert == -1 and nj == 3 + 5 + 7
    with pytest.raises(ConfigError, match="Available: alternating, joint"):
        L.recipe_stages("sequential", cfg)


def test_summarise_is_mean_standard_error_and_t_interval():
    x = [0.2, 0.5, 0.6, 0.9]
    s = L.summarise(x)
    se = float(np.std(x, ddof=1) / np.sqrt(len(x)))
    assert s["mean"] == pytest.approx(np.mean(x)) and s["se"] == pytest.approx(se) and s["n"] == 4
    assert s["ci95"] == pytest.approx(3.182 * se)  # t(0.975, df 3)
    assert L.summarise([0.4]) == {"mean": pytest.approx(0.4), "se": 0.0, "ci95": 0.0, "n": 1}


def test_aggregate_pairs_selector_and_random_per_seed():
    def ev(text, rnd):
        return {"text": {"0": 0.25, "4": text}, "random": {"0": 0.25, "4": rnd}, "recall_text": {"0": 0, "4": 1.0},
                "recall_random": {"0": 0, "4": 0.06}, "local_only_all": 0.9,
                "top_p_0.95": {"accuracy": 0.9, "recall": 1.0, "mean_kept": 60.0}}

    runs = [{"recipes": {"alternating": {"eval": ev(t, r)}}} for t, r in ((0.9, 0.3), (0.5, 0.4), (0.7, 0.2))]
    a = L.aggregate(runs, "alternating")
    assert a["text"]["4"]["mean"] == pytest.approx(0.7) and a["random"]["4"]["mean"] == pytest.approx(0.3)
    diffs = [0.6, 0.1, 0.5]
    assert a["text_minus_random"]["4"]["mean"] == pytest.approx(np.mean(diffs))
    assert a["text_minus_random"]["4"]["se"] == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(3))
    # pairing: the gap's spread is not the spread of either series
    assert a["text_minus_random"]["4"]["se"] != pytest.approx(a["text"]["4"]["se"])


def test_run_restarts_each_recipe_from_the_same_start():
    cfg = L.ToyConfig(n_train=64, batch=8, steps_vit=2, steps_lm=2, steps_1a=1, steps_1b=1, steps_2=1, steps_3=1,
                      n_eval=16, keeps=(0, 4, 64))
    full = L.run(seed=0, cfg=cfg)
    assert set(full["recipes"]) == {"alternating", "joint"}
    assert set(L.run(quick=True, seed=0, cfg=cfg)["recipes"]) == {"alternating"}
    hist = full["recipes"]
    assert list(hist["alternating"]["history"]) == ["1a_global_mlp", "1b_global_attn", "2_local", "3_full"]
    assert list(hist["joint"]["history"]) == ["joint_adapters", "3_full"]
    # same seed, same pretraining: the stand-ins' losses repeat exactly (the run is deterministic)
    again = L.run(quick=True, seed=0, cfg=cfg)
    assert again["history"] == full["history"]
    assert again["recipes"]["alternating"]["eval"] == hist["alternating"]["eval"]


@pytest.mark.slow
def test_less_is_more_experiment_reports_what_the_doc_states(tmp_path):
    # docs/slime.md, --quick = seed 0, alternating recipe (measured 2026-12-05, deterministic on one thread):
    # the selector finds the target cell far above chance (recall@1 0.31 vs 0.014 random), but the model does
    # not answer from the local tokens (all 64: 0.276, global only 0.275), so the claim is NOT tested/held
    res = L.experiment_slime_less_is_more(quick=True, seed=0)
    m = res["measured"]
    L.plot_less_is_more(res, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert res["claim_direction_holds"] is False
    assert m["acc_text_k64"] - m["acc_text_k0"] < 0.3  # local detail is not learnt: the precondition fails
    for k in (1, 2, 4, 8):
        assert m[f"recall_text_k{k}"] > 3 * (k / 64)  # the selector's recall is several times random's k/64
    assert m["recall_text_k1"] > 10 * m["recall_random_k1"]
