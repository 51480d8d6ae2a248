"""Our SliME modules vs the official ones (yfzhang114/SliME) on shared weights and inputs.

Runs only when pointed at an official checkout (the folder holding ``llava/``):

    LLMLAB_SLIME_OFFICIAL=/path/to/SliME python -m pytest tests/parity/test_slime_official.py -q

The official files are loaded by path under stub ``llava`` packages (their ``__init__`` imports the whole
LLaVA stack); ``llava_arch.py`` gets stubs for the CLIP tower builder and ``mm_utils`` (only
``get_anyres_image_grid_shape`` is used, answered with the crop grid). Official modules are cast to float32
(``GatedBlock`` keeps its gate in bfloat16, ``Resampler`` its positions in float16); the float16 table's own
effect is checked separately. Weights are the official modules' random initialisation (gates randomised, as
zero gates would hide the gate's arithmetic), copied into ours with :meth:`SliMEConnector.load_official`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from llmlab.models.slime import (  # noqa: E402
    MixtureOfAdapters,
    Resampler,
    SliMEConfig,
    SliMEConnector,
    TextGuidedSelector,
    sincos_2d,
)

OFFICIAL = os.environ.get("LLMLAB_SLIME_OFFICIAL")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (Path(OFFICIAL) / "llava/model/multimodal_resampler/sampler.py").is_file(),
    reason="set LLMLAB_SLIME_OFFICIAL to a yfzhang114/SliME checkout (folder with llava/model/)",
)
MM, HID = 256, 64  # the official head count is mm_hidden // 128 -> 2 heads
TOL = dict(atol=2e-5, rtol=1e-4)


def _official() -> dict[str, Any]:
    root = Path(OFFICIAL or "")
    for name, sub in (("llava", "llava"), ("llava.model", "llava/model"),
                      ("llava.model.multimodal_resampler", "llava/model/multimodal_resampler"),
                      ("llava.model.multimodal_projector", "llava/model/multimodal_projector")):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root / sub)]
            sys.modules[name] = pkg
    enc = types.ModuleType("llava.model.multimodal_encoder.builder")
    enc.build_vision_tower = lambda *a, **k: None  # type: ignore[attr-defined]
    sys.modules.setdefault("llava.model.multimodal_encoder", types.ModuleType("llava.model.multimodal_encoder"))
    sys.modules["llava.model.multimodal_encoder.builder"] = enc
    mm_utils = types.ModuleType("llava.mm_utils")
    mm_utils.get_anyres_image_grid_shape = lambda size, pinpoints, patch: size  # type: ignore[attr-defined]
    sys.modules["llava.mm_utils"] = mm_utils
    return {
        "sampler": importlib.import_module("llava.model.multimodal_resampler.sampler"),
        "rbuilder": importlib.import_module("llava.model.multimodal_resampler.builder"),
        "pbuilder": importlib.import_module("llava.model.multimodal_projector.builder"),
        "arch": importlib.import_module("llava.model.llava_arch"),
    }


@pytest.fixture(scope="module")
def off() -> dict[str, Any]:
    return _official()


def _exact_positions(module: Any, off: dict[str, Any]) -> None:
    """Give every official Resampler in ``module`` its float32 table (the official one is rounded to float16)."""
    for m in module.modules():
        if type(m).__name__ == "Resampler":
            table = off["sampler"].get_2d_sincos_pos_embed(m.embed_dim, m.grid_size)
            m.pos_embed.data = torch.from_numpy(table).float()


def _cfg(**kw: Any) -> SimpleNamespace:
    base = dict(mm_hidden_size=MM, hidden_size=HID, mm_learnable_gated=-1, mm_resampler_dim=144,
                mm_resampler_topp=0.95, mm_resampler_temp=1.0, pad_token_id=0)
    return SimpleNamespace(**{**base, **kw})


def test_sincos_table_equals_official(off):
    ref = torch.from_numpy(off["sampler"].get_2d_sincos_pos_embed(MM, 12)).float()
    assert torch.allclose(sincos_2d(MM, 12), ref, atol=1e-6)


@pytest.mark.parametrize(("grid", "n_keys"), [(24, 576), (12, 576), (12, 144)])
def test_resampler_equals_official(off, grid, n_keys):
    torch.manual_seed(grid + n_keys)
    theirs = off["sampler"].Resampler(grid_size=grid, embed_dim=MM, num_heads=MM // 128, kv_dim=MM).float().eval()
    _exact_positions(theirs, off)
    ours = Resampler(grid, MM, MM // 128, kv_dim=MM).eval()
    ours.load_state_dict({k: v for k, v in theirs.state_dict().items() if k != "pos_embed"})
    x = torch.randn(3, n_keys, MM)
    with torch.no_grad():
        ref = theirs(x)
        assert torch.allclose(ours(x), ref, **TOL)
        assert torch.allclose(ours(x, reference=True), ref, **TOL)
        # the official float16 position table: a small, visible difference (why ours is float32)
        theirs16 = off["sampler"].Resampler(grid_size=grid, embed_dim=MM, num_heads=MM // 128, kv_dim=MM).eval()
        theirs16.load_state_dict(theirs.state_dict() | {"pos_embed": theirs16.pos_embed.data})
        assert (theirs16(x).float() - ref).abs().max() < 5e-2


@pytest.mark.parametrize("forced", [-1, 0, 1])
@pytest.mark.parametrize("training", [False, True])
def test_mixture_of_adapters_equals_gated_block(off, forced, training):
    torch.manual_seed(forced + 7)
    theirs = off["pbuilder"].GatedBlock(_cfg(mm_learnable_gated=forced)).float()
    _exact_positions(theirs, off)
    with torch.no_grad():
        theirs.w_gate.normal_(0, 0.05)  # zero gates would hide the gate arithmetic
    ours = MixtureOfAdapters(MM, HID, grid=24, num_heads=MM // 128, forced_expert=forced, noise_from="w_gate")
    ours.load_state_dict({k: v for k, v in theirs.state_dict().items() if k not in ("mean", "std", "attn.pos_embed")})
    theirs.train(training)
    ours.train(training)
    x = torch.randn(576, MM)
    with torch.no_grad():
        torch.manual_seed(11)
        ref = theirs(x)
        torch.manual_seed(11)
        got = ours(x[None])[0]
        assert torch.allclose(got, ref, **TOL)
        if not training:
            assert torch.allclose(ours(x[None], reference=True)[0], ref, **TOL)
        # a token count other than 576 goes through the MLP only, in both
        y = torch.randn(2, 144, MM)
        assert torch.allclose(ours(y), theirs(y), **TOL)


def test_zero_initialised_gate_mixes_half_half(off):
    theirs = off["pbuilder"].GatedBlock(_cfg()).float().eval()
    gates, _ = theirs.noisy_top_k_gating(torch.randn(10, MM))
    ours = MixtureOfAdapters(MM, HID, grid=24, num_heads=2).eval()
    assert torch.allclose(ours.gates(torch.randn(10, MM)), gates, atol=1e-7)
    assert torch.allclose(gates, torch.full((10, 2), 0.5), atol=1e-6)


@pytest.mark.parametrize("use_mask", [True, False])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("topp", [0.95, 0.5, 1.0])
def test_selector_equals_text_guided_sampler(off, use_mask, training, topp):
    torch.manual_seed(int(topp * 100) + use_mask)
    theirs = off["rbuilder"].TextGuidedSampler("cosine", _cfg(mm_resampler_topp=topp)).train(training)
    ours = TextGuidedSelector(top_p=topp, temperature=1.0).train(training)
    local = torch.randn(4 * 144, HID)
    text = torch.randn(20, HID)
    mask = torch.ones(20, dtype=torch.bool)
    mask[15:] = False
    with torch.no_grad():
        torch.manual_seed(3)
        ref = theirs(local, text, mask if use_mask else None)
        torch.manual_seed(3)
        sel = ours.select([local], text[None], mask[None] if use_mask else None)[0]
        assert torch.equal(local[sel.indices], ref)
        assert sel.indices.numel() < local.shape[0] or topp == 1.0
        if not training:
            rsel = ours.select([local], text[None], mask[None] if use_mask else None, reference=True)[0]
            assert torch.equal(rsel.indices, sel.indices)


@pytest.mark.parametrize("merge", ["spatial", "flat"])
def test_connector_equals_encode_images(off, merge):
    arch = off["arch"]
    torch.manual_seed(5)
    proj = off["pbuilder"].GatedBlock(_cfg()).float().eval()
    with torch.no_grad():
        proj.w_gate.normal_(0, 0.05)
    sampler = off["rbuilder"].TextGuidedSampler("cosine", _cfg(mm_resampler_topp=0.95)).float().eval()
    _exact_positions(proj, off)
    _exact_positions(sampler, off)
    embed = torch.nn.Embedding(50, HID)
    tower = SimpleNamespace(config=SimpleNamespace(image_size=1))
    inner = SimpleNamespace(has_sampler=True, embed_tokens=embed, mm_projector=proj, sampler=sampler,
                            get_vision_tower=lambda: (lambda imgs: imgs))

    class Fake(arch.LlavaMetaForCausalLM):
        config = SimpleNamespace(mm_patch_merge_type=merge, use_local_only=False, use_global_only=False,
                                 seperator=7, image_grid_pinpoints=None, tokenizer_padding_side="right",
                                 tokenizer_model_max_length=None, mm_projector_type="gated")

        def get_model(self):
            return inner

        def get_vision_tower(self):
            return tower

    grids = [(2, 2), (1, 3)]  # (rows, cols) of crops per image
    feats = [torch.randn(1 + r * c, 576, MM) for r, c in grids]
    ids = torch.tensor([[1, 2, -200, 3, 4, 5, 0, 0], [1, -200, 6, 7, 8, 9, 10, 11]])
    am = torch.tensor([[1] * 6 + [0] * 2, [1] * 8])
    with torch.no_grad():
        ref, _ = Fake().encode_images(torch.cat(feats), ids, [f.shape[0] for f in feats], am,
                                      image_sizes=[(c, r) for r, c in grids])
        text, tmask = Fake().get_pure_text_embedding(ids, am)
        ours = SliMEConnector(SliMEConfig(mm_dim=MM, hidden=HID, global_grid=24, local_grid=12, num_heads=2,
                                          merge=merge)).eval()
        ours.load_official(proj.state_dict(), sampler.state_dict())
        out = ours(torch.stack([f[0] for f in feats]), [f[1:] for f in feats], text, tmask.bool(),
                   embed.weight[7], crop_grid=grids)
    for got, want in zip(out.tokens, ref, strict=True):
        assert got.shape == want[0].shape
        assert torch.allclose(got, want[0], **TOL)
