"""ShiftAddLLM (arXiv 2406.05981) §3.3: layer sensitivity and automated bit allocation under a budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmlab.core.errors import ConfigError
from llmlab.models.shiftadd.config import _torch

if TYPE_CHECKING:  # pragma: no cover
    import torch


def sensitivity_score(W: torch.Tensor, H: torch.Tensor, percdamp: float = 0.01) -> float:
    """ShiftAddLLM's layer sensitivity ``||Ŵ||_F · std(Ŵ)²`` with ``Ŵ = W / diag(L)`` column-wise.

    Args:
        W: ``(N, K)`` weight.
        H: ``(K, K)`` calibration Hessian.
        percdamp: Damping as a fraction of the mean diagonal.

    Returns:
        The score (larger = more sensitive = deserves more bits).
    """
    torch = _torch()
    K = W.shape[1]
    H = H.to(torch.float64).clone()
    dead = H.diagonal() == 0
    H[dead, dead] = 1
    H += percdamp * H.diagonal().mean() * torch.eye(K, dtype=torch.float64)
    L = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Wh = W.to(torch.float64) / L.diagonal()[None, :]
    return float(Wh.norm() * Wh.std() ** 2)


def allocate_bits(
    scores: dict[str, float],
    sizes: dict[str, int],
    budget: float,
    choices: Sequence[int] = (2, 3),
) -> dict[str, int]:
    """Give more bits to the more sensitive layers under a parameter-weighted average budget.

    Every layer starts at ``min(choices)``; layers are visited from most to least sensitive and each is
    raised to the next choice while the parameter-weighted average stays within ``budget``.

    Args:
        scores: Layer name → sensitivity (:func:`sensitivity_score`).
        sizes: Layer name → number of weights.
        budget: Average bits per weight allowed (e.g. 2.2).
        choices: Allowed bit widths.

    Returns:
        Layer name → bits.

    Raises:
        ConfigError: If the budget is below the smallest choice.

    Example:
        >>> allocate_bits({"a": 2.0, "b": 1.0}, {"a": 10, "b": 10}, budget=2.5)
        {'a': 3, 'b': 2}
    """
    levels = sorted(set(choices))
    if budget < levels[0]:
        raise ConfigError(f"bit budget {budget} is below the smallest allowed width {levels[0]}")
    total = sum(sizes[n] for n in scores)
    bits = {n: levels[0] for n in scores}
    used = levels[0] * total
    for level in levels[1:]:
        for name in sorted(scores, key=lambda n: -scores[n]):
            extra = (level - bits[name]) * sizes[name]
            if bits[name] < level and used + extra <= budget * total + 1e-9:
                bits[name] = level
                used += extra
    return bits


def average_bits(bits: dict[str, int], sizes: dict[str, int]) -> float:
    """Parameter-weighted average bit width."""
    return sum(bits[n] * sizes[n] for n in bits) / sum(sizes[n] for n in bits)
