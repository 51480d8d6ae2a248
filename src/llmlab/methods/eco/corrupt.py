"""ECO's embedding corruptions (official ``eco/attack/corrupt.py``) as pure tensor functions, and the hook.

Every function takes the input embeddings ``e`` (B, L, D), a boolean mask ``pos`` (B, L) of the positions
to corrupt, ``dims`` (n or k) and, for the noise/value variants, ``strength`` (σ), and returns a NEW
tensor (the input is never modified in place, so the embedding layer's output buffer and the weights are
untouched). Noise comes from an explicit ``torch.Generator`` so a corruption is reproducible; the official
code draws from the global RNG.

Deliberate deviations from the official functions:

- ``rand_noise_rand_n`` is vectorised and under ``no_grad`` (the official one loops over dims and lacks
  ``@torch.no_grad``); as in the official code, one random set of n dims is shared by all positions of a call.
- Functions never mutate their input (the official ones write into ``data`` in place).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llmlab.core.errors import ConfigError
from llmlab.models._deps import require_torch


def _torch() -> Any:
    return require_torch("ECO embedding corruption")


def _check(e: Any, pos: Any, dims: int) -> Any:
    torch = _torch()
    if e.dim() != 3:
        raise ConfigError(f"embeddings must be (B, L, D), got shape {tuple(e.shape)}")
    pos = torch.as_tensor(pos, dtype=torch.bool, device=e.device)
    if pos.shape != e.shape[:2]:
        raise ConfigError(f"mask shape {tuple(pos.shape)} does not match embeddings {tuple(e.shape[:2])}")
    if not 1 <= dims <= e.shape[2]:
        raise ConfigError(f"dims must be in [1, {e.shape[2]}], got {dims}")
    return pos


def _noise(shape: tuple[int, ...], strength: float, like: Any, generator: Any) -> Any:
    torch = _torch()
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype) * strength


def rand_noise_first_n(e: Any, pos: Any, dims: int, strength: float, generator: Any = None) -> Any:
    """Add N(0, σ²) noise to the first ``dims`` dimensions at the masked positions (ECO's main variant)."""
    torch = _torch()
    pos = _check(e, pos, dims)
    out = e.clone()
    with torch.no_grad():
        out[..., :dims][pos] += _noise((int(pos.sum()), dims), strength, e, generator)
    return out


def rand_noise_rand_n(e: Any, pos: Any, dims: int, strength: float, generator: Any = None) -> Any:
    """Add N(0, σ²) noise to ``dims`` random dimensions (one draw of dims per call) at the masked positions."""
    torch = _torch()
    pos = _check(e, pos, dims)
    out = e.clone()
    with torch.no_grad():
        chosen = torch.randperm(e.shape[2], generator=generator, device="cpu")[:dims].to(e.device)
        block = out[pos]  # (M, D)
        block[:, chosen] += _noise((block.shape[0], dims), strength, e, generator)
        out[pos] = block
    return out


def rand_noise_top_k(e: Any, pos: Any, dims: int, strength: float, generator: Any = None) -> Any:
    """Add N(0, σ²) noise to the ``dims`` largest-|value| dimensions of each masked position."""
    torch = _torch()
    pos = _check(e, pos, dims)
    out = e.clone()
    with torch.no_grad():
        block = out[pos]  # (M, D)
        idx = block.abs().topk(dims, dim=1).indices
        block.scatter_add_(1, idx, _noise(tuple(idx.shape), strength, e, generator))
        out[pos] = block
    return out


def zero_out_first_n(e: Any, pos: Any, dims: int, strength: float = 0.0, generator: Any = None) -> Any:
    """Set the first ``dims`` dimensions to 0 at the masked positions."""
    pos = _check(e, pos, dims)
    out = e.clone()
    out[..., :dims][pos] = 0
    return out


def zero_out_top_k(e: Any, pos: Any, dims: int, strength: float = 0.0, generator: Any = None) -> Any:
    """Zero the ``dims`` largest-|value| dimensions of each masked position."""
    pos = _check(e, pos, dims)
    out = e.clone()
    block = out[pos]
    block.scatter_(1, block.abs().topk(dims, dim=1).indices, 0.0)
    out[pos] = block
    return out


def flip_sign_first_n(e: Any, pos: Any, dims: int, strength: float = 0.0, generator: Any = None) -> Any:
    """Negate the first ``dims`` dimensions at the masked positions."""
    pos = _check(e, pos, dims)
    out = e.clone()
    out[..., :dims][pos] = -out[..., :dims][pos]
    return out


def flip_sign_top_k(e: Any, pos: Any, dims: int, strength: float = 0.0, generator: Any = None) -> Any:
    """Negate the ``dims`` largest-|value| dimensions of each masked position."""
    pos = _check(e, pos, dims)
    out = e.clone()
    block = out[pos]
    idx = block.abs().topk(dims, dim=1).indices
    block.scatter_(1, idx, -block.gather(1, idx))
    out[pos] = block
    return out


CORRUPTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (rand_noise_first_n, rand_noise_rand_n, rand_noise_top_k, zero_out_first_n,
                            zero_out_top_k, flip_sign_first_n, flip_sign_top_k)
}


def get_corruption(name: str) -> Callable[..., Any]:
    """The corruption function called ``name``.

    Raises:
        ConfigError: Unknown name (the message lists the known ones).
    """
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}. Available: {', '.join(sorted(CORRUPTIONS))}")
    return CORRUPTIONS[name]


def prompt_mask(lengths: list[int], flagged: list[bool], width: int | None = None) -> list[list[bool]]:
    """ECO's token selection without a token classifier: every prompt token except the last.

    Only flagged prompts get a mask (right padding to ``width``); a 1-token prompt is never corrupted.

    Example:
        >>> prompt_mask([3, 2], [True, False], width=4)
        [[True, True, False, False], [False, False, False, False]]
    """
    w = width if width is not None else max(lengths, default=0)
    return [[f and t < n - 1 for t in range(w)] for n, f in zip(lengths, flagged, strict=True)]


def match_labeled_tokens(src_labels: list[int], src_offsets: list[tuple[int, int]],
                         tgt_offsets: list[tuple[int, int]]) -> list[int]:
    """Map token labels across tokenizers by character overlap (official ``match_labeled_tokens``).

    A target token is labelled when it overlaps any labelled source token.

    Example:
        >>> match_labeled_tokens([0, 1], [(0, 5), (6, 11)], [(0, 3), (3, 7), (7, 11)])
        [0, 1, 1]
    """
    marked = [o for o, lab in zip(src_offsets, src_labels, strict=True) if lab == 1]
    return [int(any(s < te and e > ts for s, e in marked)) for ts, te in tgt_offsets]


@contextmanager
def forward_hook(module: Any, fn: Callable[[Any, Any], Any]) -> Iterator[Any]:
    """Install ``fn(input_ids, output) -> output | None`` as a forward hook on ``module`` while the block runs.

    Only this hook's handle is removed on exit, also when the block raises (the official ``remove_hooks``
    clears every forward hook of every module, including those of peft/accelerate or the user).
    """

    def _hook(mod: Any, args: tuple[Any, ...], output: Any) -> Any:
        return fn(args[0] if args else None, output)

    handle = module.register_forward_hook(_hook)
    try:
        yield handle
    finally:
        handle.remove()
