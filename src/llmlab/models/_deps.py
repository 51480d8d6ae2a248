"""The lazy ``import torch`` shared by the torch-extra modules (models and training recipes).

Modules call :func:`require_torch` inside functions, so importing them does not import torch and a missing
torch surfaces as one :class:`~llmlab.core.errors.MissingExtraError` line naming the feature.
"""

from __future__ import annotations

from typing import Any

from llmlab.core.errors import MissingExtraError


def require_torch(feature: str) -> Any:
    """Import and return the ``torch`` module.

    Args:
        feature: What needs torch, for the error message (e.g. ``"the model lab"``).

    Returns:
        The ``torch`` module.

    Raises:
        MissingExtraError: torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("torch", "torch", feature) from exc
    return torch
