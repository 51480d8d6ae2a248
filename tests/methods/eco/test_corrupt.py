"""ECO corruptions: only masked positions and selected dims change; reference loops; the hook helper."""

from __future__ import annotations

import pytest

from llmlab.core.errors import ConfigError
from llmlab.methods.eco.corrupt import (
    CORRUPTIONS,
    flip_sign_first_n,
    flip_sign_top_k,
    forward_hook,
    get_corruption,
    match_labeled_tokens,
    prompt_mask,
    rand_noise_first_n,
    rand_noise_top_k,
    zero_out_first_n,
    zero_out_top_k,
)

torch = pytest.importorskip("torch")

from tests.helpers.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    e = torch.randn(2, 5, 8, generator=g)
    pos = torch.tensor([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    return e, pos


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_only_masked_positions_change_and_input_untouched(name: str) -> None:
    e, pos = _data()
    orig = e.clone()
    out = get_corruption(name)(e, pos, 3, 2.0, torch.Generator().manual_seed(1))
    assert torch.equal(e, orig)  # never in place
    assert torch.equal(out[~pos], e[~pos])
    assert not torch.equal(out[pos], e[pos])
    # at most `dims` dims change per masked position
    assert int((out[pos] != e[pos]).sum(1).max()) <= 3


def test_first_n_reference_loop() -> None:
    e, pos = _data()
    out = rand_noise_first_n(e, pos, 2, 3.0, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(int(pos.sum()), 2, generator=g) * 3.0
    ref = e.clone()
    k = 0
    for b in range(2):  # row-major order of the mask, as boolean indexing uses
        for t in range(5):
            if pos[b, t]:
                ref[b, t, :2] += noise[k]
                k += 1
    assert torch.equal(out, ref)


def test_top_k_reference_loop() -> None:
    e, pos = _data()
    out = zero_out_top_k(e, pos, 2)
    ref = e.clone()
    for b, t in pos.nonzero().tolist():
        idx = e[b, t].abs().argsort(descending=True)[:2]
        ref[b, t, idx] = 0
    assert torch.equal(out, ref)
    out = flip_sign_top_k(e, pos, 2)
    ref = e.clone()
    for b, t in pos.nonzero().tolist():
        idx = e[b, t].abs().argsort(descending=True)[:2]
        ref[b, t, idx] = -ref[b, t, idx]
    assert torch.equal(out, ref)


def test_zero_full_row_flip_twice_and_noise_scale() -> None:
    e, pos = _data()
    assert torch.equal(zero_out_first_n(e, pos, 8)[pos], torch.zeros(int(pos.sum()), 8))
    assert torch.equal(flip_sign_first_n(flip_sign_first_n(e, pos, 5), pos, 5), e)
    big = torch.zeros(1, 4000, 4)
    mask = torch.ones(1, 4000, dtype=torch.bool)
    noise = rand_noise_first_n(big, mask, 1, 5.0, torch.Generator().manual_seed(0))[0, :, 0]
    assert noise.std().item() == pytest.approx(5.0, rel=0.05)
    assert abs(noise.mean().item()) < 0.3
    assert torch.equal(rand_noise_first_n(big, mask, 1, 5.0)[0, :, 1:], big[0, :, 1:])
    top = rand_noise_top_k(e, pos, 1, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(top, e)


def test_masks_and_errors() -> None:
    assert prompt_mask([1, 3], [True, True]) == [[False, False, False], [True, True, False]]
    assert match_labeled_tokens([1, 0, 1], [(0, 3), (4, 7), (8, 12)], [(0, 2), (2, 5), (5, 9), (9, 12)]) == [1, 1, 1, 1]
    assert match_labeled_tokens([0, 0], [(0, 3), (4, 7)], [(0, 7)]) == [0]
    e, pos = _data()
    with pytest.raises(ConfigError, match="dims"):
        rand_noise_first_n(e, pos, 9, 1.0)
    with pytest.raises(ConfigError, match="mask shape"):
        rand_noise_first_n(e, pos[:, :2], 1, 1.0)
    with pytest.raises(ConfigError, match="unknown corruption"):
        get_corruption("nope")


def test_forward_hook_removes_only_its_own_even_on_error() -> None:
    emb = torch.nn.Embedding(10, 4)
    other = emb.register_forward_hook(lambda m, a, o: None)
    with pytest.raises(RuntimeError), forward_hook(emb, lambda ids, out: out * 0):
        assert torch.equal(emb(torch.tensor([[1, 2]])), torch.zeros(1, 2, 4))
        raise RuntimeError("boom")
    assert list(emb._forward_hooks) == [other.id]
    assert not torch.equal(emb(torch.tensor([[1, 2]])), torch.zeros(1, 2, 4))
