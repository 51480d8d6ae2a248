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
    assert data["global"].shape == (3, 3, 16, 16) and data["crops"].shape == (3, 4, 3, 32, 32)
    dl, cl, gl = L.cell_labels(data, cfg)
    assert dl.shape == (3, 4, 16) and gl.shape == (3, 16, 4)
    for i in range(3):
        # the target cell holds the asked digit with the answer colour
        cell = int(data["cell"][i])
        assert int(data["cell_digit"][i, cell]) == int(data["digit"][i])
        assert int(data["cell_colour"][i, cell]) == int(data["colour"][i])
        r, c = divmod(cell, cfg.cells)
        crop, local = (r // 4) * 2 + c // 4, (r % 4) * 4 + c % 4
        assert int(dl[i, crop, local]) == int(data["digit"][i])
        assert gl[i, (r // 2) * 4 + c // 2, int(data["colour"][i])] == 1
        # the crop is the image's quarter and shows the glyph's pixels
        assert data["crops"][i, crop].amax() > 0.5
    assert int((dl < 10).sum()) == 3 * 4 and int((gl.sum(-1) > 0).sum()) <= 3 * 4


def test_pool_cells_averages_two_by_two_patches():
    cfg = L.ToyConfig()
    z = torch.arange(64, dtype=torch.float32).view(1, 1, 64, 1).repeat(1, 4, 1, 1)  # patch index as the feature
    pooled = L.pool_cells(z, cfg)
    assert pooled.shape == (1, 4, 16, 1)
    assert pooled[0, 0, 0, 0] == pytest.approx((0 + 1 + 8 + 9) / 4)
    assert pooled[0, 0, 5, 0] == pytest.approx((18 + 19 + 26 + 27) / 4)


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


@pytest.mark.slow
def test_less_is_more_experiment_reports_what_the_doc_states(tmp_path):
    # docs/slime.md, seed 0 (measured 2026-12-04; the run is deterministic on one CPU thread): the stand-in
    # model barely learns the task at this budget -- all 64 local tokens give 0.30 (chance 0.25, the global
    # view alone 0.245) -- so the claim as coded does NOT hold; the selector's k = 1..8 give 0.29 vs 0.24-0.26
    # for random picks and its recall of the target cell is a little above random (0.17 vs 0.14 at k = 8)
    res = L.experiment_slime_less_is_more(quick=True, seed=0)
    m = res["measured"]
    L.plot_less_is_more(res, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert res["claim_direction_holds"] is False
    lm_loss = res["result"]["history"]["lm_text"][-20:]
    assert sum(lm_loss) / len(lm_loss) < 0.1  # the stand-in LM did learn its text-only task
    assert 0.27 <= m["acc_text_k64"] <= 0.34 and 0.22 <= m["acc_text_k0"] <= 0.27
    assert m["acc_text_k64"] - m["acc_text_k0"] < 0.3  # the part of the claim that fails
    for k in (1, 2, 4, 8):
        assert m[f"acc_text_k{k}"] > m[f"acc_random_k{k}"]
    assert m["acc_text_k8"] >= m["acc_text_k64"] - 0.05
    assert m["recall_text_k8"] > m["recall_random_k8"]
    assert m["mean_kept_top_p_0.95"] > 55  # top-p 0.95 keeps almost everything: the scores are nearly flat
