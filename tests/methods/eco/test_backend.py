"""ECO through the hf backend's input-embedding hook: only flagged prompts, only our hook, weights intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.core.concurrency import gather, run_sync
from llmlab.core.errors import ConfigError, ContextWindowExceededError
from llmlab.methods.eco.backend import ECOBackend
from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.helpers.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture


class Keyword:
    """A stand-in classifier: flags prompts containing a keyword."""

    def __init__(self, word: str) -> None:
        self.word = word

    def flag(self, prompts: list[str]) -> list[bool]:
        return [self.word in p for p in prompts]


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path) -> Any:  # noqa: F811
    import torch

    from llmlab.backends.hf import HFBackend

    torch.set_num_threads(1)
    return HFBackend.from_spec(f"{tiny_model_dir}?device=cpu&dtype=float32")


def req(text: str, **kw: Any) -> GenerateRequest:
    return GenerateRequest(prompt=text, max_tokens=6, logprobs=True, **kw)


def _hook_counts(model: Any) -> dict[str, int]:
    return {n: len(m._forward_hooks) for n, m in model.named_modules()}


def _lps(resp: Any) -> list[float]:
    return [t.logprob for t in resp.logprobs[0]]


def test_only_flagged_prompts_are_corrupted_and_hooks_are_ours(hf: Any) -> None:
    import torch

    weights = {k: v.clone() for k, v in hf.hf_model.state_dict().items()}
    user_calls: list[int] = []
    user = hf.embedding_layer.register_forward_hook(lambda m, a, o: user_calls.append(1))  # a user's own hook
    try:
        before = _hook_counts(hf.hf_model)
        eco = ECOBackend(hf, Keyword("fox"), strength=1e4, dims=hf.embedding_layer.embedding_dim)
        plain_ref = run_sync(hf.generate(req("Hello world! How are you")))
        fox_ref = run_sync(hf.generate(req("The quick brown fox jumps")))
        plain = run_sync(eco.generate(req("Hello world! How are you")))
        fox = run_sync(eco.generate(req("The quick brown fox jumps")))
        assert eco.flag_log == [False, True]
        assert plain.texts == plain_ref.texts and _lps(plain) == _lps(plain_ref)  # bitwise identical
        assert _lps(fox) != _lps(fox_ref)
        assert eco.corrupted_forwards == 1  # the prefill only, never a decode step
        assert _hook_counts(hf.hf_model) == before  # ours removed, the user's kept
        assert user_calls  # the user's hook still fires
        # after removal the model is bit-identical: same weights, same outputs
        assert all(torch.equal(weights[k], v) for k, v in hf.hf_model.state_dict().items())
        again = run_sync(hf.generate(req("The quick brown fox jumps")))
        assert again.texts == fox_ref.texts and _lps(again) == _lps(fox_ref)
    finally:
        user.remove()


def test_hook_removed_on_error(hf: Any) -> None:
    before = _hook_counts(hf.hf_model)
    eco = ECOBackend(hf, Keyword("fox"))
    with pytest.raises(ContextWindowExceededError):
        run_sync(eco.generate(GenerateRequest(prompt="the fox", max_tokens=10_000)))
    assert _hook_counts(hf.hf_model) == before


def test_concurrent_unflagged_request_is_not_corrupted(hf: Any) -> None:
    eco = ECOBackend(hf, Keyword("fox"), strength=1e4, dims=8)
    plain_ref = run_sync(hf.generate(req("Two plus two is four")))

    async def both() -> list[Any]:
        return await gather([lambda: eco.generate(req("The fox and the dog")),
                             lambda: eco.generate(req("Two plus two is four"))])

    _fox, plain = run_sync(both())
    assert _lps(plain) == _lps(plain_ref)
    assert eco.corrupted_forwards == 1


def test_noise_is_seeded_and_strength_matters(hf: Any) -> None:
    a = run_sync(ECOBackend(hf, Keyword("fox"), strength=5.0, seed=3).generate(req("the fox runs")))
    b = run_sync(ECOBackend(hf, Keyword("fox"), strength=5.0, seed=3).generate(req("the fox runs")))
    c = run_sync(ECOBackend(hf, Keyword("fox"), strength=0.0, seed=3).generate(req("the fox runs")))
    ref = run_sync(hf.generate(req("the fox runs")))
    assert _lps(a) == _lps(b)
    assert _lps(c) == pytest.approx(_lps(ref), abs=1e-6)  # σ = 0 adds zero noise


def test_needs_embedding_access() -> None:
    from llmlab.backends.mock import MockBackend

    with pytest.raises(ConfigError, match="input-embedding"):
        ECOBackend(MockBackend(["x"]), Keyword("x"))
