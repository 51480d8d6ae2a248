"""ECO over the hf backend: classify each prompt, corrupt the embeddings of flagged prompts only.

:class:`ECOBackend` wraps an :class:`~llmlab.backends.hf.HFBackend` and is itself a backend, so
``Model(ECOBackend(...))`` gives every method an "unlearned" model with no weight touched. For a flagged
request it installs a hook through ``HFBackend.input_embedding_hook`` (only our hook; removed on exit,
also on error) that corrupts the prefill of exactly that request's prompt: the hook compares the
forward's token ids with the request's prompt ids, so a concurrent unflagged request that runs while the
hook is installed is never corrupted, and decode steps (length 1) never are (official: corrupt only when
the forward covers more than one position).

The text classified is the last user message (chat requests) or the raw prompt: chat formatting tokens
never reach the classifier, which is what the official code achieves by stripping them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from llmlab.backends.base import Backend, GenerateRequest, GenerateResponse, content_text
from llmlab.core.errors import ConfigError
from llmlab.methods.eco.corrupt import get_corruption, prompt_mask


class Flagger(Protocol):
    def flag(self, prompts: Sequence[str]) -> list[bool]: ...


def classified_text(request: GenerateRequest) -> str:
    """What the prompt classifier sees: the last user message, or the raw prompt."""
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    for m in reversed(request.messages):
        if m.role == "user":
            return content_text(m.content)
    return ""


class ECOBackend(Backend):
    """An hf backend whose flagged prompts get corrupted input embeddings.

    Args:
        inner: The :class:`~llmlab.backends.hf.HFBackend`.
        classifier: Anything with ``flag(prompts) -> list[bool]`` (e.g. :class:`PromptClassifier`).
        corruption: A name from :data:`llmlab.methods.eco.corrupt.CORRUPTIONS`.
        dims: n (or k) of the corruption.
        strength: σ.
        seed: Noise seed (plus the request's ``sample_index``).
    """

    name: ClassVar[str] = "eco"

    def __init__(self, inner: Any, classifier: Flagger, *, corruption: str = "rand_noise_first_n", dims: int = 1,
                 strength: float = 100.0, seed: int = 0) -> None:
        if not hasattr(inner, "input_embedding_hook") or not hasattr(inner, "prompt_ids"):
            raise ConfigError("ECO needs a backend with input-embedding access (the hf backend)")
        self.inner = inner
        self.model = f"eco({inner.model})"
        self.classifier = classifier
        self.corrupt = get_corruption(corruption)
        self.corruption = corruption
        self.dims = dims
        self.strength = strength
        self.seed = seed
        self.capabilities = inner.capabilities
        self.flag_log: list[bool] = []
        self.corrupted_forwards = 0

    @classmethod
    def from_spec(cls, spec: str) -> ECOBackend:
        raise ConfigError("ECO is built in Python (ECOBackend(hf_backend, classifier, ...)), not from a spec string")

    def cache_identity(self) -> str:
        return (f"eco:{self.inner.cache_identity()}?corruption={self.corruption}&dims={self.dims}"
                f"&strength={self.strength}&seed={self.seed}&classifier={id(self.classifier)}")

    def count_tokens(self, request: GenerateRequest) -> int:
        return int(self.inner.count_tokens(request))

    def check(self, request: GenerateRequest) -> None:
        self.inner.check(request)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        flagged = bool(self.classifier.flag([classified_text(request)])[0])
        self.flag_log.append(flagged)
        if not flagged:
            return await self.inner.generate(request)
        import torch

        prompt = list(self.inner.prompt_ids(request))
        gen = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + request.sample_index)

        def hook(input_ids: Any, embeds: Any) -> Any:
            if input_ids is None or input_ids.dim() != 2 or input_ids.shape[1] != len(prompt) or len(prompt) < 2:
                return None  # a decode step, or another request's forward
            if not bool((input_ids == torch.tensor(prompt, device=input_ids.device)).all()):
                return None
            b = input_ids.shape[0]
            mask = torch.tensor(prompt_mask([len(prompt)] * b, [True] * b), device=embeds.device)
            self.corrupted_forwards += 1
            noise_gen = gen if embeds.device.type == "cpu" else None
            return self.corrupt(embeds, mask, self.dims, self.strength, noise_gen)

        with self.inner.input_embedding_hook(hook):
            return await self.inner.generate(request)
