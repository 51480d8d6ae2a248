"""Putting a whole LM (e.g. :class:`~llmlab.models.samba.SambaLM` with dReLU FFNs) on the offloading engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llmlab.core.errors import ConfigError
from llmlab.models.offload.engine import (
    OffloadConfig,
    OffloadedFFN,
    OffloadEngine,
    PolymorphicFFN,
    active_ids,
    ffn_weights,
    pinned_from_frequency,
    strip_weights,
)
from llmlab.models.offload.store import write_bundles
from llmlab.models.sparse_ffn import GatedFFN, SparseFFN


def _ffn_owners(model: nn.Module) -> list[nn.Module]:
    """Modules holding a ``.ffn`` GatedFFN (the blocks), in order."""
    owners = [m for m in model.modules() if isinstance(getattr(m, "ffn", None), GatedFFN)]
    if not owners:
        raise ConfigError("the model has no GatedFFN layers (train it with --ffn drelu)")
    return owners


@torch.no_grad()
def profile_frequency(sparse_layers: list[SparseFFN], hiddens: list[torch.Tensor]) -> list[np.ndarray]:
    """Offline profiling: how often each neuron is computed (hot set or predicted) over recorded hidden states.

    Args:
        sparse_layers: Per layer, the SparseFFN (predictor + hot set).
        hiddens: Per layer, pre-FFN hidden states (T, d) of a profiling corpus.

    Returns:
        Per layer, (d_ff,) frequencies in [0, 1].
    """
    out = []
    for sp, h in zip(sparse_layers, hiddens, strict=True):
        d_ff = sp.perm.numel()
        counts = np.zeros(d_ff)
        for row in h:
            counts[active_ids(sp, row[None])] += 1
        out.append(counts / max(len(h), 1))
    return out


def offload_lm(model: nn.Module, sparse_layers: list[SparseFFN], path: str | Path, cfg: OffloadConfig,
               frequency: list[np.ndarray] | None = None, align: int = 4096) -> OffloadEngine:
    """Move ``model``'s FFN weights to a bundle file and run them through an :class:`OffloadEngine` (in place).

    Each block's ``ffn`` becomes an :class:`OffloadedFFN` and the in-memory FFN weights are dropped; attention,
    embeddings and predictors stay resident. Deep-copy the model first to keep an in-memory reference.

    Args:
        model: An LM with ``.ffn`` GatedFFN blocks and ``prefill`` / ``step``.
        sparse_layers: Per layer, its SparseFFN (predictor, hot set) as used in memory.
        path: Where to write the bundle file.
        cfg: Engine settings (budget, pipeline, mode).
        frequency: Offline-profiled per-neuron frequencies for the pinned hot segment (None: nothing pinned).
        align: Bundle alignment in the file (see :func:`~llmlab.models.offload.store.write_bundles`).

    Returns:
        The engine (for stats, ``drop_page_cache`` and ``close``).
    """
    owners = _ffn_owners(model)
    if len(owners) != len(sparse_layers):
        raise ConfigError(f"{len(owners)} FFN layers but {len(sparse_layers)} SparseFFNs")
    act = str(getattr(owners[0], "ffn").act)  # noqa: B009 - typed as Module
    write_bundles(path, [ffn_weights(sp) for sp in sparse_layers],
                  dtype=str(sparse_layers[0].bundle.dtype).removeprefix("torch."), align=align)
    pinned = None
    if frequency is not None and cfg.mode == "sparse":
        pinned = pinned_from_frequency(frequency, OffloadEngine.hot_slots(cfg, path))
    engine = OffloadEngine(path, act, cfg, pinned)
    for i, (blk, sp) in enumerate(zip(owners, sparse_layers, strict=True)):
        blk.ffn = OffloadedFFN(engine, i, strip_weights(sp))
    return engine


def polymorphic_lm(model: nn.Module, sparse_layers: list[SparseFFN]) -> nn.Module:
    """The in-memory reference (in place): dense FFN for prefill, ``sparse_layers`` for one-token decode."""
    owners = _ffn_owners(model)
    for blk, sp in zip(owners, sparse_layers, strict=True):
        blk.ffn = PolymorphicFFN(blk.ffn, sp)  # type: ignore[arg-type]
    return model


def ffn_bytes(model: Any) -> int:
    """Bytes of all GatedFFN weights in ``model``."""
    return sum(p.numel() * p.element_size() for m in model.modules() if isinstance(m, GatedFFN)
               for p in m.parameters())


__all__ = ["ffn_bytes", "offload_lm", "polymorphic_lm", "profile_frequency"]
